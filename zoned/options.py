"""The serving options, in one table for both front ends: ``zoned`` and ``twistd zoned``.

:mod:`zoned.cli` builds its argparse parser from :data:`TABLE`, and :mod:`zoned.tap`
the twistd plugin's ``optParameters``; both turn the parsed values into the service's
arguments with :func:`addresses` and :func:`limits`.  Each front end adds only what is
its own: ``zoned`` its ``--test`` and logging options (twistd has its own logging).
Nothing here imports Twisted, so ``zoned --test`` does not load it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from zoned.connections import OPTIONS as LIMIT_OPTIONS
from zoned.connections import TcpLimits, limits_from


@dataclass(frozen=True)
class Row:
    """One option: ``--flag`` (and ``-short``) sets ``field``, read with ``kind``."""

    flag: str  # without the leading dashes
    short: str | None
    field: str
    kind: Callable[[str], object]
    default: object
    help: str
    repeatable: bool = False  # zoned takes it repeated and joins the values; twistd the last
    metavar: str | None = None  # zoned's name for the value in --help (default: FIELD)


DEFAULT_LISTEN = "127.0.0.1"

TABLE: tuple[Row, ...] = (
    Row("config", "c", "config", Path, Path("zones"), "directory of zone files (*.yaml)"),
    Row("listen", "l", "listen", str, DEFAULT_LISTEN,
        "addresses to listen on, comma-separated", repeatable=True),
    Row("port", "p", "port", int, 53, "UDP and TCP port"),
) + tuple(
    Row(option.flag, None, option.field, option.kind, getattr(TcpLimits(), option.field),
        option.help, metavar="N" if option.kind is int else "S")
    for option in LIMIT_OPTIONS
)


def addresses(listen: Iterable[str]) -> list[str]:
    """The listening addresses of ``--listen`` values, each comma-separated."""
    return [a.strip() for item in listen for a in item.split(",") if a.strip()]


def limits(values: Mapping[str, object]) -> TcpLimits:
    """The TCP limits of parsed values keyed by field; LimitsError names a bad option."""
    return limits_from({option.field: values[option.field] for option in LIMIT_OPTIONS})
