"""The selector configuration: what a reputation rule derives and which zone it asks.

:class:`SelectorConfig` is one rule as Rspamd's reputation plugin writes it
(docs/rspamd-layout.md), checked once when it is built (:class:`PlanError` names what
is wrong); :class:`ZoneRef` is where one component's tokens are published.  The plan
(:mod:`client.plan`) turns these into queries and scores, and a result
(:mod:`client.result`) keeps the rule it came from; both stand on this module, which
imports neither.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Final

from client.errors import ClientError
from client.selectors import Token
from listformat.names import OwnerScheme, check_hash_scheme
from listformat.scoring import LOWER_BOUND, REJECT_SCORE

KINDS: Final = ("ip", "dkim", "spf", "url", "generic")
KIND_ALIASES: Final = MappingProxyType({"sender": "ip"})
# Rspamd's symbol per selector (reputation.lua ``*_selector.config.symbol``).
DEFAULT_SYMBOLS: Final = MappingProxyType(
    {"ip": "SENDER_REP", "dkim": "DKIM_SCORE", "url": "URL_SCORE", "spf": "SPF_REP"}
)
# Rspamd's ``split_symbols`` defaults: on for ip and spf only.
DEFAULT_SPLIT: Final = frozenset({"ip", "spf"})
MAX_URLS: Final = 10
#: How the url selector weighs a domain: ``message`` divides its URL count by the most
#: frequent domain's (Rspamd 2018, the tokens' ``weight``); ``answers`` divides it by the
#: largest message count ``n`` among the answers (Rspamd's current code).
URL_WEIGHTS: Final = ("message", "answers")


class PlanError(ClientError, ValueError):
    """The selector configuration cannot be planned (unknown kind, missing zone, ...)."""


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
