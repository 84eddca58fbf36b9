"""``repq``: look reputation up in repzone zones, and show exactly what was asked.

Three forms::

    repq [options] ZONE SELECTOR VALUE       one value, one zone
    repq [options] check-message FILE        every selector of --config over a message
    repq name [scheme options] ZONE TOKEN    the owner name of a token, without a query

Examples::

    repq --server 127.0.0.1:5353 bl.example.net ip 192.0.2.1
    repq --server 127.0.0.1:5353 --scheme hash hash.example.net ip 192.0.2.1
    repq --server 127.0.0.1:5353 -c zones/ dom.example.net dkim example.com
    repq --config zones/samples/repq.yaml check-message message.eml --ip 192.0.2.1
    repq name --scheme hash --alg blake2 --encoding base32 --length 32 hash.example.net 192.0.2.1
    dig @127.0.0.1 -p 5353 TXT "$(repq name hash.example.net 192.0.2.1 --scheme hash)"

The one-value form prints the name queried, the raw TXT answer and the score, computed
with Rspamd's defaults (reject score 15, lower_bound 10; ``--reject-score`` and
``--lower-bound`` change them).  SELECTOR is a rule kind (ip, sender, dkim, spf, url,
generic) or an ip component (asn, country).  VALUE is what Rspamd starts from: an
address (masked as Rspamd does, IPv6 to its /64), a DKIM signing domain (``example.com``
is taken as a passing signature; ``example.com.a|r|u`` is a token as is), a URL or host
(its eTLD+1), an SPF record text (or its 32-character hash), a generic value as is.

The zone's owner-name scheme comes from ``--scheme ip|name|hash`` (with ``--alg``,
``--encoding``, ``--length`` for hash: default blake2, base32, 32), or from the zone
files of ``-c DIR`` (the zone file of ZONE in that directory), or else by default:
``ip`` for the ip selector, ``hash`` (blake2/base32/32) for generic values (which may
hold characters a name cannot), ``name`` for the rest.

Servers: ``--server HOST:PORT`` (repeatable), else the configuration's ``servers``,
else the system resolver.  ``--json`` prints one JSON object instead of text.

Exit status: 0 when every lookup was answered (listed or not), 1 when some lookup failed
(timeout, SERVFAIL, REFUSED, malformed or newer-format TXT: the output says which), 2 for
usage, configuration and message errors.

Configuration (``--config FILE``, YAML; zones/samples/repq.yaml is a documented
example)::

    servers: ["127.0.0.1:5353"]   # optional; --server overrides; absent: system resolver
    timeout: 2                    # seconds per attempt (default 2)
    retries: 2                    # further attempts after a timeout (default 2)
    concurrency: 64               # queries in flight (default 64)
    trusted: ["10.0.0.0/8"]       # trusted relays: the sending IP is the first hop outside
    zones: ../zones               # optional: read owner schemes from these zone files
                                  # (relative to this file)
    reject_score: 15              # defaults for every selector (Rspamd's)
    lower_bound: 10
    asn:                          # optional: find the sender's ASN and country, as
      ip4: origin.asn.example.net #   Rspamd's asn module does, in a zone of Team Cymru
      ip6: origin6.asn.example.net  # TXT records ("64500 | 192.0.2.0/24 | DE | ...")
    selectors:                    # required: one entry per rule
      - name: ip                  # required, unique; also the kind when it is one
        kind: ip                  # ip | sender | dkim | spf | url | generic
        zone: bl.example.net      # required: the zone of the main component
        scheme: ip                # ip | name | hash, or {scheme: hash, alg, encoding, length};
                                  # default: from `zones`, else by kind (see above)
        components:               # ip only: zones of the other components
          asn: {zone: asn.example.net, scheme: name}
          country: {zone: cc.example.net, scheme: name}
        weights: {ip: 1.0, asn: 0.4, country: 0.01}   # Rspamd's defaults
        symbol: SENDER_REP        # default: Rspamd's symbol for the kind
        split_symbols: true       # _SPAM / _HAM (Rspamd: ip and spf)
        ipv4_mask: 32
        ipv6_mask: 64
        ipnet: false              # true, or [v4 prefix, v6 prefix]: a network token
        inbound: true
        outbound: false           # Rspamd's ip rule skips outbound mail
        lower_bound: 10
        reject_score: 15
      - name: subject
        kind: generic
        expression: "header('Subject').lower"
        delimiter: ":"
        zone: gen.example.net
        scheme: {scheme: hash, alg: blake2, encoding: base32, length: 32}
      - {name: url, zone: dom.example.net, max_urls: 10, url_weights: message}

Unknown keys are errors, so that a typo cannot silently fall back to a default; every
problem is reported at once, with its place (``selectors[1].zone: required``).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from client.asn import AsnZoneError, AsnZones
from client.client import Client, ClientConfig, parse_server
from client.errors import ClientError
from client.facts import MessageError
from client.plan import owner_name
from client.result import Result, SelectorResult
from client.selectorconfig import (
    KIND_ALIASES,
    KINDS,
    URL_WEIGHTS,
    PlanError,
    SelectorConfig,
    ZoneRef,
)
from listformat.hashing import HashScheme
from listformat.names import OwnerNameError, OwnerScheme, owner_names, parse_network
from listformat.scoring import LOWER_BOUND, REJECT_SCORE

COMPONENTS = ("asn", "country", "ipnet")
SELECTOR_CHOICES = (*KINDS, *KIND_ALIASES, *COMPONENTS)
DEFAULT_HASH = HashScheme(alg="blake2", encoding="base32", length=32)
EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2

_TOP_KEYS = frozenset(
    {"servers", "timeout", "retries", "concurrency", "trusted", "zones", "reject_score",
     "lower_bound", "selectors", "asn"}
)
_SELECTOR_KEYS = frozenset(
    {"name", "kind", "zone", "scheme", "components", "weights", "symbol", "split_symbols",
     "ipv4_mask", "ipv6_mask", "ipnet", "inbound", "outbound", "lower_bound", "reject_score",
     "expression", "delimiter", "max_urls", "url_weights"}
)
_SCHEME_KEYS = frozenset({"scheme", "alg", "encoding", "length"})


class UsageError(ClientError):
    """The command line, the configuration or the input cannot be used."""


# ------------------------------------------------------------------ owner schemes


def make_scheme(
    kind: str, alg: str | None = None, encoding: str | None = None, length: int | None = None
) -> OwnerScheme:
    """An owner scheme from the command line's or the configuration's words."""
    if kind == "ip" or kind == "name":
        if alg or encoding or length:
            raise UsageError(f"--alg, --encoding and --length go with the hash scheme, not {kind}")
        return OwnerScheme("ip" if kind == "ip" else "name")
    if kind == "hash":
        hashing = HashScheme(
            alg=alg or DEFAULT_HASH.alg,
            encoding=encoding or DEFAULT_HASH.encoding,
            length=length if length is not None else DEFAULT_HASH.length,
        )
        return OwnerScheme("hash", hashing)
    raise UsageError(f"unknown scheme {kind!r}: ip, name or hash")


def default_scheme(kind: str, component: str | None) -> OwnerScheme:
    """The scheme guessed when none is given (see the module docstring)."""
    if kind == "ip" and component in (None, "ip", "ipnet"):
        return OwnerScheme("ip")
    if kind == "generic":
        return OwnerScheme("hash", DEFAULT_HASH)
    return OwnerScheme("name")


def zone_schemes(directory: Path) -> dict[str, OwnerScheme]:
    """The owner scheme of every zone defined in a zone-file directory.

    The zone files belong to zoned, which owns their format; it is imported here, in
    the command only, so that the client library itself never depends on the server.
    """
    try:
        from zoned.config import ConfigError, load_zones
    except ImportError as exc:  # pragma: no cover - the package ships both
        raise UsageError(f"-c needs the zoned package to read zone files: {exc}") from None
    try:
        return {zone.origin: zone.scheme for zone in load_zones(directory)}
    except ConfigError as exc:
        raise UsageError(f"{directory}: {exc}") from None


def scheme_from_dir(directory: Path, zone: str) -> OwnerScheme:
    """The scheme of ``zone`` as its zone file in ``directory`` defines it."""
    schemes = zone_schemes(directory)
    apex = zone.rstrip(".").lower()
    if apex not in schemes:
        known = ", ".join(sorted(schemes)) or "none"
        raise UsageError(f"{directory}: no zone file for {apex} (zones: {known})")
    return schemes[apex]


# ------------------------------------------------------------------ configuration


@dataclass
class _Problems:
    source: str
    items: list[str] = field(default_factory=list)

    def add(self, where: str, message: str) -> None:
        self.items.append(f"{self.source}: {where}: {message}")


def _get(
    problems: _Problems, node: Mapping[str, Any], key: str, where: str, kinds: tuple[type, ...],
    default: Any = None,
) -> Any:
    if key not in node:
        return default
    value = node[key]
    if isinstance(value, bool) and bool not in kinds:
        problems.add(f"{where}.{key}", f"expected {'/'.join(k.__name__ for k in kinds)}")
        return default
    if not isinstance(value, kinds):
        problems.add(f"{where}.{key}", f"expected {'/'.join(k.__name__ for k in kinds)}, "
                     f"got {type(value).__name__}")
        return default
    return value


def _unknown(problems: _Problems, node: Mapping[str, Any], allowed: frozenset[str],
             where: str) -> None:
    for key in node:
        if key not in allowed:
            problems.add(f"{where}.{key}" if where else str(key),
                         f"unknown key (one of {', '.join(sorted(allowed))})")


def _scheme_node(problems: _Problems, raw: Any, where: str) -> OwnerScheme | None:
    if isinstance(raw, str):
        try:
            return make_scheme(raw)
        except UsageError as exc:
            problems.add(where, str(exc))
            return None
    if isinstance(raw, Mapping):
        _unknown(problems, raw, _SCHEME_KEYS, where)
        kind = _get(problems, raw, "scheme", where, (str,))
        if kind is None:
            problems.add(f"{where}.scheme", "required: ip, name or hash")
            return None
        try:
            return make_scheme(
                kind, _get(problems, raw, "alg", where, (str,)),
                _get(problems, raw, "encoding", where, (str,)),
                _get(problems, raw, "length", where, (int,)),
            )
        except UsageError as exc:
            problems.add(where, str(exc))
            return None
    problems.add(where, "expected ip, name, hash or a mapping {scheme, alg, encoding, length}")
    return None


@dataclass(frozen=True)
class RepqConfig:
    """What ``--config`` holds: the client configuration and where zone files live."""

    client: ClientConfig
    zones: Path | None


def load_config(path: Path) -> RepqConfig:
    """Read a repq configuration; UsageError lists every problem with its place."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise UsageError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except yaml.YAMLError as exc:
        raise UsageError(f"{path}: not YAML: {exc}") from None
    problems = _Problems(str(path))
    if not isinstance(raw, Mapping):
        raise UsageError(f"{path}: expected a mapping with a 'selectors' list")
    _unknown(problems, raw, _TOP_KEYS, "")
    zones_raw = _get(problems, raw, "zones", "", (str,))
    zones = (path.parent / zones_raw).resolve() if zones_raw else None
    schemes: dict[str, OwnerScheme] = {}
    if zones is not None:
        try:
            schemes = zone_schemes(zones)
        except UsageError as exc:
            problems.add("zones", str(exc))
    defaults = {
        "reject_score": _get(problems, raw, "reject_score", "", (int, float), REJECT_SCORE),
        "lower_bound": _get(problems, raw, "lower_bound", "", (int, float), LOWER_BOUND),
    }
    selectors: list[SelectorConfig] = []
    items = _get(problems, raw, "selectors", "", (list,))
    if not items:
        problems.add("selectors", "required: a non-empty list")
    for index, item in enumerate(items or []):
        where = f"selectors[{index}]"
        if not isinstance(item, Mapping):
            problems.add(where, "expected a mapping")
            continue
        config = _selector(problems, item, where, schemes, defaults)
        if config is not None:
            selectors.append(config)
    servers_raw = _get(problems, raw, "servers", "", (list,))
    servers: list[tuple[str, int]] | None = None
    if servers_raw is not None:
        servers = []
        for index, spec in enumerate(servers_raw):
            try:
                servers.append(parse_server(str(spec)))
            except ValueError as exc:
                problems.add(f"servers[{index}]", str(exc))
    trusted = _get(problems, raw, "trusted", "", (list,), [])
    asn_zones = _asn_zones(problems, _get(problems, raw, "asn", "", (dict,)))
    client: ClientConfig | None = None
    if not problems.items:
        try:
            client = ClientConfig(
                selectors=tuple(selectors),
                servers=tuple(servers) if servers else None,
                timeout=float(_get(problems, raw, "timeout", "", (int, float), 2.0)),
                retries=int(_get(problems, raw, "retries", "", (int,), 2)),
                concurrency=int(_get(problems, raw, "concurrency", "", (int,), 64)),
                trusted=tuple(str(t) for t in trusted),
                asn=asn_zones,
            )
        except ValueError as exc:
            problems.add("client", str(exc))
    names = [s.name for s in selectors]
    for name in sorted({n for n in names if names.count(n) > 1}):
        problems.add("selectors", f"name {name!r} is used twice")
    if problems.items or client is None:
        raise UsageError("\n".join(problems.items))
    return RepqConfig(client, zones)


