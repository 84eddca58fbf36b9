"""A real Rspamd 3.4 on loopback for tests: its own small config, scans over HTTP.

``rspamd -c CONFIG -u root -g root -f -i`` in a directory of its own (pid file, caches and
log there, one ``normal`` worker on a free port); the caller gives the body of the
config (modules, DNS, rules).  Scans are posted to ``/checkv2`` with the headers an MTA
passes (``IP``, ``From``, ``Helo``, ``User-Agent``), which is faster than spawning
rspamc and carries the same facts.
"""

from __future__ import annotations

import json
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.support.polling import poll
from tests.support.ports import free_port
from tests.support.processes import stop, tool

AGENT = "repzone-test-mta"  # not "rspamc": the reputation plugin skips rspamc's scans


@dataclass(frozen=True)
class Symbol:
    """One symbol of a scan: its score (weight times multiplier) and options."""

    score: float
    options: tuple[str, ...]


@dataclass
class Rspamd:
    process: subprocess.Popen[bytes]
    port: int
    directory: Path

    @property
    def log(self) -> str:
        return (self.directory / "rspamd.log").read_text(errors="replace")

    def scan(self, message: bytes, *, ip: str, sender: str, helo: str = "mx.example.org",
             headers: Mapping[str, str] | None = None) -> dict[str, Symbol]:
        """The symbols of one scan of ``message`` from ``ip`` with envelope ``sender``."""
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port}/checkv2", data=message, method="POST",
            headers={"IP": ip, "From": sender, "Helo": helo, "User-Agent": AGENT,
                     "Rcpt": "rcpt@example.org", **(headers or {})})
        with urllib.request.urlopen(request, timeout=30) as reply:
            data: dict[str, Any] = json.load(reply)
        if "symbols" not in data:
            raise AssertionError(f"Rspamd did not scan the message: {data}")
        return {name: Symbol(float(sym.get("score", 0.0)), tuple(sym.get("options", ())))
                for name, sym in data["symbols"].items()}


def base_conf(directory: Path, port: int, body: str, *, plugins: Path | None = None) -> str:
    """rspamd.conf: files in ``directory``, one worker on ``port``, then ``body``."""
    (directory / "tld.dat").write_text("net\ncom\norg\ntest\n")
    try_path = f'try_path = "{plugins}/";' if plugins is not None else ""
    return f"""
modules {{ path = "$PLUGINSDIR"; {try_path} }}
logging {{
  type = "file";
  filename = "{directory}/rspamd.log";
  level = "info";
}}
worker "normal" {{ bind_socket = "127.0.0.1:{port}"; count = 1; task_timeout = 20s; }}
{body}
"""


def options_block(directory: Path, dns: str, filters: str = "") -> str:
    """The options section: files in ``directory``, ``dns`` as the dns section's body."""
    return f"""
options {{
  pidfile = "{directory}/rspamd.pid";
  cache_file = "{directory}/symbols.cache";
  hs_cache_dir = "{directory}";
  control_socket = "{directory}/rspamd.sock mode=0600";
  history_file = "{directory}/rspamd.history";
  stats_file = "{directory}/stats.ucl";
  url_tld = "{directory}/tld.dat";
  filters = "{filters}";
  dns {{
{dns}
  }}
}}
"""


def ping(port: int) -> bool | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=2) as reply:
            return reply.read().strip() == b"pong" or None
    except (urllib.error.URLError, OSError):
        return None


@contextmanager
def running_rspamd(directory: Path, conf: str, port: int) -> Iterator[Rspamd]:
    """Rspamd with ``conf`` (see :func:`base_conf`), stopped at the end of the block."""
    binary = tool("rspamd", "rspamd")
    path = directory / "rspamd.conf"
    path.write_text(conf)
    with (directory / "rspamd.out").open("wb") as out:
        process = subprocess.Popen([binary, "-c", str(path), "-u", "root", "-g", "root",
                                    "-f", "-i"], stdout=out, stderr=out, cwd=directory)
        server = Rspamd(process, port, directory)
        try:
            poll(lambda: ping(port) if process.poll() is None else False,
                 f"rspamd in {directory} to start", timeout=60)
            assert process.poll() is None, (directory / "rspamd.out").read_text()
            yield server
        finally:
            stop(process)


def new_port() -> int:
    """A free loopback port for a worker."""
    return free_port()
