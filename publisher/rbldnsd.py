"""rbldnsd's dataset format, both ways: datasets read into store entries, a zone written out.

Operators moving a list from rbldnsd keep their data files: :func:`read_dataset`
parses rbldnsd's dataset syntax (rbldnsd(8), checked against rbldnsd 1.0) and
:func:`dataset_entries` turns the entries into store entries, which
:func:`publisher.publish.import_rbldnsd` commits as one serial (``zonepub import
--format rbldnsd``), the way ``zonepub import`` commits JSON lines.  Every bad line is
reported as ``file:line: why`` and nothing is written while any line is bad.  The other
way, :func:`export_rbldnsd` writes a zone as one dataset (``zonepub export --format
rbldnsd``).

Reading datasets
----------------
What is read, per dataset type:

- ``ip4set``: addresses, prefixes (``1.2.3`` is 1.2.3.0/24), CIDR (``1.2.3.0/24``,
  ``127.16/12``) and ranges (``1.2.3.4-1.2.3.10``, ``1.2.3.4-10``, ``127.16-31``).
  rbldnsd splits every entry into octet-aligned blocks (/32, /24, /16, /8) and looks
  them up longest first; so does the import, which makes the answers identical.
  Entries for the same block add up (several A and TXT records), as in rbldnsd.
- ``ip4trie``, ``ip6trie``: one CIDR network per line (IPv6 with ``::`` or with
  trailing groups left out: ``2001:db8:c000/36``; four groups alone mean a /64);
  longest prefix wins; for a repeated network the first line wins (rbldnsd warns).
- ``dnset``: domain names; ``.example.com`` lists the name and every name below it,
  ``*.example.com`` only the names below.  Exact names win over wildcards.
- ``generic``: ``name [ttl] A|TXT|MX value`` records, names relative to the zone.

Values: ``:A:TXT`` sets both (``:2:`` is 127.0.0.2, a missing TXT means none), ``:A``
takes the TXT of the default, text alone takes the default A; a line ``:A:TXT``
sets the default for the rest of the file (initially 127.0.0.2 without TXT).  TXT
templates are expanded as rbldnsd does: ``$$``, ``$0``..``$9`` substitution
variables, the ``$=`` base template and its ``=`` opt-out; ``$`` is the listed
address or name.  The A value must be a valid return code (listformat.codes).

What the store cannot hold, and what the import does instead:

- ``$`` in a network's TXT: rbldnsd writes the address *queried*; the store keeps one
  answer per network, so ``$`` becomes the network as text (``192.0.2.0/24``).  For a
  single address, and for dnset names (where rbldnsd writes the *listed* name), the
  result is the same as rbldnsd's.
- Exclusions (``!entry``): the store has no negative entries.  In IP zones every
  network that covers an exclusion is split around it (``10.0.0.0/8`` minus
  ``10.1.0.0/16`` is 8 networks), keeping the longer entries inside it, so every
  address answers as in rbldnsd.  In name zones an excluded name is not imported.
- dnset wildcards: the store has no wildcard entries.  ``.example.com`` imports
  ``example.com`` alone and ``*.example.com`` nothing; both are reported.
- ``$SOA``, ``$NS``, ``$TIMESTAMP`` and ``$TTL`` are reported and ignored: the zone
  file decides the SOA, the name servers and the TTL of token answers (generic
  records keep a TTL written on their line).  ``$MAXRANGE4`` is applied (bigger
  entries are skipped and reported, as rbldnsd does).  ``$DATASET`` (the combined
  type) is not read: split such a file by dataset.
- Substitution variables and defaults are per file (rbldnsd keeps variables for all
  files of a dataset).
- Hash zones hash single addresses and names; networks are reported and skipped.

Networks wider than the zone's ``widest_prefix`` (default /8 and /16, never /0) are bad
lines, exclusions included: rbldnsd would take ``0.0.0.0/0``, but a list that answers
for the whole Internet is never what an operator meant.  For ``ip4set`` the bound is
the size of the line's range (a /8 is at most 16,777,216 addresses).

Writing a zone
--------------
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

import ipaddress
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, TextIO, get_args

import dns.rdata
import dns.rdataclass
import dns.rdatatype

from listformat import names
from listformat.codes import CodeError, validate_code
from listformat.wire import T_A, T_MX, T_TXT
from publisher.entries import RecordError
from publisher.export import served_zone, type_text
from zoned import keys
from zoned.answers import static_answers
from zoned.config import NetworkTooWide, WidestPrefix, ZoneConfig
from zoned.contents import Family, Net, Packed, families, key_labels, name_text, store_entries
from zoned.packed import Record, pack, txt_rdata, unpack

DatasetKind = Literal["ip4set", "ip4trie", "ip6trie", "dnset", "generic"]
DATASET_KINDS: tuple[DatasetKind, ...] = get_args(DatasetKind)
IP_KINDS = frozenset({"ip4set", "ip4trie", "ip6trie"})

DEFAULT_CODE = ipaddress.IPv4Address("127.0.0.2")
MAX_TXT = 254  # rbldnsd cuts expanded TXT text at 254 bytes
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class DatasetError(RecordError):
    """A dataset cannot be imported; the message lists every bad line as file:line."""

    def __init__(self, problems: Sequence[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = tuple(problems)


class _LineError(ValueError):
    """One line is bad; the reader adds the file and line."""


@dataclass(frozen=True, slots=True)
class GenericRecord:
    """A record of a generic dataset: type, TTL (None: the zone's), wire RDATA."""

    rtype: int
    ttl: int | None
    rdata: bytes


@dataclass(frozen=True, slots=True)
class ImportedEntry:
    """One entry of a dataset, as rbldnsd would list it.

    ``token`` is a network (``192.0.2.0/24``, single addresses without a length) for
    the IP types, a lowercase domain name for dnset, and an owner name relative to
    the zone for generic (``@`` is the apex).
    """

    source: str  # "file:line"
    token: str
    code: ipaddress.IPv4Address | None = None
    txt: bytes | None = None  # expanded TXT text; None: no TXT record
    excluded: bool = False
    wildcard: Literal["", "*.", "."] = ""  # dnset: "*." below the name, "." name and below
    record: GenericRecord | None = None  # generic only


# --------------------------------------------------------------------------- parsing

_OCTETS = re.compile(r"[0-9]+(?:\.[0-9]+){0,3}")
_IP6 = re.compile(r"[0-9A-Fa-f:.]+(?:/[0-9]+)?")
_TIME = re.compile(r"([0-9]+)([smhdwSMHDW]?)\Z")
_TIME_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_BLANKS = " \t"
_COMMENTS = "#;"


def _word(text: str) -> str:
    """The first word of ``text`` for a message, or ``text`` itself when Python sees no
    word in it (a lone vertical tab: rbldnsd's blanks, " \\t", do not strip it)."""
    words = text.split(maxsplit=1)
    return words[0] if words else text


def _ip4prefix(text: str) -> tuple[int, int, int]:
    """rbldnsd's ip4prefix: (value, bits 8/16/24/32, characters used) of 1 to 4 octets."""
    match = _OCTETS.match(text)
    if match is None:
        raise _LineError(f"invalid address {_word(text)!r}" if text.strip() else "no address")
    octets = [int(part) for part in match.group().split(".")]
    if any(octet > 255 for octet in octets):
        raise _LineError(f"invalid address {match.group()!r}: octet over 255")
    value = 0
    for i, octet in enumerate(octets):
        value |= octet << (24 - 8 * i)
    return value, 8 * len(octets), match.end()


def _mask(bits: int, width: int = 32) -> int:
    return ((1 << width) - 1) ^ ((1 << (width - bits)) - 1)


def _ip4addr(text: str) -> tuple[int, int]:
    """rbldnsd's ip4addr (inet_aton forms: ``2`` is 0.0.0.2, ``127.2`` is 127.0.0.2)."""
    value, bits, used = _ip4prefix(text)
    if bits == 8:
        value >>= 24
    elif bits == 16:
        value = (value & 0xFF000000) | ((value >> 16) & 255)
    elif bits == 24:
        value = (value & 0xFFFF0000) | ((value >> 8) & 255)
    return value, used


def _prefix_bits(text: str, width: int) -> tuple[int, int]:
    """A ``/bits`` suffix: (bits, characters used)."""
    match = re.match(r"/([0-9]+)", text)
    if match is None or int(match.group(1)) > width:
        raise _LineError(f"invalid prefix length in {_word(text)!r}")
    return int(match.group(1)), match.end()


def _ip4range(text: str, *, ranges: bool) -> tuple[int, int, int, int]:
    """(first, last, bits or 32 for ranges, characters used): ip4set/ip4trie addresses."""
    first, bits, used = _ip4prefix(text)
    if ranges and text[used : used + 1] == "-":
        last, last_bits, more = _ip4prefix(text[used + 1 :])
        used += 1 + more
        if last_bits == 8 and bits > 8:  # 1.2.3.4-10 is 1.2.3.4-1.2.3.10
            last = (last >> (bits - 8)) | (first & _mask(bits - 8))
            last_bits = bits
        elif last_bits != bits:
            raise _LineError(f"invalid range {text[:used]!r}: both ends need as many octets")
        last |= ~_mask(last_bits) & 0xFFFFFFFF
        if first > last:
            raise _LineError(f"invalid range {text[:used]!r}: the first address is the larger")
        return first, last, 32, used
    if text[used : used + 1] == "/":
        bits, more = _prefix_bits(text[used:], 32)
        used += more
    elif bits == 8:
        raise _LineError(f"bare number {text[:used]!r}: write it as {text[:used]}/8")
    if first & ~_mask(bits) & 0xFFFFFFFF:
        network = ipaddress.IPv4Network((first, bits), strict=False)
        raise _LineError(f"{text[:used]!r} has host bits set (the network is {network})")
    return first, first | (~_mask(bits) & 0xFFFFFFFF), bits, used


def _ip4set_blocks(first: int, last: int) -> list[tuple[int, int]]:
    """(address, prefix length) blocks rbldnsd's ip4set stores for a range (octet aligned)."""
    blocks: list[tuple[int, int]] = []

    def add(level: int, start: int, count: int) -> None:
        step = 1 << (8 * level)
        blocks.extend((start + i * step, 32 - 8 * level) for i in range(count))

    a, b = first, last
    for level in range(3):  # rbldnsd's ip4range_expand_octet for bits 0, 8 and 16
        shift = 8 * level
        if (a | 255) >= b:
            if b - a == 255:
                add(level + 1, a << shift, 1)
            else:
                add(level, a << shift, b - a + 1)
            return blocks
        if a & 255:
            add(level, a << shift, 256 - (a & 255))
            a = (a >> 8) + 1
        else:
            a >>= 8
        if (b & 255) != 255:
            add(level, (b & ~255) << shift, (b & 255) + 1)
            b = (b >> 8) - 1
        else:
            b >>= 8
    add(3, a << 24, b - a + 1)
    return blocks


def _ip6network(text: str) -> tuple[ipaddress.IPv6Network, int]:
    """An ip6trie network and the characters it used."""
    match = _IP6.match(text)
    if match is None:
        raise _LineError(f"invalid IPv6 address {_word(text)!r}")
    address, slash, length = match.group().partition("/")
    try:
        if "::" in address or "." in address:
            value = int(ipaddress.IPv6Address(address))
            bits = 128
        else:
            groups = address.split(":")
            if not 1 <= len(groups) <= 8 or not all(re.fullmatch(r"[0-9A-Fa-f]{1,4}", g)
                                                    for g in groups):
                raise ValueError(address)
            if len(groups) == 1 and not slash:
                raise _LineError(f"bare number {address!r}: give a prefix length")
            value = int("".join(g.rjust(4, "0") for g in groups).ljust(32, "0"), 16)
            bits = 16 * len(groups)
    except ValueError:
        raise _LineError(f"invalid IPv6 address {match.group()!r}") from None
    if slash:
        if not length.isdigit() or int(length) > 128:
            raise _LineError(f"invalid prefix length in {match.group()!r}")
        bits = int(length)
    try:
        network = ipaddress.IPv6Network((value, bits))
    except ValueError:
        network = ipaddress.IPv6Network((value, bits), strict=False)
        raise _LineError(
            f"{match.group()!r} has host bits set (the network is {network})"
        ) from None
    return network, match.end()


def _ip6_text(address: int) -> str:
    """An address as rbldnsd writes it for ``$``: eight hex groups, no ``::``."""
    return ":".join(f"{(address >> (112 - 16 * i)) & 0xFFFF:x}" for i in range(8))


def _net_token(network: IPNetwork) -> str:
    if network.prefixlen == network.max_prefixlen:
        return str(network.network_address)
    return str(network)


def _listed_text(network: IPNetwork) -> str:
    """What ``$`` becomes for an IP entry (the address, or the network as text)."""
    if network.version == 4:
        return _net_token(network)
    text = _ip6_text(int(network.network_address))
    return text if network.prefixlen == 128 else f"{text}/{network.prefixlen}"


def _time(text: str) -> int:
    match = _TIME.match(text)
    if match is None:
        raise _LineError(f"invalid time {text!r} (seconds, or a number with s, m, h, d or w)")
    return int(match.group(1)) * _TIME_UNITS[match.group(2).lower()]


@dataclass
class _Template:
    """The A value and TXT template of an entry or of the current default."""

    code: ipaddress.IPv4Address
    txt: str


@dataclass
class _State:
    """What specials set while a file is read."""

    default: _Template = field(default_factory=lambda: _Template(DEFAULT_CODE, ""))
    variables: dict[str, str] = field(default_factory=dict)  # "0".."9", and "=" (base)
    ttl: int | None = None
    max_range4: int | None = None


class _DatasetReader:
    """Reads one dataset file; each method reads one kind of line."""

    def __init__(self, path: Path, kind: DatasetKind, problems: list[str],
                 notes: list[str], widest: WidestPrefix) -> None:
        self.path = path
        self.kind = kind
        self.widest = widest
        self.problems = problems
        self.notes = notes
        self.state = _State()
        self.noted: set[str] = set()
        self.where = str(path)

    def note_once(self, what: str, message: str) -> None:
        if what not in self.noted:
            self.noted.add(what)
            self.notes.append(f"{self.where}: {message}")

    def read(self) -> Iterator[ImportedEntry]:
        with self.path.open("rb") as stream:
            for lineno, raw in enumerate(stream, 1):
                self.where = f"{self.path}:{lineno}"
                line = raw.decode("utf-8", "surrogateescape").rstrip("\r\n").strip(_BLANKS)
                try:
                    if line.startswith("$") or (line[1:2] == "$" and line[0] in "#;:"):
                        self.special(line[1:] if line[0] == "$" else line[2:])
                    elif line and line[0] not in _COMMENTS:
                        yield from self.entry(line)
                except _LineError as exc:
                    self.problems.append(f"{self.where}: {exc}")
        self.where = str(self.path)

    # -- specials ($SOA, $TTL, $1, ...) ---------------------------------------------------
    def special(self, text: str) -> None:
        word, _, rest = text.partition(" ")
        if "\t" in word:
            word, _, more = word.partition("\t")
            rest = f"{more} {rest}"
        rest = rest.strip(_BLANKS)
        lowered = word.lower()
        if re.fullmatch(r"[0-9=]", word):
            if not rest:
                raise _LineError(f"${word} needs a text")
            self.state.variables.setdefault(word, rest)  # rbldnsd ignores a second one
        elif lowered == "ttl":
            self.state.ttl = _time(rest)
            self.note_once("$TTL", "$TTL applies to generic records without a TTL only; "
                                   "token answers take the zone's ttl")
        elif lowered in ("soa", "ns", "nameserver", "timestamp"):
            self.note_once(lowered, f"${word.upper()} ignored: the zone file decides it")
        elif lowered == "maxrange4":
            self.state.max_range4 = self.max_range(rest)
        elif lowered == "dataset":
            raise _LineError("$DATASET belongs to the combined type, which is not imported:"
                             " split the file by dataset")
        else:
            raise _LineError(f"unrecognized special entry ${word}")

    def max_range(self, text: str) -> int:
        if text.startswith("/") and text[1:].isdigit() and int(text[1:]) <= 32:
            size = 1 << (32 - int(text[1:]))
        elif text.isdigit() and int(text) > 0:
            size = int(text)
        else:
            raise _LineError(f"invalid $MAXRANGE4 {text!r} (a count or /prefix)")
        current = self.state.max_range4
        return size if current is None else min(current, size)  # it can only shrink

    # -- values and templates ----------------------------------------------------------------
    def value(self, text: str, default: _Template) -> _Template:
        """``:A:TXT``, ``:A``, ``:A:`` or a TXT template alone (rbldnsd parse_a_txt)."""
        if not text.startswith(":"):
            return _Template(default.code, text)
        try:
            address, used = _ip4addr(text[1:])
        except _LineError:
            raise _LineError(f"invalid A value in {text!r}") from None
        if address == 0:
            raise _LineError(f"invalid A value in {text!r}")
        if used and "." not in text[1 : 1 + used]:
            address |= 0x7F000000  # ":2" is 127.0.0.2
        rest = text[1 + used :].lstrip(_BLANKS)
        code = ipaddress.IPv4Address(address)
        if rest.startswith(":"):
            return _Template(code, rest[1:].lstrip(_BLANKS))
        if rest:
            raise _LineError(f"unrecognized value {text!r}")
        return _Template(code, default.txt)

    def expand(self, template: str, listed: str) -> bytes | None:
        """rbldnsd's txtsubst: the TXT text for ``listed``, or None for no TXT."""
        variables = self.state.variables
        base = variables.get("=")
        if template.startswith("="):
            template = template[1:]
            entry_text = template
        elif base:
            entry_text = template or listed
            template = base
        else:
            entry_text = template
        out: list[str] = []
        pos = 0
        while True:
            dollar = template.find("$", pos)
            if dollar < 0:
                out.append(template[pos:])
                break
            out.append(template[pos:dollar])
            following = template[dollar + 1 : dollar + 2]
            if following == "$":
                out.append("$")
                pos = dollar + 2
            elif following.isdigit():
                out.append(variables.get(following, "$" + following))
                pos = dollar + 2
            elif following == "=":
                out.append(entry_text)
                pos = dollar + 2
            else:
                out.append(listed)
                pos = dollar + 1
        text = "".join(out).encode("utf-8", "surrogateescape")
        if len(text) > MAX_TXT:
            self.note_once("txt", f"TXT text cut to {MAX_TXT} bytes, as rbldnsd does")
            text = text[:MAX_TXT]
        return text or None

    def rest(self, line: str, used: int) -> tuple[bool, str]:
        """The value part of an entry line: (given, text); checks what follows the key."""
        tail = line[used:]
        if tail and tail[0] not in _BLANKS + _COMMENTS + ":":
            raise _LineError(f"invalid entry {_word(line)!r}")
        tail = tail.lstrip(_BLANKS)
        if not tail or tail[0] in _COMMENTS:
            return False, ""
        return True, tail

    # -- entries ---------------------------------------------------------------------------
    def entry(self, line: str) -> Iterator[ImportedEntry]:
        if self.kind == "generic":
            yield self.generic(line)
            return
        if line.startswith(":") and not (self.kind == "ip6trie" and line.startswith("::")):
            self.state.default = self.value(line, _Template(DEFAULT_CODE, ""))
            return
        excluded = line.startswith("!")
        if excluded:
            line = line[1:].lstrip(_BLANKS)
        if self.kind == "dnset":
            yield from self.dnset(line, excluded)
        else:
            yield from self.addresses(line, excluded)

    def template(self, line: str, used: int, excluded: bool) -> _Template | None:
        given, tail = self.rest(line, used)
        if excluded:
            return None
        return self.value(tail, self.state.default) if given else self.state.default

    def addresses(self, line: str, excluded: bool) -> Iterator[ImportedEntry]:
        networks: list[IPNetwork]
        if self.kind == "ip6trie":
            network6, used = _ip6network(line)
            self.bounded(network6)
            networks = [network6]
        else:
            first, last, bits, used = _ip4range(line, ranges=self.kind == "ip4set")
            if last - first + 1 > 1 << (32 - self.widest.v4):
                raise _LineError(f"{line[:used]} covers {last - first + 1:,} addresses, more "
                                 f"than the zone allows (widest_prefix.v4: /{self.widest.v4})")
            limit = self.state.max_range4
            if limit is not None and last - first + 1 > limit:
                self.notes.append(f"{self.where}: {line[:used]} is larger than $MAXRANGE4 "
                                  f"({limit} addresses); skipped, as rbldnsd does")
                return
            if self.kind == "ip4set":
                networks = [ipaddress.IPv4Network(block) for block in _ip4set_blocks(first, last)]
            else:
                networks = [ipaddress.IPv4Network((first, bits))]
        template = self.template(line, used, excluded)
        for network in networks:
            if template is None:
                yield ImportedEntry(self.where, _net_token(network), excluded=True)
            else:
                txt = self.expand(template.txt, _listed_text(network))
                yield ImportedEntry(self.where, _net_token(network), template.code, txt)

    def bounded(self, network: IPNetwork) -> None:
        try:
            self.widest.check(network)
        except NetworkTooWide as exc:
            raise _LineError(str(exc)) from None

    def dnset(self, line: str, excluded: bool) -> Iterator[ImportedEntry]:
        wildcard: Literal["", "*.", "."] = ""
        if line.startswith("."):
            wildcard, line = ".", line[1:]
        elif line.startswith("*."):
            wildcard, line = "*.", line[2:]
        end = len(line)
        for i, ch in enumerate(line):
            if ch in _BLANKS:
                end = i
                break
        name = line[:end].rstrip(".").lower()
        if not name:
            raise _LineError("missing domain name (the root cannot be listed)")
        template = self.template(line, end, excluded)
        if template is None:
            yield ImportedEntry(self.where, name, excluded=True, wildcard=wildcard)
        else:
            txt = self.expand(template.txt, name)
            yield ImportedEntry(self.where, name, template.code, txt, wildcard=wildcard)

    def generic(self, line: str) -> ImportedEntry:
        """``name [ttl] type value``; A, TXT and MX as rbldnsd's generic dataset."""
        parts = line.split(None, 2)
        if len(parts) < 3:
            raise _LineError("expected 'name [ttl] type value'")
        name, second, rest = parts
        ttl = self.state.ttl
        if second[:1].isdigit():
            ttl = _time(second)
            rest_parts = rest.split(None, 1)
            if len(rest_parts) < 2:
                raise _LineError("expected 'name [ttl] type value'")
            rtype, value = rest_parts
        else:
            rtype, value = second, rest
        value = value.strip(_BLANKS)
        kind = rtype.upper()
        if kind == "A":
            address, used = _ip4addr(value)
            if value[used:].strip(_BLANKS):
                raise _LineError(f"invalid A value {value!r}")
            record = GenericRecord(T_A, ttl, address.to_bytes(4, "big"))
        elif kind == "TXT":
            text = value[1:-1] if len(value) >= 2 and value[0] == value[-1] == '"' else value
            data = text.encode("utf-8", "surrogateescape")
            if len(data) > MAX_TXT:
                self.note_once("txt", f"TXT text cut to {MAX_TXT} bytes, as rbldnsd does")
                data = data[:MAX_TXT]
            record = GenericRecord(T_TXT, ttl, txt_rdata(data))
        elif kind == "MX":
            fields = value.split()
            if len(fields) != 2 or not fields[0].isdigit() or int(fields[0]) > 0xFFFF:
                raise _LineError(f"invalid MX value {value!r} (PREFERENCE EXCHANGE)")
            try:
                rdata = dns.rdata.from_text(
                    dns.rdataclass.IN, dns.rdatatype.MX, f"{fields[0]} {fields[1].rstrip('.')}."
                ).to_wire()
            except Exception as exc:  # noqa: BLE001 - dnspython raises several kinds
                raise _LineError(f"invalid MX value {value!r}: {exc}") from None
            assert rdata is not None
            record = GenericRecord(T_MX, ttl, rdata)
        elif kind == "NS":
            raise _LineError("NS records are not imported: the zone has no delegations")
        else:
            raise _LineError(f"record type {rtype!r}: rbldnsd's generic dataset has A, TXT, MX")
        owner = name if name == "@" else name.rstrip(".").lower()
        return ImportedEntry(self.where, owner, record=record)


def read_dataset(
    path: Path,
    kind: DatasetKind,
    *,
    problems: list[str] | None = None,
    notes: list[str] | None = None,
    widest: WidestPrefix | None = None,
) -> Iterator[ImportedEntry]:
    """The entries of one rbldnsd dataset file, in file order.

    Bad lines are appended to ``problems`` as ``file:line: why``; without a list, a
    :class:`DatasetError` listing all of them is raised once the file is read.
    ``notes`` receives what is ignored ($SOA...) or changed (TXT cut at 254 bytes).
    Networks are bounded by ``widest`` (the zone's; default: the default bounds).
    """
    if kind not in DATASET_KINDS:
        raise ValueError(f"unknown dataset type {kind!r} (one of {', '.join(DATASET_KINDS)})")
    own = [] if problems is None else problems
    yield from _DatasetReader(path, kind, own, [] if notes is None else notes,
                              widest or WidestPrefix()).read()
    if problems is None and own:
        raise DatasetError(own)


# --------------------------------------------------------------------------- store entries

_Answer = list[Record]


class _Builder:
    """Turns dataset entries into one packed answer per store key, as rbldnsd serves them."""

    def __init__(self, config: ZoneConfig, kind: DatasetKind, problems: list[str],
                 notes: list[str]) -> None:
        self.config = config
        self.kind = kind
        self.problems = problems
        self.notes = notes
        self.answers: dict[bytes, _Answer] = {}

    def answer(self, entry: ImportedEntry) -> _Answer | None:
        """The A and TXT records of a listed entry, by the zone's answers settings."""
        config = self.config
        records: _Answer = []
        if entry.code is not None and config.publish_a:
            try:
                validate_code(entry.code)
            except CodeError as exc:
                self.problems.append(f"{entry.source}: A value {entry.code}: {exc}")
                return None
            records.append(Record(T_A, config.ttl, entry.code.packed))
        if entry.txt is not None and config.publish_txt:
            records.append(Record(T_TXT, config.ttl, txt_rdata(entry.txt)))
        if not records:
            self.notes.append(f"{entry.source}: {entry.token}: nothing to publish (no TXT, "
                              "and the zone publishes no A records); skipped")
            return None
        return records

    def add(self, key: bytes, records: _Answer) -> None:
        self.answers.setdefault(key, []).extend(records)

    def build(self, entries: Iterable[ImportedEntry]) -> dict[bytes, bytes]:
        scheme = self.config.scheme.kind
        origin = self.config.origin
        if self.kind in IP_KINDS and scheme == "name":
            self.problems.append(f"an {self.kind} dataset lists addresses; {origin} is a name "
                                 "zone (owner: name)")
            return {}
        if self.kind == "dnset" and scheme == "ip":
            self.problems.append(f"a dnset dataset lists names; {origin} is an IP zone")
            return {}
        if self.kind == "generic":
            for entry in entries:
                self.generic(entry)
        elif self.kind == "dnset":
            self.names(entries)
        elif scheme == "ip":
            self.networks(entries)
        else:
            self.hashed_addresses(entries)
        return {key: pack(records) for key, records in self.answers.items()}

    # -- IP zones --------------------------------------------------------------------------
    def networks(self, entries: Iterable[ImportedEntry]) -> None:
        listing: dict[IPNetwork, _Answer | None] = {}  # None: an exclusion
        first_at: dict[IPNetwork, str] = {}
        for entry in entries:
            network = ipaddress.ip_network(entry.token)
            answer = None if entry.excluded else self.answer(entry)
            if answer is None and not entry.excluded:
                continue
            if network not in listing:
                listing[network] = answer
                first_at[network] = entry.source
            elif self.kind != "ip4set":
                self.notes.append(f"{entry.source}: {network} repeats {first_at[network]}; "
                                  "the first wins, as in rbldnsd")
            else:
                # ip4set answers every value of a block, and an exclusion wins.
                before = listing[network]
                listing[network] = None if before is None or answer is None else before + answer
        for network, records in _carve(listing).items():
            self.add(keys.net_key(network), records)

    def hashed_addresses(self, entries: Iterable[ImportedEntry]) -> None:
        """IP datasets into a hash zone: single addresses, hashed like any token."""
        listing: dict[str, _Answer | None] = {}
        for entry in entries:
            network = ipaddress.ip_network(entry.token)
            if network.prefixlen != network.max_prefixlen:
                self.notes.append(f"{entry.source}: {network}: a hash zone lists single "
                                  "addresses; network skipped")
                continue
            answer = None if entry.excluded else self.answer(entry)
            if answer is None and not entry.excluded:
                continue
            self.merge(listing, entry.token, answer)
        self.tokens(listing)

    def merge(self, listing: dict[str, _Answer | None], token: str,
              answer: _Answer | None) -> None:
        if token not in listing:
            listing[token] = answer
        elif self.kind in ("ip4trie", "ip6trie"):
            return  # the first line wins
        else:
            before = listing[token]
            listing[token] = None if before is None or answer is None else before + answer

    def tokens(self, listing: Mapping[str, _Answer | None]) -> None:
        for token, answer in listing.items():
            if answer is None:
                continue
            try:
                owners = names.owner_names(self.config.scheme, token)
            except names.OwnerNameError as exc:
                self.problems.append(f"{token}: {exc}")
                continue
            for owner in owners:
                self.add(keys.name_key([label.lower() for label in _labels(owner)]), answer)

    # -- name and hash zones ---------------------------------------------------------------
    def names(self, entries: Iterable[ImportedEntry]) -> None:
        listing: dict[str, _Answer | None] = {}
        for entry in entries:
            if entry.wildcard:
                what = "names below" if entry.wildcard == "*." else "names below (the name " \
                    "itself is imported)"
                verb = "exclusion of" if entry.excluded else "listing of"
                self.notes.append(f"{entry.source}: {verb} {entry.wildcard}{entry.token}: the "
                                  f"store has no wildcards; {what} not imported")
                if entry.wildcard == "*.":
                    continue
            try:
                token = names.normalize_name(entry.token)
                names.owner_names(self.config.scheme, token)
            except names.OwnerNameError as exc:
                self.problems.append(f"{entry.source}: {exc}")
                continue
            answer = None if entry.excluded else self.answer(entry)
            if answer is None and not entry.excluded:
                continue
            self.merge(listing, token, answer)
        self.tokens(listing)

    # -- generic ---------------------------------------------------------------------------
    def generic(self, entry: ImportedEntry) -> None:
        assert entry.record is not None
        record = entry.record
        if entry.token == "@":
            self.notes.append(f"{entry.source}: apex records belong in the zone file's "
                              "records section; skipped")
            return
        key = self.owner_key(entry)
        if key is not None:
            ttl = self.config.ttl if record.ttl is None else record.ttl
            self.add(key, [Record(record.rtype, ttl, record.rdata)])

    def owner_key(self, entry: ImportedEntry) -> bytes | None:
        """The store key of a generic record's owner, relative to the zone."""
        if self.config.scheme.kind == "ip":
            try:
                address = names.ip_from_reversed(entry.token)
            except names.OwnerNameError:
                self.problems.append(f"{entry.source}: {entry.token!r} is not a reversed IPv4 "
                                     "or IPv6 address, and an IP zone's store holds addresses")
                return None
            return keys.net_key(ipaddress.ip_network(address))
        labels = entry.token.split(".")
        full = len(entry.token) + 1 + len(self.config.origin)
        if any(not label or len(label.encode()) > names.MAX_LABEL or not label.isascii()
               for label in labels) or full > names.MAX_NAME:
            self.problems.append(f"{entry.source}: {entry.token!r} is not a valid name "
                                 "under the zone")
            return None
        return keys.name_key([label.encode("ascii") for label in labels])


def _labels(owner: str) -> list[bytes]:
    return [label.encode("ascii") for label in owner.split(".")]


def _carve(listing: Mapping[IPNetwork, _Answer | None]) -> dict[IPNetwork, _Answer]:
    """Longest-prefix entries with exclusions as entries without (same answers everywhere).

    Every network that covers an exclusion is replaced by the pieces of it that lie
    outside its next longer entry on the way to the exclusion; pieces that are entries
    of their own are left to those entries.
    """
    plens = sorted({network.prefixlen for network in listing}, reverse=True)
    cuts: dict[IPNetwork, set[IPNetwork]] = {}
    for excluded, answer in listing.items():
        if answer is not None:
            continue
        inner = excluded
        for plen in plens:
            if plen >= excluded.prefixlen:
                continue
            outer = excluded.supernet(new_prefix=plen)
            if outer in listing:
                cuts.setdefault(outer, set()).add(inner)
                inner = outer
    result: dict[IPNetwork, _Answer] = {}
    for network, answer in listing.items():
        if answer is None:
            continue
        pieces: list[IPNetwork] = [network]
        for cut in cuts.get(network, ()):
            pieces = [
                piece
                for whole in pieces
                for piece in (_exclude(whole, cut) if _inside(cut, whole) else (whole,))
            ]
        for piece in pieces:
            if piece == network or piece not in listing:
                result[piece] = answer
    return result


def _inside(inner: IPNetwork, outer: IPNetwork) -> bool:
    return inner.version == outer.version and inner.subnet_of(outer)  # type: ignore[arg-type]


def _exclude(whole: IPNetwork, cut: IPNetwork) -> Iterator[IPNetwork]:
    return whole.address_exclude(cut)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- entries of files


def dataset_entries(
    config: ZoneConfig, paths: Iterable[Path], kind: DatasetKind
) -> tuple[dict[bytes, bytes], int, list[str]]:
    """(store entries, dataset entries read, notes); raises DatasetError on bad lines."""
    problems: list[str] = []
    notes: list[str] = []
    read: list[ImportedEntry] = []
    for path in paths:
        read.extend(read_dataset(path, kind, problems=problems, notes=notes,
                                 widest=config.widest_prefix))
    entries = _Builder(config, kind, problems, notes).build(read)
    if problems:
        raise DatasetError(problems)
    return entries, len(read), notes


# --------------------------------------------------------------------------- writing a zone


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
    if not rdata or rdata[0] != len(rdata) - 1 or len(rdata) - 1 > MAX_TXT:
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
            rtype = type_text(record.rtype)
            notes.append(f"{name}: rbldnsd's generic dataset has no {rtype} records; left out")
            continue
        lines.append(f"{name} {record.ttl} {type_text(record.rtype)} {value}")
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
    """The owner name of the address ``start`` (RFC 5782: reversed octets or nibbles)."""
    address = ipaddress.IPv4Address(start) if version == 4 else ipaddress.IPv6Address(start)
    return names.reverse_ip(address)
