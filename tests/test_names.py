"""listformat.names: tokens to owner names under the ip, name and hash schemes."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from listformat.hashing import HashScheme, digest, encode, hash_token
from listformat.names import (
    OwnerNameError,
    OwnerScheme,
    check_hash_scheme,
    hash_input,
    ip_from_reversed,
    normalize_name,
    owner_names,
    parse_network,
    reverse_ip,
)

IP = OwnerScheme("ip")
NAME = OwnerScheme("name")

RFC5782_V6 = "b.a.9.8.7.6.5.0.4.0.0.0.3.0.0.0.2.0.0.0.1.0.0.0.8.b.d.0.1.0.0.2"


# -- ip ---------------------------------------------------------------------------


def test_reverse_ipv4_rfc5782() -> None:
    """RFC 5782 section 2.1: 192.0.2.1 is published as 1.2.0.192."""
    assert reverse_ip("192.0.2.1") == "1.2.0.192"
    assert reverse_ip(ipaddress.IPv4Address("192.0.2.1")) == "1.2.0.192"


def test_reverse_ipv6_rfc5782() -> None:
    """RFC 5782 section 2.4: IPv6 is 32 reversed nibbles."""
    assert reverse_ip("2001:db8:1:2:3:4:567:89ab") == RFC5782_V6
    assert reverse_ip(ipaddress.IPv6Address("2001:DB8:1:2:3:4:567:89AB")) == RFC5782_V6


def test_reverse_ipv4_mapped_stays_ipv6() -> None:
    """::ffff:127.0.0.2 is its own IPv6 entry, as RFC 5782 section 5 lists it."""
    assert reverse_ip("::ffff:127.0.0.2") == "2.0.0.0.0.0.f.7.f.f.f.f" + ".0" * 20


@pytest.mark.parametrize(
    "token", ["", "1.2.3", "256.0.0.1", "01.2.3.4", "example.com", "fe80::1%eth0", "1.2.3.4/32"]
)
def test_reverse_ip_rejects(token: str) -> None:
    """Anything but a single unscoped address is an OwnerNameError."""
    with pytest.raises(OwnerNameError):
        reverse_ip(token)


@given(st.ip_addresses())
def test_reverse_ip_round_trip(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> None:
    """ip_from_reversed undoes reverse_ip for every address."""
    assert ip_from_reversed(reverse_ip(address)) == address


def test_ip_from_reversed_accepts_case_and_trailing_dot() -> None:
    """DNS names are case-insensitive and may arrive fully qualified."""
    assert ip_from_reversed(RFC5782_V6.upper() + ".") == ipaddress.ip_address(
        "2001:db8:1:2:3:4:567:89ab"
    )
    assert ip_from_reversed("1.2.0.192.") == ipaddress.IPv4Address("192.0.2.1")


@pytest.mark.parametrize(
    "name", ["", "1.2.0", "1.2.0.256", "1.2.0.01", "a.b.c.d", "1.2.0.192.x", "0." * 31 + "0g"]
)
def test_ip_from_reversed_rejects(name: str) -> None:
    """Only the exact forms reverse_ip writes read back as addresses."""
    with pytest.raises(OwnerNameError):
        ip_from_reversed(name)


@pytest.mark.parametrize(
    ("token", "network"),
    [
        ("192.0.2.1", "192.0.2.1/32"),
        ("10.0.0.0/8", "10.0.0.0/8"),
        ("10.1.2.3/8", "10.0.0.0/8"),
        ("2001:db8::/32", "2001:db8::/32"),
        ("2001:db8::1", "2001:db8::1/128"),
        ("2001:db8:ff::/32", "2001:db8::/32"),
    ],
)
def test_parse_network(token: str, network: str) -> None:
    """Addresses and CIDR entries parse; host bits are masked like rbldnsd does."""
    assert parse_network(token) == ipaddress.ip_network(network)


@pytest.mark.parametrize(
    "token", ["", "10.0.0.0/33", "10.0.0.0/255.0.0.0", "10.0.0.0/", "x/8", "fe80::/64%eth0"]
)
def test_parse_network_rejects(token: str) -> None:
    """Bad networks, netmask forms and scoped addresses are OwnerNameErrors."""
    with pytest.raises(OwnerNameError):
        parse_network(token)


def test_owner_names_ip() -> None:
    """An ip zone publishes one reversed name per address, and refuses networks."""
    assert owner_names(IP, "192.0.2.1") == ("1.2.0.192",)
    assert owner_names(IP, "2001:db8:1:2:3:4:567:89ab") == (RFC5782_V6,)
    with pytest.raises(OwnerNameError, match="network"):
        owner_names(IP, "10.0.0.0/8")


# -- name -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("token", "name"),
    [
        ("example.com", "example.com"),
        ("Example.COM.", "example.com"),
        ("bücher.de", "xn--bcher-kva.de"),
        ("BÜCHER.de", "xn--bcher-kva.de"),
        ("ＢＵＣＨＥＲ。de", "bucher.de"),
        ("пример.рф", "xn--e1afmkfd.xn--p1ai"),
        ("xn--bcher-kva.de", "xn--bcher-kva.de"),
        ("_dmarc.example.com", "_dmarc.example.com"),
        ("_dmarc.bücher.de", "_dmarc.xn--bcher-kva.de"),
        ("a" * 63 + ".com", "a" * 63 + ".com"),
    ],
)
def test_normalize_name(token: str, name: str) -> None:
    """Names are lowercased and IDNA (UTS 46) encoded; underscores are kept."""
    assert normalize_name(token) == name
    assert owner_names(NAME, token) == (name,)


@pytest.mark.parametrize(
    ("token", "problem"),
    [
        ("", "empty label"),
        (".", "empty label"),
        ("example.com..", "empty label"),
        ("a..b", "empty label"),
        ("a" * 64 + ".com", "over 63"),
        (".".join(["a" * 63] * 4), "over 253"),
        ("exa mple.com", "outside"),
        ("*.example.com", "outside"),
        ("user@example.com", "outside"),
        ("\u0301bücher.de", "internationalized"),
        ("ü-.de", "internationalized"),
    ],
)
def test_normalize_name_rejects(token: str, problem: str) -> None:
    """Invalid names raise OwnerNameError naming the problem."""
    with pytest.raises(OwnerNameError, match=problem):
        normalize_name(token)


# -- hash -------------------------------------------------------------------------


def test_hash_input() -> None:
    """IPs are hashed as their reversed string, as Rspamd's rbl module does."""
    assert hash_input("192.0.2.1") == b"1.2.0.192"
    assert hash_input("2001:db8:1:2:3:4:567:89ab") == RFC5782_V6.encode()
    assert hash_input("example.com") == b"example.com"
    assert hash_input("bücher.de") == "bücher.de".encode()


