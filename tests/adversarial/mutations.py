"""Hostile DNS messages, sans-IO: real queries, and the ways an attacker bends them.

:func:`real_queries` renders genuine queries with dnspython (A, TXT, ANY, SOA, AXFR,
IXFR; plain, with EDNS options, TSIG-signed).  Each entry of :data:`CLASSES` is one
kind of damage: a function of a seeded :class:`random.Random` and a real query that
returns the bytes of one message.  Nothing here touches a socket, so every class is
unit-tested for producing what its name claims (tests/adversarial/test_mutations.py),
and a run is replayed from its seed (TSIG-signed queries carry the time they were
made, so their bytes differ from run to run; the fuzz tests print each bad packet).
"""

from __future__ import annotations

import random
import struct
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import dns.edns
import dns.message
import dns.name
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import dns.tsig

HEADER = struct.Struct("!HHHHHH")
RR_FIXED = struct.Struct("!HHIH")
QUESTION_FIXED = struct.Struct("!HH")
T_A, T_SOA, T_TXT, T_OPT, T_TSIG, T_IXFR, T_AXFR, T_ANY = 1, 6, 16, 41, 250, 251, 252, 255
CLASS_IN, CLASS_ANY = 1, 255
QR = 0x8000
MAX_NAME = 255  # RFC 1035 3.1: a name is at most 255 octets on the wire

# EDNS option codes (IANA registry) with the sizes RFC 7871, 7873, 7828, 8914 allow.
OPT_NSID, OPT_ECS, OPT_EXPIRE, OPT_COOKIE, OPT_KEEPALIVE, OPT_PADDING = 3, 8, 9, 10, 11, 12
OPT_EDE = 15
KNOWN_OPTIONS = frozenset({OPT_NSID, OPT_ECS, OPT_COOKIE, OPT_PADDING})


@dataclass(frozen=True)
class Seed:
    """A real query as dnspython renders it: the question name starts at offset 12,
    uncompressed, and ends at ``qname_end``."""

    label: str
    wire: bytes
    qname_end: int

    @property
    def qname(self) -> bytes:
        return self.wire[12 : self.qname_end]

    @property
    def qtype(self) -> int:
        return int(QUESTION_FIXED.unpack_from(self.wire, self.qname_end)[0])

    @property
    def question(self) -> bytes:
        """The whole question entry: name, type, class."""
        return self.wire[12 : self.qname_end + 4]

    @property
    def tail(self) -> bytes:
        """What follows the question: the IXFR's SOA, OPT, TSIG."""
        return self.wire[self.qname_end + 4 :]

    @property
    def counts(self) -> tuple[int, int, int, int]:
        _, _, qd, an, ns, ar = HEADER.unpack_from(self.wire)
        return qd, an, ns, ar

    def labels(self) -> list[bytes]:
        return list(label_positions(self.wire, 12).values())


def label_positions(wire: bytes, start: int) -> dict[int, bytes]:
    """Offset of each length byte of the uncompressed name at ``start`` -> its label
    (the root's zero byte included, with an empty label)."""
    out: dict[int, bytes] = {}
    pos = start
    while True:
        length = wire[pos]
        out[pos] = wire[pos + 1 : pos + 1 + length]
        if length == 0:
            return out
        pos += 1 + length


def name_wire(labels: Iterable[bytes]) -> bytes:
    """Labels as wire bytes, root label added; no check of any limit (that is the point)."""
    return b"".join(bytes((len(label),)) + label for label in labels) + b"\x00"


def header(ident: int, flags: int, qd: int, an: int, ns: int, ar: int) -> bytes:
    return HEADER.pack(ident, flags, qd, an, ns, ar)


def rr(owner: bytes, rtype: int, rclass: int, ttl: int, rdata: bytes,
       rdlength: int | None = None) -> bytes:
    """One resource record; ``rdlength`` may lie about ``rdata``."""
    length = len(rdata) if rdlength is None else rdlength
    return owner + RR_FIXED.pack(rtype, rclass, ttl, length) + rdata


