"""listformat.hashing against the vectors Rspamd itself produced."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from listformat.hashing import ALGORITHMS, ENCODINGS, HashScheme, digest, encode, hash_token

VECTORS = Path(__file__).resolve().parents[2] / "shared" / "vectors" / "rspamd-hash-vectors.json"

# Rspamd's names for its encodings -> ours.
ENCODING_NAMES = {
    "hex": "hex",
    "base32": "base32",
    "base32-rfc": "rbase32",
    "base32-bleach": "bleach",
    "base64": "base64",
}

# 6 algorithms x 5 encodings x 22 inputs; 48 more encode inputs without hashing.
EXPECTED_DIGEST_VECTORS = 660
EXPECTED_RAW_VECTORS = 48


def _load() -> list[dict[str, Any]]:
    if not VECTORS.is_file():
        return []
    vectors: list[dict[str, Any]] = json.loads(VECTORS.read_text(encoding="utf-8"))
    return vectors


def _expected(vector: dict[str, Any]) -> str:
    output: str = vector["output"]
    # Rspamd prints RFC 4648 base32 in uppercase; ours is lowercase (labels).
    return output.lower() if vector["encoding"] == "base32-rfc" else output


def _id(vector: dict[str, Any]) -> str:
    text = vector["input"].encode("unicode_escape").decode("ascii")
    if len(text) > 24:
        text = text[:24] + "..."
    return f"{vector['alg']}-{vector['encoding']}-{text!r}"


ALL = _load()
DIGEST_VECTORS = [v for v in ALL if v["alg"] in ALGORITHMS and v["encoding"] in ENCODING_NAMES]
RAW_VECTORS = [v for v in ALL if v["alg"] == "none" and v["encoding"] in ENCODING_NAMES]


def test_vectors_found() -> None:
    """The vector file is found and every digest vector of ours is checked."""
    assert VECTORS.is_file(), f"missing {VECTORS}"
    assert len(DIGEST_VECTORS) == EXPECTED_DIGEST_VECTORS
    assert len(RAW_VECTORS) == EXPECTED_RAW_VECTORS


@pytest.mark.parametrize("vector", DIGEST_VECTORS, ids=[_id(v) for v in DIGEST_VECTORS])
def test_digest_vector(vector: dict[str, Any]) -> None:
    """digest + encode of the UTF-8 input gives exactly what Rspamd gave."""
    raw = digest(vector["alg"], vector["input"].encode("utf-8"))
    assert encode(ENCODING_NAMES[vector["encoding"]], raw) == _expected(vector)


@pytest.mark.parametrize("vector", RAW_VECTORS, ids=[_id(v) for v in RAW_VECTORS])
def test_raw_encoding_vector(vector: dict[str, Any]) -> None:
    """The encodings alone match Rspamd on unhashed input (bit order at every length)."""
    encoded = encode(ENCODING_NAMES[vector["encoding"]], vector["input"].encode("utf-8"))
    assert encoded == _expected(vector)


def test_rspamd_base32_is_least_significant_bits_first() -> None:
    """0x01 puts its low bit in the first character: 'b' (1) then 'y' (0)."""
    assert encode("base32", b"\x01") == "by"
    assert encode("bleach", b"\x01") == "qy"
    assert encode("rbase32", b"\x01") == "ae"


def test_empty_input_encodes_to_empty() -> None:
    """No padding anywhere except base64, so empty input gives an empty string."""
    for encoding in ENCODINGS:
        assert encode(encoding, b"") == ""


def test_blake2_is_blake2b_512() -> None:
    """Rspamd's blake2 has a 64-byte digest."""
    assert len(digest("blake2", b"abc")) == 64


def test_hash_token_cuts_to_length() -> None:
    """hash_token hashes str as UTF-8 and cuts the encoded text to ``length``."""
    full = hash_token("1.2.0.192", HashScheme("blake2", "base32"))
    assert len(full) == 103
    assert hash_token("1.2.0.192", HashScheme("blake2", "base32", 32)) == full[:32]
    assert hash_token(b"1.2.0.192", HashScheme("blake2", "base32", 32)) == full[:32]
    assert (
        hash_token("bücher.de", HashScheme("md5", "hex"))
        == digest("md5", "bücher.de".encode()).hex()
    )


def test_hash_token_matches_vector() -> None:
    """hash_token agrees with Rspamd on sha1/base32 of the reversed 192.0.2.1, cut to 10."""
    vector = next(
        v
        for v in DIGEST_VECTORS
        if (v["alg"], v["encoding"], v["input"]) == ("sha1", "base32", "1.2.0.192")
    )
    assert hash_token("1.2.0.192", HashScheme("sha1", "base32", 10)) == vector["output"][:10]


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: digest("xxh64", b""), "unknown hash algorithm 'xxh64'"),
        (lambda: encode("base58", b""), "unknown hash encoding 'base58'"),
        (lambda: hash_token("x", HashScheme("md5", "hex", 0)), "at least 1"),
    ],
    ids=["algorithm", "encoding", "length"],
)
def test_errors(call: Any, message: str) -> None:
    """Unknown names and impossible lengths are ValueErrors that say what is wrong."""
    with pytest.raises(ValueError, match=message):
        call()
