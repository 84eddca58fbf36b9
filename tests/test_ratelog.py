"""The limiter on log lines an outsider can cause, driven by a fake clock."""

from __future__ import annotations

import logging

import pytest

from zoned.ratelog import LogLimiter

log = logging.getLogger("test.ratelog")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_kind_writes_its_burst_then_counts_the_rest(caplog: pytest.LogCaptureFixture) -> None:
    """Only the first lines of a kind in a window are written; every one is counted."""
    clock = Clock()
    limiter = LogLimiter(burst=3, window=60, clock=clock)
    with caplog.at_level(logging.INFO, logger="test.ratelog"):
        written = [limiter.log(log, "junk", logging.INFO, "line %d", i) for i in range(1000)]
    assert written.count(True) == 3
    assert [r.getMessage() for r in caplog.records] == ["line 0", "line 1", "line 2"]
    assert limiter.suppressed() == {"junk": 997}
    assert limiter.kinds["junk"].seen == 1000


def test_the_next_window_opens_with_a_summary(caplog: pytest.LogCaptureFixture) -> None:
    """After the window, one line says how many were left out, and lines flow again."""
    clock = Clock()
    limiter = LogLimiter(burst=2, window=60, clock=clock)
    with caplog.at_level(logging.INFO, logger="test.ratelog"):
        for _ in range(10):
            limiter.log(log, "junk", logging.WARNING, "x")
        clock.now += 60
        assert limiter.log(log, "junk", logging.WARNING, "y")
    messages = [r.getMessage() for r in caplog.records]
    assert messages == ["x", "x", "suppressed 8 similar lines (junk) in the last 60 s", "y"]
    assert caplog.records[2].levelno == logging.WARNING


def test_flush_writes_summaries_of_ended_windows_only(caplog: pytest.LogCaptureFixture) -> None:
    """A kind that went quiet still gets its summary, once, from the periodic flush."""
    clock = Clock()
    limiter = LogLimiter(burst=1, window=60, clock=clock)
    with caplog.at_level(logging.INFO, logger="test.ratelog"):
        for kind in ("a", "a", "a", "b"):
            limiter.log(log, kind, logging.INFO, kind)
        limiter.flush()  # windows still open: nothing yet
        clock.now += 61
        limiter.flush()
        limiter.flush()  # summarised already: not again
    messages = [r.getMessage() for r in caplog.records]
    assert messages == ["a", "b", "suppressed 2 similar lines (a) in the last 61 s"]


def test_kinds_are_limited_independently() -> None:
    """A flood of one kind never silences another."""
    limiter = LogLimiter(burst=1, window=60, clock=Clock())
    for _ in range(100):
        limiter.log(log, "flood", logging.INFO, "f")
    assert limiter.log(log, "rare", logging.ERROR, "r")
