"""Static records of a zone file: names and RDATA checked before anything is served.

The ``records:`` section maps names (relative to the apex, ``@`` for the apex, or
absolute with a trailing dot inside the zone) to A, AAAA, TXT, MX and CNAME values.
Each value becomes one :class:`StaticRecord` in RFC 1035 presentation form, so the
server packs what the operator wrote and a mistake is reported with its position.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from dataclasses import dataclass

import dns.rdata
import dns.rdataclass
import dns.rdatatype
import yaml

from zoned.yamlconf import (
    Report,
    Section,
    domain_text,
    read_ipv4,
    read_items,
    read_section,
    read_text,
)

STATIC_TYPES = ("A", "AAAA", "TXT", "MX", "CNAME")
_TXT_CHUNK = 255  # one DNS character-string (RFC 1035 3.3)
_MAX_TXT = 255 * 255  # as many chunks as fit in 65535 bytes of RDATA


@dataclass(frozen=True, slots=True)
class StaticRecord:
    """A record served as configured, overriding store data at its name.

    ``value`` is RFC 1035 presentation-form RDATA with absolute names (trailing dot);
    a TXT value is already split into quoted character-strings of at most 255 bytes.
    """

    name: str  # relative to the apex, '' for the apex itself
    rtype: str
    ttl: int
    value: str

    def rdata(self) -> bytes:
        """The RDATA in wire form (uncompressed), as the server packs it."""
        rdtype = dns.rdatatype.from_text(self.rtype)
        wire = dns.rdata.from_text(dns.rdataclass.IN, rdtype, self.value).to_wire()
        assert wire is not None  # to_wire() without a file returns the bytes
        return wire


def printable(text: str) -> bool:
    """Printable ASCII, the only text a TXT value may carry here."""
    return all(" " <= ch <= "~" for ch in text)


def read_records(
    report: Report, sec: Section | None, origin: str, default_ttl: int
) -> tuple[StaticRecord, ...]:
    """The records of a ``records:`` section; ``origin`` is '' when the zone name is wrong."""
    if sec is None:
        return ()
    return _RecordReader(report, origin).records(sec, default_ttl)


class _RecordReader:
    """Reads the static records of one zone; each method reads one level."""

    def __init__(self, report: Report, origin: str) -> None:
        self.report = report
        self.origin = origin

    def records(self, sec: Section, default_ttl: int) -> tuple[StaticRecord, ...]:
        records: list[StaticRecord] = []
        seen: dict[str, yaml.Node] = {}
        for key in sec.keys():
            key_node = sec.key_node(key)
            node = sec.take(key)
            assert key_node is not None and node is not None
            path = sec.field(key)
            name = self.relative_name(key_node, key, path)
            if name is None:
                continue
            if name in seen:
                where = self.report.where(seen[name])
                self.report.add(key_node, path, f"the same name as {where}")
                continue
            seen[name] = key_node
            rsec = read_section(self.report, node, path, key_node)
            if rsec is not None:
                records.extend(self.name_records(rsec, name, default_ttl))
        return tuple(records)

    def relative_name(self, node: yaml.Node, text: str, path: str) -> str | None:
        """A record name: '@' is the apex, a trailing dot means absolute (inside the zone)."""
        if text == "@":
            return ""
        try:
            name = domain_text(text)
        except ValueError as exc:
            self.report.add(node, path, f"{exc}, got {text!r}")
            return None
        if not self.origin:
            return name  # the zone name is wrong, and already reported
        if text.endswith("."):
            if name == self.origin:
                return ""
            if not name.endswith("." + self.origin):
                self.report.add(node, path, f"{text!r} is outside the zone {self.origin!r}")
                return None
            return name[: -len(self.origin) - 1]
        if len(name) + 1 + len(self.origin) > 253:
            self.report.add(node, path, "name with the zone longer than 253 characters")
            return None
        return name

    def name_records(self, sec: Section, name: str, default_ttl: int) -> Iterator[StaticRecord]:
        ttl = sec.integer("ttl", default_ttl)
        types: list[str] = []
        for rtype in sec.keys():
            if rtype not in STATIC_TYPES:
                continue
            node = sec.take(rtype)
            assert node is not None
            path = sec.field(rtype)
            values: list[str] = []
            for item, item_path in read_items(self.report, node, path, single=True):
                value = self.rdata(rtype, item, item_path)
                if value is not None:
                    values.append(value)
            if rtype == "CNAME" and len(values) > 1:
                self.report.add(node, path, "a name has at most one CNAME (RFC 2181 10.1)")
            types.append(rtype)
            yield from (StaticRecord(name, rtype, ttl, value) for value in values)
        if "CNAME" in types and (len(types) > 1 or name == ""):
            # RFC 1034 3.6.2: a CNAME owner has no other data; the apex has SOA and NS.
            where = "at the apex" if name == "" else "with other records"
            self.report.add(sec.key_node("CNAME"), sec.field("CNAME"), f"CNAME not allowed {where}")
        if not types and sec.keys() in ([], ["ttl"]):
            self.report.add(sec.anchor, sec.path, "no records")
        if sec.take("NS") is not None:
            message = "not served: the apex NS records come from 'ns' and there are no delegations"
            self.report.add(sec.key_node("NS"), sec.field("NS"), message)
        sec.done((*STATIC_TYPES, "ttl"))

    def rdata(self, rtype: str, node: yaml.Node, path: str) -> str | None:
        """Presentation-form RDATA for one value, validated."""
        if rtype == "A":
            address = read_ipv4(self.report, node, path)
            return None if address is None else str(address)
        text = read_text(self.report, node, path)
        if text is None:
            return None
        if rtype == "AAAA":
            try:
                return str(ipaddress.IPv6Address(text))
            except ValueError:
                self.report.add(node, path, f"expected an IPv6 address, got {text!r}")
                return None
        if rtype == "TXT":
            return self.txt_rdata(node, path, text)
        if rtype == "MX":
            parts = text.split()
            if len(parts) == 2 and parts[0].isdigit() and int(parts[0]) <= 0xFFFF:
                if parts[1] == ".":  # RFC 7505 null MX
                    return f"{int(parts[0])} ."
                try:
                    return f"{int(parts[0])} {domain_text(parts[1])}."
                except ValueError as exc:
                    self.report.add(node, path, f"{exc}, got {parts[1]!r}")
                    return None
            message = f"expected 'PREFERENCE EXCHANGE' like '10 mx.example.net', got {text!r}"
            self.report.add(node, path, message)
            return None
        assert rtype == "CNAME"
        try:
            return domain_text(text) + "."
        except ValueError as exc:
            self.report.add(node, path, f"{exc}, got {text!r}")
            return None

    def txt_rdata(self, node: yaml.Node, path: str, text: str) -> str | None:
        """Quoted 255-byte character-strings (RFC 1035 3.3.14) of printable ASCII."""
        if not printable(text):
            self.report.add(node, path, "TXT text must be printable ASCII")
            return None
        if len(text) > _MAX_TXT:
            self.report.add(node, path, f"TXT text longer than {_MAX_TXT} characters")
            return None
        chunks = [text[i : i + _TXT_CHUNK] for i in range(0, len(text), _TXT_CHUNK)] or [""]
        return " ".join('"' + c.replace("\\", "\\\\").replace('"', '\\"') + '"' for c in chunks)