def _asn_zones(problems: _Problems, node: Mapping[str, Any] | None) -> AsnZones | None:
    """``asn: {ip4: ZONE, ip6: ZONE}``: where the sender's ASN and country are found."""
    if node is None:
        return None
    _unknown(problems, node, frozenset({"ip4", "ip6"}), "asn")
    ip4 = _get(problems, node, "ip4", "asn", (str,))
    ip6 = _get(problems, node, "ip6", "asn", (str,))
    if not ip4:
        problems.add("asn.ip4", "required: the zone asked for IPv4 senders")
        return None
    try:
        return AsnZones(ip4, ip6)
    except AsnZoneError as exc:
        problems.add("asn", str(exc))
        return None


def _selector(
    problems: _Problems, item: Mapping[str, Any], where: str,
    schemes: Mapping[str, OwnerScheme], defaults: Mapping[str, Any],
) -> SelectorConfig | None:
    before = len(problems.items)
    _unknown(problems, item, _SELECTOR_KEYS, where)
    name = _get(problems, item, "name", where, (str,))
    if not name:
        problems.add(f"{where}.name", "required")
        return None
    kind = _get(problems, item, "kind", where, (str,), name if name in SELECTOR_CHOICES else None)
    if kind is None:
        problems.add(f"{where}.kind", f"required (the name {name!r} is not a kind)")
        return None
    kind = KIND_ALIASES.get(kind, kind)
    zone = _get(problems, item, "zone", where, (str,))
    if not zone:
        problems.add(f"{where}.zone", "required")
        return None

    def scheme_for(raw: Any, zone_name: str, component: str | None, at: str) -> OwnerScheme | None:
        if raw is not None:
            return _scheme_node(problems, raw, at)
        return schemes.get(zone_name.rstrip(".").lower()) or default_scheme(kind, component)

    scheme = scheme_for(item.get("scheme"), zone, None, f"{where}.scheme")
    components: dict[str, ZoneRef] = {}
    for comp, node in (_get(problems, item, "components", where, (dict,), {}) or {}).items():
        at = f"{where}.components.{comp}"
        if not isinstance(node, Mapping) or not isinstance(node.get("zone"), str):
            problems.add(at, "expected {zone: ..., scheme: ...}")
            continue
        _unknown(problems, node, frozenset({"zone", "scheme"}), at)
        comp_scheme = scheme_for(node.get("scheme"), node["zone"], str(comp), f"{at}.scheme")
        if comp_scheme is not None:
            try:
                components[str(comp)] = ZoneRef(node["zone"], comp_scheme)
            except PlanError as exc:
                problems.add(at, str(exc))
    weights = _get(problems, item, "weights", where, (dict,), {}) or {}
    for comp, weight in weights.items():
        if isinstance(weight, bool) or not isinstance(weight, int | float):
            problems.add(f"{where}.weights.{comp}", "expected a number")
    ipnet = _get(problems, item, "ipnet", where, (bool, list), False)
    if isinstance(ipnet, list):
        if len(ipnet) != 2 or not all(isinstance(p, int) for p in ipnet):
            problems.add(f"{where}.ipnet", "expected true/false or [v4 prefix, v6 prefix]")
            ipnet = False
        else:
            ipnet = (ipnet[0], ipnet[1])
    url_weights = _get(problems, item, "url_weights", where, (str,), "message")
    if url_weights not in URL_WEIGHTS:
        problems.add(f"{where}.url_weights", f"one of {', '.join(URL_WEIGHTS)}")
    if scheme is None or len(problems.items) > before:
        return None
    try:
        return SelectorConfig(
            name=name,
            kind=kind,
            zone=zone,
            scheme=scheme,
            expression=_get(problems, item, "expression", where, (str,)),
            lower_bound=_get(problems, item, "lower_bound", where, (int, float),
                             defaults["lower_bound"]),
            reject_score=_get(problems, item, "reject_score", where, (int, float),
                              defaults["reject_score"]),
            weights={str(k): float(v) for k, v in weights.items()},
            symbol=_get(problems, item, "symbol", where, (str,)),
            split_symbols=_get(problems, item, "split_symbols", where, (bool,)),
            components=components,
            ipv4_mask=_get(problems, item, "ipv4_mask", where, (int,), 32),
            ipv6_mask=_get(problems, item, "ipv6_mask", where, (int,), 64),
            ipnet=ipnet,
            inbound=_get(problems, item, "inbound", where, (bool,), True),
            outbound=_get(problems, item, "outbound", where, (bool,)),
            max_urls=_get(problems, item, "max_urls", where, (int,), 10),
            url_weights=url_weights,
            delimiter=_get(problems, item, "delimiter", where, (str,), ":"),
        )
    except PlanError as exc:
        problems.add(where, str(exc))
        return None