def option(code: int, data: bytes, length: int | None = None) -> bytes:
    """One EDNS option; ``length`` may lie about ``data``."""
    return struct.pack("!HH", code, len(data) if length is None else length) + data


def opt_rr(options: bytes = b"", payload: int = 1232, ext_rcode: int = 0, version: int = 0,
           flags: int = 0, owner: bytes = b"\x00", rdlength: int | None = None) -> bytes:
    ttl = ext_rcode << 24 | version << 16 | flags
    return rr(owner, T_OPT, payload, ttl, options, rdlength)


# -- real queries --------------------------------------------------------------------

QTYPES = ("A", "TXT", "ANY", "SOA", "AXFR", "IXFR")


def _edns_variants(rng: random.Random) -> list[tuple[str, dict[str, object]]]:
    def generic(code: int, data: bytes) -> dns.edns.GenericOption:
        return dns.edns.GenericOption(dns.edns.OptionType.make(code), data)

    cookie = generic(OPT_COOKIE, rng.randbytes(8))
    padding = generic(OPT_PADDING, bytes(rng.randrange(1, 64)))
    nsid = generic(OPT_NSID, b"")
    ecs = dns.edns.ECSOption("192.0.2.0", 24)
    unknown = generic(65001, rng.randbytes(rng.randrange(0, 16)))
    return [
        ("edns", {"use_edns": 0, "payload": 1232}),
        ("edns-do-512", {"use_edns": 0, "payload": 512, "want_dnssec": True}),
        ("edns-4096-options", {"use_edns": 0, "payload": 4096,
                               "options": [cookie, padding, nsid, ecs, unknown]}),
        ("edns-cookie", {"use_edns": 0, "options": [cookie]}),
    ]


def real_queries(names: Sequence[str], keys: Sequence[dns.tsig.Key],
                 rng: random.Random) -> list[Seed]:
    """Genuine queries for every name and type: plain, with EDNS, signed with each key."""
    seeds = []
    for name in names:
        for rdtype in QTYPES:
            signed_edns: dict[str, object] = {"use_edns": 0, "payload": 1232}
            variants: list[tuple[str, dict[str, object], dns.tsig.Key | None]] = [
                ("plain", {}, None),
                *((label, kw, None) for label, kw in _edns_variants(rng)),
                *((f"tsig {key.name}", {}, key) for key in keys),
                *((f"tsig {key.name} edns", signed_edns, key) for key in keys[:1]),
            ]
            for variant, kw, key in variants:
                query = dns.message.make_query(name, rdtype, **kw)  # type: ignore[arg-type]
                query.flags = 0  # an authoritative server's clients do not ask recursion
                if rdtype == "IXFR":
                    soa = f"ns1.example.net. hostmaster.example.net. {rng.randrange(1, 2**32)}"
                    query.authority.append(dns.rrset.from_text(
                        dns.name.from_text(name), 0, "IN", "SOA", soa + " 3600 600 604800 60"))
                if key is not None:
                    query.use_tsig(key)
                wire = query.to_wire()
                qname_end = 12 + len(query.question[0].name.to_wire() or b"")
                seeds.append(Seed(f"{rdtype} {name} {variant}", wire, qname_end))
    return seeds


# -- the mutation classes ------------------------------------------------------------

Mutation = Callable[[random.Random, Seed], bytes]


def random_bytes(rng: random.Random, seed: Seed) -> bytes:
    """Bytes with no structure at all, of any length up to a large datagram."""
    size = rng.choice((rng.randrange(0, 12), rng.randrange(12, 64), rng.randrange(64, 1500)))
    return rng.randbytes(size)


def random_after_header(rng: random.Random, seed: Seed) -> bytes:
    """A plausible query header (one question, maybe one additional) and random bytes."""
    head = header(rng.randrange(0x10000), 0, 1, 0, 0, rng.choice((0, 1)))
    return head + rng.randbytes(rng.randrange(1, 300))


