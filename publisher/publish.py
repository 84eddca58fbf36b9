"""Publishing into a zone: plan the entries against the store, check the plan, commit.

:func:`publish` is the library call ("publish these records into this zone") for
records made in code (the benchmarks, the tests' samples).  ``zonepub import`` reads its
files into entries first (JSON lines with publisher.records, rbldnsd datasets with
:func:`import_rbldnsd`) and commits them with :func:`write_entries`.  Either way the
plan is computed before anything is written, checked against the zone's delete guard,
and committed as one serial.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from publisher.entries import RecordError, TokenRecord, record_entries
from publisher.plan import (
    DeleteGuard,
    Plan,
    apply,
    full_plan,
    partial_plan,
)
from publisher.rbldnsd import DatasetKind, dataset_entries
from publisher.settings import source_settings
from zoned.config import ZoneConfig
from zoned.store import Kind, ZoneStore


@dataclass(frozen=True)
class Written:
    """What writing entries did: the plan, and the serials before and after it."""

    plan: Plan
    serial_before: int
    serial_after: int
    applied: bool  # False for a dry run (and serial_after == serial_before)


def zone_guard(config: ZoneConfig) -> DeleteGuard:
    """The delete guard of a zone: its ``source:`` limits, else the defaults."""
    settings = source_settings(config)
    if settings is None:
        return DeleteGuard()
    return DeleteGuard(settings.max_delete, settings.max_delete_min)


def write_entries(
    config: ZoneConfig,
    entries: Mapping[bytes, bytes],
    *,
    replace: bool,
    guard: DeleteGuard | None = None,
    force: bool = False,
    dry_run: bool = False,
) -> Written:
    """Plan writing ``entries``, check the plan, commit it as one serial (``zonepub import``).

    ``replace`` deletes every key that ``entries`` does not hold; such a plan is checked
    against ``guard`` (default: :func:`zone_guard`) and raises PlanRefused, having
    written nothing, unless ``force``.  A dry run neither writes nor creates the store.
    """
    if guard is None:
        guard = zone_guard(config)
    if dry_run:
        kind: Kind = "ip" if config.scheme.kind == "ip" else "name"
        store = ZoneStore.open_readonly(config.store, kind=kind)
        if store is None:  # nothing published yet: the plan adds everything
            plan = Plan(0, 0, adds=dict(entries))
            plan.check(guard, force)
            return Written(plan, 0, 0, False)
    else:
        store = ZoneStore.for_zone(config)
    try:
        if replace:
            plan = full_plan(store, entries)
        else:
            plan = partial_plan(store, entries, store.count())
        plan.check(guard, force)
        if dry_run:
            return Written(plan, plan.serial, plan.serial, False)
        return Written(plan, plan.serial, apply(store, plan), True)
    finally:
        store.close()


def publish(
    config: ZoneConfig,
    records: Iterable[TokenRecord],
    *,
    replace: bool = False,
    guard: DeleteGuard | None = None,
    force: bool = False,
    dry_run: bool = False,
) -> Written:
    """Publish ``records`` into the zone's store as one serial (see :func:`write_entries`).

    Raises RecordError listing every record that cannot be published, having written
    nothing.
    """
    problems: list[str] = []
    entries = record_entries(config, records, problems)
    if problems:
        raise RecordError("\n".join(problems))
    return write_entries(config, entries, replace=replace, guard=guard, force=force,
                         dry_run=dry_run)


@dataclass(frozen=True)
class ImportResult:
    """What an import read and committed."""

    zone: str
    kind: DatasetKind
    entries: int  # dataset entries read, exclusions included
    keys: int  # store keys they became
    added: int
    changed: int
    deleted: int
    serial_before: int
    serial_after: int
    notes: tuple[str, ...]  # what could not be imported as rbldnsd serves it
    written: Written


def import_rbldnsd(
    config: ZoneConfig,
    path: Path | Iterable[Path],
    kind: DatasetKind,
    *,
    replace: bool = False,
    guard: DeleteGuard | None = None,
    force: bool = False,
    dry_run: bool = False,
) -> ImportResult:
    """Import rbldnsd dataset files (read as one dataset) into the zone's store.

    Raises :class:`publisher.rbldnsd.DatasetError` listing every bad line, having written
    nothing; the plan is checked and committed as :func:`write_entries` does (PlanRefused
    past the delete guard).
    """
    paths = [path] if isinstance(path, Path) else list(path)
    entries, read, notes = dataset_entries(config, paths, kind)
    written = write_entries(config, entries, replace=replace, guard=guard, force=force,
                            dry_run=dry_run)
    plan = written.plan
    return ImportResult(config.origin, kind, read, len(entries), len(plan.adds),
                        len(plan.changes), len(plan.deletes), written.serial_before,
                        written.serial_after, tuple(notes), written)
