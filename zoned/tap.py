"""The twistd plugin's options and service factory (``twistd zoned -c zones/``).

``makeService`` is pure apart from reading the zone files, so it is tested without
binding ports.  The options are :data:`zoned.options.TABLE`, from which the ``zoned``
command (:mod:`zoned.cli`) builds its parser too.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from twisted.python import usage

from zoned import options as table
from zoned.connections import LimitsError, TcpLimits
from zoned.service import ZonedService


class Options(usage.Options):
    """The options of ``twistd zoned``: the rows of :data:`zoned.options.TABLE`."""

    optParameters = [
        [row.flag, row.short, row.default, row.help, row.kind] for row in table.TABLE
    ]

    def postOptions(self) -> None:
        try:
            values = {row.field: self[row.flag] for row in table.TABLE}
            self.limits: TcpLimits = table.limits(values)
        except LimitsError as exc:
            raise usage.UsageError(str(exc)) from exc


def makeService(options: Options, reactor: Any = None) -> ZonedService:
    """Build the service; the zone files are loaded now, so errors surface at start."""
    if reactor is None:
        from twisted.internet import reactor as default_reactor

        reactor = default_reactor
    return ZonedService(
        Path(options["config"]),
        table.addresses([str(options["listen"])]),
        int(options["port"]),
        reactor,
        install_signals=True,
        limits=options.limits,
    )
