"""A real ``zoned`` process on a free loopback port, for end-to-end tests."""

from __future__ import annotations

import resource
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import dns.exception
import dns.message
import dns.query

from tests.support.polling import TimedOut, poll
from tests.support.ports import free_port
from tests.support.processes import stop
from tests.support.repo import REPO

IP = "bl.example.net"


@dataclass
class Zoned:
    process: subprocess.Popen[bytes]
    port: int
    zones: Path
    log: Path

    def ask(self, qname: str, rdtype: str = "A", **kw: object) -> dns.message.Message:
        query = dns.message.make_query(qname, rdtype, **kw)  # type: ignore[arg-type]
        return dns.query.udp(query, "127.0.0.1", port=self.port, timeout=2)

    def stop(self) -> int:
        return stop(self.process)


def start_zoned(zones: Path, log: Path, *extra: str, nofile: int | None = None) -> Zoned:
    """zoned on a free port; ``nofile`` runs it under that descriptor limit (soft and hard)."""
    port = free_port()

    def limit() -> None:
        if nofile is not None:
            resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))

    process = subprocess.Popen(
        [sys.executable, "-m", "zoned.cli", "-c", str(zones), "--listen", "127.0.0.1",
         "--port", str(port), "--log-file", str(log), *extra],
        cwd=REPO, preexec_fn=limit if nofile is not None else None,
    )
    server = Zoned(process, port, zones, log)

    def answered() -> bool | None:
        if process.poll() is not None:
            raise RuntimeError(f"zoned exited with {process.returncode}: {log.read_text()}")
        try:
            server.ask(f"2.0.0.127.{IP}")
            return True
        except (dns.exception.Timeout, OSError):
            return None

    try:
        poll(answered, "zoned to answer", 15)
    except TimedOut:
        server.stop()
        raise RuntimeError("zoned did not answer in 15 s") from None
    return server
