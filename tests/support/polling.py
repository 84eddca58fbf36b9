"""Waiting for something that happens in another process, with a timeout that fails.

A timeout here bounds a hung peer; it does not measure speed.  A test that claims a
speed measures with :func:`until`'s return value and asserts a bound below the timeout.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


class TimedOut(AssertionError):
    """The condition did not hold within the timeout."""


def poll(check: Callable[[], T | None], what: str | Callable[[], str], timeout: float = 30.0,
         interval: float = 0.05) -> T:
    """Call ``check`` until it returns something other than None, and return that.

    Raises :class:`TimedOut` naming ``what`` (or ``what()``, called only then) once
    ``timeout`` seconds have passed.  The default is generous on purpose: it bounds a
    hung peer program.
    """
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result is not None:
            return result
        if time.monotonic() > deadline:
            text = what() if callable(what) else f"gave up after {timeout:g} s waiting for {what}"
            raise TimedOut(text)
        time.sleep(interval)


def until(condition: Callable[[], bool], what: str | Callable[[], str], timeout: float = 30.0,
          interval: float = 0.05) -> float:
    """Wait until ``condition()`` is true; return the seconds it took (see :func:`poll`)."""
    start = time.monotonic()
    poll(lambda: True if condition() else None, what, timeout, interval)
    return time.monotonic() - start