# ------------------------------------------------------------------ command line

_COMMON_VALUE_OPTIONS = ("--server", "--timeout", "--retries", "--config")
_VALUE_OPTIONS = frozenset(
    {*_COMMON_VALUE_OPTIONS, "--reject-score", "--lower-bound", "--scheme", "--alg",
     "--encoding", "--length", "-c", "--zones", "--ip", "--helo", "--hostname", "--from",
     "--mail-from", "--rcpt", "--user", "--asn", "--country", "--spf-record", "--spf-result",
     "--trusted"}
)
MODES = ("check-message", "name")


def _mode(argv: Sequence[str]) -> tuple[str, list[str]]:
    """The form used (``lookup``, ``check-message`` or ``name``) and the rest of argv.

    The form is the first positional word; options may come before it, so options that
    take a value are skipped with their value.
    """
    skip = False
    for index, arg in enumerate(argv):
        if skip:
            skip = False
            continue
        if arg == "--":
            break
        if arg.startswith("-") and len(arg) > 1:
            skip = arg in _VALUE_OPTIONS
            continue
        if arg in MODES:
            return arg, [*argv[:index], *argv[index + 1 :]]
        break
    return "lookup", list(argv)


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--server", action="append", default=[], metavar="HOST:PORT",
                        help="DNS server to ask (repeatable; default: the system resolver)")
    parser.add_argument("--timeout", type=float, default=None,
                        help="seconds per attempt (default 2)")
    parser.add_argument("--retries", type=int, default=None,
                        help="further attempts after a timeout (default 2)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")


