"""The I/O-free lookup plan: facts -> tokens -> owner names; answers -> scores.

Everything a reputation check decides lives here, so that the sync and async faces in
:mod:`client.client` are the same short loop around it (dnspython's ``_Resolution``
pattern) and so that it can be tested without a network::

    lookup = plan.start(facts)              # tokens of every selector, their query names
    answers = [ask(q) for q in lookup.queries]   # the face's only job: DNS I/O
    result = lookup.result(answers)         # scores, symbols, errors, explain()

**Selectors** (:class:`SelectorConfig`) follow Rspamd's reputation plugin
(docs/rspamd-layout.md): ``ip`` (alias ``sender``; components ip, asn, country and
whatever else :func:`client.selectors.ip_tokens` yields), ``dkim``, ``spf``, ``url`` and
``generic`` (a selector expression).  Each component is published in a zone of its own
(a zone's ``source.selector`` is one of ip, asn, country, ...), so a selector names one
zone for its main component and optional zones for the others (``components``); a token
whose component has no zone is shown but not queried.

**Scoring one answer** (:func:`score_record`): the TXT record is decoded
(:mod:`client.txt`) and the score recomputed from the published numbers, so that a site
with another reject score or lower bound gets its own figures rather than the
publisher's: ``n`` with ``v<bucket>`` values -> Rspamd's tanh formula
(:func:`client.scoring.rspamd_score`); else ``s``/``h``/``p`` -> the counters formula;
else ``b<bucket>.s|h|j|m`` -> the buckets formula; else the published ``sc``.  Unknown
keys are ignored; a record of a newer format version is reported as ``newer_version``,
never misread.

**Combining tokens** as Rspamd does per selector:

- ip: the weighted sum of the components' scores (ip 1.0, asn 0.4, country 0.01), not
  clamped (Rspamd's symbol multiplier can reach 1.41);
- dkim: the sum of the *accepted* signatures' scores only (tokens ``<domain>.a``; the
  ``.r`` and ``.u`` tokens are looked up and shown but do not count), clamped to [-1, 1];
- url: each domain's score weighted by its URL count relative to the most frequent
  domain's (the token's ``weight``), added, not clamped;
- spf and generic: weight 1.0, added.

**Symbols**: Rspamd's defaults (``SENDER_REP``, ``DKIM_SCORE``, ``URL_SCORE``,
``SPF_REP``; a generic rule's own name); with ``split_symbols`` (Rspamd's default for ip
and spf) the symbol is ``<symbol>_SPAM`` for a score >= 0 and ``<symbol>_HAM`` below.
Like Rspamd, a symbol is only inserted when ``|score| > 0.001``, except dkim, which
Rspamd inserts whenever it looked a signature up.

**Failures** (timeout, servfail, refused, error, malformed, newer_version) score 0 and
are listed in the result's ``errors``; nothing here raises for a bad answer.

**Wire format.** The faces send queries built by :func:`query_wire` and read replies
with :func:`read_reply`: a fast path for the common reply (TXT answers owned by the
question name, an SOA in authority) that falls back to dnspython's full parser for
anything else, so both give the same :class:`Reply` (tests prove it).  Building and
parsing with dnspython costs about 100 us a lookup on the benchmark machine, several
times the rest of a lookup.
"""

from __future__ import annotations

import dataclasses
import math
import re
import struct
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Final
from urllib.parse import urlsplit

import dns.flags
import dns.message
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.ANY.SOA
import dns.rdtypes.ANY.TXT

from client import txt
from client.cache import negative_ttl
from client.facts import DkimResult, Facts, Url
from client.names import (
    MAX_NAME,
    OwnerNameError,
    OwnerScheme,
    check_hash_scheme,
    owner_names,
    parse_network,
    reverse_ip,
)
from client.scoring import (
    IP_WEIGHTS,
    LOWER_BOUND,
    REJECT_SCORE,
    BucketCounts,
    buckets_score,
    clamp,
    counters_score,
    rspamd_score,
)
from client.selectorlang import Expression, compile_expression
from client.selectors import (
    Token,
    dkim_tokens,
    generic_tokens,
    ip_tokens,
    rule_applies,
    spf_tokens,
    url_tokens,
)

KINDS: Final = ("ip", "dkim", "spf", "url", "generic")
KIND_ALIASES: Final = MappingProxyType({"sender": "ip"})
# Rspamd's symbol per selector (reputation.lua ``*_selector.config.symbol``).
DEFAULT_SYMBOLS: Final = MappingProxyType(
    {"ip": "SENDER_REP", "dkim": "DKIM_SCORE", "url": "URL_SCORE", "spf": "SPF_REP"}
)
# Rspamd's ``split_symbols`` defaults: on for ip and spf only.
DEFAULT_SPLIT: Final = frozenset({"ip", "spf"})
# Rspamd inserts a reputation symbol only when |score| > 1e-3 (dkim excepted).
INSERT_THRESHOLD: Final = 1e-3
MAX_URLS: Final = 10
#: How the url selector weighs a domain: ``message`` divides its URL count by the most
#: frequent domain's (Rspamd 2018, the tokens' ``weight``); ``answers`` divides it by the
#: largest message count ``n`` among the answers (Rspamd's current code).
URL_WEIGHTS: Final = ("message", "answers")

