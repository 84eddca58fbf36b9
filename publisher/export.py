"""``zonepub export``: a zone as an RFC 1035 master file, or as an rbldnsd dataset.

Both exports start from what zoned itself serves.  The zone is compiled by
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

rbldnsd datasets
----------------
One file in rbldnsd's ``combined`` format (``rbldnsd ZONE:combined:FILE``): ``$SOA``
and ``$NS`` from the zone, then an ``ip4trie`` and an ``ip6trie`` (IP zones) or a
``dnset`` (name and hash zones) with one ``:A:TXT`` value per entry, and a ``generic``
dataset with the static records and what an entry line cannot carry.  The tries are
longest-prefix match like zoned; the three levels of precedence are flattened into
it: store entries inside a ``listed`` override are left out, ``unlisted`` networks
become ``!`` exclusions and everything inside them is left out.

rbldnsd answers an A record for every listed entry, so an entry with TXT and no A
(a neutral score) cannot be a trie or dnset line: a single address or a name goes to
the ``generic`` dataset (with an exclusion in the trie, so no covering network
answers it), a network is left out with a warning.  The generic dataset knows A, TXT
and MX records of one character-string of at most 254 bytes; other records (AAAA,
CNAME, long TXT) are left out with a warning.  ``$`` in TXT text is written as ``$$``.
rbldnsd answers NXDOMAIN for names that are only empty non-terminals in zoned.
"""

from __future__ import annotations

import argparse
import functools
import ipaddress
import os
import sys
import tempfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype

from zoned import config as zoneconfig
from zoned import contents
from zoned.answers import static_answers
from zoned.config import ZoneConfig
from zoned.contents import Family, Net, Packed, families, key_labels, name_text, store_entries
from zoned.packed import Record, unpack
from zoned.wire import T_A, T_MX, T_TXT
from zoned.zone import ReaderPool, ServedZone

_DECIMAL_LABELS = frozenset(str(octet) for octet in range(256))
_NIBBLE_LABELS = frozenset("0123456789abcdef")


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

def _type_text(rtype: int) -> str:
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
        f"{record.ttl}\tIN\t{_type_text(record.rtype)}\t{_rdata_text(record)}"
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


# --------------------------------------------------------------------------- rbldnsd


@dataclass
class _RbldnsdSections:
    """The lines of each dataset of the combined file."""

    ip4: list[str] = field(default_factory=list)
    ip6: list[str] = field(default_factory=list)
    dnset: list[str] = field(default_factory=list)
    generic: list[str] = field(default_factory=list)


def _entry_value(config: ZoneConfig, packed: bytes) -> str | None:
    """The ``:A:TXT`` value of an answer, or None when an entry line cannot carry it."""
    a: list[Record] = []
    txt: list[Record] = []
    for record in unpack(packed):
        if record.rtype == T_A:
            a.append(record)
        elif record.rtype == T_TXT:
            txt.append(record)
        else:
            return None
    if len(a) != 1 or len(txt) > 1 or any(r.ttl != config.ttl for r in a + txt):
        return None
    code = ipaddress.IPv4Address(a[0].rdata)
    if not txt:
        return f":{code}:"
    text = _single_string(txt[0].rdata)
    if text is None or not text or text != text.rstrip(" \t"):
        return None
    text = text.replace("$", "$$")
    if text[0] in " \t=":  # rbldnsd strips leading blanks, and one '=' (base template)
        text = "=" + text
    return f":{code}:{text}"


def _single_string(rdata: bytes) -> str | None:
    """The text of TXT RDATA holding one printable-ASCII string of at most 254 bytes."""
    if not rdata or rdata[0] != len(rdata) - 1 or len(rdata) - 1 > 254:
        return None
    text = rdata[1:].decode("latin-1")
    return text if all(" " <= ch <= "~" for ch in text) else None


def _generic_lines(name: str, packed: bytes, notes: list[str]) -> list[str]:
    """Generic-dataset lines for an answer (A, TXT, MX only); the rest is noted."""
    lines: list[str] = []
    for record in unpack(packed):
        if record.rtype == T_A:
            value = str(ipaddress.IPv4Address(record.rdata))
        elif record.rtype == T_TXT:
            text = _single_string(record.rdata)
            if text is None:
                notes.append(f"{name}: TXT is not one printable string of at most 254 bytes;"
                             " left out of the rbldnsd dataset")
                continue
            value = f'"{text}"'
        elif record.rtype == T_MX:
            rdata = dns.rdata.from_wire(dns.rdataclass.IN, dns.rdatatype.MX, record.rdata, 0,
                                        len(record.rdata))
            value = rdata.to_text()
        else:
            rtype = _type_text(record.rtype)
            notes.append(f"{name}: rbldnsd's generic dataset has no {rtype} records; left out")
            continue
        lines.append(f"{name} {record.ttl} {_type_text(record.rtype)} {value}")
    return lines


