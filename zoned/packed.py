"""Packed answers: the precomputed value stored for each owner name.

The publisher turns a token's counters into DNS records once; the server answers from
those bytes millions of times.  A packed answer is a sequence of RRsets, each::

    u16 rtype | u16 count | u16 nbytes | nbytes of complete wire RRs

where every RR is already in wire form with its owner written as the compression
pointer ``C0 0C`` (the question name, always at offset 12), class IN, TTL and RDATA.
The fast path copies the RRset bytes after the question untouched; the full path
unpacks them into library objects.  Records of one type are one RRset (RFC 2181 5).
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass

from zoned.errors import ZonedError

QUESTION_POINTER = b"\xc0\x0c"
CLASS_IN = 1
_GROUP = struct.Struct("!HHH")
_RR_FIXED = struct.Struct("!HHIH")


class PackedError(ZonedError, ValueError):
    """A packed answer is malformed (a corrupted store or a writer bug)."""


@dataclass(frozen=True)
class Record:
    """One resource record of a packed answer, owner implied."""

    rtype: int
    ttl: int
    rdata: bytes


def pack(records: Iterable[Record]) -> bytes:
    """Pack records into RRsets in first-seen type order; one TTL per RRset (RFC 2181 5.2)."""
    groups: dict[int, list[Record]] = {}
    for record in records:
        if not 0 <= record.ttl <= 0x7FFFFFFF:
            raise PackedError(f"TTL {record.ttl} out of range")
        if len(record.rdata) > 0xFFFF:
            raise PackedError("RDATA longer than 65535 bytes")
        group = groups.setdefault(record.rtype, [])
        if all(r.rdata != record.rdata for r in group):  # an RRset is a set (RFC 2181 5)
            group.append(record)
    out = bytearray()
    for rtype, group in groups.items():
        ttl = min(r.ttl for r in group)
        wire = b"".join(
            QUESTION_POINTER + _RR_FIXED.pack(rtype, CLASS_IN, ttl, len(r.rdata)) + r.rdata
            for r in group
        )
        if len(wire) > 0xFFFF:
            raise PackedError(f"RRset of type {rtype} exceeds 65535 bytes")
        out += _GROUP.pack(rtype, len(group), len(wire)) + wire
    return bytes(out)


def single(rtype: int, ttl: int, rdata: bytes) -> bytes:
    """The packed RRset of one record: what :func:`pack` gives for it, built directly
    because the publisher makes millions of them."""
    rr = QUESTION_POINTER + _RR_FIXED.pack(rtype, CLASS_IN, ttl, len(rdata)) + rdata
    return _GROUP.pack(rtype, 1, len(rr)) + rr


def rrsets(packed: bytes) -> dict[int, tuple[int, bytes]]:
    """Map rtype -> (count, wire RR bytes); the fast path's view of a packed answer."""
    result: dict[int, tuple[int, bytes]] = {}
    pos = 0
    end = len(packed)
    while pos < end:
        if pos + 6 > end:
            raise PackedError(f"truncated RRset header at byte {pos}")
        rtype, count, nbytes = _GROUP.unpack_from(packed, pos)
        pos += 6
        if pos + nbytes > end:
            raise PackedError(f"RRset of type {rtype} runs past the end at byte {pos}")
        result[rtype] = (count, packed[pos : pos + nbytes])
        pos += nbytes
    return result


def join_rrsets(groups: Mapping[int, tuple[int, bytes]]) -> bytes:
    """The packed answer of ``rrsets``' view: the inverse of :func:`rrsets`."""
    return b"".join(_GROUP.pack(rtype, count, len(wire)) + wire
                    for rtype, (count, wire) in groups.items())


def ownerless(packed: bytes) -> Iterator[tuple[int, bytes]]:
    """(rtype, record wire after its owner pointer) for each record, in wire order.

    A zone transfer writes each record under its own owner name instead of the
    question's pointer; the fixed fields and RDATA are copied as they are.
    """
    for rtype, (_, wire) in rrsets(packed).items():
        pos = 0
        while pos < len(wire):
            rdlen = wire[pos + 10] << 8 | wire[pos + 11]
            yield rtype, wire[pos + 2 : pos + 12 + rdlen]
            pos += 12 + rdlen


def unpack(packed: bytes) -> Iterator[Record]:
    """Yield the records of a packed answer in wire order."""
    for rtype, (count, wire) in rrsets(packed).items():
        pos = 0
        for _ in range(count):
            if wire[pos : pos + 2] != QUESTION_POINTER or pos + 12 > len(wire):
                raise PackedError(f"malformed RR in RRset of type {rtype} at byte {pos}")
            _, _, ttl, rdlen = _RR_FIXED.unpack_from(wire, pos + 2)
            rdata = wire[pos + 12 : pos + 12 + rdlen]
            if len(rdata) != rdlen:
                raise PackedError(f"RDATA of type {rtype} runs past the end")
            yield Record(rtype, ttl, rdata)
            pos += 12 + rdlen
        if pos != len(wire):
            raise PackedError(f"RRset of type {rtype} has {len(wire) - pos} stray bytes")


def txt_rdata(text: bytes) -> bytes:
    """TXT RDATA of one or more character-strings (RFC 1035 3.3.14), split every 255 bytes."""
    if not text:
        return b"\x00"
    chunks = (text[i : i + 255] for i in range(0, len(text), 255))
    return b"".join(bytes([len(chunk)]) + chunk for chunk in chunks)



def find_rrset(packed: bytes, rtype: int) -> tuple[int, bytes] | None:
    """(count, wire RRs) of one type, without splitting the rest: the hot-path probe."""
    pos = 0
    end = len(packed)
    while pos + 6 <= end:
        group_type, count, nbytes = _GROUP.unpack_from(packed, pos)
        pos += 6
        if group_type == rtype:
            return count, packed[pos : pos + nbytes]
        pos += nbytes
    return None


def first_rrset(packed: bytes) -> tuple[int, int, bytes] | None:
    """(rtype, count, wire RRs) of the first RRset: the answer to a minimal ANY (RFC 8482)."""
    if len(packed) < 6:
        return None
    rtype, count, nbytes = _GROUP.unpack_from(packed, 0)
    return rtype, count, packed[6 : 6 + nbytes]
