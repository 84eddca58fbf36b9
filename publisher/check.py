"""``zonepub check``: scan zone stores for damage, and upgrade old layouts on request.

zoned refuses a damaged store and never serves a value that fails its checksum, but it
only finds a damaged value when someone asks for it.  This command reads every value of
every database of a zone's store (or of every zone's), the data file's meta pages and
length, and the journal against its index, and prints what it found (see
:func:`zoned.store.inspect`).

Exit status: 0 when every store checked is sound (a store not created yet is fine),
4 when any is damaged or of a layout zoned does not serve, 1 for other errors.  A
damaged store is not repaired in place: move it away and publish again (``zonepub sync
--once`` or ``zonepub import``); zoned picks the new store up within a second.
``--upgrade`` first opens each store for writing, which upgrades a layout-1 store in
one transaction.
"""

from __future__ import annotations

import argparse

from publisher.export import find_zone
from zoned.config import ZoneConfig, load_zones
from zoned.store import Inspection, ZoneStore, inspect

DAMAGED = 4  # exit status when a store is damaged or outdated


def cmd_check(args: argparse.Namespace) -> int:
    configs = ([find_zone(args.config, zone) for zone in args.zone] if args.zone
               else load_zones(args.config))
    status = 0
    for config in configs:
        if args.upgrade and (config.store / "data.mdb").exists():
            ZoneStore.for_zone(config).close()  # StoreError (damage) goes to the caller
        result = inspect(config.store)
        print(report(config, result))
        if not result.sound:
            status = DAMAGED
    return status


def report(config: ZoneConfig, result: Inspection) -> str:
    """One line for a sound store, or a line per problem after a summary."""
    if not result.exists:
        return f"zone {config.origin}: store {config.store} not created yet"
    counts = ", ".join(f"{result.values.get(db, 0):,} {db}" for db in ("names", "journal"))
    if result.sound:
        return (f"zone {config.origin}: store {config.store} sound; serial {result.serial}; "
                f"{counts} values checked")
    lines = [f"zone {config.origin}: store {config.store} DAMAGED "
             f"({len(result.problems)} found):"]
    lines += [f"  {problem}" for problem in result.problems]
    return "\n".join(lines)
