"""Other DNS servers on a free loopback port, serving what ``zonepub export`` wrote.

rbldnsd serves the rbldnsd datasets, Knot the master files; both are compared with zoned
(:mod:`tests.support.answers`).
"""

from __future__ import annotations

import os
import pwd
import subprocess
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import dns.exception
import pytest

from tests.support.answers import server_answer
from tests.support.polling import TimedOut, until
from tests.support.ports import free_port
from tests.support.processes import stop, tool


def wait_until_serving(port: int, qname: str, process: subprocess.Popen[bytes],
                       *, tcp: bool) -> None:
    """Wait until the server answers the SOA of ``qname``; fail with its output if it exits."""
    def answers() -> bool:
        if process.poll() is not None:
            output = process.stdout.read().decode(errors="replace") if process.stdout else ""
            pytest.fail(f"server exited with {process.returncode}:\n{output}")
        try:
            server_answer(port, qname, "SOA", tcp=tcp)
            return True
        except (OSError, dns.exception.Timeout):
            return False

    try:
        until(answers, "the server", 15, interval=0.1)
    except TimedOut:
        pytest.fail("server did not answer within 15 s")


@contextmanager
def running(argv: Sequence[str], port: int, qname: str, *, tcp: bool) -> Iterator[None]:
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        wait_until_serving(port, qname, process, tcp=tcp)
        yield
    finally:
        stop(process)
        if process.stdout is not None:
            process.stdout.close()


@contextmanager
def rbldnsd(directory: Path, specs: Sequence[str], ttl: int = 300) -> Iterator[int]:
    """rbldnsd in the foreground on a free loopback port, serving ``ZONE:TYPE:FILE`` specs.

    Files are relative to ``directory``.  As root it must drop privileges (it refuses
    to run as root), so it chroots into ``directory`` and runs as ``rbldns`` (the
    Debian package's user) or ``nobody``; the files must be readable by that user.
    """
    binary = tool("rbldnsd")
    port = free_port()
    argv = [binary, "-n", "-t", str(ttl), "-b", f"127.0.0.1/{port}"]
    if os.geteuid() == 0:
        try:
            user = pwd.getpwnam("rbldns").pw_name
        except KeyError:
            user = "nobody"
        directory.chmod(0o755)
        for path in directory.iterdir():
            path.chmod(0o644)
        argv += ["-u", user, "-r", str(directory)]
    else:
        argv += ["-w", str(directory)]
    zone = specs[0].split(":", 1)[0]
    with running([*argv, *specs], port, zone, tcp=False):
        yield port


@contextmanager
def knotd(directory: Path, zonefiles: dict[str, Path]) -> Iterator[int]:
    """Knot DNS serving master files on a free loopback port (semantic checks on)."""
    binary = tool("knotd")
    port = free_port()
    run = directory / "knot"
    run.mkdir()
    zones = "".join(f'  - domain: {origin}\n    file: "{path}"\n'
                    for origin, path in zonefiles.items())
    config = run / "knot.conf"
    config.write_text(
        f'server:\n    rundir: "{run}"\n    listen: 127.0.0.1@{port}\n'
        f'database:\n    storage: "{run}"\n'
        "log:\n  - target: stderr\n    any: warning\n"
        "template:\n  - id: default\n    journal-content: none\n    zonefile-sync: -1\n"
        "    semantic-checks: on\n"
        f"zone:\n{zones}"
    )
    with running([binary, "-c", str(config)], port, next(iter(zonefiles)), tcp=True):
        yield port