def export_rbldnsd(config: ZoneConfig, out: TextIO, *, warnings: list[str] | None = None) -> int:
    """Write the zone as one rbldnsd ``combined`` dataset; returns the data lines written.

    Serve it with ``rbldnsd -b ADDR/PORT ZONE:combined:FILE``.  ``warnings`` receives
    every answer the dataset cannot carry.
    """
    notes = warnings if warnings is not None else []
    sections = _RbldnsdSections()
    with served_zone(config) as zone:
        serial = zone.snapshot.serial
        for key in sorted(zone.compiled.statics, key=key_labels):
            name = name_text(key_labels(key))
            value = _entry_value(config, zone.compiled.statics[key])
            if not zone.compiled.is_ip and value is not None:
                sections.dnset.append(f"{name} {value}")
            else:
                sections.generic.extend(_generic_lines(name, zone.compiled.statics[key], notes))
        if zone.compiled.is_ip:
            _rbldnsd_networks(config, families(zone), zone.compiled.statics, sections, notes)
        else:
            for key, packed in store_entries(zone):
                if key in zone.compiled.statics or key in zone.compiled.blocked_names:
                    continue
                name = name_text(key_labels(key))
                value = _entry_value(config, packed)
                if value is not None:
                    sections.dnset.append(f"{name} {value}")
                else:
                    sections.generic.extend(_generic_lines(name, packed, notes))
    apex = static_answers(config.records).get("")
    if apex is not None:
        sections.generic[:0] = _generic_lines("@", apex, notes)
    soa = config.soa
    out.write(
        f"# zone {config.origin}, serial {serial}, exported by zonepub for rbldnsd:\n"
        f"#   rbldnsd -b ADDR/PORT {config.origin}:combined:FILE\n"
        f"$SOA {soa.ttl} {soa.mname}. {soa.rname}. {serial} {soa.refresh} {soa.retry} "
        f"{soa.expire} {soa.minimum}\n"
        f"$NS {config.ns_ttl} {' '.join(ns + '.' for ns in config.ns)}\n"
    )
    written = 0
    for header, lines in (
        ("ip4trie:tokens", sections.ip4),
        ("ip6trie:tokens6", sections.ip6),
        ("dnset:tokens", sections.dnset),
        ("generic:records", sections.generic),
    ):
        if lines:
            out.write(f"$DATASET {header} @\n$TTL {config.ttl}\n")
            out.writelines(line + "\n" for line in lines)
            written += len(lines)
    return written


def _rbldnsd_networks(
    config: ZoneConfig,
    families: dict[int, Family],
    statics: Iterable[bytes],
    sections: _RbldnsdSections,
    notes: list[str],
) -> None:
    """Trie lines for an IP zone: zoned's three levels flattened into one longest match."""
    static_keys = frozenset(statics)
    for version, family in families.items():
        lines = sections.ip4 if version == 4 else sections.ip6
        for start, plen in sorted(family.blocked):
            lines.append(f"!{_net_text(version, start, plen)}")
        entries: list[tuple[Net, Packed]] = []
        for net, value in family.listed.items():
            if family.covering("blocked", *net) is None:
                entries.append((net, value))
        for net, value in family.store.items():
            # Inside an override the override answers, whatever the prefix lengths.
            if family.covering("blocked", *net) is None and \
                    family.covering("listed", *net) is None:
                entries.append((net, value))
        for (start, plen), packed in sorted(entries):
            text = _net_text(version, start, plen)
            entry = _entry_value(config, packed)
            if entry is not None:
                lines.append(f"{text} {entry}")
                continue
            if plen != family.width:
                notes.append(f"{text}: an rbldnsd trie entry needs exactly one A record and "
                             "at most one TXT; network left out")
                continue
            name = _reverse_name(version, start)
            if name.encode("ascii") in static_keys:
                continue
            # The answer goes to the generic dataset; the exclusion keeps any covering
            # network from answering this address too.
            lines.append(f"!{text}")
            sections.generic.extend(_generic_lines(name, packed, notes))


def _net_text(version: int, start: int, plen: int) -> str:
    if version == 4:
        return f"{ipaddress.IPv4Address(start)}/{plen}"
    return f"{ipaddress.IPv6Address(start).exploded}/{plen}"


def _reverse_name(version: int, start: int) -> str:
    if version == 4:
        return ".".join(str(octet) for octet in reversed(start.to_bytes(4, "big")))
    return ".".join(reversed(f"{start:032x}"))


# --------------------------------------------------------------------------- command


def add_export_parser(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
) -> argparse.ArgumentParser:
    """Add ``zonepub export --zone Z [--format zonefile|rbldnsd] [-o FILE]``."""
    parser = subparsers.add_parser(
        "export", help="write a zone as an RFC 1035 master file or an rbldnsd dataset"
    )
    parser.add_argument("--zone", required=True, help="the zone to export")
    parser.add_argument("--format", choices=("zonefile", "rbldnsd"), default="zonefile",
                        help="zonefile (RFC 1035, the default) or rbldnsd (combined dataset)")
    parser.add_argument("-o", "--output", type=Path,
                        help="file to write (replaced atomically); default: standard output")
    parser.set_defaults(func=cmd_export)
    return parser


def cmd_export(args: argparse.Namespace) -> int:
    """Run ``zonepub export``; warnings go to standard error."""
    config = find_zone(args.config, args.zone)
    export = export_zonefile if args.format == "zonefile" else export_rbldnsd
    warnings: list[str] = []
    if args.output is None:
        count = export(config, sys.stdout, warnings=warnings)
    else:
        count = write_atomically(args.output, lambda out: export(config, out, warnings=warnings))
    for warning in warnings:
        print(f"zonepub: warning: {warning}", file=sys.stderr)
    where = "standard output" if args.output is None else str(args.output)
    unit = "records" if args.format == "zonefile" else "dataset lines"
    print(f"zone {config.origin}: {count} {unit} written to {where}, "
          f"{len(warnings)} warnings", file=sys.stderr)
    return 0


def write_atomically(path: Path, write: Callable[[TextIO], int]) -> int:
    """Write a file through a temporary file renamed over it, as rbldnsd asks (rbldnsd(8)).

    Readers never see half a file, and a failed export leaves the old one in place.
    """
    directory = path.parent if str(path.parent) else Path(".")
    fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="ascii", newline="\n") as out:
            count = write(out)
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return count
