"""Syncing one zone from its Redis source: full passes and incremental updates.

A full sync SCANs the source, turns every key into store entries, diffs the result
against the store and commits it as one serial (:mod:`publisher.plan`).  An incremental
sync does the same for the keys keyspace notifications named, at a cost that grows with
the number of keys, not the size of the zone.  :class:`Runner` keeps several zones in
step: notifications for low latency, a periodic full pass for whatever they missed, and
retries with backoff while Redis is away -- the store keeps its last good serial.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from client import names
from publisher import layouts, tokens
from publisher.fastpath import RspamdFastPath
from publisher.plan import Plan, PlanRefused, apply, full_plan, partial_plan
from publisher.processors import Exclusions, never_listed
from publisher.progress import Progress
from publisher.records import RecordError, TokenRecord, entries, owner_keys
from publisher.settings import SourceSettings
from publisher.source import RedisSource, SourceError
from publisher.workers import default_workers
from publisher.workers import run as run_workers
from zoned.config import ZoneConfig
from zoned.store import ZoneStore

log = logging.getLogger(__name__)

IP_SELECTORS = ("ip",)
KEEP = None  # a key we could not read: leave what is published for it alone


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
class Result:
    """The outcome of one sync pass."""

    plan: Plan
    serial: int
    stats: Stats
    seconds: float
    applied: bool


@dataclass
class _Token:
    """One token's data as read: the key that named it, its raw token, every server's hash."""

    key: bytes
    raw: str
    hashes: list[dict[bytes, bytes]]
    wrong_type: bool


@dataclass
class _State:
    """Connection state of a zone's source in continuous mode."""

    subscriptions: list[Any] | None = None
    dirty: set[bytes] = field(default_factory=set)
    dirty_since: float = 0.0
    next_reconcile: float = 0.0
    down: bool = False
    retry_at: float = 0.0
    backoff: float = 0.0
    full_pass: FullPass | None = None


