"""The ``zonepub`` command: publish data into the zone stores that zoned serves."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from publisher.records import RecordError, all_entries, read_jsonl
from zoned.config import ConfigError, ZoneConfig, load_zones
from zoned.store import StoreError, ZoneStore


def _zone(config_dir: Path, name: str) -> ZoneConfig:
    wanted = name.lower().rstrip(".")
    for zone in load_zones(config_dir):
        if zone.origin == wanted:
            return zone
    raise SystemExit(f"zonepub: no zone {name!r} in {config_dir}")


def store_kind(config: ZoneConfig) -> str:
    """The store key layout a zone uses: networks for ip zones, names otherwise."""
    return "ip" if config.scheme.kind == "ip" else "name"


def cmd_import(args: argparse.Namespace) -> int:
    config = _zone(args.config, args.zone)
    entries: dict[bytes, bytes] = {}
    for path in args.files:
        entries.update(all_entries(config, read_jsonl(path)))
    store = ZoneStore.create_or_open(config.store, store_kind(config))  # type: ignore[arg-type]
    try:
        stale = [key for key, _ in store.entries() if key not in entries] if args.replace else []
        with store.transaction() as txn:
            before = txn.serial_before
            added = changed = deleted = 0
            for key, value in entries.items():
                old = txn.get(key)
                if old != value:
                    txn.put(key, value)
                    added += old is None
                    changed += old is not None
            for key in stale:
                deleted += txn.delete(key)
        after = txn.serial_after
    finally:
        store.close()
    print(
        f"zone {config.origin}: {added} added, {changed} changed, {deleted} deleted; "
        f"serial {before} -> {after}"
    )
    return 0


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="zonepub", description=__doc__)
    parser.add_argument("-c", "--config", type=Path, default=Path("zones"),
                        help="directory of zone files (*.yaml); default: zones")
    commands = parser.add_subparsers(dest="command", required=True)
    imp = commands.add_parser("import", help="publish token records from JSON-lines files")
    imp.add_argument("--zone", required=True, help="the zone to publish into")
    imp.add_argument("--replace", action="store_true",
                     help="delete every published token that the files do not list")
    imp.add_argument("files", nargs="+", type=Path, help='JSON lines: {"token": ..., "n": ...}')
    imp.set_defaults(func=cmd_import)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        return int(args.func(args))
    except (ConfigError, RecordError, StoreError, OSError) as exc:
        print(f"zonepub: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
