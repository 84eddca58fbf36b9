"""Plan, then apply: the diff between what the sources say and what the store holds.

Nothing is written until the whole diff is known.  A plan is checked against a safety
limit first -- an emptied or wrong Redis, or an empty file given to ``import
--replace``, must not wipe a public list -- can be shown instead of applied
(``--dry-run``), and is committed as one new serial.  Every command that writes a
store goes through here (``zonepub sync``, ``zonepub import``).

The limit (:class:`DeleteGuard`) is a share of the zone (``source.max_delete``, 30% by
default) that one write may delete without ``--force``.  Zones of fewer than ``min_size``
entries (``source.max_delete_min``, 10 by default; octodns' MIN_EXISTING_RECORDS idea) are
exempt: deleting 2 of 5 hand-made entries is an edit, not an accident.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping, Set
from dataclasses import dataclass, field

from publisher.errors import PublisherError
from zoned.sourceconf import DEFAULT_MAX_DELETE_MIN, DEFAULT_MAX_DELETE_SHARE
from zoned.store import ZoneStore

SAMPLE = 5


class PlanRefused(PublisherError):
    """The plan would delete more of the zone than the safety limit allows."""


@dataclass(frozen=True)
class DeleteGuard:
    """How much of a zone one write may delete without ``--force``.

    ``share`` of the zone's entries; zones smaller than ``min_size`` may lose any number.
    """

    share: float = DEFAULT_MAX_DELETE_SHARE
    min_size: int = DEFAULT_MAX_DELETE_MIN

    def allows(self, deletes: int, size: int) -> bool:
        """Whether ``deletes`` deletions from a zone of ``size`` entries pass the guard."""
        return deletes == 0 or size < self.min_size or deletes / size <= self.share

    def limit(self) -> str:
        """The rule in words, for messages."""
        return f"limit {self.share:.0%} of zones of {self.min_size:,} entries or more"

    def refusal(self, deletes: int, size: int) -> str:
        """Why :meth:`allows` said no, for the operator."""
        share = deletes / size if size else 1.0
        return f"the plan deletes {deletes:,} of {size:,} entries ({share:.0%}, {self.limit()})"


@dataclass
class Plan:
    """Puts and deletes against a store at ``serial``; ``size`` is the store's entry count."""

    serial: int
    size: int
    adds: dict[bytes, bytes] = field(default_factory=dict)
    changes: dict[bytes, bytes] = field(default_factory=dict)
    deletes: list[bytes] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not (self.adds or self.changes or self.deletes)

    @property
    def delete_share(self) -> float:
        return len(self.deletes) / self.size if self.size else 0.0

    def check(self, guard: DeleteGuard, force: bool) -> None:
        """Raise PlanRefused for a plan that deletes more than ``guard`` allows."""
        if force or guard.allows(len(self.deletes), self.size):
            return
        raise PlanRefused(f"{guard.refusal(len(self.deletes), self.size)}; "
                          "check the source, or run with --force")

    def summary(self) -> str:
        return (f"{len(self.adds):,} to add, {len(self.changes):,} to change, "
                f"{len(self.deletes):,} to delete (zone has {self.size:,}, serial {self.serial})")

    def describe(self, render: Callable[[bytes], str], value: Callable[[bytes], str]) -> str:
        """The summary and a few examples of each kind of change, for ``--dry-run``."""
        lines = [self.summary()]
        for title, items in (
            ("add", list(itertools.islice(self.adds.items(), SAMPLE))),
            ("change", list(itertools.islice(self.changes.items(), SAMPLE))),
        ):
            lines += [f"  {title} {render(key)}: {value(v)}" for key, v in items]
        lines += [f"  delete {render(key)}" for key in self.deletes[:SAMPLE]]
        return "\n".join(lines)


def full_plan(
    store: ZoneStore, desired: Mapping[bytes, bytes], keep: Set[bytes] = frozenset()
) -> Plan:
    """Diff a complete desired state against the store: one pass over one snapshot.

    Keys in ``keep`` (tokens whose source data could not be read this time) are left
    as they are rather than deleted.
    """
    with store.reader() as reader:
        plan = Plan(reader.serial, 0)
        present: set[bytes] = set()
        for key, value in reader.entries():
            plan.size += 1
            new = desired.get(key)
            if new is None:
                if key not in keep:
                    plan.deletes.append(key)
                continue
            present.add(key)
            if new != value:
                plan.changes[key] = new
    if not present:
        plan.adds = dict(desired)  # an empty store (a first sync): no per-key test
    elif len(present) != len(desired):
        plan.adds = {key: value for key, value in desired.items() if key not in present}
    return plan


def partial_plan(
    store: ZoneStore, updates: Mapping[bytes, bytes | None], size: int | None = None
) -> Plan:
    """Diff a few keys (None: the key should not exist); costs one read per key."""
    plan = Plan(store.serial(), size if size is not None else 0)
    with store.reader() as reader:
        get = reader.get
        for key, new in updates.items():
            old = get(key)
            if new is None:
                if old is not None:
                    plan.deletes.append(key)
            elif old is None:
                plan.adds[key] = new
            elif old != new:
                plan.changes[key] = new
    return plan


def apply(store: ZoneStore, plan: Plan) -> int:
    """Commit the plan as one new serial; returns the serial now served."""
    if plan.empty:
        return store.serial()
    with store.transaction() as txn:
        txn.put_many(list(plan.adds.items()))  # one C loop when the store is empty
        for key, value in plan.changes.items():
            txn.put(key, value)
        for key in plan.deletes:
            txn.delete(key)
    return txn.serial_after

