"""Progress of a long scan: a live line on a terminal, a periodic log line otherwise."""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable
from typing import TextIO

log = logging.getLogger(__name__)


class Progress:
    """Counts keys; on a terminal redraws one line, elsewhere logs every ``interval`` s."""

    def __init__(self, what: str, stream: TextIO | None = None, interval: float = 5.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.what = what
        self.stream = stream if stream is not None else sys.stderr
        self.live = self.stream.isatty()
        self.interval = interval if not self.live else 0.2
        self.clock = clock
        self.start = self.last = clock()
        self.count = 0

    def add(self, n: int) -> None:
        self.count += n
        now = self.clock()
        if now - self.last < self.interval:
            return
        self.last = now
        line = self._line(now)
        if self.live:
            self.stream.write(f"\r{line}")
            self.stream.flush()
        else:
            log.info("%s", line)

    def done(self) -> float:
        """Finish the line; returns the rate in keys per second."""
        now = self.clock()
        if self.live and self.count:
            self.stream.write(f"\r{self._line(now)}\n")
            self.stream.flush()
        elapsed = max(now - self.start, 1e-9)
        return self.count / elapsed

    def _line(self, now: float) -> str:
        elapsed = max(now - self.start, 1e-9)
        rate = self.count / elapsed
        return f"{self.what}: {self.count:,} keys in {elapsed:.1f} s ({rate:,.0f}/s)"