class ZoneSync:
    """Keeps one zone's store in step with its source."""

    def __init__(self, config: ZoneConfig, settings: SourceSettings,
                 source: RedisSource | None = None, batch: int = 1000) -> None:
        self.config = config
        self.settings = settings
        self.source = source or RedisSource(settings.urls, settings.prefix,
                                            cluster=settings.cluster)
        self.batch = batch
        self.store = ZoneStore.for_zone(config)
        ip_tokens = settings.selector in IP_SELECTORS
        self.exclusions = Exclusions.load(settings.exclude, ip=ip_tokens)
        self.never = never_listed(config)
        self.params = layouts.ScoringParams(
            lower_bound=settings.lower_bound,
            reject_score=settings.reject_score,
            buckets={b.name: b.mult for b in settings.buckets},
        )
        self.bucket_names = [b.name for b in settings.buckets]
        self.prefix = settings.prefix.encode()
        self.state = _State()
        # Full passes judge the common case without the general path's objects.
        self.fast = RspamdFastPath(self) if RspamdFastPath.applies(self) else None

    def close(self) -> None:
        self.source.close()
        self.store.close()

    # -- reading and judging tokens ---------------------------------------------------
    def read(self, keys: Sequence[bytes], stats: Stats) -> list[_Token]:
        """The records of the tokens ``keys`` belong to, each merged across servers.

        In the ``buckets`` layout a token is spread over one key per bucket: a change to
        any of them re-reads them all and joins their fields.
        """
        layout = self.settings.layout
        if layout != "buckets":
            return [_Token(f.key, f.key[len(self.prefix):].decode("utf-8", "replace"),
                           f.hashes, f.wrong_type)
                    for f in self.source.fetch(keys)]
        groups: dict[str, list[bytes]] = {}
        for key in keys:
            raw = key[len(self.prefix):].decode("utf-8", "replace")
            token_key = layouts.token_key(layout, raw)
            if token_key is None:
                stats.keys += 1
                stats.not_ours += 1
                continue
            if token_key not in groups:
                groups[token_key] = [self.prefix + k.encode() for k in
                                     layouts.record_keys(layout, raw, self.bucket_names)]
        wanted = [key for group in groups.values() for key in group]
        fetched = {f.key: f for f in self.source.fetch(wanted)}
        servers = len(self.source.clients())
        result = []
        for token_key, group in groups.items():
            joined: list[dict[bytes, bytes]] = [{} for _ in range(servers)]
            wrong = False
            for key in group:
                item = fetched[key]
                wrong |= item.wrong_type
                for index, fields in enumerate(item.per_server):
                    joined[index].update(fields)
            result.append(_Token(group[0], token_key, [j for j in joined if j], wrong))
        return result

    def evaluate(self, item: _Token, stats: Stats) -> tuple[str | None,
                                                            list[tuple[bytes, bytes]] | None]:
        """(token, its store entries); entries [] to unpublish, None (KEEP) to leave alone."""
        stats.keys += 1
        token = tokens.token_of(self.settings.selector, item.raw)
        if token is None:
            stats.not_ours += 1
            return None, KEEP
        if item.wrong_type:
            stats.wrong_type += 1
            log.warning("zone=%s key %r is not a hash; skipped", self.config.origin, item.key)
            return token, KEEP
        if not item.hashes:
            stats.gone += 1
            return token, []
        try:
            counters = layouts.merge(
                [layouts.parse(self.settings.layout, fields) for fields in item.hashes])
        except layouts.LayoutError as exc:
            stats.bad_fields += 1
            log.warning("zone=%s key %r skipped: %s", self.config.origin, item.key, exc)
            return token, KEEP
        if self.exclusions.excludes(token) or self.never.excludes(token):
            stats.excluded += 1
            return token, []
        if layouts.message_count(counters) < self.settings.min_count:
            stats.below_min += 1
            return token, []
        score = layouts.score(self.settings.layout, counters, self.params)
        fields = layouts.txt_fields(counters, score, scoring=self.params)
        try:
            result = entries(self.config, TokenRecord(repr(item.key), token, fields))
        except RecordError as exc:
            stats.bad_token += 1
            log.warning("zone=%s key %r skipped: %s", self.config.origin, item.key, exc)
            return None, KEEP
        stats.published += 1
        return token, result

    # -- passes --------------------------------------------------------------------
    def full(self, *, dry_run: bool = False, force: bool = False,
             progress: Progress | None = None, workers: int | None = None) -> Result:
        """SCAN everything, diff against the store, commit one serial (unless dry_run).

        ``workers`` processes judge the batches (default: one per CPU this process may
        use, none when it has one); the fast path only.
        """
        full = FullPass(self, progress)
        if workers is None:
            workers = default_workers()
        if workers > 0 and self.fast is not None:
            if not dry_run and self.store.count() == 0:
                first = self._first(full, workers)
                if first is not None:
                    return first
            run_workers(full, workers)
        else:
            while not full.step():
                pass
        return full.finish(dry_run=dry_run, force=force)

    def _first(self, full: FullPass, workers: int) -> Result | None:
        """The first sync into an empty store, with its writes done as batches come in.

        The plan of an empty store is every entry added, and nothing to refuse: so the
        write transaction opens first and each batch goes in while the workers judge
        the next ones.  Committed once at the end, or never (Redis lost, killed).
        None, with nothing read, if another writer filled the store in the meantime.
        """
        with self.store.transaction() as txn:
            if self.store.count():  # checked again under the write lock
                return None
            run_workers(full, workers, txn)
            plan = Plan(txn.serial_before, 0, adds=full.desired)
            if not plan.empty:
                log.info("zone=%s committing %s", self.config.origin, plan.summary())
        return Result(plan, txn.serial_after, full.stats, time.monotonic() - full.started,
                      True)

    def incremental(self, keys: Sequence[bytes]) -> Result:
        """Re-read ``keys`` and commit what changed for them."""
        started = time.monotonic()
        stats = Stats()
        updates: dict[bytes, bytes | None] = {}
        for item in self.read(keys, stats):
            token, result = self.evaluate(item, stats)
            if token is None or result is KEEP:
                continue
            new = dict(result)
            for key in self._owner_keys(token):
                updates[key] = new.get(key)
        if self.state.full_pass is not None:
            # A reconciliation is scanning: what we read now is newer than what it read.
            self.state.full_pass.touched.update(updates)
        plan = partial_plan(self.store, updates)
        serial = plan.serial
        if not plan.empty:
            log.info("zone=%s committing %s", self.config.origin, plan.summary())
            serial = apply(self.store, plan)
        return Result(plan, serial, stats, time.monotonic() - started, True)

    def _owner_keys(self, token: str) -> list[bytes]:
        try:
            return owner_keys(self.config, token)
        except names.OwnerNameError:
            return []

    # -- continuous mode -------------------------------------------------------------
    def step(self, now: float, flush_delay: float, max_dirty: int) -> bool:
        """One turn of the continuous loop; True when it did work."""
        state = self.state
        if state.down and now < state.retry_at:
            return False
        try:
            if state.subscriptions is None:
                # Subscribe first, then reconcile: changes made during the SCAN are
                # buffered on the subscription and applied right after it.
                state.subscriptions = self.source.subscribe()
                self._report(self.full(), "full")
                state.next_reconcile = now + self.settings.reconcile
                if state.down:
                    log.info("zone=%s source %s is back", self.config.origin,
                             self.source.describe())
                state.down = False
                state.backoff = 0.0
                return True
            worked = self._drain(now, max_dirty)
            if state.full_pass is not None:
                # A reconciliation runs a batch at a time between incremental updates,
                # so a change never waits for a whole pass over the zone.
                worked = True
                if state.full_pass.step():
                    full, state.full_pass = state.full_pass, None
                    self._report(full.finish(), "reconcile")
            if state.dirty and (now - state.dirty_since >= flush_delay
                                or len(state.dirty) >= max_dirty):
                keys = sorted(state.dirty)
                state.dirty.clear()
                self._report(self.incremental(keys), "incremental")
                worked = True
            if now >= state.next_reconcile and state.full_pass is None:
                state.next_reconcile = now + self.settings.reconcile
                state.full_pass = FullPass(self, None)
                worked = True
            return worked
        except SourceError as exc:
            self._went_down(now, exc)
        except PlanRefused as exc:
            log.error("zone=%s sync refused: %s", self.config.origin, exc)
        return False

    def _drain(self, now: float, limit: int) -> bool:
        state = self.state
        got = False
        assert state.subscriptions is not None
        try:
            for pubsub in state.subscriptions:
                for _ in range(limit):
                    message = pubsub.get_message(timeout=0)
                    if message is None:
                        break
                    channel = message.get("channel")
                    if not isinstance(channel, bytes):
                        continue
                    key = channel.split(b":", 1)[1] if b":" in channel else b""
                    if key.startswith(self.prefix):
                        if not state.dirty:
                            state.dirty_since = now
                        state.dirty.add(key)
                        got = True
        except Exception as exc:  # noqa: BLE001 - redis-py raises several kinds on a drop
            raise SourceError(f"{self.source.describe()}: subscription lost: {exc}") from exc
        return got

    def _went_down(self, now: float, exc: Exception) -> None:
        state = self.state
        if not state.down:
            log.error("zone=%s source unavailable, serving the last good serial and "
                      "retrying: %s", self.config.origin, exc)
        state.down = True
        state.backoff = min(max(state.backoff * 2, 0.5), 30.0)
        state.retry_at = now + state.backoff
        for pubsub in state.subscriptions or []:
            try:
                pubsub.close()
            except Exception:  # noqa: BLE001 - the connection is already broken
                pass
        state.subscriptions = None
        state.full_pass = None
        state.dirty.clear()  # the reconcile after reconnecting reads everything again
        self.source.close()

    def _report(self, result: Result, kind: str) -> None:
        if result.plan.empty and kind == "incremental":
            return  # a periodic pass is logged even when it changes nothing
        log.info("zone=%s %s sync: %s; serial %d; %.2f s; keys: %s", self.config.origin, kind,
                 result.plan.summary(), result.serial, result.seconds, result.stats.line())


