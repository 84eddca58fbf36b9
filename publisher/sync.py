"""Syncing one zone from its Redis source: full passes and incremental updates.

A full sync SCANs the source, turns every key into store entries, diffs the result
against the store and commits it as one serial (:mod:`publisher.plan`).  An incremental
sync does the same for the keys keyspace notifications named, at a cost that grows with
the number of keys, not the size of the zone.  :class:`Runner` keeps several zones in
step: notifications for low latency, a periodic full pass for whatever they missed, and
retries with backoff while Redis is away -- the store keeps its last good serial.

Every write is checked against the zone's delete guard: a full pass's plan as a whole
(:meth:`publisher.plan.Plan.check`), incremental passes by the deletions they add up
to since the last full pass (:mod:`publisher.guard`).  In continuous mode a full pass
past the guard still applies its additions and changes and holds its deletions, as the
live path does; :meth:`ZoneSync.health` shows it.  Keys that cannot be read as a token
of the zone are skipped and counted, whatever is wrong with them.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from listformat import names, tokens
from publisher import layouts
from publisher.entries import RecordError, TokenRecord, entries, owner_keys
from publisher.fastpath import RspamdFastPath
from publisher.guard import LiveDeletes, Transition
from publisher.plan import (
    DeleteGuard,
    Plan,
    PlanRefused,
    apply,
    full_plan,
    partial_plan,
)
from publisher.processors import Exclusions, never_listed
from publisher.progress import Progress
from publisher.source import RedisSource, SourceError
from publisher.workers import default_workers
from publisher.workers import run as run_workers
from zoned.config import ZoneConfig
from zoned.ratelog import limited
from zoned.sourceconf import SourceSettings
from zoned.store import ZoneStore

log = logging.getLogger(__name__)

KEEP = None  # a key we could not read: leave what is published for it alone
BAD_KEY = "publisher-bad-key"  # ratelog kind: skipped keys, which anyone writing to Redis makes
DELETE_GUARD = "publisher-delete-guard"  # ratelog kind: deletions held or resumed


def _text(raw: bytes) -> str:
    """A key's text; bytes that are not UTF-8 survive as surrogates, which
    listformat.tokens rejects, so two junk keys never become one token."""
    return raw.decode("utf-8", "surrogateescape")


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
class Result:
    """The outcome of one sync pass; ``held``: deletions the delete guard kept back."""

    plan: Plan
    serial: int
    stats: Stats
    seconds: float
    applied: bool
    held: int = 0


@dataclass(frozen=True)
class Health:
    """One zone's sync as an operator (or a metrics endpoint) would want to see it."""

    zone: str
    source_up: bool
    serial: int  # the serial this sync last committed or saw
    zone_size: int  # entries after the last applied full pass
    deletes_since_full: int  # deletions the live path applied since that pass
    deletes_held: int  # deletions the delete guard keeps back (0: none)
    holding_since: float | None  # time.time() when it started holding


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
        self.guard = DeleteGuard(settings.max_delete, settings.max_delete_min)
        self.live = LiveDeletes(self.guard)
        self.serial = 0  # the last serial this sync committed or planned against
        self.holding_wall: float | None = None
        self.force_next = False  # the next full pass ignores the delete guard (--force)
        self.source = source or RedisSource(settings.urls, settings.prefix,
                                            cluster=settings.cluster)
        self.batch = batch
        self.store = ZoneStore.for_zone(config)
        ip_tokens = settings.selector in tokens.IP_SELECTORS
        self.exclusions = Exclusions.load(settings.exclude, ip=ip_tokens,
                                          widest=config.widest_prefix)
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
            return [_Token(f.key, _text(f.key[len(self.prefix):]), f.hashes, f.wrong_type)
                    for f in self.source.fetch(keys)]
        groups: dict[str, list[bytes]] = {}
        for key in keys:
            raw = _text(key[len(self.prefix):])
            token_key = layouts.token_key(layout, raw)
            if token_key is None:
                stats.keys += 1
                stats.not_ours += 1
                continue
            if token_key not in groups:
                groups[token_key] = [self.prefix + k.encode("utf-8", "surrogateescape")
                                     for k in layouts.record_keys(layout, raw,
                                                                  self.bucket_names)]
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
        try:
            token = tokens.token_of(self.settings.selector, item.raw)
        except tokens.TokenError as exc:
            stats.bad_token += 1
            limited(log, BAD_KEY, logging.WARNING, "zone=%s key %s skipped: %s",
                    self.config.origin, shown(item.key), exc)
            return None, KEEP
        if token is None:
            stats.not_ours += 1
            return None, KEEP
        if item.wrong_type:
            stats.wrong_type += 1
            limited(log, BAD_KEY, logging.WARNING, "zone=%s key %s is not a hash; skipped",
                    self.config.origin, shown(item.key))
            return token, KEEP
        if not item.hashes:
            stats.gone += 1
            return token, []
        try:
            counters = layouts.merge(
                [layouts.parse(self.settings.layout, fields) for fields in item.hashes])
        except layouts.LayoutError as exc:
            stats.bad_fields += 1
            limited(log, BAD_KEY, logging.WARNING, "zone=%s key %s skipped: %s",
                    self.config.origin, shown(item.key), exc)
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
            result = entries(self.config, TokenRecord(shown(item.key), token, fields))
        except RecordError as exc:
            stats.bad_token += 1
            limited(log, BAD_KEY, logging.WARNING, "zone=%s key %s skipped: %s",
                    self.config.origin, shown(item.key), exc)
            return None, KEEP
        stats.published += 1
        return token, result

    # -- passes --------------------------------------------------------------------
    def full(self, *, dry_run: bool = False, force: bool = False, hold: bool = False,
             progress: Progress | None = None, workers: int | None = None) -> Result:
        """SCAN everything, diff against the store, commit one serial (unless dry_run).

        ``workers`` processes judge the batches (default: one per CPU this process may
        use, none when it has one); the fast path only.  A plan past the delete guard
        raises PlanRefused, or with ``hold`` (continuous mode) is applied without its
        deletions (see :meth:`FullPass.finish`).
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
        return full.finish(dry_run=dry_run, force=force, hold=hold)

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
        self.serial = txn.serial_after
        self._guard_log(self.live.reset(len(plan.adds)))
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
        now = time.monotonic()
        live = self.live
        if live.held and plan.serial != self.serial:
            # Another writer committed (an operator's --force): forget what it deleted.
            with self.store.reader() as reader:
                self._guard_log(live.rebase(lambda key: reader.get(key) is not None,
                                            reader.count(), now))
        self._guard_log(live.admit(updates, plan, now))
        serial = plan.serial
        if not plan.empty:
            log.info("zone=%s committing %s", self.config.origin, plan.summary())
            serial = apply(self.store, plan)
        self.serial = serial
        return Result(plan, serial, stats, time.monotonic() - started, True, len(live.held))

    def health(self) -> Health:
        """What this zone's sync is doing: source state, serial, the delete guard's hold."""
        live = self.live
        return Health(self.config.origin, not self.state.down, self.serial, live.size,
                      live.applied, len(live.held), self.holding_wall)

    def _guard_log(self, transition: Transition | None) -> None:
        """One line when the delete guard starts or stops holding deletions."""
        if transition == "held":
            self.holding_wall = time.time()
            live = self.live
            limited(log, DELETE_GUARD, logging.ERROR,
                    "zone=%s deletions held: %s deletions since the last full pass of %s "
                    "entries are past max_delete (%s); additions and changes are still "
                    "applied; check the source, then run zonepub sync --once --force, or "
                    "recreate the keys", self.config.origin,
                    f"{live.applied + len(live.held):,}", f"{live.size:,}", self.guard.limit())
        elif transition == "resumed":
            self.holding_wall = None
            limited(log, DELETE_GUARD, logging.WARNING,
                    "zone=%s deletions resumed: the delete guard holds nothing back",
                    self.config.origin)

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
                self._report(self.full(hold=True, force=self.force_next), "full")
                self.force_next = False
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
                    self._report(full.finish(hold=True), "reconcile")
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
        held = f"; {result.held:,} deletions held" if result.held else ""
        log.info("zone=%s %s sync: %s; serial %d; %.2f s; keys: %s%s", self.config.origin,
                 kind, result.plan.summary(), result.serial, result.seconds,
                 result.stats.line(), held)


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

    def finish(self, *, dry_run: bool = False, force: bool = False,
               hold: bool = False) -> Result:
        """Diff against the store and commit one serial (unless ``dry_run``).

        A plan past the delete guard raises PlanRefused, unless ``force``; with ``hold``
        its additions and changes are applied and its deletions held
        (:class:`publisher.guard.LiveDeletes`), as the live path would.
        """
        sync = self.sync
        desired = self.desired
        if self.touched:
            desired = {k: v for k, v in desired.items() if k not in self.touched}
        plan = full_plan(sync.store, desired, self.keep | self.touched)
        held: list[bytes] = []
        try:
            plan.check(sync.guard, force)
        except PlanRefused:
            if not hold or dry_run:
                raise
            held, plan.deletes = plan.deletes, []
        serial = plan.serial
        if not dry_run and not plan.empty:
            log.info("zone=%s committing %s", sync.config.origin, plan.summary())
            serial = apply(sync.store, plan)
        if not dry_run:
            sync.serial = serial
            if held:
                sync._guard_log(sync.live.hold(held, time.monotonic()))
            else:
                sync._guard_log(sync.live.reset(plan.size + len(plan.adds)
                                                - len(plan.deletes)))
        return Result(plan, serial, self.stats, time.monotonic() - self.started, not dry_run,
                      len(held))


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

    def health(self) -> list[Health]:
        """Every zone's :class:`Health`, for a status or metrics endpoint."""
        return [sync.health() for sync in self.syncs]

    def run(self) -> None:
        while not self.stopping:
            now = self.clock()
            worked = False
            for sync in self.syncs:
                worked |= sync.step(now, self.flush_delay, self.max_dirty)
            if not worked:
                self.sleep(0.05)
