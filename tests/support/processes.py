"""Finding the peer programs the tests run, and stopping the processes they start."""

from __future__ import annotations

import shutil
import signal
import subprocess
from pathlib import Path
from typing import Any

import pytest

#: Where Debian puts programs that are not on a test runner's PATH.
_SBIN = ("/usr/sbin", "/usr/lib/postfix/sbin")

#: The Debian package of each peer program whose package is not named like it
#: (scripts/setup.sh installs them).
PACKAGES = {"knotd": "knot", "knotc": "knot", "kdig": "knot-dnsutils",
            "kzonecheck": "knot-dnssecutils", "nsd-control": "nsd",
            "named-checkzone": "bind9-utils", "rspamc": "rspamd", "rspamadm": "rspamd",
            "unbound-checkconf": "unbound"}


def tool(name: str, package: str | None = None) -> str:
    """Path of a Debian program the test needs, or skip naming the package to install.

    ``package`` defaults to the one :data:`PACKAGES` names, else the program's name.
    """
    package = package or PACKAGES.get(name, name)
    for candidate in (shutil.which(name), *(f"{directory}/{name}" for directory in _SBIN)):
        if candidate and Path(candidate).exists():
            return candidate
    pytest.skip(f"{name} is not installed (Debian package {package})")


def stop(process: subprocess.Popen[Any], timeout: float = 10.0) -> int:
    """SIGTERM a process we started, SIGKILL it if it lingers; its exit status."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    return process.returncode


def log_tail(path: Path, lines: int = 10) -> str:
    """The last lines of a log file, for a failure message."""
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"
