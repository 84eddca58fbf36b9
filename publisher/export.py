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
import bisect
import functools
import ipaddress
import os
import struct
import sys
import tempfile
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype

from zoned import config as zoneconfig
from zoned import keys
from zoned.answers import static_answers
from zoned.config import ZoneConfig
from zoned.packed import Record, unpack
from zoned.wire import T_A, T_MX, T_TXT
from zoned.zone import ReaderPool, ServedZone

_GROUP = struct.Struct("!HHH")
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


def store_entries(zone: ServedZone) -> Iterator[tuple[bytes, bytes]]:
    """(key, packed answer) of the zone's store snapshot; nothing if there is no store."""
    if zone.reader is not None:
        yield from zone.reader.entries()


def apex_answer(zone: ServedZone) -> bytes:
    """The apex RRsets (SOA with the store's serial, NS, static apex records) as packed."""
    return b"".join(
        _GROUP.pack(rtype, count, len(wire)) + wire for rtype, (count, wire) in zone.apex.items()
    )


def key_labels(key: bytes) -> tuple[bytes, ...]:
    """Relative owner labels, leftmost first, of a name-keyed store key (zoned.keys)."""
    return tuple(reversed(key.split(b"."))) if key else ()


def _name_text(labels: Iterable[bytes]) -> str:
    """Relative presentation form of labels (leftmost first); '@' is the apex."""
    labels = tuple(labels)
    return dns.name.Name(labels).to_text() if labels else "@"


def find_zone(config_dir: Path, name: str) -> ZoneConfig:
    """The zone called ``name`` among the zone files of ``config_dir``, or exit saying so."""
    zone = zoneconfig.find_zone(config_dir, name)
    if zone is None:
        raise SystemExit(f"zonepub: no zone {name!r} in {config_dir}")
    return zone


# --------------------------------------------------------------------------- networks

Packed = bytes
Net = tuple[int, int]  # (network address as an integer, prefix length)


@dataclass
class _Family:
    """One address family's networks, in the three precedence levels zoned applies."""

    width: int  # 32 or 128 bits
    step: int  # bits per label: 8 (octets) or 4 (nibbles)
    blocked: set[Net] = field(default_factory=set)
    listed: dict[Net, Packed] = field(default_factory=dict)  # overrides and test entries
    store: dict[Net, Packed] = field(default_factory=dict)
    points: list[Net] = field(default_factory=list)
    _plens: dict[str, tuple[int, ...]] = field(default_factory=dict)

    def add(self, level: str, net: Net, value: Packed) -> None:
        if level == "blocked":
            self.blocked.add(net)
        elif level == "listed":
            self.listed[net] = value
        else:
            self.store[net] = value

    def seal(self) -> None:
        """Sort the networks for range probes once everything is added."""
        self.points = sorted(self.blocked | self.listed.keys() | self.store.keys())
        for level, nets in (("blocked", self.blocked), ("listed", self.listed.keys()),
                            ("store", self.store.keys())):
            self._plens[level] = tuple(sorted({plen for _, plen in nets}, reverse=True))

    def mask(self, start: int, plen: int) -> int:
        shift = self.width - plen
        return start >> shift << shift

    def covering(self, level: str, start: int, bits: int) -> Net | None:
        """The longest network of ``level`` covering the first ``bits`` of ``start``.

        With ``bits`` a network's own prefix length, that is the longest network of
        ``level`` that contains it (or is it).
        """
        nets: Collection[Net] = (
            self.blocked if level == "blocked"
            else self.listed.keys() if level == "listed" else self.store.keys()
        )
        for plen in self._plens[level]:
            if plen <= bits:
                net = (self.mask(start, plen), plen)
                if net in nets:
                    return net
        return None

    def value(self, start: int, bits: int) -> Packed | None:
        """zoned's answer for the addresses of (start, bits) that no longer entry touches."""
        if self.covering("blocked", start, bits) is not None:
            return None
        net = self.covering("listed", start, bits)
        if net is not None:
            return self.listed[net]
        net = self.covering("store", start, bits)
        return None if net is None else self.store[net]

    def touched(self, start: int, bits: int) -> list[int]:
        """Children (label values) of (start, bits) that hold or meet a longer network."""
        child_shift = self.width - bits - self.step
        end = start + (1 << (self.width - bits))
        points = self.points
        found: list[int] = []
        i = bisect.bisect_left(points, (start, bits + 1))
        while i < len(points) and points[i][0] < end:
            net_start, plen = points[i]
            child = (net_start - start) >> child_shift
            # A network shorter than a child's prefix covers several children; the
            # first network at a child boundary is the shortest there (sorted order).
            span = 1 << (bits + self.step - plen) if plen < bits + self.step else 1
            found.extend(range(child, child + span))
            i = bisect.bisect_left(points, (start + ((child + span) << child_shift), -1), i)
        return found