STATUSES: Final = (
    "hit",
    "nxdomain",
    "nodata",
    "timeout",
    "servfail",
    "refused",
    "error",
    "malformed",
    "newer_version",
)
#: Statuses that mean the list could not be read: the token scores 0 and the result
#: lists them in ``errors``.  nxdomain and nodata are answers ("not listed"), not errors.
FAILURES: Final = frozenset(
    {"timeout", "servfail", "refused", "error", "malformed", "newer_version"}
)

_SPF_HASH = re.compile(r"[ybndrfg8ejkmcpqxot1uwisza345h769]{32}")
_DKIM_TOKEN = re.compile(r".+\.[aru]")
_V_KEY = re.compile(r"v([a-z0-9_]{1,16})")
_B_KEY = re.compile(r"b([a-z0-9_]{1,16})\.([shjm])")


class PlanError(ValueError):
    """The selector configuration cannot be planned (unknown kind, missing zone, ...)."""


# ------------------------------------------------------------------ configuration


@dataclass(frozen=True)
class ZoneRef:
    """Where one component's tokens are published: a zone apex and its owner scheme."""

    zone: str
    scheme: OwnerScheme

    def __post_init__(self) -> None:
        object.__setattr__(self, "zone", _apex(self.zone))
        _check_scheme(self.scheme)


def _apex(zone: str) -> str:
    apex = zone.strip().rstrip(".").lower()
    if not apex or ".." in apex:
        raise PlanError(f"zone {zone!r} is not a domain name")
    return apex


def _check_scheme(scheme: OwnerScheme) -> None:
    if scheme.kind == "hash":
        for hashing in (scheme.hash, *scheme.aliases):
            if hashing is None:
                raise PlanError("hash scheme without hash settings")
            problems = check_hash_scheme(hashing)
            if problems:
                raise PlanError("; ".join(problems))


def _empty_zones() -> Mapping[str, ZoneRef]:
    return MappingProxyType({})


def _empty_weights() -> Mapping[str, float]:
    return MappingProxyType({})


@dataclass(frozen=True)
class SelectorConfig:
    """One reputation rule: what to derive from a message and which zone to ask.

    ``zone``/``scheme`` serve the selector's main component (the ip address for ``ip``,
    the token itself for the others); ``components`` adds zones for the ip selector's
    other components (``asn``, ``country``, ...).  ``weights`` overrides the
    per-component weights the tokens carry.  The scoring parameters default to Rspamd's
    (reject score 15, lower bound 10).
    """

    name: str
    kind: str
    zone: str
    scheme: OwnerScheme
    expression: str | None = None
    lower_bound: float = LOWER_BOUND
    reject_score: float = REJECT_SCORE
    weights: Mapping[str, float] = field(default_factory=_empty_weights)
    symbol: str | None = None
    split_symbols: bool | None = None
    components: Mapping[str, ZoneRef] = field(default_factory=_empty_zones)
    ipv4_mask: int = 32
    ipv6_mask: int = 64
    ipnet: bool | tuple[int, int] = False
    inbound: bool = True
    outbound: bool | None = None
    max_urls: int = MAX_URLS
    url_weights: str = "message"
    delimiter: str = ":"
    # Every component's zone, the main one included, built once: a check asks per token.
    _zones: Mapping[str, ZoneRef] = field(
        init=False, repr=False, compare=False, default_factory=_empty_zones
    )

    def __post_init__(self) -> None:
        kind = KIND_ALIASES.get(self.kind, self.kind)
        if kind not in KINDS:
            raise PlanError(
                f"selector {self.name!r}: unknown kind {self.kind!r} "
                f"(one of {', '.join(KINDS)}, or sender)"
            )
        object.__setattr__(self, "kind", kind)
        object.__setattr__(self, "zone", _apex(self.zone))
        _check_scheme(self.scheme)
        if not self.name:
            raise PlanError("a selector needs a name")
        if kind == "generic" and not self.expression:
            raise PlanError(f"selector {self.name!r}: a generic selector needs an expression")
        if not self.reject_score > 0:
            raise PlanError(f"selector {self.name!r}: reject_score must be positive")
        if not 1 <= self.ipv4_mask <= 32 or not 1 <= self.ipv6_mask <= 128:
            raise PlanError(f"selector {self.name!r}: masks out of range")
        if self.max_urls < 1:
            raise PlanError(f"selector {self.name!r}: max_urls must be at least 1")
        if self.url_weights not in URL_WEIGHTS:
            raise PlanError(
                f"selector {self.name!r}: url_weights must be one of {', '.join(URL_WEIGHTS)}"
            )
        if self.outbound is None:
            # Rspamd: the ip rule is inbound-only, every other rule checks both ways.
            object.__setattr__(self, "outbound", kind != "ip")
        object.__setattr__(self, "weights", MappingProxyType(dict(self.weights)))
        zones = {kind: ZoneRef(self.zone, self.scheme), **self.components}
        object.__setattr__(self, "components", MappingProxyType(dict(self.components)))
        object.__setattr__(self, "_zones", MappingProxyType(zones))

    @property
    def main_component(self) -> str:
        """The component ``zone`` serves: the kind itself (``ip`` for the ip selector)."""
        return self.kind

    @property
    def symbol_name(self) -> str:
        """The Rspamd symbol this rule inserts (before the _SPAM/_HAM split)."""
        return self.symbol or DEFAULT_SYMBOLS.get(self.kind) or self.name.upper()

    @property
    def split(self) -> bool:
        """Whether the symbol is split into _SPAM and _HAM, as Rspamd's split_symbols."""
        if self.split_symbols is not None:
            return self.split_symbols
        return self.kind in DEFAULT_SPLIT

    def zone_for(self, component: str) -> ZoneRef | None:
        """The zone publishing ``component``'s tokens, or None when none is configured."""
        return self._zones.get(component)

    def weight_for(self, token: Token) -> float:
        """The token's multiplier: the configured weight of its component, else its own."""
        return self.weights.get(token.component, token.weight)


