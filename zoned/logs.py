"""Logging for the daemon: stderr or a file, reopened on SIGUSR1 for log rotation.

Lines are ``time level logger: message`` with ``key=value`` fields in the message, which
both people and log shippers read.  Twisted's own events are routed into the same
handler so there is one stream.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

from twisted.logger import ILogObserver, STDLibLogObserver, globalLogBeginner

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class ReopenableFileHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """A file handler whose file can be closed and opened again after logrotate moved it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        super().__init__(open(path, "a", encoding="utf-8"))  # noqa: SIM115

    def reopen(self) -> None:
        self.acquire()
        try:
            old = self.stream
            self.stream = open(self.path, "a", encoding="utf-8")  # noqa: SIM115
            old.close()
        finally:
            self.release()


def setup(log_file: Path | None, level: int = logging.INFO) -> logging.Handler:
    """Send all logging (ours and Twisted's) to stderr or ``log_file``."""
    handler: logging.Handler
    if log_file is None:
        handler = logging.StreamHandler(sys.stderr)
    else:
        handler = ReopenableFileHandler(log_file)
    handler.setFormatter(logging.Formatter(FORMAT))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    observer: ILogObserver = STDLibLogObserver(name="twisted")  # type: ignore[assignment]
    globalLogBeginner.beginLoggingTo([observer], redirectStandardIO=False)
    return handler


def reopen(handler: logging.Handler) -> None:
    """Reopen the log file (SIGUSR1); a no-op for stderr."""
    if isinstance(handler, ReopenableFileHandler):
        handler.reopen()
        logging.getLogger(__name__).info("log file %s reopened", handler.path)