def _scheme_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--scheme", choices=("ip", "name", "hash"),
                        help="the zone's owner-name scheme")
    parser.add_argument("--alg", help="hash algorithm (default blake2)")
    parser.add_argument("--encoding", help="hash encoding: hex, base32, rbase32, bleach "
                        "(default base32)")
    parser.add_argument("--length", type=int, help="cut the encoded hash (default 32)")
    parser.add_argument("-c", "--zones", type=Path, metavar="DIR",
                        help="read the zone's scheme from the zone files in DIR")


def _lookup_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="repq",
        description="Look a value up in a repzone zone and score it as Rspamd would. "
        "Other forms: 'repq check-message FILE', 'repq name ZONE TOKEN'.",
    )
    _common(parser)
    _scheme_options(parser)
    parser.add_argument("--reject-score", type=float, default=REJECT_SCORE,
                        help="Rspamd's reject score (default 15)")
    parser.add_argument("--lower-bound", type=float, default=LOWER_BOUND,
                        help="messages needed before a token scores (default 10)")
    parser.add_argument("zone", metavar="ZONE")
    parser.add_argument("selector", metavar="SELECTOR", choices=SELECTOR_CHOICES,
                        help=f"one of {', '.join(SELECTOR_CHOICES)}")
    parser.add_argument("value", metavar="VALUE")
    return parser


