"""The ``zonepub`` command: publish data into the zone stores that zoned serves."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from client import names
from publisher.records import RecordError, load_entries
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
    entries = load_entries(config, args.files)
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


def cmd_names(args: argparse.Namespace) -> int:
    """Print the names a token is published under, ready for ``dig``."""
    config = _zone(args.config, args.zone)
    if config.scheme.kind == "ip":
        network = names.parse_network(args.token)
        if network.num_addresses != 1:
            raise SystemExit(f"zonepub: {args.token} is a network: query any address inside it")
        owners: tuple[str, ...] = (names.reverse_ip(network.network_address),)
    else:
        owners = names.owner_names(config.scheme, args.token)
    for owner in owners:
        print(f"{owner}.{config.origin}")
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
    show = commands.add_parser("names", help="print the owner names of a token under a zone")
    show.add_argument("--zone", required=True, help="the zone")
    show.add_argument("token", help="an IP address, a name or any token, by the zone's scheme")
    show.set_defaults(func=cmd_names)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        return int(args.func(args))
    except (ConfigError, RecordError, StoreError, OSError, names.OwnerNameError) as exc:
        print(f"zonepub: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
