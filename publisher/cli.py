"""The ``zonepub`` command: publish data into the zone stores that zoned serves."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

from listformat import names
from publisher import learn as learning
from publisher.check import cmd_check
from publisher.describe import plan_text
from publisher.errors import PublisherError
from publisher.export import export_zonefile, find_zone
from publisher.live import Runner
from publisher.plan import PlanRefused
from publisher.progress import Progress
from publisher.publish import Written, import_rbldnsd, write_entries
from publisher.rbldnsd import DATASET_KINDS, export_rbldnsd
from publisher.records import load_entries
from publisher.settings import source_settings
from publisher.sync import ZoneSync
from zoned.config import ConfigError, ZoneConfig, load_zones
from zoned.sourceconf import BUCKETS_PREFIX
from zoned.store import StoreError


def cmd_import(args: argparse.Namespace) -> int:
    """Publish JSON-lines records through the plan and its delete guard."""
    config = find_zone(args.config, args.zone)
    entries = load_entries(config, args.files)
    try:
        written = write_entries(config, entries, replace=args.replace, force=args.force,
                                dry_run=args.dry_run)
    except PlanRefused as exc:
        return refused(config, exc)
    print(written_line(config, written))
    return 0


def refused(config: ZoneConfig, exc: PlanRefused) -> int:
    """Say why a plan was refused, as every writing command does; exit status 3."""
    print(f"zonepub: zone {config.origin}: refused: {exc}", file=sys.stderr)
    return 3


def written_line(config: ZoneConfig, written: Written) -> str:
    """What an import did, or for a dry run the plan it would apply."""
    plan = written.plan
    if not written.applied:
        return plan_text(config, plan)
    return (f"zone {config.origin}: {len(plan.adds)} added, {len(plan.changes)} changed, "
            f"{len(plan.deletes)} deleted; serial {written.serial_before} -> "
            f"{written.serial_after}")


def cmd_import_any(args: argparse.Namespace) -> int:
    """Run ``zonepub import``: ``--format rbldnsd`` as one rbldnsd dataset, else JSON lines."""
    if args.format == "rbldnsd":
        return cmd_import_rbldnsd(args)
    if args.dataset_type is not None:
        raise SystemExit("zonepub: --dataset-type goes with --format rbldnsd")
    return cmd_import(args)


def cmd_import_rbldnsd(args: argparse.Namespace) -> int:
    """Run ``zonepub import --format rbldnsd``; notes go to standard error."""
    if args.dataset_type is None:
        raise SystemExit(f"zonepub: --format rbldnsd needs --dataset-type "
                         f"({', '.join(DATASET_KINDS)})")
    config = find_zone(args.config, args.zone)
    try:
        result = import_rbldnsd(config, args.files, args.dataset_type, replace=args.replace,
                                force=args.force, dry_run=args.dry_run)
    except PlanRefused as exc:
        return refused(config, exc)
    for note in result.notes:
        print(f"zonepub: note: {note}", file=sys.stderr)
    if not result.written.applied:
        print(plan_text(config, result.written.plan))
        return 0
    print(
        f"zone {result.zone}: {result.entries} {result.kind} entries as {result.keys} names: "
        f"{result.added} added, {result.changed} changed, {result.deleted} deleted; "
        f"serial {result.serial_before} -> {result.serial_after}"
    )
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    """Run ``zonepub export``; warnings go to standard error."""
    config = find_zone(args.config, args.zone)
    export = export_zonefile if args.format == "zonefile" else export_rbldnsd
    warnings: list[str] = []
    if args.output is None:
        count = export(config, sys.stdout, warnings=warnings)
    else:
        count = write_atomically(args.output, lambda out: export(config, out, warnings=warnings))
    for warning in warnings:
        print(f"zonepub: warning: {warning}", file=sys.stderr)
    where = "standard output" if args.output is None else str(args.output)
    unit = "records" if args.format == "zonefile" else "dataset lines"
    print(f"zone {config.origin}: {count} {unit} written to {where}, "
          f"{len(warnings)} warnings", file=sys.stderr)
    return 0


def write_atomically(path: Path, write: Callable[[TextIO], int]) -> int:
    """Write a file through a temporary file renamed over it, as rbldnsd asks (rbldnsd(8)).

    Readers never see half a file, and a failed export leaves the old one in place.
    """
    directory = path.parent if str(path.parent) else Path(".")
    fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="ascii", newline="\n") as out:
            count = write(out)
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return count


def cmd_names(args: argparse.Namespace) -> int:
    """Print the names a token is published under, ready for ``dig``."""
    config = find_zone(args.config, args.zone)
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


def _syncs(args: argparse.Namespace) -> list[ZoneSync]:
    wanted = {z.lower().rstrip(".") for z in args.zone or []}
    syncs = []
    for config in load_zones(args.config):
        if wanted and config.origin not in wanted:
            continue
        settings = source_settings(config, args.redis)
        if settings is None:
            if config.origin in wanted:
                raise SystemExit(f"zonepub: zone {config.origin} has no source section")
            continue
        syncs.append(ZoneSync(config, settings))
    if not syncs:
        raise SystemExit(f"zonepub: no zone with a source in {args.config}")
    return syncs


def cmd_sync(args: argparse.Namespace) -> int:
    """Publish from Redis: once (``--once``, ``--dry-run``) or continuously."""
    syncs = _syncs(args)
    status = 0
    try:
        if args.once or args.dry_run:
            for sync in syncs:
                progress = Progress(f"zone {sync.config.origin}")
                try:
                    result = sync.full(dry_run=args.dry_run, force=args.force,
                                       progress=progress)
                except PlanRefused as exc:
                    status = refused(sync.config, exc)
                    continue
                rate = progress.done()
                plan = result.plan
                if args.dry_run:
                    print(plan_text(sync.config, plan))
                else:
                    print(f"zone {sync.config.origin}: {plan.summary()}; serial {result.serial}; "
                          f"{result.stats.keys:,} keys in {result.seconds:.1f} s "
                          f"({rate:,.0f}/s); {result.stats.line()}")
            return status
        runner = Runner(syncs, force=args.force)  # the first full pass ignores max_delete
        signal.signal(signal.SIGTERM, lambda *_: runner.stop())
        signal.signal(signal.SIGINT, lambda *_: runner.stop())
        runner.run()
        return 0
    finally:
        for sync in syncs:
            sync.close()


def build_parser() -> argparse.ArgumentParser:
    """The whole ``zonepub`` command line: every subcommand, option and default, here."""
    parser = argparse.ArgumentParser(prog="zonepub", description=__doc__)
    parser.add_argument("-c", "--config", type=Path, default=Path("zones"),
                        help="directory of zone files (*.yaml); default: zones")
    parser.add_argument("--log-level", default="info",
                        choices=["debug", "info", "warning", "error"])
    commands = parser.add_subparsers(dest="command", required=True)

    imp = commands.add_parser("import", help="publish token records from JSON-lines files")
    imp.add_argument("--zone", required=True, help="the zone to publish into")
    imp.add_argument("--replace", action="store_true",
                     help="delete every published token that the files do not list")
    imp.add_argument("--dry-run", action="store_true",
                     help="show what the import would change; write nothing")
    imp.add_argument("--force", action="store_true",
                     help="apply a --replace that deletes more than the zone's max_delete")
    imp.add_argument("files", nargs="+", type=Path, help='JSON lines: {"token": ..., "n": ...}')
    group = imp.add_argument_group("rbldnsd datasets")
    group.add_argument("--format", choices=("jsonl", "rbldnsd"), default="jsonl",
                       help="jsonl (the default) or rbldnsd (dataset files, see --dataset-type)")
    group.add_argument("--dataset-type", choices=DATASET_KINDS,
                       help="the rbldnsd dataset type of the files (with --format rbldnsd)")
    imp.set_defaults(func=cmd_import_any)

    sync = commands.add_parser("sync", help="publish the zones' Redis sources")
    sync.add_argument("--zone", action="append", help="only this zone (repeatable)")
    sync.add_argument("--once", action="store_true", help="one full sync, then exit")
    sync.add_argument("--dry-run", action="store_true",
                      help="show what a full sync would change; write nothing")
    sync.add_argument("--force", action="store_true",
                      help="apply a plan even if it deletes more than the zone's max_delete "
                      "(continuous mode: the first full pass)")
    sync.add_argument("--redis", help="Redis URL to use instead of the zone files' source.redis")
    sync.set_defaults(func=cmd_sync)

    learn = commands.add_parser(
        "learn", help="record spam/ham/junk verdicts into Redis (the buckets layout)",
        description=learning.__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    # SUPPRESS keeps zonepub's own -c when it is given before "learn".
    learn.add_argument("-c", "--config", type=Path, default=argparse.SUPPRESS,
                       help="directory of zone files, for --zone (default: zones)")
    learn.add_argument("--zone", help="take Redis URL, prefix and buckets from this zone's source")
    learn.add_argument("--redis", help="Redis URL (overrides the zone's)")
    learn.add_argument("--prefix", help=f"key prefix (default: the zone's, else {BUCKETS_PREFIX})")
    learn.add_argument("--file", type=Path, help="verdicts, one per line ('-': standard input)")
    learn.add_argument("--format", choices=("jsonl", "csv"),
                       help="format of --file (default: csv for *.csv, else jsonl)")
    learn.add_argument("--batch", type=int, default=learning.DEFAULT_BATCH,
                       help="verdicts per MULTI/EXEC transaction "
                       f"(default {learning.DEFAULT_BATCH})")
    learn.add_argument("--spam-score", type=float, default=learning.SPAM_SCORE,
                       help="a numeric verdict this high is spam "
                       f"(default {learning.SPAM_SCORE:g})")
    learn.add_argument("--junk-score", type=float, default=learning.JUNK_SCORE,
                       help="a numeric verdict this high is junk "
                       f"(default {learning.JUNK_SCORE:g})")
    learn.add_argument("verdict", nargs="*", metavar="KIND VALUE VERDICT",
                       help="one verdict, e.g. ip 192.0.2.1 spam")
    learn.set_defaults(func=learning.run_learn)

    export = commands.add_parser(
        "export", help="write a zone as an RFC 1035 master file or an rbldnsd dataset"
    )
    export.add_argument("--zone", required=True, help="the zone to export")
    export.add_argument("--format", choices=("zonefile", "rbldnsd"), default="zonefile",
                        help="zonefile (RFC 1035, the default) or rbldnsd (combined dataset)")
    export.add_argument("-o", "--output", type=Path,
                        help="file to write (replaced atomically); default: standard output")
    export.set_defaults(func=cmd_export)

    check = commands.add_parser("check", help="scan zone stores for damage (exit 4 if any)")
    check.add_argument("--zone", action="append",
                       help="only this zone (repeatable); default: every zone")
    check.add_argument("--upgrade", action="store_true",
                       help="upgrade a store of an older layout first (opens it for writing)")
    check.set_defaults(func=cmd_check)

    show = commands.add_parser("names", help="print the owner names of a token under a zone")
    show.add_argument("--zone", required=True, help="the zone")
    show.add_argument("token", help="an IP address, a name or any token, by the zone's scheme")
    show.set_defaults(func=cmd_names)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=getattr(logging, args.log_level.upper()), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        return int(args.func(args))
    except (PublisherError, ConfigError, StoreError, OSError, names.OwnerNameError) as exc:
        print(f"zonepub: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