def _check_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="repq check-message",
        description="Run every selector of the configuration over an RFC 5322 message.",
    )
    _common(parser)
    parser.add_argument("--config", type=Path, required=True, metavar="FILE",
                        help="YAML configuration (see zones/samples/repq.yaml)")
    facts = parser.add_argument_group("facts (override what the message says)")
    facts.add_argument("--ip", help="the sending IP address")
    facts.add_argument("--helo")
    facts.add_argument("--hostname", help="the sender's reverse-DNS name")
    facts.add_argument("--from", "--mail-from", dest="from_smtp", help="envelope sender")
    facts.add_argument("--rcpt", action="append", default=[], help="envelope recipient")
    facts.add_argument("--user", help="authenticated user (makes the message outbound)")
    facts.add_argument("--asn")
    facts.add_argument("--country")
    facts.add_argument("--spf-result")
    facts.add_argument("--spf-record", help="the sender domain's SPF record text")
    facts.add_argument("--trusted", action="append", default=[], metavar="NET",
                       help="trusted relay address or network (repeatable)")
    parser.add_argument("file", metavar="FILE", type=Path, help="the message ('-': stdin)")
    return parser


def _name_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="repq name",
        description="Print the owner name of a token under a zone, without a query.",
    )
    _scheme_options(parser)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("zone", metavar="ZONE")
    parser.add_argument("token", metavar="TOKEN")
    return parser


