"""Syncing one zone from its Redis source: full passes and incremental updates.

A full sync SCANs the source, turns every key into store entries, diffs the result
against the store and commits it as one serial (:mod:`publisher.plan`).  An incremental
sync does the same for the keys keyspace notifications named, at a cost that grows with
the number of keys, not the size of the zone.  When each runs in continuous mode
(notifications, reconciliation, Redis away and back) is :mod:`publisher.live`'s to say.

Every write is checked against the zone's delete guard: a full pass's plan as a whole
(:meth:`publisher.plan.Plan.check`), incremental passes by the deletions they add up
to since the last full pass (:mod:`publisher.guard`).  In continuous mode a full pass
past the guard still applies its additions and changes and holds its deletions, as the
live path does; :meth:`ZoneSync.health` shows it.  What to publish for each token read
is the zone's :class:`~publisher.judge.Judge`'s to say (the general path, and the fast
path of :mod:`publisher.fastpath` in full passes, in forked workers where there are
CPUs for them); keys that cannot be read as a token of the zone are skipped and
counted, whatever is wrong with them.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass

from publisher import layouts
from publisher.fastpath import RspamdFastPath
from publisher.guard import LiveDeletes, Transition
from publisher.judge import Judge, Keep, Publish, SourceToken, Stats
from publisher.plan import (
    DeleteGuard,
    Plan,
    PlanRefused,
    apply,
    full_plan,
    partial_plan,
)
from publisher.progress import Progress
from publisher.source import RedisSource
from publisher.workers import Judged, default_workers
from publisher.workers import run as run_workers
from zoned.config import ZoneConfig
from zoned.ratelog import limited
from zoned.sourceconf import SourceSettings
from zoned.store import Transaction, ZoneStore

log = logging.getLogger(__name__)

DELETE_GUARD = "publisher-delete-guard"  # ratelog kind: deletions held or resumed


def _text(raw: bytes) -> str:
    """A key's text; bytes that are not UTF-8 survive as surrogates, which
    listformat.tokens rejects, so two junk keys never become one token."""
    return raw.decode("utf-8", "surrogateescape")


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
        self.source = source or RedisSource(settings.urls, settings.prefix,
                                            cluster=settings.cluster)
        self.batch = batch
        self.store = ZoneStore.for_zone(config)
        self.judge = Judge.for_zone(config, settings)
        # Full passes judge the common case without the general path's objects.
        self.fast = (RspamdFastPath(self.judge)
                     if RspamdFastPath.applies(self.judge, self.source) else None)

    def close(self) -> None:
        self.source.close()
        self.store.close()

    # -- reading tokens --------------------------------------------------------------
    def read(self, keys: Sequence[bytes], stats: Stats) -> list[SourceToken]:
        """The records of the tokens ``keys`` belong to, each merged across servers.

        In the ``buckets`` layout a token is spread over one key per bucket: a change to
        any of them re-reads them all and joins their fields.
        """
        layout = self.settings.layout
        prefix = self.judge.prefix
        if layout != "buckets":
            return [SourceToken(f.key, _text(f.key[len(prefix):]), f.hashes, f.wrong_type)
                    for f in self.source.fetch(keys)]
        groups: dict[str, list[bytes]] = {}
        for key in keys:
            raw = _text(key[len(prefix):])
            token_key = layouts.token_key(layout, raw)
            if token_key is None:
                stats.keys += 1
                stats.not_ours += 1
                continue
            if token_key not in groups:
                groups[token_key] = [prefix + k.encode("utf-8", "surrogateescape")
                                     for k in layouts.record_keys(layout, raw,
                                                                  self.judge.bucket_names)]
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
            result.append(SourceToken(group[0], token_key, [j for j in joined if j], wrong))
        return result

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
            full.in_workers(workers)
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
            full.in_workers(workers, txn)
            plan = Plan(txn.serial_before, 0, adds=full.desired)
            if not plan.empty:
                log.info("zone=%s committing %s", self.config.origin, plan.summary())
        self.serial = txn.serial_after
        self._guard_log(self.live.reset(len(plan.adds)))
        return Result(plan, txn.serial_after, full.stats, time.monotonic() - full.started,
                      True)

    def incremental(self, keys: Sequence[bytes], during: FullPass | None = None) -> Result:
        """Re-read ``keys`` and commit what changed for them.

        ``during``: a full pass still scanning (a reconciliation), told what this one
        wrote so that its diff leaves those keys alone.
        """
        started = time.monotonic()
        stats = Stats()
        updates: dict[bytes, bytes | None] = {}
        judge = self.judge
        for item in self.read(keys, stats):
            outcome = judge.evaluate(item, stats)
            if isinstance(outcome, Keep):
                continue
            new = dict(outcome.entries) if isinstance(outcome, Publish) else {}
            for key in judge.owner_keys(outcome.token):
                updates[key] = new.get(key)
        if during is not None:
            # A reconciliation is scanning: what we read now is newer than what it read.
            during.touched.update(updates)
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

    def health(self, source_up: bool = True) -> Health:
        """What this zone's sync is doing: serial, the delete guard's hold; ``source_up``
        as the continuous loop last saw it (:meth:`publisher.live.LiveZone.health`)."""
        live = self.live
        return Health(self.config.origin, source_up, self.serial, live.size,
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

    def _judge(self, items: list[SourceToken]) -> dict[bytes, bytes]:
        judge = self.sync.judge
        added: dict[bytes, bytes] = {}
        for item in items:
            outcome = judge.evaluate(item, self.stats)
            if isinstance(outcome, Publish):
                added.update(outcome.entries)
            elif isinstance(outcome, Keep) and outcome.token is not None:
                self.keep.update(judge.owner_keys(outcome.token))
        self.desired.update(added)
        return added

    def in_workers(self, workers: int, txn: Transaction | None = None) -> None:
        """Judge every batch in ``workers`` processes (:mod:`publisher.workers`), on the
        fast path; the caller finishes the pass.

        With ``txn`` (an empty store's transaction), each batch's entries are also put
        in it as they come: the merge is otherwise idle while the workers judge.
        """
        sync = self.sync
        run_workers(sync.judge, sync.source.scan_keys(sync.batch), workers,
                    lambda size, judged: self._merge(size, judged, txn))

    def _merge(self, size: int, judged: Judged, txn: Transaction | None) -> None:
        """One batch a worker judged, its keys left to the general path judged here."""
        desired, slow, (keys, published, excluded, below_min) = judged
        self.desired.update(desired)
        if txn is not None:
            txn.put_many(list(desired.items()))
        stats = self.stats
        stats.keys += keys
        stats.published += published
        stats.excluded += excluded
        stats.below_min += below_min
        if slow:
            general = self.judge_general(slow)
            if txn is not None:
                txn.put_many(list(general.items()))
        if self.progress is not None:
            self.progress.add(size)

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
