"""Zone configuration: one YAML file per zone, read once into frozen objects.

zoned and zonepub both start from the same ``zones/*.yaml`` so that they agree on the
zone, its owner-name scheme and its store.  Each file is read with the positioned
readers of :mod:`zoned.yamlconf`, so every mistake of every file is reported at once,
as ``file:line:column: field: message``, in one :class:`ConfigError`; the static
``records`` section is checked by :mod:`zoned.zonerecords`, the ``source`` section (the
publisher's) by :mod:`zoned.sourceconf`, so ``zoned -t`` refuses what zonepub refuses.

The documented schema is ``zones/bl.example.net.yaml``.  Names are stored lowercase,
without the trailing dot; static record names are relative to the apex (``''`` is the
apex).
"""

from __future__ import annotations

import ipaddress
import math
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

import yaml

from listformat.codes import Band, CodeError, ReturnCodes, validate_code
from listformat.hashing import HashScheme
from listformat.names import (
    OwnerNameError,
    OwnerScheme,
    SchemeKind,
    check_hash_scheme,
    normalize_name,
    parse_network,
)
from zoned.access import QueryAcl, Transfer, TsigKey, read_keys, read_queries, read_transfer
from zoned.prefixes import DEFAULT_WIDEST_V4, DEFAULT_WIDEST_V6
from zoned.prefixes import NetworkTooWide as NetworkTooWide  # re-exported for the publisher
from zoned.prefixes import WidestPrefix as WidestPrefix  # re-exported: a ZoneConfig field
from zoned.sourceconf import SourceSettings, read_source
from zoned.yamlconf import ConfigError as ConfigError  # re-exported: load_zones raises it
from zoned.yamlconf import Problem as Problem  # re-exported: what a ConfigError lists
from zoned.yamlconf import (
    Report,
    Section,
    compose,
    construct,
    describe,
    domain_text,
    read_domain,
    read_float,
    read_int,
    read_ipv4,
    read_items,
    read_section,
    read_text,
)
from zoned.zonerecords import StaticRecord as StaticRecord  # re-exported: a ZoneConfig field
from zoned.zonerecords import printable, read_records

DEFAULT_TTL = 300
DEFAULT_NS_TTL = 3600
DEFAULT_JOURNAL_SERIALS = 100
DEFAULT_JOURNAL_BYTES = 64 * 1024 * 1024
DEFAULT_JOURNAL_AGE = 7 * 86400
_TXT_KEY = re.compile(r"[a-z0-9_]+\Z")
_KINDS: dict[str, SchemeKind] = {"ip": "ip", "name": "name", "hash": "hash"}
_HASH_KEYS = ("alg", "encoding", "length", "aliases")

Scalar = int | float | str


# --------------------------------------------------------------------------- results


@dataclass(frozen=True, slots=True)
class Soa:
    """The SOA fields that are configuration; the serial lives in the store."""

    mname: str
    rname: str  # the mailbox as a name: hostmaster@example.net -> hostmaster.example.net
    refresh: int
    retry: int
    expire: int
    minimum: int  # negative-caching TTL (RFC 2308 section 4)
    ttl: int  # TTL of the SOA record itself


@dataclass(frozen=True, slots=True)
class ListedOverride:
    """A token listed whatever the store says; ``None`` fields use the store or defaults."""

    token: str  # normalized for the zone's scheme (ip: network text, host without /32)
    code: ipaddress.IPv4Address | None
    txt: Mapping[str, Scalar] | None


@dataclass(frozen=True, slots=True)
class Journal:
    """Bounds of the IXFR journal; older serials fall back to AXFR."""

    max_serials: int
    max_bytes: int
    max_age: int  # seconds


@dataclass(frozen=True, slots=True)
class ZoneConfig:
    """One served zone, as read from its file."""

    origin: str  # the apex, lowercase, no trailing dot
    file: Path  # as given, for messages
    ttl: int  # TTL of token answers
    soa: Soa
    ns: tuple[str, ...]
    ns_ttl: int
    scheme: OwnerScheme
    codes: ReturnCodes
    publish_a: bool
    publish_txt: bool
    store: Path  # absolute, resolved
    journal: Journal
    records: tuple[StaticRecord, ...]
    listed: tuple[ListedOverride, ...]
    unlisted: tuple[str, ...]
    source: SourceSettings | None  # None: the publisher has nothing to sync
    queries: QueryAcl | None = None  # None: everyone may query
    transfer: Transfer | None = None  # None: every transfer is refused
    widest_prefix: WidestPrefix = WidestPrefix()