def bit_flips(rng: random.Random, seed: Seed) -> bytes:
    """The query with 1 to 8 bits flipped (at least one flipped an odd number of times)."""
    wire = bytearray(seed.wire)
    for _ in range(rng.randint(1, 8)):
        bit = rng.randrange(len(wire) * 8)
        wire[bit >> 3] ^= 1 << (bit & 7)
    if wire == seed.wire:
        bit = rng.randrange(len(wire) * 8)
        wire[bit >> 3] ^= 1 << (bit & 7)
    return bytes(wire)


def truncation(rng: random.Random, seed: Seed) -> bytes:
    """A strict prefix of the query, cut anywhere (inside the header too)."""
    return seed.wire[: rng.randrange(len(seed.wire))]


def label_length_lie(rng: random.Random, seed: Seed) -> bytes:
    """One length byte of the question name changed: past the label, short of it, a
    reserved label type (0x40-0xBF), or the root's zero byte made non-zero."""
    positions = label_positions(seed.wire, 12)
    pos = rng.choice(list(positions))
    old = seed.wire[pos]
    while True:
        new = rng.choice((
            old + rng.randint(1, 20),
            max(old - rng.randint(1, 20), 0),
            rng.randrange(0x40, 0xC0),
            rng.randrange(1, 64),
            0,
        ))
        if new != old and new < 0xC0:
            break
    return seed.wire[:pos] + bytes((new,)) + seed.wire[pos + 1 :]


def _pointer(offset: int) -> bytes:
    return struct.pack("!H", 0xC000 | offset)


def pointer_loop(rng: random.Random, seed: Seed) -> bytes:
    """Compression pointers that never reach a root label: a name pointing to itself,
    a label then a pointer back to it, two names pointing at each other, or an
    additional record's owner pointing to itself."""
    fixed = seed.wire[seed.qname_end : seed.qname_end + 4]
    kind = rng.randrange(4)
    if kind == 0:  # offset 12 -> 12
        return header(0, 0, 1, 0, 0, 0) + _pointer(12) + fixed
    if kind == 1:  # a label at 12, then a pointer back to 12
        first = seed.labels()[0]
        return header(0, 0, 1, 0, 0, 0) + bytes((len(first),)) + first + _pointer(12) + fixed
    if kind == 2:  # the question name points to the additional owner, which points back
        question = _pointer(12 + 2 + 4) + fixed
        return (header(0, 0, 1, 0, 0, 1) + question
                + rr(_pointer(12), T_A, CLASS_IN, 0, b"\x7f\x00\x00\x02"))
    start = 12 + len(seed.question)  # an OPT whose owner points to itself
    return header(0, 0, 1, 0, 0, 1) + seed.question + rr(_pointer(start), T_OPT, 1232, 0, b"")


def forward_pointer(rng: random.Random, seed: Seed) -> bytes:
    """A compression pointer to its own offset or later (RFC 1035 4.1.4: pointers name
    a prior occurrence): past the end, to a copy of the name further on, or into the
    question's own type field."""
    fixed = seed.wire[seed.qname_end : seed.qname_end + 4]
    kind = rng.randrange(3)
    if kind == 0:
        wire = header(0, 0, 1, 0, 0, 0) + _pointer(0) + fixed
        target = rng.randrange(len(wire), 0x4000)
        return header(0, 0, 1, 0, 0, 0) + _pointer(target) + fixed
    if kind == 1:  # the name itself sits in the additional record that follows
        owner_at = 12 + 2 + 4
        return (header(0, 0, 1, 0, 0, 1) + _pointer(owner_at) + fixed
                + rr(seed.qname, T_A, CLASS_IN, 0, b"\x7f\x00\x00\x02"))
    first = seed.labels()[0]
    pointer_at = 12 + 1 + len(first)
    target = rng.randrange(pointer_at, pointer_at + 6)
    return (header(0, 0, 1, 0, 0, 0) + bytes((len(first),)) + first + _pointer(target)
            + fixed)


