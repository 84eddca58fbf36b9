"""The fast path and the full path give byte-identical replies to the same queries."""

from __future__ import annotations

import random
import struct
from collections.abc import Iterator
from pathlib import Path

import dns.edns
import dns.message
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from listformat import names
from listformat.hashing import HashScheme
from listformat.names import OwnerScheme
from zoned.authority import Authority
from zoned.core import Responder
from zoned.service import build_authority
from zoned.zone import ReaderPool

ZONES = ("bl.example.net", "hash.example.net", "dom.example.net")
HASHED = OwnerScheme("hash", HashScheme("blake2", "base32", 32), (HashScheme("sha1", "hex"),))

TYPES = ["A"] * 8 + ["TXT"] * 6 + ["AAAA", "ANY", "SOA", "NS", "MX", "CNAME", "PTR", "SRV",
                                    "CAA", "HTTPS", "AXFR", "IXFR", "OPT", "MAILA", "TYPE65000"]


def owner_pool(rng: random.Random) -> list[str]:
    """Names that hit, miss, sit in between, or lie outside the zones."""
    ip_hosts = ["192.0.2.1", "192.0.2.2", "192.0.2.3", "192.0.2.99", "198.51.100.7",
                "198.51.100.200", "198.51.100.5", "203.0.113.9", "127.0.0.2", "127.0.0.1",
                "2001:db8::1", "2001:db8:1::42", "::ffff:127.0.0.2", "10.1.2.3"]
    pool = [f"{names.reverse_ip(ip)}.bl.example.net" for ip in ip_hosts]
    pool += ["0.0.127.bl.example.net", "2.0.192.bl.example.net", "127.bl.example.net",
             "big.bl.example.net", "huge.bl.example.net", "www.bl.example.net",
             "x.1.2.0.192.bl.example.net", "01.2.0.192.bl.example.net", "bl.example.net"]
    for token in ("192.0.2.1", "192.0.2.2", "user@example.com", "198.51.100.7", "test",
                  "127.0.0.2", "nothing-here"):
        pool += [f"{owner}.hash.example.net" for owner in names.owner_names(HASHED, token)]
    pool += ["hash.example.net", "dom.example.net", "example.com.dom.example.net",
             "mail.spammer.example.dom.example.net", "spammer.example.dom.example.net",
             "example.dom.example.net", "test.dom.example.net", "invalid.dom.example.net",
             "spam.example.dom.example.net", "example.org.dom.example.net",
             "example.net", "net", "", "other.example", "xbl.example.net"]
    for _ in range(20):
        pool.append(f"{rng.randrange(256)}.{rng.randrange(256)}.2.0.192.bl.example.net")
        label = "".join(rng.choice("abcdefghijklmnopqrstuvwxyz0123456789-_") for _ in range(12))
        pool.append(f"{label}.{rng.choice(ZONES)}")
    return pool


def mixed_case(rng: random.Random, name: str) -> str:
    return "".join(c.upper() if rng.random() < 0.5 else c for c in name)


def generated_queries(count: int, seed: int) -> Iterator[tuple[bytes, bool]]:
    rng = random.Random(seed)
    pool = owner_pool(rng)
    for _ in range(count):
        name = rng.choice(pool)
        if rng.random() < 0.3:
            name = mixed_case(rng, name)
        rdtype = rng.choice(TYPES)
        edns = rng.choice([-1, -1, 0, 0, 0, 1])
        options: list[dns.edns.Option] = []
        if edns >= 0 and rng.random() < 0.3:
            options.append(dns.edns.GenericOption(dns.edns.OptionType.COOKIE,
                                                  rng.randbytes(rng.choice([8, 8, 16, 24, 7]))))
        if edns >= 0 and rng.random() < 0.1:
            options.append(dns.edns.GenericOption(65001, b"x"))
        query = dns.message.make_query(
            name or ".", rdtype, use_edns=edns, options=options or None,
            payload=rng.choice([0, 512, 600, 1232, 1400, 4096, 65535]),
            want_dnssec=rng.random() < 0.3,
        )
        query.flags = rng.choice([0, 0x0100, 0x0010, 0x0120, 0x0040])
        wire = query.to_wire()
        if rng.random() < 0.05:
            mutated = bytearray(wire)
            mutated[rng.randrange(len(mutated))] = rng.randrange(256)
            wire = bytes(mutated)
        if rng.random() < 0.02:
            wire = wire[: rng.randrange(len(wire))]
        yield wire, rng.random() < 0.2


@pytest.fixture
def authority(zones: Path) -> Authority:
    return build_authority(zones, ReaderPool())


def test_generated_queries_get_identical_replies(authority: Authority) -> None:
    fast = Responder(authority, fast=True)
    full = Responder(authority, fast=False)
    for i, (wire, tcp) in enumerate(generated_queries(12_000, seed=5782)):
        assert fast.respond(wire, tcp) == full.respond(wire, tcp), (i, wire.hex(), tcp)
    assert fast.errors == full.errors == 0
    # The comparison means something only if the fast path answered most of them.
    assert fast.fast_answers > 6_000, (fast.fast_answers, fast.full_answers)


@settings(max_examples=400, deadline=None)
@given(data=st.binary(min_size=0, max_size=80), tcp=st.booleans())
def test_arbitrary_bytes_never_raise_and_agree(zones_for_hypothesis: Authority, data: bytes,
                                                tcp: bool) -> None:
    fast = Responder(zones_for_hypothesis, fast=True)
    full = Responder(zones_for_hypothesis, fast=False)
    reply = fast.respond(data, tcp)
    assert reply == full.respond(data, tcp)
    assert fast.errors == 0
    if reply is not None:
        ident, flags = struct.unpack("!HH", reply[:4])
        assert ident == struct.unpack("!H", data[:2])[0] and flags & 0x8000


@pytest.fixture(scope="module")
def zones_for_hypothesis(tmp_path_factory: pytest.TempPathFactory) -> Authority:
    from tests.support.publishing import copy_zones, publish_samples

    directory = copy_zones(tmp_path_factory.mktemp("hypothesis"))
    publish_samples(directory)
    return build_authority(directory, ReaderPool())


def test_known_query_types_stay_on_the_fast_path(authority: Authority) -> None:
    fast = Responder(authority, fast=True)
    for qname, rdtype in [("1.2.0.192.bl.example.net", "A"), ("1.2.0.192.bl.example.net", "TXT"),
                          ("9.9.9.9.bl.example.net", "A"), ("nowhere.example", "A")]:
        fast.respond(dns.message.make_query(qname, rdtype).to_wire())
    assert fast.fast_answers == 4 and fast.full_answers == 0
