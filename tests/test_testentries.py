"""listformat.testentries: the RFC 5782 section 5 test entries of every scheme."""

from __future__ import annotations

from typing import get_args

import pytest

from listformat import txt
from listformat.codes import ReturnCodes, validate_code
from listformat.hashing import HashScheme
from listformat.names import (
    OwnerScheme,
    SchemeKind,
    hash_input,
    owner_names,
    reverse_ip,
)
from listformat.testentries import (
    TEST_CODE,
    TEST_TXT,
    listed_names,
    listed_tokens,
    unlisted_names,
    unlisted_tokens,
)

KINDS: tuple[SchemeKind, ...] = get_args(SchemeKind)
SCHEMES = {
    "ip": OwnerScheme("ip"),
    "name": OwnerScheme("name"),
    "hash": OwnerScheme("hash", HashScheme("md5", "hex"), (HashScheme("blake2", "base32", 32),)),
}
IPV6_TEST = "2.0.0.0.0.0.f.7.f.f.f.f" + ".0" * 20
IPV6_NEVER = "1.0.0.0.0.0.f.7.f.f.f.f" + ".0" * 20


def test_ip_entries() -> None:
    """IP zones list 127.0.0.2 and ::FFFF:7F00:2, never 127.0.0.1 or ::FFFF:7F00:1."""
    assert listed_names(SCHEMES["ip"]) == ("2.0.0.127", IPV6_TEST)
    assert unlisted_names(SCHEMES["ip"]) == ("1.0.0.127", IPV6_NEVER)


def test_name_entries() -> None:
    """Name zones list TEST and never INVALID."""
    assert listed_tokens("name") == ("test",)
    assert unlisted_tokens("name") == ("invalid",)
    assert listed_names(SCHEMES["name"]) == ("test",)


def test_hash_entries_are_hashed_like_any_token() -> None:
    """Hashed zones list the hash of 'test' and of 2.0.0.127, under every alias."""
    scheme = SCHEMES["hash"]
    assert listed_tokens("hash") == ("test", "127.0.0.2")
    names = listed_names(scheme)
    assert len(names) == 4
    assert names == owner_names(scheme, "test") + owner_names(scheme, "127.0.0.2")
    assert hash_input("127.0.0.2") == b"2.0.0.127"


@pytest.mark.parametrize("kind", KINDS)
def test_listed_and_unlisted_never_meet(kind: SchemeKind) -> None:
    """No listed test name is also a name that must stay unlisted."""
    scheme = SCHEMES[kind]
    assert not set(listed_names(scheme)) & set(unlisted_names(scheme))


@pytest.mark.parametrize("kind", KINDS)
def test_nothing_maps_to_rspamd_probe(kind: SchemeKind) -> None:
    """Rspamd probes 1.0.0.127.<list>; no listed test entry may answer it."""
    probe = reverse_ip("127.0.0.1")
    assert probe == "1.0.0.127"
    assert probe not in listed_names(SCHEMES[kind])


def test_test_answer() -> None:
    """The test entries answer 127.0.0.2, a valid code, with TXT v=1;test=1."""
    validate_code(TEST_CODE)
    assert str(TEST_CODE) == "127.0.0.2"
    assert txt.encode(TEST_TXT) == b"v=1;test=1"
    assert ReturnCodes.default().band_for_code(TEST_CODE) is not None


def test_test_txt_is_read_only() -> None:
    """TEST_TXT is shared by every zone, so nobody may change it."""
    with pytest.raises(TypeError):
        TEST_TXT["test"] = 2  # type: ignore[index]


def test_unknown_kind() -> None:
    """An unknown scheme kind is a ValueError, not an empty tuple."""
    with pytest.raises(ValueError, match="unknown owner-name scheme"):
        listed_tokens("bogus")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unknown owner-name scheme"):
        unlisted_tokens("bogus")  # type: ignore[arg-type]