def count_lie(rng: random.Random, seed: Seed) -> bytes:
    """One of QDCOUNT, ANCOUNT, NSCOUNT, ARCOUNT no longer matches the records sent."""
    which = rng.randrange(4)
    true = seed.counts[which]
    while True:
        new = rng.choice((0, true + 1, true + rng.randint(2, 10), 0xFFFF,
                          rng.randrange(0x10000), max(true - 1, 0)))
        if new != true and new <= 0xFFFF:
            break
    offset = 4 + 2 * which
    return seed.wire[:offset] + struct.pack("!H", new) + seed.wire[offset + 2 :]


def several_questions(rng: random.Random, seed: Seed) -> bytes:
    """Two to five well-formed questions in one query (QDCOUNT says so)."""
    extra = []
    for _ in range(rng.randint(1, 4)):
        name = rng.choice((seed.qname, bytes((n := rng.randint(1, 20),)) + b"x" * n
                           + seed.qname))
        qtype = rng.choice((T_A, T_TXT, T_ANY, T_SOA, seed.qtype))
        extra.append(name + QUESTION_FIXED.pack(qtype, CLASS_IN))
    _, flags, qd, an, ns, ar = HEADER.unpack_from(seed.wire)
    return (header(0, flags, 1 + len(extra), an, ns, ar) + seed.question + b"".join(extra)
            + seed.tail)


def opt_misplaced(rng: random.Random, seed: Seed) -> bytes:
    """OPT where RFC 6891 6.1.1 forbids it: in the answer or authority section, twice
    in the additional section, or with an owner other than the root."""
    opt = opt_rr(payload=rng.choice((512, 1232, 4096)))
    kind = rng.randrange(4)
    head_q = seed.question
    if kind == 0:
        return header(0, 0, 1, 1, 0, 0) + head_q + opt
    if kind == 1:
        return header(0, 0, 1, 0, 1, 0) + head_q + opt
    if kind == 2:
        second = opt_rr(payload=rng.choice((512, 1232, 4096)), flags=rng.choice((0, 0x8000)))
        return header(0, 0, 1, 0, 0, 2) + head_q + opt + second
    return header(0, 0, 1, 0, 0, 1) + head_q + opt_rr(owner=seed.qname)


def _junk_options(rng: random.Random) -> bytes:
    kind = rng.randrange(9)
    if kind == 0:  # random bytes as the option list
        return rng.randbytes(rng.randrange(1, 60))
    if kind == 1:  # an option longer than the record
        return option(rng.randrange(0x10000), rng.randbytes(3), length=rng.randrange(4, 0x10000))
    if kind == 2:  # ECS with a family that does not exist or a prefix longer than it
        family, source = rng.choice(((3, 24), (1, 33), (2, 129), (0, 8)))
        return option(OPT_ECS, struct.pack("!HBB", family, source, 0) + rng.randbytes(4))
    if kind == 3:  # ECS with more address bytes than its prefix covers
        return option(OPT_ECS, struct.pack("!HBB", 1, 8, 0) + rng.randbytes(4))
    if kind == 4:  # a cookie of a size RFC 7873 forbids
        return option(OPT_COOKIE, rng.randbytes(rng.choice((1, 7, 9, 15, 41, 60))))
    if kind == 5:  # keepalive, expire, EDE of impossible sizes
        code = rng.choice((OPT_KEEPALIVE, OPT_EXPIRE, OPT_EDE))
        return option(code, rng.randbytes(rng.choice((1, 3, 5))))
    if kind == 6:  # a hundred unassigned options
        return b"".join(option(rng.randrange(20, 65000), rng.randbytes(rng.randrange(0, 4)))
                        for _ in range(100))
    if kind == 7:  # a truncated option header
        return rng.randbytes(rng.randrange(1, 4))
    # a valid cookie followed by an option whose length runs past the record
    return option(OPT_COOKIE, rng.randbytes(8)) + option(OPT_NSID, b"", length=200)


