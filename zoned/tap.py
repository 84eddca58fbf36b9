"""The twistd plugin's options and service factory (``twistd zoned -c zones/``).

``makeService`` is pure apart from reading the zone files, so it is tested without
binding ports; the ``zoned`` command uses the same two pieces.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from twisted.python import usage

from zoned.protocol import DEFAULT_IDLE_TIMEOUT
from zoned.service import ZonedService


class Options(usage.Options):
    """Command-line options shared by ``zoned`` and ``twistd zoned``."""

    optParameters = [
        ["config", "c", "zones", "directory of zone files (*.yaml)"],
        ["listen", "l", "127.0.0.1", "addresses to listen on, comma-separated"],
        ["port", "p", "53", "UDP and TCP port", int],
        ["idle-timeout", None, str(DEFAULT_IDLE_TIMEOUT), "TCP idle timeout (seconds)", float],
    ]


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
        idle_timeout=float(options["idle-timeout"]),
        install_signals=True,
    )