# ------------------------------------------------------------------ format glue

# The bands and codes come from listformat.codes, whose fields may still change; these two
# functions are the only places here that know them.  Both raise CodeError.


def make_band(low: float | None, high: float | None, code: ipaddress.IPv4Address) -> Band:
    """A band from the file's ``min`` (scores >= it) or ``max`` (scores <= it)."""
    if low is not None:
        return Band.at_least(low, code)
    assert high is not None
    return Band.at_most(high, code)


def make_codes(bands: tuple[Band, ...] | None, graded: bool) -> ReturnCodes:
    """The zone's return codes; ``bands=None`` takes the documented defaults."""
    if graded:  # graded codes carry the score itself; bands given anyway are an error
        return ReturnCodes(bands=bands or (), graded=True)
    return ReturnCodes.default() if bands is None else ReturnCodes(bands=bands, graded=False)


# ------------------------------------------------------------------ TXT data


def _read_scalar_value(report: Report, node: yaml.Node, path: str) -> Scalar | None:
    """A TXT data value: a number or printable ASCII text without ';' (the separator)."""
    if isinstance(node, yaml.ScalarNode):
        if node.tag == "tag:yaml.org,2002:int":
            value = construct(node)
            if isinstance(value, int) and not isinstance(value, bool):
                return value
        elif node.tag == "tag:yaml.org,2002:float":
            value = construct(node)
            if isinstance(value, float) and math.isfinite(value):
                return value
        elif node.tag not in ("tag:yaml.org,2002:null", "tag:yaml.org,2002:bool"):
            text = str(node.value)
            if text and printable(text) and ";" not in text:
                return text
            report.add(node, path, f"expected printable ASCII text without ';', got {text!r}")
            return None
    report.add(node, path, f"expected a number or text, got {describe(node)}")
    return None


# ------------------------------------------------------------------ the zone file

_TOP = (
    "zone",
    "ttl",
    "soa",
    "ns",
    "ns_ttl",
    "owner",
    "answers",
    "store",
    "journal",
    "records",
    "overrides",
    "source",
    "queries",
    "transfer",
    "keys",
    "widest_prefix",
)


@dataclass
class _FileResult:
    """What the cross-file checks need, also when the file has other problems."""

    file: Path
    config: ZoneConfig | None
    problems: list[Problem]
    origin: str | None = None
    origin_node: yaml.Node | None = None
    store: Path | None = None
    store_node: yaml.Node | None = None
    keys: list[tuple[TsigKey, yaml.Node, str]] = field(default_factory=list)  # node, field
    source_node: yaml.Node | None = None