def junk_edns_options(rng: random.Random, seed: Seed) -> bytes:
    """One OPT in the right place, but with junk: malformed or unassigned options,
    an RDLENGTH that lies, or an EDNS version other than 0."""
    kind = rng.randrange(3)
    if kind == 0:
        opt = opt_rr(_junk_options(rng), payload=rng.randrange(0x10000))
    elif kind == 1:
        options = option(OPT_COOKIE, rng.randbytes(8))
        opt = opt_rr(options, rdlength=rng.choice((len(options) + rng.randint(1, 50),
                                                   rng.randrange(len(options)))))
    else:
        opt = opt_rr(version=rng.randint(1, 255), ext_rcode=rng.randrange(256))
    _, flags, qd, _, _, _ = HEADER.unpack_from(seed.wire)
    return header(0, flags & 0x7FFF, 1, 0, 0, 1) + seed.question + opt


def _tsig_rdata(rng: random.Random, algorithm: bytes, mac: bytes, *, time_signed: int,
                mac_size: int | None = None, other: bytes = b"") -> bytes:
    size = len(mac) if mac_size is None else mac_size
    return (algorithm + struct.pack("!HIH", time_signed >> 32, time_signed & 0xFFFFFFFF, 300)
            + struct.pack("!H", size) + mac
            + struct.pack("!HHH", rng.randrange(0x10000), rng.choice((0, 16, 17, 18)),
                          len(other)) + other)


def tsig_junk(rng: random.Random, seed: Seed, *, key_names: Sequence[bytes] = (),
              now: int = 0) -> bytes:
    """A TSIG record that cannot verify: random RDATA, a random MAC under a real key
    name, a MAC size that lies, an unknown algorithm, a time far off, TSIG not last,
    two TSIGs, or TSIG in the answer section."""
    owner = rng.choice([*key_names, name_wire([b"k" + rng.randbytes(3).hex().encode()])])
    hmac256 = name_wire([b"hmac-sha256"])
    signed = now or 1_700_000_000
    kind = rng.randrange(8)
    if kind == 0:
        rdata = rng.randbytes(rng.randrange(0, 80))
    elif kind == 1:
        rdata = _tsig_rdata(rng, hmac256, rng.randbytes(32), time_signed=signed)
    elif kind == 2:
        rdata = _tsig_rdata(rng, hmac256, rng.randbytes(32), time_signed=signed,
                            mac_size=rng.choice((0, 31, 33, 500, 0xFFFF)))
    elif kind == 3:
        rdata = _tsig_rdata(rng, name_wire([b"hmac-junk", b"example"]), rng.randbytes(16),
                            time_signed=signed)
    elif kind == 4:
        rdata = _tsig_rdata(rng, hmac256, rng.randbytes(32),
                            time_signed=rng.choice((0, signed - 10**6, 2**48 - 1)))
    else:
        rdata = _tsig_rdata(rng, hmac256, rng.randbytes(32), time_signed=signed,
                            other=rng.randbytes(rng.choice((0, 6, 20))))
    tsig = rr(owner, T_TSIG, CLASS_ANY, 0, rdata)
    question = seed.question
    if kind == 5:  # TSIG, then OPT after it
        return header(0, 0, 1, 0, 0, 2) + question + tsig + opt_rr()
    if kind == 6:  # two TSIGs
        return header(0, 0, 1, 0, 0, 2) + question + tsig + tsig
    if kind == 7:  # in the answer section
        return header(0, 0, 1, 1, 0, 0) + question + tsig
    return header(0, 0, 1, 0, 0, 1) + question + tsig


_LDH = b"abcdefghijklmnopqrstuvwxyz0123456789-"
_ODD = b"\x00\xff.A\x80z"