def test_owner_names_hash_with_aliases() -> None:
    """A hashed zone publishes the primary hash, then each distinct alias hash."""
    primary = HashScheme("sha1", "base32", 32)
    scheme = OwnerScheme(
        "hash",
        primary,
        (HashScheme("md5", "hex"), HashScheme("sha1", "base32", 32), HashScheme("md5", "rbase32")),
    )
    names = owner_names(scheme, "192.0.2.1")
    assert names == (
        encode("base32", digest("sha1", b"1.2.0.192"))[:32],
        digest("md5", b"1.2.0.192").hex(),
        encode("rbase32", digest("md5", b"1.2.0.192")),
    )
    assert names[0] == hash_token("1.2.0.192", primary)


def test_owner_names_hash_label_limits() -> None:
    """Hashed labels must fit a DNS label: too long or base64 is an OwnerNameError."""
    with pytest.raises(OwnerNameError, match="set length"):
        owner_names(OwnerScheme("hash", HashScheme("sha256", "hex")), "x")
    with pytest.raises(OwnerNameError, match="base64"):
        owner_names(OwnerScheme("hash", HashScheme("md5", "base64")), "x")
    with pytest.raises(OwnerNameError, match="without hash settings"):
        owner_names(OwnerScheme("hash"), "x")
    with pytest.raises(OwnerNameError, match="unknown hash algorithm"):
        owner_names(OwnerScheme("hash", HashScheme("crc32", "hex")), "x")


def test_check_hash_scheme() -> None:
    """Config errors are listed all at once, in words."""
    assert check_hash_scheme(HashScheme("md5", "hex")) == []
    assert check_hash_scheme(HashScheme("blake2", "base32", 32)) == []
    assert check_hash_scheme(HashScheme("sha256", "rbase32", 63)) == []
    problems = check_hash_scheme(HashScheme("crc32", "base64", 64))
    assert len(problems) == 3
    assert "unknown hash algorithm 'crc32'" in problems[0]
    assert "base64" in problems[1]
    assert "length 64" in problems[2]
    assert check_hash_scheme(HashScheme("md5", "base58")) == [
        "unknown hash encoding 'base58' (one of hex, base32, rbase32, bleach, base64)"
    ]
    assert check_hash_scheme(HashScheme("md5", "hex", 0)) == ["length 0 is not in 1..63"]
    (too_long,) = check_hash_scheme(HashScheme("blake2", "base32"))
    assert "103 characters" in too_long


@given(st.text(min_size=1, max_size=40))
def test_hash_owner_is_a_valid_label(token: str) -> None:
    """Any token hashes to one label of [A-Za-z0-9_-] and at most 63 characters."""
    scheme = OwnerScheme("hash", HashScheme("blake2", "base32", 32), (HashScheme("md5", "hex"),))
    for name in owner_names(scheme, token):
        assert 1 <= len(name) <= 63
        assert name.isascii() and name.replace("_", "").replace("-", "").isalnum()