def _scheme_from_args(args: argparse.Namespace, kind: str, component: str | None) -> OwnerScheme:
    if args.scheme and args.zones:
        raise UsageError("give either --scheme or -c, not both")
    if args.zones:
        return scheme_from_dir(args.zones, args.zone)
    if args.scheme:
        return make_scheme(args.scheme, args.alg, args.encoding, args.length)
    if args.alg or args.encoding or args.length is not None:
        return make_scheme("hash", args.alg, args.encoding, args.length)
    return default_scheme(kind, component)


def _servers(args: argparse.Namespace) -> list[tuple[str, int]] | None:
    try:
        return [parse_server(spec) for spec in args.server] or None
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def _status(result: Result | SelectorResult) -> int:
    return EXIT_FAILED if result.errors else EXIT_OK


def run_lookup(args: argparse.Namespace) -> int:
    """``repq ZONE SELECTOR VALUE``."""
    selector = KIND_ALIASES.get(args.selector, args.selector)
    component = selector if selector in COMPONENTS else None
    kind = "ip" if component else selector
    scheme = _scheme_from_args(args, kind, component)
    zone = ZoneRef(args.zone, scheme)
    config = SelectorConfig(
        name=args.selector,
        kind=kind,
        zone=args.zone,
        scheme=scheme,
        expression="ip" if kind == "generic" else None,  # unused: the value is the token
        lower_bound=args.lower_bound,
        reject_score=args.reject_score,
        components={component: zone} if component else {},
    )
    with Client(
        [config], _servers(args), timeout=args.timeout or 2.0,
        retries=2 if args.retries is None else args.retries,
    ) as client:
        result = client.lookup(config.name, args.value, component=component)
    if args.json:
        print(json.dumps(result.to_json(), indent=2))
    else:
        print(result.explain())
    return _status(result)


