"""The ``zoned`` command: serve every zone in a directory of zone files."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from pathlib import Path
from typing import Any

from zoned import logs
from zoned.config import ConfigError, load_zones
from zoned.connections import OPTIONS, LimitsError, TcpLimits, limits_from
from zoned.errors import ZonedError

log = logging.getLogger("zoned")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="zoned", description="Authoritative DNS server for repzone reputation zones."
    )
    parser.add_argument("-c", "--config", type=Path, default=Path("zones"),
                        help="directory of zone files (*.yaml); default: zones")
    parser.add_argument("-t", "--test", action="store_true",
                        help="check the zone files, list every error, and exit")
    parser.add_argument("--listen", action="append", default=None,
                        help="address to listen on (repeatable, or comma-separated); "
                        "default 127.0.0.1")
    parser.add_argument("--port", type=int, default=53, help="UDP and TCP port; default 53")
    defaults = TcpLimits()
    for option in OPTIONS:
        parser.add_argument(f"--{option.flag}", dest=option.field, type=option.kind,
                            default=None, metavar="N" if option.kind is int else "S",
                            help=f"{option.help}; default {getattr(defaults, option.field)}")
    parser.add_argument("--log-file", type=Path, default=None,
                        help="log to this file (SIGUSR1 reopens it) instead of stderr")
    parser.add_argument("--log-level", default="info",
                        choices=["debug", "info", "warning", "error"])
    return parser.parse_args(argv)


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

    addresses = [a.strip() for item in (args.listen or ["127.0.0.1"]) for a in item.split(",")]
    try:
        limits = limits_from({option.field: getattr(args, option.field) for option in OPTIONS})
    except LimitsError as exc:
        log.error("cannot start: %s", exc)
        return 2
    try:
        service = ZonedService(args.config, [a for a in addresses if a], args.port, reactor,
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
