"""The twistd plugin's options and service factory (``twistd zoned -c zones/``).

``makeService`` is pure apart from reading the zone files, so it is tested without
binding ports; the ``zoned`` command uses the same two pieces.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from twisted.python import usage

from zoned.connections import OPTIONS, LimitsError, TcpLimits, limits_from
from zoned.service import ZonedService


class Options(usage.Options):
    """Command-line options shared by ``zoned`` and ``twistd zoned``."""

    optParameters = [
        ["config", "c", "zones", "directory of zone files (*.yaml)"],
        ["listen", "l", "127.0.0.1", "addresses to listen on, comma-separated"],
        ["port", "p", "53", "UDP and TCP port", int],
    ] + [
        [option.flag, None, getattr(TcpLimits(), option.field), option.help, option.kind]
        for option in OPTIONS
    ]

    def postOptions(self) -> None:
        try:
            self.limits = limits_from({o.field: self[o.flag] for o in OPTIONS})
        except LimitsError as exc:
            raise usage.UsageError(str(exc)) from exc


def makeService(options: Options, reactor: Any = None) -> ZonedService:
    """Build the service; the zone files are loaded now, so errors surface at start."""
    if reactor is None:
        from twisted.internet import reactor as default_reactor

        reactor = default_reactor
    addresses = [a.strip() for a in str(options["listen"]).split(",") if a.strip()]
    return ZonedService(
        Path(options["config"]),
        addresses,
        int(options["port"]),
        reactor,
        install_signals=True,
        limits=options.limits,
    )