class _ZoneReader:
    """Reads one composed zone file; each method reads one section."""

    def __init__(self, path: Path, report: Report) -> None:
        self.path = path
        self.report = report
        self.origin = ""
        self.scheme: OwnerScheme | None = None
        self.widest = WidestPrefix()

    def read(self, root: yaml.Node, result: _FileResult) -> ZoneConfig | None:
        top = read_section(self.report, root, "")
        if top is None:
            return None
        zone_node = top.require("zone")
        if zone_node is not None:
            origin = read_domain(self.report, zone_node, "zone")
            if origin is not None:
                self.origin = result.origin = origin
                result.origin_node = zone_node
        ttl = top.integer("ttl", DEFAULT_TTL)
        soa = self.soa(top.section("soa", required=True))
        ns = self.ns(top)
        ns_ttl = top.integer("ns_ttl", DEFAULT_NS_TTL)
        self.scheme = self.owner(top)
        codes, publish_a, publish_txt = self.answers(top)
        store = self.store(top, result)
        journal = self.journal(top.section("journal"))
        records = read_records(self.report, top.section("records"), self.origin, ttl)
        self.widest = self.widest_prefix(top.section("widest_prefix"))
        listed, unlisted = self.overrides(top.section("overrides"))
        source_node = top.take("source")
        source = None if source_node is None else read_source(
            self.report, source_node, self.path.parent, self.widest
        )
        keys_sec = top.section("keys")
        keys = read_keys(self.report, keys_sec, self.path.parent)
        if keys_sec is not None:
            result.keys = [
                (key, keys_sec.key_node(name) or keys_sec.anchor, keys_sec.field(name))
                for name, key in keys.items()
            ]
        result.source_node = source_node
        transfer = read_transfer(self.report, top.section("transfer"), keys)
        queries = read_queries(self.report, top.section("queries"))
        top.done(_TOP)
        if self.report.problems or soa is None or self.scheme is None or store is None:
            return None
        return ZoneConfig(
            origin=self.origin,
            file=self.path,
            ttl=ttl,
            soa=soa,
            ns=ns,
            ns_ttl=ns_ttl,
            scheme=self.scheme,
            codes=codes,
            publish_a=publish_a,
            publish_txt=publish_txt,
            store=store,
            journal=journal,
            records=records,
            listed=listed,
            unlisted=unlisted,
            source=source,
            queries=queries,
            transfer=transfer,
            widest_prefix=self.widest,
        )

    def soa(self, sec: Section | None) -> Soa | None:
        if sec is None:
            return None
        mname_node = sec.require("mname")
        mname = (
            None if mname_node is None else read_domain(self.report, mname_node, sec.field("mname"))
        )
        rname_node = sec.require("rname")
        rname = None if rname_node is None else self.rname(rname_node, sec.field("rname"))
        soa = Soa(
            mname=mname or "",
            rname=rname or "",
            refresh=sec.integer("refresh", 3600, minimum=1),
            retry=sec.integer("retry", 600, minimum=1),
            expire=sec.integer("expire", 604800, minimum=1),
            minimum=sec.integer("minimum", 60),
            ttl=sec.integer("ttl", 3600),
        )
        sec.done(("mname", "rname", "refresh", "retry", "expire", "minimum", "ttl"))
        return soa if mname and rname else None

    def rname(self, node: yaml.Node, path: str) -> str | None:
        """The responsible mailbox; ``user@host`` is written as the name ``user.host``."""
        text = read_text(self.report, node, path, "a mailbox")
        if text is None:
            return None
        if "@" in text:
            local, _, host = text.rpartition("@")
            if not local or "." in local or "\\" in local:
                # A dot in the local part would need the \. escape (RFC 1035 8); one
                # mailbox that needs none is simpler for every consumer of this name.
                self.report.add(node, path, f"use a mailbox without '.' before '@', got {text!r}")
                return None
            text = f"{local}.{host}"
        try:
            return domain_text(text)
        except ValueError as exc:
            self.report.add(node, path, f"{exc}, got {text!r}")
            return None

    def ns(self, top: Section) -> tuple[str, ...]:
        node = top.require("ns")
        if node is None:
            return ()
        names: list[str] = []
        for item, path in read_items(self.report, node, "ns", single=True):
            name = read_domain(self.report, item, path)
            if name is None:
                continue
            if name in names:
                self.report.add(item, path, f"duplicate name server {name!r}")
            else:
                names.append(name)
        if isinstance(node, yaml.SequenceNode) and not node.value:
            self.report.add(node, "ns", "at least one name server is required")
        return tuple(names)

    def owner(self, top: Section) -> OwnerScheme | None:
        node = top.require("owner")
        if node is None:
            return None
        if isinstance(node, yaml.ScalarNode):  # ``owner: ip`` is short for {scheme: ip}
            kind = self.kind(node, "owner")
            if kind == "hash":
                return self.hashed(None, node)
            return None if kind is None else OwnerScheme(kind=kind)
        sec = read_section(self.report, node, "owner", top.key_node("owner"))
        if sec is None:
            return None
        kind_node = sec.require("scheme")
        kind = None if kind_node is None else self.kind(kind_node, sec.field("scheme"))
        scheme = None
        if kind == "hash":
            scheme = self.hashed(sec, sec.anchor)
        elif kind is not None:
            for key in _HASH_KEYS:
                if sec.take(key) is not None:
                    self.report.add(sec.key_node(key), sec.field(key), "only for scheme hash")
            scheme = OwnerScheme(kind=kind)
        sec.done(("scheme", *_HASH_KEYS))
        return scheme

    def kind(self, node: yaml.Node, path: str) -> SchemeKind | None:
        text = read_text(self.report, node, path, "ip, name or hash")
        if text is None:
            return None
        kind = _KINDS.get(text)
        if kind is None:
            self.report.add(node, path, f"expected ip, name or hash, got {text!r}")
        return kind

    def hashed(self, sec: Section | None, anchor: yaml.Node) -> OwnerScheme | None:
        """A hash scheme and its aliases: one token published under several hashes."""
        main = self.hash_scheme(sec, anchor, "owner")
        aliases: list[HashScheme] = []
        alias_node = None if sec is None else sec.take("aliases")
        if sec is not None and alias_node is not None:
            for item, path in read_items(self.report, alias_node, sec.field("aliases")):
                alias_sec = read_section(self.report, item, path)
                if alias_sec is None:
                    continue
                alias = self.hash_scheme(alias_sec, item, path)
                alias_sec.done(("alg", "encoding", "length"))
                if alias is not None and (alias == main or alias in aliases):
                    self.report.add(item, path, "repeats a hash scheme already published")
                elif alias is not None:
                    aliases.append(alias)
        return None if main is None else OwnerScheme("hash", hash=main, aliases=tuple(aliases))

    def hash_scheme(self, sec: Section | None, anchor: yaml.Node, path: str) -> HashScheme | None:
        """Defaults blake2/base32/whole digest; listformat.names says what DNS can carry."""
        scheme = HashScheme()
        if sec is not None:
            before = len(self.report.problems)
            length = scheme.length
            length_node = sec.take("length")
            if length_node is not None and length_node.tag != "tag:yaml.org,2002:null":
                length = read_int(self.report, length_node, sec.field("length"), 1, 63)
            scheme = HashScheme(
                alg=sec.text("alg", scheme.alg),
                encoding=sec.text("encoding", scheme.encoding),
                length=length,
            )
            if len(self.report.problems) > before:
                return None  # checking a half-read scheme would only repeat those problems
        problems = check_hash_scheme(scheme)
        for message in problems:
            self.report.add(anchor, path, message)
        return None if problems else scheme

    def answers(self, top: Section) -> tuple[ReturnCodes, bool, bool]:
        sec = top.section("answers")
        if sec is None:
            return make_codes(None, False), True, True
        publish_a = sec.boolean("a", True)
        publish_txt = sec.boolean("txt", True)
        graded = sec.boolean("graded", False)
        bands: tuple[Band, ...] | None = None
        bands_node = sec.take("bands")
        if bands_node is not None:
            bands = tuple(self.bands(bands_node, sec.field("bands")))
        if not publish_a and not publish_txt:
            self.report.add(sec.anchor, "answers", "a and txt are both false: nothing to publish")
        sec.done(("a", "txt", "graded", "bands"))
        try:
            codes = make_codes(bands, graded)
        except CodeError as exc:
            self.report.add(bands_node or sec.anchor, sec.field("bands"), str(exc))
            codes = make_codes(None, False)
        return codes, publish_a, publish_txt

    def bands(self, node: yaml.Node, path: str) -> Iterator[Band]:
        items = read_items(self.report, node, path)
        if isinstance(node, yaml.SequenceNode) and not items:
            self.report.add(node, path, "at least one band is required (or leave out bands)")
        for item, item_path in items:
            sec = read_section(self.report, item, item_path)
            if sec is None:
                continue
            min_node, max_node = sec.take("min"), sec.take("max")
            code_node = sec.require("code")
            sec.done(("min", "max", "code"))
            if (min_node is None) == (max_node is None):
                self.report.add(item, item_path, "set exactly one of min and max")
                continue
            low = high = None
            if min_node is not None:
                low = read_float(self.report, min_node, sec.field("min"), -1.0, 1.0)
            if max_node is not None:
                high = read_float(self.report, max_node, sec.field("max"), -1.0, 1.0)
            code = None if code_node is None else self.code(code_node, sec.field("code"))
            if (low is None and high is None) or code is None:
                continue
            try:
                yield make_band(low, high, code)
            except CodeError as exc:
                self.report.add(item, item_path, str(exc))

    def code(self, node: yaml.Node, path: str) -> ipaddress.IPv4Address | None:
        address = read_ipv4(self.report, node, path)
        if address is None:
            return None
        try:
            validate_code(address)
        except CodeError as exc:
            self.report.add(node, path, str(exc))
            return None
        return address

    def store(self, top: Section, result: _FileResult) -> Path | None:
        """The LMDB directory; relative paths start at the zone file's directory."""
        node = top.take("store")
        if node is None:
            if not self.origin:
                return None  # the default needs the zone name, which is already reported
            relative = f"../var/{self.origin}"
        else:
            text = read_text(self.report, node, "store", "a directory path")
            if not text:
                if text == "":
                    self.report.add(node, "store", "expected a directory path, got ''")
                return None
            relative = text
        try:
            store = (self.path.parent / Path(relative).expanduser()).resolve()
        except (OSError, RuntimeError, ValueError) as exc:  # ~nobody, a NUL byte, a loop
            self.report.add(node or result.origin_node, "store", f"unusable path: {exc}")
            return None
        result.store = store
        result.store_node = node or result.origin_node  # a default store comes from the zone
        return store

    def journal(self, sec: Section | None) -> Journal:
        if sec is None:
            return Journal(DEFAULT_JOURNAL_SERIALS, DEFAULT_JOURNAL_BYTES, DEFAULT_JOURNAL_AGE)
        journal = Journal(
            max_serials=sec.integer("max_serials", DEFAULT_JOURNAL_SERIALS, minimum=1),
            max_bytes=sec.integer("max_bytes", DEFAULT_JOURNAL_BYTES, minimum=1, maximum=2**63),
            max_age=sec.integer("max_age", DEFAULT_JOURNAL_AGE, minimum=1),
        )
        sec.done(("max_serials", "max_bytes", "max_age"))
        return journal

    def widest_prefix(self, sec: Section | None) -> WidestPrefix:
        if sec is None:
            return WidestPrefix()
        widest = WidestPrefix(
            v4=sec.integer("v4", DEFAULT_WIDEST_V4, minimum=1, maximum=32),
            v6=sec.integer("v6", DEFAULT_WIDEST_V6, minimum=1, maximum=128),
        )
        sec.done(("v4", "v6"))
        return widest

    # ---------------------------------------------------------- overrides

    def overrides(self, sec: Section | None) -> tuple[tuple[ListedOverride, ...], tuple[str, ...]]:
        if sec is None:
            return (), ()
        seen: dict[str, yaml.Node] = {}
        listed: list[ListedOverride] = []
        node = sec.take("listed")
        items = [] if node is None else read_items(self.report, node, sec.field("listed"))
        for item, path in items:
            override = self.listed(item, path)
            if override is not None and self.first(seen, override.token, item, path):
                listed.append(override)
        unlisted: list[str] = []
        node = sec.take("unlisted")
        items = [] if node is None else read_items(self.report, node, sec.field("unlisted"))
        for item, path in items:
            token = self.token(item, path)
            if token is not None and self.first(seen, token, item, path):
                unlisted.append(token)
        sec.done(("listed", "unlisted"))
        return tuple(listed), tuple(unlisted)

    def first(self, seen: dict[str, yaml.Node], token: str, node: yaml.Node, path: str) -> bool:
        if token in seen:
            where = self.report.where(seen[token])
            self.report.add(node, path, f"token {token!r} already at {where}")
            return False
        seen[token] = node
        return True

    def listed(self, node: yaml.Node, path: str) -> ListedOverride | None:
        if isinstance(node, yaml.ScalarNode):  # a bare token: listed with the defaults
            token = self.token(node, path)
            return None if token is None else ListedOverride(token, None, None)
        sec = read_section(self.report, node, path)
        if sec is None:
            return None
        token_node = sec.require("token")
        token = None if token_node is None else self.token(token_node, sec.field("token"))
        code_node = sec.take("code")
        code = None if code_node is None else self.code(code_node, sec.field("code"))
        txt_sec = sec.section("txt")
        txt = None if txt_sec is None else self.txt_data(txt_sec)
        sec.done(("token", "code", "txt"))
        if token is None:
            return None
        return ListedOverride(token, code, txt)

    def txt_data(self, sec: Section) -> Mapping[str, Scalar]:
        data: dict[str, Scalar] = {}
        for key in sec.keys():
            node = sec.take(key)
            assert node is not None
            path = sec.field(key)
            if not _TXT_KEY.match(key) or key == "v":
                message = "'v' is the format version" if key == "v" else "keys are a-z, 0-9, '_'"
                self.report.add(sec.key_node(key), path, message)
                continue
            value = _read_scalar_value(self.report, node, path)
            if value is not None:
                data[key] = value
        return MappingProxyType(data)

    def token(self, node: yaml.Node, path: str) -> str | None:
        """A token in the form the scheme keys it by, so duplicates compare equal."""
        text = read_text(self.report, node, path, "a token")
        if text is None:
            return None
        if not text:
            self.report.add(node, path, "empty token")
            return None
        kind = self.scheme.kind if self.scheme else None
        try:
            if kind == "ip":
                network = parse_network(text)
                self.widest.check(network)
                if network.prefixlen == network.max_prefixlen:
                    return str(network.network_address)
                return str(network)
            if kind == "name":
                return normalize_name(text)
        except (OwnerNameError, ValueError) as exc:
            self.report.add(node, path, str(exc))
            return None
        return text


