"""``zonepub export``: a zone as an RFC 1035 master file (rbldnsd's dataset: publisher.rbldnsd).

Both exports start from what zoned itself serves (:func:`served_zone`).  The zone is compiled by
:class:`zoned.zone.ServedZone` (static records, ``listed`` and ``unlisted`` overrides,
RFC 5782 test entries) over one snapshot of its store, and the export reproduces the
rules zoned applies to them:

- a static record's name answers with its records, whatever the store holds there;
- in IP zones, an ``unlisted`` network blocks every address inside it; otherwise the
  longest ``listed`` override (or test entry) covering an address answers, and only
  then the longest store network covering it: overrides win over the store *whatever
  the prefix lengths*;
- in name and hash zones, a blocked name answers NXDOMAIN and the store answers the rest.

Master files and networks
-------------------------
A DNS name is one address, so a network has to become names.  The master file uses
wildcards (RFC 4592) where a whole reversed-octet (IPv4) or reversed-nibble (IPv6)
subtree has one answer, and explicit names where it does not, so that every *address*
query answers exactly as zoned does, for networks of any length:

- The zone is walked as a tree of labels from the apex.  At each node the answer of
  the addresses not touched by a longer entry below it is known (the "inherited"
  answer, by the rules above).  A subtree that no longer entry touches is uniform: it
  becomes one ``*.node`` wildcard (and the node itself when it is a full address).
- A wildcard is *shadowed* by every name that exists below its node: ``*.10`` does not
  answer ``1.1.1.10`` once ``1.1.1.10`` or any name under ``1.10`` exists, whereas
  longest-prefix match would.  So the walk descends into every child that a longer
  entry touches and writes, at that child, a wildcard with the inherited answer again
  (``*.1.10``, ``*.1.1.10``); the wildcard is repeated down the path of every more
  specific entry.  A network not aligned on a label boundary (``/12``, ``/50``) covers
  2 to 128 children of a node, each of which is then written on its own.
- A wildcard cannot say NXDOMAIN for one child.  When a child must answer NXDOMAIN (an
  ``unlisted`` address inside a listed network, or an address no entry covers next to
  a covered one), the node gets no wildcard and each of its other children is written
  out: at most 256 names (IPv4) or 16 (IPv6) per such node.
- IPv4 labels 0-9 are also IPv6 nibbles: ``*.2`` for 2.0.0.0/8 would also answer
  every IPv6 address in 2000::/4.  A node whose labels are all single digits is both
  an IPv4 and an IPv6 prefix; it only gets a wildcard when both families have the
  same answer below it, and otherwise its digit children are written one by one
  (about 28,000 names for an IPv4 /8 such as 2.0.0.0/8, where 10.0.0.0/8 is one
  wildcard).
- The apex never gets a wildcard: random labels must answer NXDOMAIN (RFC 5782 5).

What differs from zoned (tests/test_export.py checks every other answer):

- Names that are not addresses: a name covered by a wildcard that is not a full
  address (``100.51.198`` under ``*.51.198``, or a name deeper than an address)
  answers the wildcard's data, where zoned answers NODATA or NXDOMAIN.
- A name that exists only because of names below it cannot be NXDOMAIN: a blocked name
  of a name zone with names below it, and a blocked IPv4 address written in single
  digits (``0.0.0.0``) that also starts IPv6 names, answer NODATA; zoned answers
  NXDOMAIN.
- The other way round, zoned calls an IPv6 prefix empty non-terminal (NODATA) when a
  store network lies there even if an ``unlisted`` network blocks all of it; nothing
  answers there, so the master file has no name (NXDOMAIN).  With single-digit IPv4
  labels this also concerns IPv4 addresses (1.2.2.0 when 1200::/8 is stored and
  blocked).  Both mean "not listed" to a client.

"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TextIO

import dns.rdata
import dns.rdataclass
import dns.rdatatype

from listformat.wire import T_A, T_TXT
from zoned import config as zoneconfig
from zoned import contents
from zoned.config import ZoneConfig
from zoned.packed import Record, unpack
from zoned.zone import ReaderPool, ServedZone

# --------------------------------------------------------------------------- the zone


@contextmanager
def served_zone(config: ZoneConfig) -> Iterator[ServedZone]:
    """The zone compiled exactly as zoned compiles it, over one snapshot of its store."""
    pool = ReaderPool()
    try:
        yield ServedZone(config, pool)
    finally:
        pool.retain(())


def find_zone(config_dir: Path, name: str) -> ZoneConfig:
    """The zone called ``name`` among the zone files of ``config_dir``, or exit saying so."""
    zone = zoneconfig.find_zone(config_dir, name)
    if zone is None:
        raise SystemExit(f"zonepub: no zone {name!r} in {config_dir}")
    return zone


# --------------------------------------------------------------------------- networks

def type_text(rtype: int) -> str:
    """A record type's mnemonic (``TXT``; ``TYPE65280`` for unknown ones)."""
    return dns.rdatatype.to_text(dns.rdatatype.RdataType.make(rtype))