class FullPass:
    """One full pass over the source, a SCAN batch per :meth:`step`.

    Store keys that incremental updates wrote while the pass was scanning are
    ``touched``: the pass read them earlier, so its diff leaves them alone.
    """

    def __init__(self, sync: ZoneSync, progress: Progress | None) -> None:
        self.sync = sync
        self.progress = progress
        self.started = time.monotonic()
        self.stats = Stats()
        self.desired: dict[bytes, bytes] = {}
        self.keep: set[bytes] = set()
        self.touched: set[bytes] = set()
        self._fast = sync.fast
        if self._fast is not None:
            self._raw = sync.source.scan_fetch(self._fast.fields, sync.batch)
        else:
            self._batches = sync.source.scan(sync.batch)

    def step(self) -> bool:
        """Read and judge one batch; True when the scan is complete."""
        sync = self.sync
        if self._fast is not None:
            raw = next(self._raw, None)
            if raw is None:
                return True
            keys, values, lengths = raw
            slow = self._fast.judge(keys, values, lengths, self.stats, self.desired)
            if slow:
                self.judge_general(slow)
            size = len(keys)
        else:
            batch = next(self._batches, None)
            if batch is None:
                return True
            self._judge(sync.read(batch, self.stats))
            size = len(batch)
        if self.progress is not None:
            self.progress.add(size)
        return False

    def judge_general(self, keys: Sequence[bytes]) -> dict[bytes, bytes]:
        """Read ``keys`` whole (HGETALL) and judge them on the general path.

        Returns the entries added to :attr:`desired`.
        """
        return self._judge(self.sync.read(keys, self.stats))

    def _judge(self, items: list[_Token]) -> dict[bytes, bytes]:
        sync = self.sync
        added: dict[bytes, bytes] = {}
        for item in items:
            token, result = sync.evaluate(item, self.stats)
            if result is KEEP:
                if token is not None:
                    self.keep.update(sync._owner_keys(token))
                continue
            added.update(result)
        self.desired.update(added)
        return added

    def finish(self, *, dry_run: bool = False, force: bool = False) -> Result:
        """Diff against the store and commit one serial (unless ``dry_run``)."""
        sync = self.sync
        desired = self.desired
        if self.touched:
            desired = {k: v for k, v in desired.items() if k not in self.touched}
        plan = full_plan(sync.store, desired, self.keep | self.touched)
        plan.check(sync.settings.max_delete, force)
        serial = plan.serial
        if not dry_run and not plan.empty:
            log.info("zone=%s committing %s", sync.config.origin, plan.summary())
            serial = apply(sync.store, plan)
        return Result(plan, serial, self.stats, time.monotonic() - self.started, not dry_run)


class Runner:
    """Drives the continuous sync of several zones in one thread."""

    def __init__(self, syncs: Sequence[ZoneSync], *, flush_delay: float = 0.2,
                 max_dirty: int = 20_000, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.syncs = list(syncs)
        self.flush_delay = flush_delay
        self.max_dirty = max_dirty
        self.clock = clock
        self.sleep = sleep
        self.stopping = False

    def stop(self) -> None:
        self.stopping = True

    def run(self) -> None:
        while not self.stopping:
            now = self.clock()
            worked = False
            for sync in self.syncs:
                worked |= sync.step(now, self.flush_delay, self.max_dirty)
            if not worked:
                self.sleep(0.05)