def _families(zone: ServedZone) -> dict[int, _Family]:
    families = {4: _Family(32, 8), 6: _Family(128, 4)}

    def add(level: str, key: bytes, value: bytes) -> None:
        network = keys.key_network(key)
        families[network.version].add(
            level, (int(network.network_address), network.prefixlen), value
        )

    for key in zone.blocked_nets.answers:
        add("blocked", key, b"")
    for key, value in zone.nets.answers.items():
        add("listed", key, value)
    for key, value in store_entries(zone):
        add("store", key, value)
    for family in families.values():
        family.seal()
    return families


@dataclass(frozen=True)
class _Node:
    """A name under the apex that may be an IPv4 prefix, an IPv6 prefix, or both."""

    path: tuple[str, ...]  # labels from the apex down (the reverse of the name's order)
    v4: Net | None  # (address, bits known) when the labels read as an IPv4 prefix
    v6: Net | None

    def child(self, label: str) -> _Node:
        v4 = v6 = None
        if self.v4 is not None and self.v4[1] < 32 and label in _DECIMAL_LABELS:
            start, bits = self.v4
            v4 = (start | int(label) << (24 - bits), bits + 8)
        if self.v6 is not None and self.v6[1] < 128 and label in _NIBBLE_LABELS:
            start, bits = self.v6
            v6 = (start | int(label, 16) << (124 - bits), bits + 4)
        return _Node((*self.path, label), v4, v6)

    @property
    def name(self) -> str:
        return ".".join(reversed(self.path)) if self.path else "@"

    @property
    def key(self) -> bytes:
        return ".".join(self.path).encode("ascii")


_V4_ONLY = tuple(str(octet) for octet in range(10, 256))
_DIGITS = tuple(str(digit) for digit in range(10))
_HEX_ONLY = tuple("abcdef")
_ALL_V4 = _DIGITS + _V4_ONLY
_ALL_V6 = _DIGITS + _HEX_ONLY
_V4_ONLY_SET = frozenset(_V4_ONLY)
_DIGITS_SET = frozenset(_DIGITS)
_HEX_ONLY_SET = frozenset(_HEX_ONLY)
_MIXED = object()  # a class of children whose IPv4 and IPv6 answers differ


