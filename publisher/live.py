"""The continuous sync: keyspace notifications, periodic reconciliation, Redis away and back.

``zonepub sync`` without ``--once`` keeps every zone's store in step with its source in
one thread.  Per zone (:class:`LiveZone`): subscribe to keyspace notifications first,
then run a full pass, so that changes made during its SCAN are buffered on the
subscription and applied right after it; from then on, the keys notifications name are
batched for ``flush_delay`` seconds (or until ``max_dirty`` of them) and applied as one
incremental pass (:meth:`publisher.sync.ZoneSync.incremental`), and every
``reconcile`` seconds a full pass runs a SCAN batch at a time between them, catching
whatever the notifications missed.  When Redis goes away (:class:`SourceError`) the zone
keeps serving its last good serial and retries with a backoff from 0.5 to 30 seconds,
reconciling everything again once it is back.

The passes themselves, their plans and the delete guard are :mod:`publisher.sync`'s;
this module only decides when each runs.  :class:`Runner` turns the zones' loops.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from publisher.source import SourceError
from publisher.sync import FullPass, Health, Result, ZoneSync

log = logging.getLogger(__name__)

MAX_BACKOFF = 30.0  # seconds between retries while the source stays away
MIN_BACKOFF = 0.5


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


class LiveZone:
    """One zone's continuous sync, a turn at a time (:meth:`step`).

    ``force_next``: the next full pass ignores the delete guard (``zonepub sync
    --force``: the first one, and only that one).
    """

    def __init__(self, sync: ZoneSync, *, force: bool = False) -> None:
        self.sync = sync
        self.force_next = force
        self.state = _State()

    def health(self) -> Health:
        """The zone's :meth:`~publisher.sync.ZoneSync.health`, with its source's state."""
        return self.sync.health(source_up=not self.state.down)

    def step(self, now: float, flush_delay: float, max_dirty: int) -> bool:
        """One turn of the continuous loop; True when it did work."""
        sync = self.sync
        state = self.state
        if state.down and now < state.retry_at:
            return False
        try:
            if state.subscriptions is None:
                # Subscribe first, then reconcile: changes made during the SCAN are
                # buffered on the subscription and applied right after it.
                state.subscriptions = sync.source.subscribe()
                self._report(sync.full(hold=True, force=self.force_next), "full")
                self.force_next = False
                state.next_reconcile = now + sync.settings.reconcile
                if state.down:
                    log.info("zone=%s source %s is back", sync.config.origin,
                             sync.source.describe())
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
                self._report(sync.incremental(keys, during=state.full_pass), "incremental")
                worked = True
            if now >= state.next_reconcile and state.full_pass is None:
                state.next_reconcile = now + sync.settings.reconcile
                state.full_pass = FullPass(sync, None)
                worked = True
            return worked
        except SourceError as exc:
            self._went_down(now, exc)
        return False

    def _drain(self, now: float, limit: int) -> bool:
        """Take in up to ``limit`` notifications per subscription; True if any named a key."""
        state = self.state
        prefix = self.sync.judge.prefix
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
                    if key.startswith(prefix):
                        if not state.dirty:
                            state.dirty_since = now
                        state.dirty.add(key)
                        got = True
        except Exception as exc:  # noqa: BLE001 - redis-py raises several kinds on a drop
            raise SourceError(f"{self.sync.source.describe()}: subscription lost: {exc}"
                              ) from exc
        return got

    def _went_down(self, now: float, exc: Exception) -> None:
        state = self.state
        if not state.down:
            log.error("zone=%s source unavailable, serving the last good serial and "
                      "retrying: %s", self.sync.config.origin, exc)
        state.down = True
        state.backoff = min(max(state.backoff * 2, MIN_BACKOFF), MAX_BACKOFF)
        state.retry_at = now + state.backoff
        for pubsub in state.subscriptions or []:
            try:
                pubsub.close()
            except Exception:  # noqa: BLE001 - the connection is already broken
                pass
        state.subscriptions = None
        state.full_pass = None
        state.dirty.clear()  # the reconcile after reconnecting reads everything again
        self.sync.source.close()

    def _report(self, result: Result, kind: str) -> None:
        if result.plan.empty and kind == "incremental":
            return  # a periodic pass is logged even when it changes nothing
        held = f"; {result.held:,} deletions held" if result.held else ""
        log.info("zone=%s %s sync: %s; serial %d; %.2f s; keys: %s%s",
                 self.sync.config.origin, kind, result.plan.summary(), result.serial,
                 result.seconds, result.stats.line(), held)


class Runner:
    """Drives the continuous sync of several zones in one thread.

    ``force``: each zone's first full pass ignores the delete guard (``--force``).
    """

    def __init__(self, syncs: Sequence[ZoneSync], *, flush_delay: float = 0.2,
                 max_dirty: int = 20_000, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep, force: bool = False) -> None:
        self.zones = [LiveZone(sync, force=force) for sync in syncs]
        self.flush_delay = flush_delay
        self.max_dirty = max_dirty
        self.clock = clock
        self.sleep = sleep
        self.stopping = False

    def stop(self) -> None:
        self.stopping = True

    def health(self) -> list[Health]:
        """Every zone's :class:`~publisher.sync.Health`, for a status or metrics endpoint."""
        return [zone.health() for zone in self.zones]

    def run(self) -> None:
        while not self.stopping:
            now = self.clock()
            worked = False
            for zone in self.zones:
                worked |= zone.step(now, self.flush_delay, self.max_dirty)
            if not worked:
                self.sleep(0.05)
