"""The ``zoned`` command: serve every zone in a directory of zone files.

Its serving options are :data:`zoned.options.TABLE`, the table ``twistd zoned`` reads
too (:mod:`zoned.tap`); ``--test`` and the logging options are this command's own.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from pathlib import Path
from typing import Any

from zoned import logs, options
from zoned.config import ConfigError, load_zones
from zoned.connections import LimitsError
from zoned.errors import ZonedError

log = logging.getLogger("zoned")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="zoned", description="Authoritative DNS server for repzone reputation zones."
    )
    parser.add_argument("-t", "--test", action="store_true",
                        help="check the zone files, list every error, and exit")
    for row in options.TABLE:
        names = [f"-{row.short}"] if row.short else []
        if row.repeatable:
            # Repeated values are joined; the default applies when none is given.
            parser.add_argument(*names, f"--{row.flag}", dest=row.field, action="append",
                                default=None, help=f"{row.help} (repeatable); "
                                f"default {row.default}")
        else:
            parser.add_argument(*names, f"--{row.flag}", dest=row.field, type=row.kind,
                                default=row.default, metavar=row.metavar,
                                help=f"{row.help}; default {row.default}")
    parser.add_argument("--log-file", type=Path, default=None,
                        help="log to this file (SIGUSR1 reopens it) instead of stderr")
    parser.add_argument("--log-level", default="info",
                        choices=["debug", "info", "warning", "error"])
    args = parser.parse_args(argv)
    if args.listen is None:
        args.listen = [options.DEFAULT_LISTEN]
    return args


def check(config_dir: Path) -> int:
    """``zoned -t``: exit status 0 only if every zone file loads and every existing store
    can be served (its data file and meta pages sound, its layout current); a store not
    created yet is fine.  ``zonepub check`` reads every value."""
    from zoned.store import StoreError, ZoneStore

    try:
        zones = load_zones(config_dir)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 1
    status = 0
    for zone in zones:
        try:
            store = ZoneStore.open_readonly(zone.store)
            if store is not None:
                with store, store.reader():
                    pass
        except StoreError as exc:
            print(f"{zone.file}: zone {zone.origin}: store cannot be served: {exc}",
                  file=sys.stderr)
            status = 1
            continue
        print(f"{zone.file}: zone {zone.origin} OK")
    return status


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.test:
        return check(args.config)
    handler = logs.setup(args.log_file, getattr(logging, args.log_level.upper()))

    from twisted.internet import reactor

    from zoned.service import ZonedService

    try:
        limits = options.limits(vars(args))
    except LimitsError as exc:
        log.error("cannot start: %s", exc)
        return 2
    try:
        service = ZonedService(args.config, options.addresses(args.listen), args.port, reactor,
                               install_signals=True, limits=limits)
    except ZonedError as exc:  # ConfigError, or any other of zoned's building the service
        log.error("cannot start:\n%s", exc)
        return 1
    status = {"code": 0}
    rx: Any = reactor

    def start() -> None:
        try:
            service.startService()
        except Exception as exc:  # noqa: BLE001 - e.g. the port is taken: report and stop
            log.error("cannot start: %s", exc)
            status["code"] = 1
            rx.stop()

    signal.signal(signal.SIGUSR1, lambda *_: rx.callFromThread(logs.reopen, handler))
    rx.callWhenRunning(start)
    rx.addSystemEventTrigger("before", "shutdown", service.stopService)
    rx.run()
    log.info("stopped")
    return status["code"]


if __name__ == "__main__":
    sys.exit(main())
