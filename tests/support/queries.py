"""Seeded random queries over the example zones: hits, misses, odd types, EDNS, junk.

The fast/full path comparison (tests/test_paths.py) and the store checks
(tests/test_store_checks.py) replay the same stream.
"""

from __future__ import annotations

import random
from collections.abc import Iterator

import dns.edns
import dns.message

from listformat import names
from listformat.hashing import HashScheme
from listformat.names import OwnerScheme

ORIGINS = ("bl.example.net", "hash.example.net", "dom.example.net")


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
        pool.append(f"{label}.{rng.choice(ORIGINS)}")
    return pool


def mixed_case(rng: random.Random, name: str) -> str:
    return "".join(c.upper() if rng.random() < 0.5 else c for c in name)


def generated_queries(count: int, seed: int) -> Iterator[tuple[bytes, bool]]:
    """``count`` query messages (a few mutated or cut short) and whether each came by TCP."""
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