# ------------------------------------------------------------------ queries and answers


@dataclass(frozen=True)
class Query:
    """One DNS question the plan needs answered, and the token it is for."""

    token: Token
    qname: str  # absolute name without the trailing dot, lowercase
    rdtype: str = "TXT"


@dataclass(frozen=True)
class Answer:
    """What the list said to one query (or why it said nothing).

    ``text`` is the raw TXT data (joined strings) that was decoded, ``ttl`` how long the
    answer may be cached (None: not at all), ``detail`` a human explanation of a failure.
    """

    query: Query
    status: str
    record: txt.TxtRecord | None = None
    detail: str = ""
    text: str | None = None
    ttl: int | None = None
    cached: bool = False

    @property
    def failed(self) -> bool:
        """True when the list could not be read (see :data:`FAILURES`)."""
        return self.status in FAILURES


def failure(query: Query, status: str, detail: str = "") -> Answer:
    """An answer for a query that got no usable reply (timeout, network error...)."""
    if status not in FAILURES:
        raise ValueError(f"{status!r} is not a failure status")
    return Answer(query, status, detail=detail)


# ------------------------------------------------------------------ scoring


@dataclass(frozen=True)
class Scored:
    """One token's score and how it was reached, for explain()."""

    score: float
    method: str  # rspamd | counters | buckets | published | none
    note: str


def score_record(record: txt.TxtRecord, config: SelectorConfig) -> Scored:
    """Score one decoded TXT record with the selector's parameters.

    Raises ValueError when the numbers cannot be scored (negative counts): the caller
    reports the answer as malformed.
    """
    fields = record.fields
    lower_bound, reject = config.lower_bound, config.reject_score
    n = record.number("n")
    values = [
        float(value)
        for key, value in sorted(fields.items())
        if _V_KEY.fullmatch(key) and isinstance(value, int | float)
    ]
    if n is not None and values:
        score = rspamd_score(n, values, lower_bound=lower_bound, reject_score=reject)
        mean = math.fsum(values) / len(values)
        note = (
            f"rspamd: n={n:g}, mean={mean:g} of {len(values)} bucket(s), "
            f"reject {reject:g}, lower_bound {lower_bound:g}"
        )
        return Scored(score, "rspamd", note)
    counts = {key: record.number(key) for key in ("s", "h", "p")}
    if any(value is not None for value in counts.values()):
        s, h, p = ((counts[key] or 0.0) for key in ("s", "h", "p"))
        score = counters_score(s, h, p, lower_bound=lower_bound)
        return Scored(
            score, "counters", f"counters: s={s:g} h={h:g} p={p:g}, lower_bound {lower_bound:g}"
        )
    buckets: dict[str, dict[str, float]] = {}
    for key, value in fields.items():
        match = _B_KEY.fullmatch(key)
        if match and isinstance(value, int | float):
            buckets.setdefault(match[1], {})[match[2]] = float(value)
    if buckets:
        parts = [
            BucketCounts(
                spam=b.get("s", 0.0), ham=b.get("h", 0.0), junk=b.get("j", 0.0),
                mult=b.get("m", 1.0),
            )
            for _, b in sorted(buckets.items())
        ]
        score = buckets_score(parts, lower_bound=lower_bound)
        shown = ", ".join(
            f"{name}: s={b.get('s', 0):g} h={b.get('h', 0):g} j={b.get('j', 0):g} "
            f"m={b.get('m', 1):g}"
            for name, b in sorted(buckets.items())
        )
        return Scored(score, "buckets", f"buckets: {shown}, lower_bound {lower_bound:g}")
    published = record.number("sc")
    if published is not None:
        return Scored(clamp(published), "published", f"published sc={published:g}")
    return Scored(0.0, "none", "no score data in the record")


@dataclass(frozen=True)
class ComponentScore:
    """One token of a selector: where it was looked up, what came back, what it counts.

    ``status`` is the answer's status, or ``unconfigured`` (no zone for the component)
    or ``invalid`` (the token cannot be an owner name).  ``counted`` is False for tokens
    that are shown but do not enter the total (dkim's rejected and unknown signatures).
    """

    token: Token
    query: Query | None
    answer: Answer | None
    status: str
    method: str
    score: float
    weight: float
    counted: bool
    detail: str = ""

    @property
    def contribution(self) -> float:
        """What this token adds to the selector's total."""
        return self.score * self.weight if self.counted else 0.0