# --------------------------------------------------------------------------- master file


class _MasterWriter:
    """Writes resource records as master-file lines and counts them."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.records = 0

    def packed(self, name: str, packed: bytes) -> None:
        lines = _rendered(packed)
        self.out.write("".join(f"{name}\t{line}\n" for line in lines))
        self.records += len(lines)


@functools.lru_cache(maxsize=4096)  # wildcards repeat an answer down every longer entry
def _rendered(packed: bytes) -> tuple[str, ...]:
    """``TTL IN TYPE RDATA`` for each record of a packed answer."""
    return tuple(
        f"{record.ttl}\tIN\t{type_text(record.rtype)}\t{_rdata_text(record)}"
        for record in unpack(packed)
    )


def _rdata_text(record: Record) -> str:
    """Presentation-form RDATA; A and TXT (nearly every record) without dnspython objects."""
    data = record.rdata
    if record.rtype == T_A and len(data) == 4:
        return f"{data[0]}.{data[1]}.{data[2]}.{data[3]}"
    if record.rtype == T_TXT:
        strings: list[str] = []
        pos = 0
        while pos < len(data) and pos + 1 + data[pos] <= len(data):
            strings.append(_quoted(data[pos + 1 : pos + 1 + data[pos]]))
            pos += 1 + data[pos]
        if pos == len(data) and strings:
            return " ".join(strings)
    rdata = dns.rdata.from_wire(
        dns.rdataclass.IN, dns.rdatatype.RdataType.make(record.rtype), data, 0, len(data)
    )
    return rdata.to_text()


def _quoted(string: bytes) -> str:
    """A character-string as RFC 1035 5.1 writes it (dnspython's escaping)."""
    text = string.decode("latin-1")
    if text.isascii() and text.isprintable() and '"' not in text and "\\" not in text:
        return f'"{text}"'
    out = ['"']
    for byte in string:
        if byte in b'"\\':
            out.append("\\" + chr(byte))
        elif 0x20 <= byte < 0x7F:
            out.append(chr(byte))
        else:
            out.append(f"\\{byte:03d}")
    out.append('"')
    return "".join(out)


def export_zonefile(config: ZoneConfig, out: TextIO, *, warnings: list[str] | None = None) -> int:
    """Write the zone as an RFC 1035 master file; returns the number of records written.

    ``warnings`` receives what a master file cannot say exactly as zoned does.
    """
    with served_zone(config) as zone:
        out.write(
            f"; zone {config.origin}, serial {zone.snapshot.serial}, exported by zonepub from "
            f"{config.store}\n$ORIGIN {config.origin}.\n$TTL {config.ttl}\n"
        )
        writer = _MasterWriter(out)
        for name, packed in contents.names(zone, warnings):
            writer.packed(name, packed)
    return writer.records
