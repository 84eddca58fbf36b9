"""The I/O-free lookup plan: facts -> tokens -> owner names; answers -> scores.

Everything a reputation check decides lives here, so that the sync and async faces in
:mod:`client.client` are the same short loop around it (dnspython's ``_Resolution``
pattern) and so that it can be tested without a network::

    lookup = plan.start(facts)              # tokens of every selector, their query names
    answers = [ask(q) for q in lookup.queries]   # the face's only job: DNS I/O
    result = lookup.result(answers)         # scores, symbols, errors, explain()

**Selectors** (:class:`client.selectorconfig.SelectorConfig`) follow Rspamd's reputation plugin
(docs/rspamd-layout.md): ``ip`` (alias ``sender``; components ip, asn, country and
whatever else :func:`client.selectors.ip_tokens` yields), ``dkim``, ``spf``, ``url`` and
``generic`` (a selector expression).  Each component is published in a zone of its own
(a zone's ``source.selector`` is one of ip, asn, country, ...), so a selector names one
zone for its main component and optional zones for the others (``components``); a token
whose component has no zone is shown but not queried.

**Scoring one answer** (:func:`score_record`): the TXT record is decoded
(:mod:`listformat.txt`) and the score recomputed from the published numbers, so that a site
with another reject score or lower bound gets its own figures rather than the
publisher's: ``n`` with ``v<bucket>`` values -> Rspamd's tanh formula
(:func:`listformat.scoring.rspamd_score`); else ``s``/``h``/``p`` -> the counters formula;
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

**Modules.** This module holds the plan; the types it exchanges and what it returns live
beside it, and are imported from there: :mod:`client.selectorconfig` (the rules and
their zones, :class:`PlanError`), :mod:`client.answers` (:class:`Query`,
:class:`Answer`, the statuses, and a DNS reply read as an answer), :mod:`client.dnswire`
(the query bytes and the fast reply parser with its dnspython fallback) and
:mod:`client.result` (:class:`Result`, :class:`SelectorResult`, explain() and
to_json()).
"""

from __future__ import annotations

import dataclasses
import functools
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final
from urllib.parse import urlsplit

from client.answers import FAILURES, Answer, Query, failure
from client.facts import DkimResult, Facts, Url
from client.result import ComponentScore, Result, SelectorResult
from client.selectorconfig import PlanError, SelectorConfig, ZoneRef
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
from listformat import txt
from listformat.names import (
    MAX_NAME,
    OwnerNameError,
    normalize_name,
    owner_names,
    parse_network,
    reverse_ip,
)
from listformat.scoring import (
    IP_WEIGHTS,
    BucketCounts,
    buckets_score,
    clamp,
    counters_score,
    rspamd_score,
)
from listformat.tokens import is_dkim_token, is_spf_token

# Rspamd inserts a reputation symbol only when |score| > 1e-3 (dkim excepted).
INSERT_THRESHOLD: Final = 1e-3


_V_KEY = re.compile(r"v([a-z0-9_]{1,16})")
_B_KEY = re.compile(r"b([a-z0-9_]{1,16})\.([shjm])")


# ------------------------------------------------------------------ scoring


@dataclass(frozen=True)
class Scored:
    """One token's score and how it was reached, for explain()."""

    score: float
    method: str  # rspamd | counters | buckets | published | none
    note: str


@functools.lru_cache(maxsize=1024)
def _is_v_key(key: str) -> bool:
    """Whether ``key`` is a bucket value (``v1m``...); a zone uses a handful of keys."""
    return _V_KEY.fullmatch(key) is not None


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
        if _is_v_key(key) and isinstance(value, int | float)
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


# ------------------------------------------------------------------ the plan


# The relative names of the tokens seen again (big senders, popular domains), so that a
# check does not parse and validate them anew.  Errors are not kept: they raise again.
@functools.lru_cache(maxsize=4096)
def _ip_label(value: str) -> str:
    return reverse_ip(value)


@functools.lru_cache(maxsize=4096)
def _name_label(value: str) -> str:
    return normalize_name(value)


def owner_name(ref: ZoneRef, value: str) -> str:
    """The absolute query name of a token under a zone (no trailing dot).

    An IP zone answers for every address inside a listed network, so a network token
    (an IPv6 sender's /64, as Rspamd counts it) is asked by its network address; hashed
    zones hash the token text itself, as the publisher does.  Of a hashed zone's alias
    schemes only the first is asked: every alias answers the same.
    """
    kind = ref.scheme.kind
    if kind == "ip":
        relative = (reverse_ip(parse_network(value).network_address) if "/" in value
                    else _ip_label(value))
    elif kind == "name":
        relative = _name_label(value)
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
        if is_dkim_token(value):
            weight = 1.0 if value.endswith(".a") else 0.0
            return [Token(kind, "dkim", value.lower(), weight)]
        return dkim_tokens(Facts(dkim=(DkimResult(value, "pass"),)))
    if kind == "spf":
        if is_spf_token(value):
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
        elif answer.query is not query and answer.query != query:
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