@dataclass
class SelectorResult:
    """A selector's outcome: its tokens, names, raw answers, component scores and total."""

    name: str
    kind: str
    zone: str
    tokens: list[Token]
    queries: list[Query]
    answers: list[Answer]
    components: list[ComponentScore]
    score: float
    symbol: str | None
    errors: list[str]
    config: SelectorConfig | None = field(default=None, repr=False, compare=False)

    def explain(self) -> str:
        """Why the selector scored what it did, one line per fact."""
        lines: list[str] = []
        head = f"{self.name} ({self.kind}, zone {self.zone})"
        if self.config is not None:
            head += (
                f": reject score {self.config.reject_score:g}, "
                f"lower_bound {self.config.lower_bound:g}"
            )
        lines.append(head)
        if not self.components:
            lines.append("  no tokens (nothing in the message for this selector)")
        for comp in self.components:
            token = comp.token
            lines.append(f"  {token.component} {token.value}  (weight {comp.weight:g})")
            if comp.query is None:
                lines.append(f"    not queried: {comp.detail}")
                continue
            lines.append(f"    query   {comp.query.qname}. {comp.query.rdtype}")
            answer = comp.answer
            if answer is not None:
                shown = answer.status
                if answer.text is not None:
                    shown += f' "{answer.text}"'
                if answer.detail:
                    shown += f" ({answer.detail})"
                if answer.ttl is not None:
                    shown += f", ttl {answer.ttl}"
                if answer.cached:
                    shown += ", from cache"
                lines.append(f"    answer  {shown}")
            if comp.status == "hit":
                lines.append(f"    score   {comp.score:+.4f} ({comp.detail})")
            elif comp.status in FAILURES:
                lines.append("    score   +0.0000 (the lookup failed: scored 0)")
            else:
                lines.append("    score   +0.0000 (not listed)")
            if not comp.counted:
                lines.append("    not counted (only accepted DKIM signatures, .a, score)")
            else:
                lines.append(
                    f"    adds    {comp.score:+.4f} x {comp.weight:g} = {comp.contribution:+.4f}"
                )
        verdict = f" -> {self.symbol}" if self.symbol else " (no symbol)"
        lines.append(f"  total {self.score:+.4f}{verdict}")
        for error in self.errors:
            lines.append(f"  error: {error}")
        return "\n".join(lines)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict of everything explain() shows."""
        return {
            "name": self.name,
            "kind": self.kind,
            "zone": self.zone,
            "score": self.score,
            "symbol": self.symbol,
            "errors": list(self.errors),
            "components": [_component_json(comp) for comp in self.components],
        }


def _component_json(comp: ComponentScore) -> dict[str, Any]:
    answer = comp.answer
    return {
        "component": comp.token.component,
        "token": comp.token.value,
        "weight": comp.weight,
        "qname": comp.query.qname if comp.query else None,
        "status": comp.status,
        "answer": answer.text if answer else None,
        "fields": dict(answer.record.fields) if answer and answer.record else None,
        "ttl": answer.ttl if answer else None,
        "cached": answer.cached if answer else False,
        "detail": comp.detail,
        "method": comp.method,
        "score": comp.score,
        "counted": comp.counted,
        "contribution": comp.contribution,
    }


@dataclass
class Result:
    """The outcome of one check: one :class:`SelectorResult` per configured selector."""

    selectors: list[SelectorResult]

    def __getitem__(self, name: str) -> SelectorResult:
        for selector in self.selectors:
            if selector.name == name:
                return selector
        raise KeyError(name)

    @property
    def symbols(self) -> dict[str, float]:
        """The symbols Rspamd would insert, with their multipliers."""
        return {s.symbol: s.score for s in self.selectors if s.symbol is not None}

    @property
    def errors(self) -> list[str]:
        """Every selector's errors, prefixed with its name."""
        return [f"{s.name}: {error}" for s in self.selectors for error in s.errors]

    def explain(self) -> str:
        """Every selector's explanation, one block each."""
        return "\n".join(s.explain() for s in self.selectors)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict: the selectors, the symbols and the errors."""
        return {
            "selectors": [s.to_json() for s in self.selectors],
            "symbols": self.symbols,
            "errors": self.errors,
        }


# ------------------------------------------------------------------ the plan


def owner_name(ref: ZoneRef, value: str) -> str:
    """The absolute query name of a token under a zone (no trailing dot).

    An IP zone answers for every address inside a listed network, so a network token
    (an IPv6 sender's /64, as Rspamd counts it) is asked by its network address; hashed
    zones hash the token text itself, as the publisher does.  Of a hashed zone's alias
    schemes only the first is asked: every alias answers the same.
    """
    if ref.scheme.kind == "ip" and "/" in value:
        relative = reverse_ip(parse_network(value).network_address)
    else:
        relative = owner_names(ref.scheme, value)[0]
    name = f"{relative}.{ref.zone}".lower()
    if len(name) > MAX_NAME:
        raise OwnerNameError(f"{name[:40]}...: the name is {len(name)} bytes, over {MAX_NAME}")
    return name


def derive_tokens(
    config: SelectorConfig, facts: Facts, expression: Expression | None = None
) -> list[Token]:
    """The tokens Rspamd's rule of this kind derives from the facts.

    ``expression`` is the generic rule's compiled expression (LookupPlan compiles each
    once); the inbound/outbound rule applies as in Rspamd's ``is_rule_applicable``.
    """
    outbound = bool(config.outbound)
    if config.kind == "ip":
        return ip_tokens(
            facts, ipv4_mask=config.ipv4_mask, ipv6_mask=config.ipv6_mask,
            inbound=config.inbound, outbound=outbound, ipnet=config.ipnet,
        )
    if not rule_applies(facts, inbound=config.inbound, outbound=outbound):
        return []
    if config.kind == "dkim":
        return dkim_tokens(facts)
    if config.kind == "spf":
        return spf_tokens(facts)
    if config.kind == "url":
        return url_tokens(facts, max_urls=config.max_urls)
    assert config.expression is not None  # checked by SelectorConfig
    return generic_tokens(
        expression or config.expression, facts, delimiter=config.delimiter
    )


def value_tokens(config: SelectorConfig, value: str, component: str | None = None) -> list[Token]:
    """Tokens for one value given on a command line (``repq ZONE SELECTOR VALUE``).

    A value already in token form (``example.com.a``, a 32-character SPF hash, an ASN
    with ``component='asn'``) is used as is; otherwise the rule's own derivation runs on
    facts holding just that value, so that masks and eTLD+1 apply as for a message.
    """
    kind = config.kind
    if component is not None and component != config.main_component:
        weight = IP_WEIGHTS.get(component, 1.0) if kind == "ip" else 1.0
        return [Token(kind, component, value, weight)]
    if kind == "ip":
        if "/" in value:
            return [Token(kind, "ip", str(parse_network(value)), IP_WEIGHTS["ip"])]
        parse_network(value)  # an OwnerNameError (a ValueError) names a non-address
        # The value was asked for by name: no inbound/outbound rule applies to it.
        tokens = ip_tokens(
            Facts(ip=value), ipv4_mask=config.ipv4_mask, ipv6_mask=config.ipv6_mask,
            inbound=True, outbound=True,
        )
        return [t for t in tokens if t.component == "ip"]
    if kind == "dkim":
        if _DKIM_TOKEN.fullmatch(value):
            weight = 1.0 if value.endswith(".a") else 0.0
            return [Token(kind, "dkim", value.lower(), weight)]
        return dkim_tokens(Facts(dkim=(DkimResult(value, "pass"),)))
    if kind == "spf":
        if _SPF_HASH.fullmatch(value):
            return [Token(kind, "spf", value, 1.0)]
        return spf_tokens(Facts(spf_result="pass", spf_record=value))
    if kind == "url":
        host = urlsplit(value).hostname if "://" in value else value
        url = value if "://" in value else f"http://{value}/"
        return url_tokens(Facts(urls=(Url(host or value, url, frozenset()),)))
    return [Token(kind, "generic", value, 1.0)]


@dataclass(frozen=True)
class _Entry:
    token: Token
    query: Query | None
    status: str  # "query", "unconfigured" or "invalid"
    detail: str = ""


@dataclass(frozen=True)
class _Planned:
    config: SelectorConfig
    tokens: tuple[Token, ...]
    entries: tuple[_Entry, ...]
    error: str | None = None


def _plan_selector(config: SelectorConfig, tokens: Sequence[Token]) -> _Planned:
    entries: list[_Entry] = []
    for token in tokens:
        ref = config.zone_for(token.component)
        if ref is None:
            entries.append(
                _Entry(token, None, "unconfigured", f"no zone configured for {token.component}")
            )
            continue
        try:
            qname = owner_name(ref, token.value)
        except (OwnerNameError, ValueError) as exc:
            entries.append(_Entry(token, None, "invalid", str(exc)))
            continue
        entries.append(_Entry(token, Query(token, qname), "query"))
    return _Planned(config, tuple(tokens), tuple(entries))


class Lookup:
    """One check in progress: each selector's tokens and names, waiting for answers.

    ``queries`` holds each distinct name once, however many tokens share it; the faces
    answer them in any order and hand the answers to :meth:`result`.
    """

    def __init__(self, planned: Sequence[_Planned]) -> None:
        self._planned = tuple(planned)
        seen: dict[tuple[str, str], Query] = {}
        for item in self._planned:
            for entry in item.entries:
                if entry.query is not None:
                    seen.setdefault((entry.query.qname, entry.query.rdtype), entry.query)
        self.queries: list[Query] = list(seen.values())

    def result(self, answers: Iterable[Answer]) -> Result:
        """Score the answers; a query without an answer counts as an ``error``."""
        by_name = {(a.query.qname, a.query.rdtype): a for a in answers}
        return Result([_selector_result(item, by_name) for item in self._planned])


def _selector_result(
    item: _Planned, by_name: Mapping[tuple[str, str], Answer]
) -> SelectorResult:
    config = item.config
    components: list[ComponentScore] = []
    errors: list[str] = [item.error] if item.error else []
    for entry in item.entries:
        token = entry.token
        weight = config.weight_for(token)
        counted = config.kind != "dkim" or token.value.endswith(".a")
        if entry.query is None:
            components.append(
                ComponentScore(token, None, None, entry.status, "none", 0.0, weight, counted,
                               entry.detail)
            )
            if entry.status == "invalid":
                errors.append(f"{token.component} {token.value}: {entry.detail}")
            continue
        query = entry.query
        answer = by_name.get((query.qname, query.rdtype))
        if answer is None:
            answer = failure(query, "error", "no answer was obtained")
        elif answer.query != query:
            answer = dataclasses.replace(answer, query=query)
        status, method, score, detail = answer.status, "none", 0.0, answer.detail
        if answer.status == "hit" and answer.record is not None:
            try:
                scored = score_record(answer.record, config)
            except ValueError as exc:
                status, detail = "malformed", f"cannot score: {exc}"
            else:
                method, score, detail = scored.method, scored.score, scored.note
        elif answer.status in ("nxdomain", "nodata"):
            detail = "not listed"
        if status in FAILURES:
            errors.append(
                f"{token.component} {token.value}: {status} ({query.qname})"
                + (f": {detail}" if detail else "")
            )
        components.append(
            ComponentScore(token, query, answer, status, method, score, weight, counted, detail)
        )
    if config.kind == "url" and config.url_weights == "answers":
        components = _weigh_by_answers(config, components)
    total = math.fsum(c.contribution for c in components)
    if config.kind == "dkim":
        total = max(-1.0, min(1.0, total))
    return SelectorResult(
        name=config.name,
        kind=config.kind,
        zone=config.zone,
        tokens=list(item.tokens),
        queries=[c.query for c in components if c.query is not None],
        answers=[c.answer for c in components if c.answer is not None],
        components=components,
        score=total,
        symbol=_symbol(config, total, len(item.tokens)),
        errors=errors,
        config=config,
    )


def _weigh_by_answers(
    config: SelectorConfig, components: list[ComponentScore]
) -> list[ComponentScore]:
    """Rspamd's current url weights: a domain's URL count over the largest ``n`` found.

    With no ``n`` among the answers Rspamd scores nothing (``mhits`` stays 0).
    """
    counts = [
        c.answer.record.number("n") for c in components
        if c.answer is not None and c.answer.record is not None and c.status == "hit"
    ]
    mhits = max((n for n in counts if n is not None), default=0.0)
    weighed = []
    for comp in components:
        weight = comp.token.hits / mhits if mhits > 0 else 0.0
        weighed.append(dataclasses.replace(comp, weight=config.weights.get("url", weight)))
    return weighed


def _symbol(config: SelectorConfig, score: float, tokens: int) -> str | None:
    """The symbol Rspamd would insert, or None (see the module docstring)."""
    if config.kind == "dkim":
        inserted = tokens > 0
    else:
        inserted = abs(score) > INSERT_THRESHOLD
    if not inserted:
        return None
    if not config.split:
        return config.symbol_name
    return config.symbol_name + ("_SPAM" if score >= 0 else "_HAM")


class LookupPlan:
    """The selectors of a client, ready to turn facts into queries and answers into results."""

    def __init__(self, selectors: Sequence[SelectorConfig]) -> None:
        names = [s.name for s in selectors]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise PlanError(f"selector names must be unique: {', '.join(duplicates)}")
        self._expressions: dict[str, Expression] = {}
        for config in selectors:
            if config.kind == "generic":
                assert config.expression is not None
                try:
                    self._expressions[config.name] = compile_expression(config.expression)
                except ValueError as exc:  # SelectorError names the position
                    raise PlanError(f"selector {config.name!r}: {exc}") from exc
        self.selectors: tuple[SelectorConfig, ...] = tuple(selectors)

    def selector(self, name: str) -> SelectorConfig:
        """The configured selector called ``name``."""
        for config in self.selectors:
            if config.name == name:
                return config
        known = ", ".join(s.name for s in self.selectors)
        raise KeyError(f"no selector {name!r}; configured: {known}")

    def start(self, facts: Facts) -> Lookup:
        """Derive every selector's tokens and names from ``facts``.

        A selector whose derivation fails (a fact it cannot read) gets no tokens and an
        error in its result, so one broken rule never stops the others.
        """
        planned: list[_Planned] = []
        for config in self.selectors:
            try:
                tokens = derive_tokens(config, facts, self._expressions.get(config.name))
            except ValueError as exc:
                planned.append(_Planned(config, (), (), f"cannot derive tokens: {exc}"))
                continue
            planned.append(_plan_selector(config, tokens))
        return Lookup(planned)

    def start_tokens(self, name: str, tokens: Sequence[Token]) -> Lookup:
        """A lookup of given tokens for one selector (the command's one-token form)."""
        return Lookup([_plan_selector(self.selector(name), tokens)])

    def queries(self, facts: Facts) -> list[Query]:
        """The distinct queries a check of ``facts`` needs (contract form of start())."""
        return self.start(facts).queries

    def result(self, facts: Facts, answers: Sequence[Answer]) -> Result:
        """Score ``answers`` to the queries of ``facts`` (contract form of start())."""
        return self.start(facts).result(answers)


# ------------------------------------------------------------------ wire format

_HEADER = struct.Struct("!HHHHHH")
_RR = struct.Struct("!HHIH")
_U32 = struct.Struct("!I")
_RD = 0x0100
_QR = 0x8000
_TC = 0x0200
_OPCODE = 0x7800
T_TXT: Final = 16
T_SOA: Final = 6
T_OPT: Final = 41
C_IN: Final = 1
EDNS_PAYLOAD: Final = 1232
# The OPT pseudo-RR: root owner, type 41, our buffer size, extended rcode 0, version 0,
# no flags, no options (RFC 6891).  1232 bytes fits unfragmented over any path (DNS
# flag day 2020), and the TXT answers of a list are far smaller.
_OPT = b"\x00" + struct.pack("!HHIH", T_OPT, EDNS_PAYLOAD, 0, 0)

RCODE_STATUS: Final = MappingProxyType({2: "servfail", 3: "nxdomain", 5: "refused"})


def question_wire(qname: str, rdtype: int = T_TXT) -> bytes:
    """The question section for ``qname`` (lowercase), class IN; raises ValueError."""
    out = bytearray()
    for label in qname.rstrip(".").lower().split("."):
        raw = label.encode("ascii")
        if not 0 < len(raw) <= 63:
            raise ValueError(f"{qname!r}: empty or over-long label")
        out.append(len(raw))
        out += raw
    out += b"\x00" + struct.pack("!HH", rdtype, C_IN)
    if len(out) - 4 > 255:
        raise ValueError(f"{qname!r} is over 255 bytes on the wire")
    return bytes(out)


def query_wire(qid: int, question: bytes) -> bytes:
    """A complete query: header (RD set, so a resolver recurses), question, EDNS0 OPT."""
    return _HEADER.pack(qid, _RD, 1, 0, 0, 1) + question + _OPT


def response_matches(wire: bytes, qid: int, question: bytes) -> bool:
    """Whether ``wire`` is a response to our query: same ID, QR set, same question.

    A datagram that fails this is someone else's (late, spoofed): ignore it and keep
    waiting, as RFC 5452 section 9.1 asks.  The name's case may differ (0x20 or a
    server that preserves the case it was asked with).
    """
    end = 12 + len(question)
    if len(wire) < end or wire[0] != qid >> 8 or wire[1] != qid & 0xFF:
        return False
    if not wire[2] & 0x80 or wire[4:6] != b"\x00\x01":
        return False
    return wire[12:end].lower() == question


@dataclass(frozen=True)
class Reply:
    """What a DNS response says about our TXT question, whichever parser read it.

    ``texts`` are the TXT records at the question name (each record's strings joined),
    ``ttl`` their RRset's TTL, ``soa`` the (TTL, MINIMUM) of the first SOA in authority.
    """

    rcode: int
    texts: tuple[bytes, ...] = ()
    ttl: int | None = None
    soa: tuple[int, int] | None = None
    truncated: bool = False


class _Fallback(Exception):
    """The fast reader met something it leaves to dnspython."""


def _skip_name(wire: bytes, pos: int) -> int:
    while True:
        length = wire[pos]
        if length == 0:
            return pos + 1
        if length & 0xC0 == 0xC0:
            return pos + 2
        if length & 0xC0:
            raise _Fallback
        pos += 1 + length


def _fast_reply(wire: bytes, question: bytes) -> Reply:
    """The common reply read by hand; raises _Fallback (or IndexError, struct.error)."""
    _, flags, qdcount, ancount, nscount, arcount = _HEADER.unpack_from(wire)
    if qdcount != 1 or flags & _OPCODE or not flags & _QR:
        raise _Fallback
    pos = 12 + len(question)
    if wire[12:pos].lower() != question:
        raise _Fallback
    texts: list[bytes] = []
    ttl: int | None = None
    for _ in range(ancount):
        if wire[pos : pos + 2] != b"\xc0\x0c":
            raise _Fallback  # an owner other than the question name: CNAME chains...
        rtype, rclass, rttl, rdlen = _RR.unpack_from(wire, pos + 2)
        pos += 12
        end = pos + rdlen
        if rtype != T_TXT or rclass != C_IN or end > len(wire) or rdlen == 0:
            raise _Fallback
        strings = []
        while pos < end:
            length = wire[pos]
            if pos + 1 + length > end:
                raise _Fallback
            strings.append(wire[pos + 1 : pos + 1 + length])
            pos += 1 + length
        text = b"".join(strings)
        if text not in texts:  # an RRset is a set (RFC 2181 section 5)
            texts.append(text)
        ttl = rttl if ttl is None else min(ttl, rttl)
    soa: tuple[int, int] | None = None
    for _ in range(nscount):
        pos = _skip_name(wire, pos)
        rtype, rclass, rttl, rdlen = _RR.unpack_from(wire, pos)
        pos += 10
        end = pos + rdlen
        if end > len(wire):
            raise _Fallback
        if rtype == T_SOA:
            # MNAME and RNAME, then exactly SERIAL REFRESH RETRY EXPIRE MINIMUM.
            if _skip_name(wire, _skip_name(wire, pos)) + 20 != end:
                raise _Fallback
            if soa is None:
                soa = (rttl, _U32.unpack_from(wire, end - 4)[0])
        pos = end
    for _ in range(arcount):
        pos = _skip_name(wire, pos)
        rtype, _, rttl, rdlen = _RR.unpack_from(wire, pos)
        if rtype == T_OPT and rttl >> 24:
            raise _Fallback  # an extended rcode: let dnspython combine it
        pos += 10 + rdlen
    if pos != len(wire):
        raise _Fallback
    return Reply(flags & 0xF, tuple(texts), ttl, soa, bool(flags & _TC))


def reply_from_message(message: dns.message.Message) -> Reply:
    """The full path: a parsed dnspython message, CNAME chains followed within it."""
    if not message.question:
        return Reply(message.rcode(), truncated=bool(message.flags & dns.flags.TC))
    name = message.question[0].name
    for _ in range(16):  # a CNAME chain the server included (RFC 1034 section 3.6.2)
        cname = message.get_rrset(
            message.answer, name, dns.rdataclass.IN, dns.rdatatype.CNAME
        )
        if cname is None:
            break
        name = cname[0].target
    texts: list[bytes] = []
    ttl: int | None = None
    rrset = message.get_rrset(message.answer, name, dns.rdataclass.IN, dns.rdatatype.TXT)
    if rrset is not None:
        ttl = rrset.ttl
        for rdata in rrset:
            assert isinstance(rdata, dns.rdtypes.ANY.TXT.TXT)
            text = b"".join(rdata.strings)
            if text not in texts:
                texts.append(text)
    soa: tuple[int, int] | None = None
    for auth in message.authority:
        if auth.rdtype == dns.rdatatype.SOA and len(auth):
            first = auth[0]
            assert isinstance(first, dns.rdtypes.ANY.SOA.SOA)
            soa = (auth.ttl, first.minimum)
            break
    return Reply(
        message.rcode(), tuple(texts), ttl, soa, bool(message.flags & dns.flags.TC)
    )


class ReplyError(ValueError):
    """The response cannot be parsed at all."""


def read_reply(wire: bytes, question: bytes) -> Reply:
    """Read a response to ``question``: the fast path, else dnspython's full parser.

    Raises ReplyError when the bytes are not a DNS message.
    """
    try:
        return _fast_reply(wire, question)
    except (_Fallback, IndexError, struct.error):
        pass
    try:
        message = dns.message.from_wire(wire, ignore_trailing=False)
    except Exception as exc:  # hostile bytes: whatever dnspython's parser trips on
        raise ReplyError(f"unparseable response: {exc}") from None
    return reply_from_message(message)


def answer_from_reply(query: Query, reply: Reply) -> Answer:
    """The status, record and cache TTL of one reply (RFC 2308 for negative answers)."""
    if reply.rcode == 0 and reply.texts:
        return _decode_texts(query, reply.texts, reply.ttl)
    negative = negative_ttl(*reply.soa) if reply.soa is not None else None
    if reply.rcode == 0:
        if reply.truncated:
            return failure(query, "error", "truncated reply and no TCP answer")
        return Answer(query, "nodata", ttl=negative)
    if reply.rcode == 3:
        return Answer(query, "nxdomain", ttl=negative)
    status = RCODE_STATUS.get(reply.rcode)
    if status is not None:
        return failure(query, status, f"rcode {status.upper()}")
    return failure(query, "error", f"rcode {_rcode_text(reply.rcode)}")


def _rcode_text(rcode: int) -> str:
    try:
        return dns.rcode.to_text(dns.rcode.Rcode(rcode))
    except ValueError:
        return str(rcode)


def _decode_texts(query: Query, texts: Sequence[bytes], ttl: int | None) -> Answer:
    """The record of a TXT RRset: the first ``v=`` record this reader understands.

    A list changing format may publish a v=2 record beside its v=1 one; only when no
    record is readable is the answer ``newer_version`` (or ``malformed``).
    """
    newer: tuple[str, str] | None = None
    bad: tuple[str, str] | None = None
    for raw in texts:
        shown = raw.decode("ascii", "backslashreplace")
        if not raw.startswith(b"v="):
            bad = bad or (shown, "not a v= record")
            continue
        try:
            record = txt.decode(raw)
        except txt.UnsupportedVersion as exc:
            newer = newer or (shown, str(exc))
        except txt.TxtError as exc:
            bad = bad or (shown, str(exc))
        else:
            return Answer(query, "hit", record, text=shown, ttl=ttl)
    if newer is not None:
        return Answer(query, "newer_version", detail=newer[1], text=newer[0], ttl=ttl)
    assert bad is not None
    return Answer(query, "malformed", detail=bad[1], text=bad[0], ttl=ttl)