class _AddressTree:
    """Writes the names and wildcards that answer every address as zoned does."""

    def __init__(
        self,
        families: dict[int, _Family],
        write: Callable[[str, Packed], None],
        statics: Iterable[bytes],
    ) -> None:
        self.v4 = families[4]
        self.v6 = families[6]
        self.write = write
        self.statics = frozenset(statics)

    def run(self) -> None:
        self.emit(_Node((), (0, 0), (0, 0)))

    def own(self, node: _Node) -> Packed | None:
        if node.v4 is not None and node.v4[1] == 32:
            return self.v4.value(*node.v4)
        if node.v6 is not None and node.v6[1] == 128:
            return self.v6.value(*node.v6)
        return None

    def emit(self, node: _Node) -> bool:
        """Write the subtree of ``node``; False if it answers NXDOMAIN throughout."""
        v4 = node.v4 if node.v4 is not None and node.v4[1] < 32 else None
        v6 = node.v6 if node.v6 is not None and node.v6[1] < 128 else None
        touched: set[str] = set()
        if v4 is not None:
            touched.update(str(octet) for octet in self.v4.touched(*v4))
        if v6 is not None:
            touched.update(f"{nibble:x}" for nibble in self.v6.touched(*v6))
        wrote = False
        hole = False  # some touched child answers NXDOMAIN throughout
        for label in sorted(touched, key=_label_order):
            if self.emit(node.child(label)):
                wrote = True
            else:
                hole = True
        i4 = self.v4.value(*v4) if v4 is not None else None
        i6 = self.v6.value(*v6) if v6 is not None else None
        # Children no longer network touches, by what answers below them.
        classes: list[tuple[tuple[str, ...], frozenset[str], object]] = []
        if v4 is not None and v6 is not None:
            classes += [(_V4_ONLY, _V4_ONLY_SET, i4),
                        (_DIGITS, _DIGITS_SET, i4 if i4 == i6 else _MIXED),
                        (_HEX_ONLY, _HEX_ONLY_SET, i6)]
        elif v4 is not None:
            classes.append((_ALL_V4, _DECIMAL_LABELS, i4))
        elif v6 is not None:
            classes.append((_ALL_V6, _NIBBLE_LABELS, i6))
        # How many children of each class no longer network touches.
        remaining = [(labels, value, len(labels) - sum(x in members for x in touched))
                     for labels, members, value in classes]
        wildcard: Packed | None = None
        if node.path and not hole and all(value is not None for _, value, n in remaining if n):
            votes: Counter[Packed] = Counter()
            for _, value, n in remaining:
                if n and isinstance(value, bytes):
                    votes[value] += n
            if votes:
                wildcard = votes.most_common(1)[0][0]
        if wildcard is not None:
            self.write("*." + node.name, wildcard)
            wrote = True
        for labels, value, n in remaining:
            if not n or value is None or value == wildcard:
                continue  # NXDOMAIN, or answered by the wildcard
            for label in labels:
                if label in touched:
                    continue
                child = node.child(label)
                if isinstance(value, bytes):
                    self.uniform(child, value)
                    wrote = True
                else:
                    wrote |= self.emit(child)
        own = self.own(node)
        if own is not None and node.key not in self.statics:
            self.write(node.name, own)
            wrote = True
        return wrote

    def uniform(self, node: _Node, value: Packed) -> None:
        """A child whose own name and whole subtree answer ``value``."""
        v4, v6 = node.v4, node.v6
        if ((v4 is not None and v4[1] == 32) or (v6 is not None and v6[1] == 128)) \
                and node.key not in self.statics:
            self.write(node.name, value)
        if (v4 is not None and v4[1] < 32) or (v6 is not None and v6[1] < 128):
            self.write("*." + node.name, value)


def _type_text(rtype: int) -> str:
    return dns.rdatatype.to_text(dns.rdatatype.RdataType.make(rtype))


def _label_order(label: str) -> tuple[int, int]:
    return (0, int(label)) if label.isdigit() else (1, int(label, 16))


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
    notes = warnings if warnings is not None else []
    with served_zone(config) as zone:
        out.write(
            f"; zone {config.origin}, serial {zone.serial}, exported by zonepub from "
            f"{config.store}\n$ORIGIN {config.origin}.\n$TTL {config.ttl}\n"
        )
        writer = _MasterWriter(out)
        writer.packed("@", apex_answer(zone))
        for key in sorted(zone.statics, key=key_labels):
            writer.packed(_name_text(key_labels(key)), zone.statics[key])
        if zone.is_ip:
            _AddressTree(_families(zone), writer.packed, zone.statics).run()
        else:
            _write_names(zone, writer, notes)
    return writer.records


def _write_names(zone: ServedZone, writer: _MasterWriter, notes: list[str]) -> None:
    """Store names of a name or hash zone, minus those a static or a block hides."""
    blocked_parents: set[bytes] = set()
    for key, value in store_entries(zone):
        if key in zone.statics or key in zone.blocked_names:
            continue
        labels = key.split(b".")
        for i in range(1, len(labels)):
            parent = b".".join(labels[:i])
            if parent in zone.blocked_names:
                blocked_parents.add(parent)
        writer.packed(_name_text(key_labels(key)), value)
    for parent in sorted(blocked_parents):
        name = _name_text(key_labels(parent))
        notes.append(f"{name}: unlisted, but names below it exist: NODATA instead of NXDOMAIN")


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
        serial = zone.serial
        for key in sorted(zone.statics, key=key_labels):
            name = _name_text(key_labels(key))
            value = _entry_value(config, zone.statics[key])
            if not zone.is_ip and value is not None:
                sections.dnset.append(f"{name} {value}")
            else:
                sections.generic.extend(_generic_lines(name, zone.statics[key], notes))
        if zone.is_ip:
            _rbldnsd_networks(config, _families(zone), zone.statics, sections, notes)
        else:
            for key, packed in store_entries(zone):
                if key in zone.statics or key in zone.blocked_names:
                    continue
                name = _name_text(key_labels(key))
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
    families: dict[int, _Family],
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