def run_check(args: argparse.Namespace) -> int:
    """``repq check-message FILE``."""
    loaded = load_config(args.config)
    config = loaded.client
    servers = _servers(args)
    trusted = (*config.trusted, *args.trusted)
    try:
        data = sys.stdin.buffer.read() if str(args.file) == "-" else args.file.read_bytes()
    except OSError as exc:
        raise UsageError(f"{args.file}: cannot read: {exc.strerror or exc}") from None
    given: dict[str, Any] = {
        key: value
        for key in ("ip", "helo", "hostname", "from_smtp", "user", "asn", "country",
                    "spf_result", "spf_record")
        if (value := getattr(args, key)) is not None
    }
    if args.rcpt:
        given["rcpts"] = tuple(args.rcpt)
    with Client(
        config.selectors,
        servers or config.servers,
        timeout=args.timeout or config.timeout,
        retries=config.retries if args.retries is None else args.retries,
        concurrency=config.concurrency,
        trusted=trusted,
        asn=config.asn,
    ) as client:
        try:
            result = client.check_message(data, **given)
        except MessageError as exc:
            raise UsageError(f"{args.file}: {exc}") from None
    if args.json:
        print(json.dumps(result.to_json(), indent=2))
    else:
        print(result.explain())
        symbols = ", ".join(f"{name}({score:+.4f})" for name, score in result.symbols.items())
        print(f"symbols: {symbols or 'none'}")
    return _status(result)


def run_name(args: argparse.Namespace) -> int:
    """``repq name ZONE TOKEN``: every name the token is published under."""
    given = args.scheme or args.zones or args.alg or args.encoding or args.length is not None
    scheme = _scheme_from_args(args, "generic", None) if given else _guess_scheme(args.token)
    try:
        ref = ZoneRef(args.zone, scheme)
        names = [owner_name(ref, args.token)]
        if scheme.kind == "hash":  # the aliases too: each is a name dig can ask
            names = [f"{owner}.{ref.zone}" for owner in owner_names(scheme, args.token)]
    except (OwnerNameError, PlanError, ValueError) as exc:
        raise UsageError(f"{args.token!r}: {exc}") from None
    if args.json:
        print(json.dumps({"zone": ref.zone, "token": args.token, "scheme": scheme.kind,
                          "names": names}))
    else:
        for name in names:
            print(name)
    return EXIT_OK


def _guess_scheme(token: str) -> OwnerScheme:
    """Without scheme options: ip for addresses and networks, name otherwise."""
    try:
        parse_network(token)
    except ValueError:
        return OwnerScheme("name")
    return OwnerScheme("ip")


def main(argv: Sequence[str] | None = None) -> int:
    """The ``repq`` console script."""
    mode, rest = _mode(list(sys.argv[1:] if argv is None else argv))
    try:
        if mode == "check-message":
            return run_check(_check_parser().parse_args(rest))
        if mode == "name":
            return run_name(_name_parser().parse_args(rest))
        return run_lookup(_lookup_parser().parse_args(rest))
    except (ClientError, ValueError) as exc:  # ValueError: the list formats' own errors
        print(f"repq: {exc}", file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
