"""A lenient reader of DNS wire format, to check what a mutation really produced.

A real parser refuses a damaged message at its first fault; the tests of the mutation
classes need to see the fault itself (a pointer to itself, a count that lies, OPT in
the answer section), so this reader records what it finds and stops where a real
parser would give up, saying why.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

HEADER = struct.Struct("!HHHHHH")
RR_FIXED = struct.Struct("!HHIH")
SECTIONS = ("question", "answer", "authority", "additional")


@dataclass
class Name:
    start: int
    labels: list[bytes] = field(default_factory=list)
    end: int | None = None  # where the next field begins; None if the name never ends
    loops: bool = False  # a pointer leads back to an offset already read
    forward: bool = False  # a pointer at or after its own offset
    fault: str | None = None  # why it could not be read to its root label

    @property
    def length(self) -> int:
        """Octets of the expanded name on the wire, root label included."""
        return sum(1 + len(label) for label in self.labels) + 1


def read_name(wire: bytes, start: int) -> Name:
    name = Name(start)
    seen: set[int] = set()
    pos = start
    while True:
        if pos >= len(wire):
            name.fault = "runs past the end"
            return name
        seen.add(pos)
        length = wire[pos]
        if length & 0xC0 == 0xC0:
            if pos + 1 >= len(wire):
                name.fault = "pointer cut short"
                return name
            target = (length & 0x3F) << 8 | wire[pos + 1]
            if name.end is None:
                name.end = pos + 2
            if target >= pos:
                name.forward = True
            if target in seen:
                name.loops = True
                name.fault = "pointer loop"
                return name
            pos = target
            continue
        if length & 0xC0:
            name.fault = f"reserved label type {length >> 6:#x}"
            return name
        if length == 0:
            if name.end is None:
                name.end = pos + 1
            return name
        if pos + 1 + length > len(wire):
            name.fault = "label runs past the end"
            return name
        name.labels.append(wire[pos + 1 : pos + 1 + length])
        pos += 1 + length


@dataclass
class Record:
    section: str
    owner: Name
    rtype: int
    rclass: int
    ttl: int | None = None  # questions have none
    rdata: bytes | None = None
    rdlength: int | None = None  # as the record states it


@dataclass
class Walk:
    ident: int
    flags: int
    counts: tuple[int, int, int, int]
    records: list[Record]
    fault: str | None  # why reading stopped before every counted record was read
    trailing: int  # octets after the last counted record

    def section(self, name: str) -> list[Record]:
        return [record for record in self.records if record.section == name]

    @property
    def names(self) -> list[Name]:
        return [record.owner for record in self.records]


def walk(wire: bytes) -> Walk:
    """Read every counted record until the first fault."""
    if len(wire) < 12:
        return Walk(0, 0, (0, 0, 0, 0), [], "shorter than a header", 0)
    ident, flags, *counts = HEADER.unpack_from(wire)
    records: list[Record] = []
    pos = 12
    fault = None

    def stop(why: str, owner: Name | None = None) -> None:
        nonlocal fault
        fault = why
        if owner is not None:
            records.append(Record(section, owner, -1, -1))

    for section, count in zip(SECTIONS, counts, strict=True):
        for _ in range(count):
            owner = read_name(wire, pos)
            if owner.fault is not None or owner.end is None:
                stop(f"{section} name: {owner.fault}", owner)
                break
            pos = owner.end
            if section == "question":
                if pos + 4 > len(wire):
                    stop("question cut short", owner)
                    break
                rtype, rclass = struct.unpack_from("!HH", wire, pos)
                records.append(Record(section, owner, rtype, rclass))
                pos += 4
                continue
            if pos + RR_FIXED.size > len(wire):
                stop(f"{section} record cut short", owner)
                break
            rtype, rclass, ttl, rdlength = RR_FIXED.unpack_from(wire, pos)
            pos += RR_FIXED.size
            rdata = wire[pos : pos + rdlength]
            records.append(Record(section, owner, rtype, rclass, ttl, rdata, rdlength))
            if pos + rdlength > len(wire):
                fault = f"{section} RDATA runs past the end"
                break
            pos += rdlength
        if fault is not None:
            break
    trailing = max(len(wire) - pos, 0) if fault is None else 0
    return Walk(ident, flags, (counts[0], counts[1], counts[2], counts[3]), records, fault,
                trailing)


@dataclass(frozen=True)
class EdnsOption:
    code: int
    length: int  # as stated
    data: bytes  # what the record really holds (shorter when the length lies)


def edns_options(rdata: bytes) -> tuple[list[EdnsOption], str | None]:
    """The options of an OPT record's RDATA, and why they do not add up, if they do not."""
    options: list[EdnsOption] = []
    pos = 0
    while pos < len(rdata):
        if pos + 4 > len(rdata):
            return options, "option header cut short"
        code, length = struct.unpack_from("!HH", rdata, pos)
        data = rdata[pos + 4 : pos + 4 + length]
        options.append(EdnsOption(code, length, data))
        if len(data) < length:
            return options, "option runs past the record"
        pos += 4 + length
    return options, None