# ------------------------------------------------------------------ loading


def _read_file(path: Path) -> _FileResult:
    report = Report(path)
    result = _FileResult(path, None, report.problems)
    root = compose(report, path, "empty file; expected a mapping starting with 'zone:'")
    if root is not None:
        result.config = _ZoneReader(path, report).read(root, result)
    return result


def load_zone_file(path: Path) -> ZoneConfig:
    """Read one zone file, raising :class:`ConfigError` with all of its problems."""
    result = _read_file(path)
    if result.config is None:
        raise ConfigError(result.problems or [Problem(path, 0, 0, "", "invalid zone file")])
    return result.config


def zone_files(directory: Path) -> list[Path]:
    """The zone files of a directory, in the order zones are served and reported."""
    return sorted(
        p
        for p in directory.iterdir()
        if p.suffix in (".yaml", ".yml") and not p.name.startswith(".") and p.is_file()
    )


def load_zones(directory: Path) -> tuple[ZoneConfig, ...]:
    """Read every zone file of ``directory``; one ConfigError holds all their problems.

    Zones may neither repeat nor nest: a name inside two served zones would make the
    answer depend on which store is asked, so one is rejected, naming the other.
    """
    try:
        paths = zone_files(directory)
    except OSError as exc:
        problem = Problem(directory, 0, 0, "", f"cannot list: {exc.strerror or exc}")
        raise ConfigError([problem]) from None
    if not paths:
        raise ConfigError([Problem(directory, 0, 0, "", "no zone files (*.yaml, *.yml)")])
    results = [_read_file(path) for path in paths]
    problems = [p for r in results for p in r.problems]
    problems.extend(_cross_file_problems(results))
    problems.extend(_key_problems(results))
    problems.extend(_bucket_problems(results))
    if problems:
        raise ConfigError(problems)
    configs = tuple(r.config for r in results if r.config is not None)
    assert len(configs) == len(results)
    return configs


