"""The judge: what one zone publishes for a token, given its record as read from Redis.

Between the source (:mod:`publisher.source`) and the plan (:mod:`publisher.plan`) a
sync judges every token it reads: the key must name a token of the zone's selector
(:mod:`listformat.tokens`), its hashes must hold a record of the zone's layout
(:mod:`publisher.layouts`, merged across servers), the processor chain may drop it
(:class:`publisher.processors.Chain`), and what survives is scored and encoded into
store entries (:func:`zoned.answers.token_answer`, one per owner key).

A :class:`Judge` is built once per zone from its config and source settings and holds
no connection, so forked workers can carry it (:mod:`publisher.workers`).  The general
path is :meth:`Judge.evaluate`; the full pass's fast path (:mod:`publisher.fastpath`)
takes the same knowledge from the judge for the common case.  Keys that cannot be read
as a token of the zone are skipped, logged (rate-limited) and counted in :class:`Stats`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from listformat import names, tokens
from publisher import layouts
from publisher.entries import RecordError, owner_keys, token_entries
from publisher.processors import Chain
from zoned.config import ZoneConfig
from zoned.ratelog import limited
from zoned.sourceconf import SourceSettings

log = logging.getLogger(__name__)

BAD_KEY = "publisher-bad-key"  # ratelog kind: skipped keys, which anyone writing to Redis makes

Entries = list[tuple[bytes, bytes]]


def shown(key: bytes, limit: int = 100) -> str:
    """A Redis key for a log line: quoted, and cut when it is long."""
    if len(key) <= limit:
        return repr(key)
    return f"{key[:limit]!r}... ({len(key):,} bytes)"


@dataclass
class Stats:
    """What a sync saw; skipped keys are counted by reason, never fatal."""

    keys: int = 0
    published: int = 0
    gone: int = 0
    not_ours: int = 0
    wrong_type: int = 0
    bad_fields: int = 0
    bad_token: int = 0
    excluded: int = 0
    below_min: int = 0

    def line(self) -> str:
        parts = [f"{name}={value}" for name, value in vars(self).items() if value]
        return " ".join(parts) or "nothing"


@dataclass
class SourceToken:
    """One token's data as read: the key that named it, its raw token, every server's hash."""

    key: bytes
    raw: str
    hashes: list[dict[bytes, bytes]]
    wrong_type: bool


# -- what the judge decides: one of three ------------------------------------------------


@dataclass(frozen=True, slots=True)
class Publish:
    """Publish ``entries`` for ``token`` (none: the zone publishes nothing for it)."""

    token: str
    entries: Entries


@dataclass(frozen=True, slots=True)
class Unpublish:
    """``token`` is gone from the source, or the processor chain drops it."""

    token: str


@dataclass(frozen=True, slots=True)
class Keep:
    """The key cannot be read: leave what is published for ``token`` alone.

    ``token`` is None when the key names no token of the zone at all.
    """

    token: str | None


Outcome = Publish | Unpublish | Keep


@dataclass(frozen=True)
class Judge:
    """How one zone judges its tokens: selector, layout, processor chain and scoring."""

    config: ZoneConfig
    settings: SourceSettings
    chain: Chain
    params: layouts.ScoringParams
    prefix: bytes  # the source's key prefix, which a token's key starts with
    bucket_names: tuple[str, ...]  # the ``buckets`` layout's, in the zone file's order

    @classmethod
    def for_zone(cls, config: ZoneConfig, settings: SourceSettings) -> Judge:
        """The zone's judge; reading the exclusion maps may raise MapError."""
        params = layouts.ScoringParams(
            lower_bound=settings.lower_bound,
            reject_score=settings.reject_score,
            buckets={b.name: b.mult for b in settings.buckets},
        )
        return cls(config, settings, Chain.for_zone(config, settings), params,
                   settings.prefix.encode(), tuple(b.name for b in settings.buckets))

    def owner_keys(self, token: str) -> list[bytes]:
        """The store keys ``token`` is published under; none when it cannot be a name."""
        try:
            return owner_keys(self.config, token)
        except names.OwnerNameError:
            return []

    def evaluate(self, item: SourceToken, stats: Stats) -> Outcome:
        """What to publish for ``item``, counted in ``stats`` (the general path)."""
        stats.keys += 1
        origin = self.config.origin
        try:
            token = tokens.token_of(self.settings.selector, item.raw)
        except tokens.TokenError as exc:
            stats.bad_token += 1
            limited(log, BAD_KEY, logging.WARNING, "zone=%s key %s skipped: %s",
                    origin, shown(item.key), exc)
            return Keep(None)
        if token is None:
            stats.not_ours += 1
            return Keep(None)
        if item.wrong_type:
            stats.wrong_type += 1
            limited(log, BAD_KEY, logging.WARNING, "zone=%s key %s is not a hash; skipped",
                    origin, shown(item.key))
            return Keep(token)
        if not item.hashes:
            stats.gone += 1
            return Unpublish(token)
        layout = self.settings.layout
        try:
            counters = layouts.merge([layouts.parse(layout, fields) for fields in item.hashes])
        except layouts.LayoutError as exc:
            stats.bad_fields += 1
            limited(log, BAD_KEY, logging.WARNING, "zone=%s key %s skipped: %s",
                    origin, shown(item.key), exc)
            return Keep(token)
        dropped = self.chain.drops(token, layouts.message_count(counters))
        if dropped == "excluded":
            stats.excluded += 1
            return Unpublish(token)
        if dropped == "below_min":
            stats.below_min += 1
            return Unpublish(token)
        score = layouts.score(layout, counters, self.params)
        fields = layouts.txt_fields(counters, score, scoring=self.params)
        # The problem's text as ``zonepub import`` words it, with the key for its place.
        where = shown(item.key)
        try:
            entries = token_entries(self.config, token, fields)
        except RecordError as exc:
            problem = f"{where}: {exc}"
        else:
            stats.published += 1
            return Publish(token, entries)
        stats.bad_token += 1
        limited(log, BAD_KEY, logging.WARNING, "zone=%s key %s skipped: %s",
                origin, where, problem)
        return Keep(None)
