"""Log lines an outsider can cause, bounded: a few per kind a minute, then one summary.

A spoofed datagram, a dribbling TCP client or a damaged store would otherwise write a
line (or a traceback) per packet: megabytes of log for a flood, and a disk that fills.
Every such line goes through one :class:`LogLimiter` under a *kind* (a short stable
name such as ``"tcp-framing"`` or ``"store-damage"``): the first ``burst`` lines of a
kind in each window are written, the rest are only counted, and the next line of that
kind after the window (or :meth:`LogLimiter.flush`, which the service calls from its
refresh loop) writes ``suppressed N similar lines``.  Counts are kept for every kind,
written or not, so metrics can report what the log left out.

Lines that only the operator can cause (start-up, reloads, configuration errors) do not
need it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

WINDOW = 60.0  # seconds
BURST = 5  # lines of one kind written per window


@dataclass
class KindCounts:
    """What happened to one kind of line: seen in all, and how many were not written."""

    seen: int = 0
    suppressed: int = 0
    # The current window: when it opened, lines written in it, lines held back since.
    window_start: float = 0.0
    written: int = 0
    held: int = 0
    logger: logging.Logger | None = None
    level: int = logging.INFO


class LogLimiter:
    """Writes at most ``burst`` lines of each kind per ``window`` seconds."""

    def __init__(self, burst: int = BURST, window: float = WINDOW,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.burst = burst
        self.window = window
        self.clock = clock
        self.kinds: dict[str, KindCounts] = {}

    def log(self, logger: logging.Logger, kind: str, level: int, msg: str, *args: object,
            exc_info: bool = False) -> bool:
        """Write the line unless its kind is over the limit; True if it was written."""
        counts = self.kinds.get(kind)
        if counts is None:
            counts = self.kinds[kind] = KindCounts(window_start=self.clock())
        counts.seen += 1
        counts.logger, counts.level = logger, level
        now = self.clock()
        if now - counts.window_start >= self.window:
            self._close_window(kind, counts, now)
        if counts.written >= self.burst:
            counts.held += 1
            counts.suppressed += 1
            return False
        counts.written += 1
        logger.log(level, msg, *args, exc_info=exc_info)
        return True

    def flush(self) -> None:
        """Write the summary of every kind whose window has ended with lines held back."""
        now = self.clock()
        for kind, counts in self.kinds.items():
            if counts.held and now - counts.window_start >= self.window:
                self._close_window(kind, counts, now)

    def _close_window(self, kind: str, counts: KindCounts, now: float) -> None:
        if counts.held and counts.logger is not None:
            counts.logger.log(counts.level, "suppressed %d similar lines (%s) in the last %.0f s",
                              counts.held, kind, now - counts.window_start)
        counts.window_start = now
        counts.written = 0
        counts.held = 0

    def suppressed(self) -> dict[str, int]:
        """Lines not written so far, by kind (for metrics)."""
        return {kind: counts.suppressed for kind, counts in self.kinds.items()}


# The process's limiter: every module that logs on an outsider's behalf uses this one, so
# one flush and one set of counts cover them all.
LIMITER = LogLimiter()


def limited(logger: logging.Logger, kind: str, level: int, msg: str, *args: object,
            exc_info: bool = False) -> bool:
    """:meth:`LogLimiter.log` on the process's limiter."""
    return LIMITER.log(logger, kind, level, msg, *args, exc_info=exc_info)