def _where(result: _FileResult, node: yaml.Node | None) -> str:
    if node is None:
        return str(result.file)
    return f"{result.file}:{node.start_mark.line + 1}:{node.start_mark.column + 1}"


def _cross_file_problems(results: Sequence[_FileResult]) -> Iterator[Problem]:
    """Zones that repeat or nest, and zones sharing a store, reported at the later file.

    Each file is compared with the earlier files that passed, so a conflict is reported
    once rather than again against every file that repeats it.
    """
    accepted: list[_FileResult] = []
    for result in results:
        conflicts = False
        for other in accepted if result.origin is not None else ():
            assert result.origin is not None and other.origin is not None
            there = _where(other, other.origin_node)
            if result.origin == other.origin:
                message = f"zone {result.origin!r} is already defined at {there}"
            elif result.origin.endswith("." + other.origin):
                message = f"zone lies inside zone {other.origin!r} of {there}; zones may not nest"
            elif other.origin.endswith("." + result.origin):
                message = f"zone contains zone {other.origin!r} of {there}; zones may not nest"
            else:
                continue
            conflicts = True
            yield _problem(result, result.origin_node, "zone", message)
        for other in accepted if result.store is not None and not conflicts else ():
            if result.store == other.store:
                conflicts = True
                there = _where(other, other.store_node)
                message = f"{str(result.store)!r} is also the store of {there}"
                yield _problem(result, result.store_node, "store", message)
        if result.origin is not None and not conflicts:
            accepted.append(result)


