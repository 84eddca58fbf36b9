"""The continuous sync's delete guard: deletions since the last full pass, held past the share.

A full pass checks its whole plan against :class:`publisher.plan.DeleteGuard`.  An
incremental pass deletes only the few keys keyspace notifications named, so a mass
``DEL``/``UNLINK`` or a script gone wrong would empty a zone a few keys at a time, no
single pass looking wrong.  :class:`LiveDeletes` therefore counts the deletions the
live path applied since the last full pass that was applied, against the same share of
the zone's size at that pass.  Past it, deletions are *held*: kept published, while
additions and changes still go through.  They resume when the count falls back under
the share (held keys are recreated), when a full pass within the share is applied, or
when an operator's ``zonepub sync --once --force`` (another process) deletes them from
the store: the sync sees a serial it did not write and counts afresh from there.

Sans-IO: the sync hands in each plan and the store's state; the class decides and says
when the state changed, for one log line per change.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal

from publisher.plan import DeleteGuard, Plan

Transition = Literal["held", "resumed"]


@dataclass
class LiveDeletes:
    """Deletions applied and held since the last applied full pass of one zone."""

    guard: DeleteGuard
    size: int = 0  # the zone's entries after the last applied full pass
    applied: int = 0  # deletions the live path applied since
    held: set[bytes] = field(default_factory=set)
    holding_since: float | None = None

    @property
    def holding(self) -> bool:
        return self.holding_since is not None

    def reset(self, size: int) -> Transition | None:
        """A full pass was applied and the zone has ``size`` entries: count afresh."""
        self.size = size
        self.applied = 0
        self.held.clear()
        return self._settle(0.0)

    def admit(self, updates: Mapping[bytes, bytes | None], plan: Plan,
              now: float) -> Transition | None:
        """Let ``plan`` (an incremental pass over ``updates``) delete only what the guard allows.

        Keys that ``updates`` gives a value are no longer pending deletion.  The
        deletions held so far are retried with the plan's own, all or none.
        """
        for key, value in updates.items():
            if value is not None:
                self.held.discard(key)
        pending = list(self.held)
        pending += [key for key in plan.deletes if key not in self.held]
        if pending and not self.guard.allows(self.applied + len(pending), self.size):
            self.held.update(pending)
            plan.deletes = []
        else:
            plan.deletes = pending
            self.applied += len(pending)
            self.held.clear()
        return self._settle(now)

    def hold(self, deletes: Iterable[bytes], now: float) -> Transition | None:
        """A full pass was refused: its deletions are the ones pending now."""
        self.held = set(deletes)
        return self._settle(now)

    def rebase(self, present: Callable[[bytes], bool], size: int,
               now: float) -> Transition | None:
        """Another writer committed while deletions were held: an operator's ``--force``.

        Held keys it deleted are forgotten, and counting starts again from its zone of
        ``size`` entries.
        """
        self.held = {key for key in self.held if present(key)}
        self.size = size
        self.applied = 0
        return self._settle(now)

    def _settle(self, now: float) -> Transition | None:
        if self.held and self.holding_since is None:
            self.holding_since = now
            return "held"
        if not self.held and self.holding_since is not None:
            self.holding_since = None
            return "resumed"
        return None