def _ldh(rng: random.Random, size: int) -> bytes:
    return bytes(rng.choices(_LDH, k=size))


def long_name(rng: random.Random, seed: Seed) -> bytes:
    """A question name of exactly 255 octets (the limit) or 256 to 400 (over it), every
    label at most 63 octets, ending in the real query's name."""
    target = rng.choice((MAX_NAME, MAX_NAME, rng.randint(MAX_NAME + 1, 400)))
    suffix = seed.labels()[:-1]
    room = target - len(name_wire(suffix))  # octets the prefix labels must take
    prefix: list[bytes] = []
    while room > 0:
        size = min(room, 64)
        if room - size == 1:  # a single octet left cannot be a label: split differently
            size -= 1
        prefix.append(_ldh(rng, size - 1))
        room -= size
    name = name_wire(prefix + suffix)
    _, flags, _, _, _, _ = HEADER.unpack_from(seed.wire)
    return header(0, flags, 1, 0, 0, 0) + name + seed.wire[seed.qname_end : seed.qname_end + 4]


def odd_label_bytes(rng: random.Random, seed: Seed) -> bytes:
    """A first label holding 0x00 and 0xff bytes (and dots, upper case, 8-bit bytes)."""
    size = rng.randint(1, 63)
    label = bytearray(rng.choices(_ODD, k=size))
    label[rng.randrange(size)] = rng.choice((0x00, 0xFF))
    labels = seed.labels()[:-1]
    if labels and rng.random() < 0.5:
        labels[0] = bytes(label)
    else:
        labels.insert(0, bytes(label))
    head = HEADER.unpack_from(seed.wire)
    return (header(0, head[1], 1, 0, 0, 0) + name_wire(labels)
            + seed.wire[seed.qname_end : seed.qname_end + 4])


def header_flags(rng: random.Random, seed: Seed) -> bytes:
    """The query with a different flags word: QR set, other opcodes, the Z bit, a
    non-zero RCODE, TC or AA."""
    old = HEADER.unpack_from(seed.wire)[1]
    while True:
        new = rng.choice((
            old | QR,
            rng.randrange(0x10000),
            (old & ~0x7800) | rng.randrange(1, 16) << 11,
            old | 0x0040,
            old | rng.randrange(1, 16),
            old | 0x0200 | 0x0400,
        ))
        if new != old:
            break
    return seed.wire[:2] + struct.pack("!H", new) + seed.wire[4:]


def unchanged(rng: random.Random, seed: Seed) -> bytes:
    """The real query itself: the baseline every class is measured against."""
    return seed.wire


CLASSES: dict[str, Mutation] = {
    "real": unchanged,
    "random": random_bytes,
    "random_after_header": random_after_header,
    "bit_flips": bit_flips,
    "truncation": truncation,
    "label_length_lie": label_length_lie,
    "pointer_loop": pointer_loop,
    "forward_pointer": forward_pointer,
    "count_lie": count_lie,
    "several_questions": several_questions,
    "opt_misplaced": opt_misplaced,
    "junk_edns_options": junk_edns_options,
    "tsig_junk": tsig_junk,
    "long_name": long_name,
    "odd_label_bytes": odd_label_bytes,
    "header_flags": header_flags,
}


class Generator:
    """An endless, replayable stream of (class, message) from one seed."""

    def __init__(self, seed: int, corpus: Sequence[Seed], *,
                 key_names: Sequence[bytes] = (), now: int = 0) -> None:
        self.seed = seed
        self.rng = random.Random(seed)
        self.corpus = corpus
        self.key_names = key_names
        self.now = now
        self.classes = list(CLASSES)

    def next(self) -> tuple[str, bytes]:
        rng = self.rng
        name = rng.choice(self.classes)
        base = rng.choice(self.corpus)
        if name == "tsig_junk":
            return name, tsig_junk(rng, base, key_names=self.key_names, now=self.now)
        return name, CLASSES[name](rng, base)