def _key_problems(results: Sequence[_FileResult]) -> Iterator[Problem]:
    """One TSIG key name, one key: at every definition of a name that has two.

    The server keeps one keyring for all zones, by key name (RFC 8945 keys are named, not
    scoped to a zone), so a second secret would silently lose: that zone's secondaries
    would get BADSIG on every transfer.  The same secret written in several files is fine.
    """
    by_name: dict[str, list[tuple[_FileResult, TsigKey, yaml.Node, str]]] = {}
    for result in results:
        for key, node, path in result.keys:
            by_name.setdefault(key.name, []).append((result, key, node, path))
    for name, entries in by_name.items():
        for result, key, node, path in entries:
            mine = (key.algorithm, key.secret)
            other = next((e for e in entries if (e[1].algorithm, e[1].secret) != mine), None)
            if other is not None:
                there = _where(other[0], other[2])
                message = (
                    f"TSIG key {name!r} has another secret or algorithm at {there}; "
                    "a key name must mean one key in every zone file"
                )
                yield _problem(result, node, path, message)


def _bucket_problems(results: Sequence[_FileResult]) -> Iterator[Problem]:
    """Zones reading the same buckets-layout keys must agree on each bucket's window.

    The windows say what the counters in Redis mean (``zonepub learn --zone`` writes them
    by its zone's windows); one bucket name with two windows on the same server and
    prefix would make one zone's counts the other's garbage.  Weights may differ.
    """
    buckets = [
        (r, r.config.source)
        for r in results
        if r.config is not None and r.config.source is not None
        and r.config.source.layout == "buckets"
    ]
    for result, source in buckets:
        for other, theirs in buckets:
            if other is result or theirs.prefix != source.prefix:
                continue
            if not set(theirs.urls) & set(source.urls):
                continue
            windows = {b.name: b.window for b in theirs.buckets}
            for bucket in source.buckets:
                window = windows.get(bucket.name, bucket.window)
                if window != bucket.window:
                    node = _child(result.source_node, "buckets") or result.source_node
                    there = _where(other, _child(other.source_node, "buckets"))
                    message = (
                        f"bucket {bucket.name!r} has window {window} in {there}, which reads "
                        f"the same Redis keys (prefix {source.prefix!r}); one bucket, one window"
                    )
                    yield _problem(result, node, "source.buckets", message)


def _child(node: yaml.Node | None, key: str) -> yaml.Node | None:
    """The value node of ``key`` in the mapping ``node``, for positions."""
    if isinstance(node, yaml.MappingNode):
        for key_node, value in node.value:
            if isinstance(key_node, yaml.ScalarNode) and key_node.value == key:
                assert isinstance(value, yaml.Node)
                return value
    return None


def _problem(result: _FileResult, node: yaml.Node | None, path: str, message: str) -> Problem:
    line, column = (node.start_mark.line + 1, node.start_mark.column + 1) if node else (0, 0)
    return Problem(result.file, line, column, path, message)


def find_zone(directory: Path, name: str) -> ZoneConfig | None:
    """The zone called ``name`` (any case, trailing dot or not) among ``directory``'s files."""
    wanted = name.lower().rstrip(".")
    return next((zone for zone in load_zones(directory) if zone.origin == wanted), None)
