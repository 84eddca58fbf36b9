"""Rspamd-compatible digests and string encodings, byte for byte.

A hashed list is only useful if the scanner computes the very label we published, so
every algorithm and encoding here reproduces what Rspamd's ``rbl`` module does with
its ``hash``, ``hash_format`` and ``hash_len`` options.  The reference is
``shared/vectors/rspamd-hash-vectors.json``, produced by Rspamd itself.

Rspamd's encodings differ from the textbook ones in ways that matter:

- ``base32`` (Rspamd's default) uses the z-base-32 alphabet but reads the input as one
  little-endian bit string, five bits at a time from the least significant end; it is
  neither RFC 4648 nor standard z-base-32.
- ``rbase32`` is RFC 4648 base32, lowercased and without padding (``base32('rfc')``).
- ``bleach`` is RFC 4648's bit order (most significant first) over the bech32 alphabet.
- ``base64`` is the standard alphabet with padding; ``hex`` is lowercase.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable
from dataclasses import dataclass

ALGORITHMS = ("blake2", "sha1", "sha256", "sha384", "sha512", "md5")
ENCODINGS = ("hex", "base32", "rbase32", "bleach", "base64")

#: The alphabet of Rspamd's ``base32`` (z-base-32's letters, Rspamd's bit order).
ZBASE32 = "ybndrfg8ejkmcpqxot1uwisza345h769"
_RFC4648_UPPER = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
_BECH32 = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"
# bleach only swaps the alphabet of RFC 4648 base32, so reuse the C encoder and translate.
_TO_BLEACH = str.maketrans(_RFC4648_UPPER, _BECH32)


@dataclass(frozen=True)
class HashScheme:
    """One way of hashing tokens into a single label (Rspamd rbl ``hash*`` options)."""

    alg: str = "blake2"  # blake2 | sha1 | sha256 | sha384 | sha512 | md5
    encoding: str = "base32"  # hex | base32 (Rspamd's) | rbase32 (RFC 4648, lowercase) | bleach
    length: int | None = None  # cut the encoded string to this many characters (<= 63)


def _blake2(data: bytes) -> bytes:
    # Rspamd's "blake2" is BLAKE2b with its full 64-byte digest.
    return hashlib.blake2b(data, digest_size=64).digest()


_DIGESTS: dict[str, Callable[[bytes], bytes]] = {
    "blake2": _blake2,
    "sha1": lambda data: hashlib.sha1(data).digest(),
    "sha256": lambda data: hashlib.sha256(data).digest(),
    "sha384": lambda data: hashlib.sha384(data).digest(),
    "sha512": lambda data: hashlib.sha512(data).digest(),
    # Not used for security: Rspamd offers md5 and lists built for it must match.
    "md5": lambda data: hashlib.md5(data, usedforsecurity=False).digest(),
}


def digest(alg: str, data: bytes) -> bytes:
    """Raw digest of ``data`` under Rspamd's name ``alg`` for the algorithm."""
    try:
        func = _DIGESTS[alg]
    except KeyError:
        raise ValueError(
            f"unknown hash algorithm {alg!r}; expected one of {', '.join(ALGORITHMS)}"
        ) from None
    return func(data)


def _rspamd_base32(raw: bytes) -> str:
    # The whole input is one little-endian integer; emit 5 bits at a time from bit 0,
    # with the last character holding whatever bits remain (no padding).
    value = int.from_bytes(raw, "little")
    chars = (len(raw) * 8 + 4) // 5
    return "".join(ZBASE32[(value >> (5 * i)) & 0x1F] for i in range(chars))


def _rfc_base32(raw: bytes) -> str:
    return base64.b32encode(raw).decode("ascii").rstrip("=")


def _encode_hex(raw: bytes) -> str:
    return raw.hex()


def _encode_rbase32(raw: bytes) -> str:
    return _rfc_base32(raw).lower()


def _encode_bleach(raw: bytes) -> str:
    return _rfc_base32(raw).translate(_TO_BLEACH)


def _encode_base64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


_ENCODERS: dict[str, Callable[[bytes], str]] = {
    "hex": _encode_hex,
    "base32": _rspamd_base32,
    "rbase32": _encode_rbase32,
    "bleach": _encode_bleach,
    "base64": _encode_base64,
}


def encode(encoding: str, raw: bytes) -> str:
    """``raw`` as text in one of Rspamd's ``hash_format`` encodings."""
    try:
        func = _ENCODERS[encoding]
    except KeyError:
        raise ValueError(
            f"unknown hash encoding {encoding!r}; expected one of {', '.join(ENCODINGS)}"
        ) from None
    return func(raw)


def hash_token(data: str | bytes, scheme: HashScheme) -> str:
    """The label Rspamd computes for ``data``: digest, encode, then cut to ``length``.

    A ``str`` is hashed as its UTF-8 bytes, as Rspamd hashes the Lua string it holds.
    """
    if scheme.length is not None and scheme.length < 1:
        raise ValueError(f"hash length must be at least 1, not {scheme.length}")
    raw = data.encode("utf-8") if isinstance(data, str) else data
    text = encode(scheme.encoding, digest(scheme.alg, raw))
    return text if scheme.length is None else text[: scheme.length]
