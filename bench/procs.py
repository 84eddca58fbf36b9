"""Child processes and CPU accounting shared by the benchmark scripts.

Every process started through :func:`spawn` or :func:`run` is registered, so that
:func:`stop_all` (in a ``finally``, with :func:`on_signal` installed for SIGTERM and
SIGHUP) stops it however the script ends.  CPU time comes from ``/proc`` and
``getrusage``: :class:`Others` measures what processes that are not ours used over a
window, and :func:`settle` waits for the machine to be quiet before measuring.
Linux only.
"""

from __future__ import annotations

import os
import resource
import signal
import socket
import subprocess
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from types import FrameType

__all__ = [
    "CHILDREN",
    "Others",
    "children_cpu",
    "cpu_model",
    "cpu_seconds",
    "free_port",
    "machine_busy",
    "on_signal",
    "own_cpu",
    "pinned",
    "run",
    "settle",
    "spawn",
    "stop_all",
    "stop_process",
]

CHILDREN: list[subprocess.Popen[bytes]] = []


# -- child processes ------------------------------------------------------------------------


def stop_process(proc: subprocess.Popen[bytes], grace: float = 5.0) -> None:
    """SIGTERM, then SIGKILL after ``grace`` seconds; reaps the process."""
    if proc.poll() is None:
        try:
            proc.send_signal(signal.SIGTERM)
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        except ProcessLookupError:
            pass
    if proc in CHILDREN:
        CHILDREN.remove(proc)


def stop_all(grace: float) -> None:
    """Stop every registered process still running."""
    for proc in list(CHILDREN):
        stop_process(proc, grace=grace)


def on_signal(signum: int, frame: FrameType | None) -> None:
    """A signal handler that exits, so that ``finally`` blocks stop the children."""
    raise SystemExit(128 + signum)


def spawn(cmd: Sequence[str], log: Path, *, cwd: Path | None = None,
          env: dict[str, str] | None = None, stdin: int | None = subprocess.DEVNULL
          ) -> subprocess.Popen[bytes]:
    """Start ``cmd``, its output appended to ``log``; registered, so stopped at exit."""
    with open(log, "ab") as out:
        proc = subprocess.Popen(list(cmd), stdout=out, stderr=subprocess.STDOUT,
                                stdin=stdin, cwd=cwd, env=env)
    CHILDREN.append(proc)
    return proc


def run(cmd: Sequence[str], timeout: float, output: Path) -> str:
    """Run a command to completion (registered, so an interrupt stops it); its output.

    The output goes to a file, not a pipe: reading a pipe would wake this process up
    thousands of times a second on the CPUs being measured.
    """
    with open(output, "wb") as out:
        proc = subprocess.Popen(list(cmd), stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL)
    CHILDREN.append(proc)
    try:
        proc.wait(timeout=timeout)
    finally:
        stop_process(proc)
    text = output.read_text(errors="replace")
    if proc.returncode != 0:
        raise RuntimeError(f"{cmd[0]} exited {proc.returncode}:\n{text[-3000:]}")
    return text


def pinned(cpu: str, cmd: Sequence[str], pin: bool) -> list[str]:
    """``cmd`` run on CPU ``cpu`` with taskset when ``pin``; else ``cmd`` unchanged."""
    return ["taskset", "-c", cpu, *cmd] if pin else list(cmd)


def free_port() -> int:
    """A port free on 127.0.0.1 for both UDP and TCP."""
    for _ in range(100):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.bind(("127.0.0.1", 0))
            port = int(udp.getsockname()[1])
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
                try:
                    tcp.bind(("127.0.0.1", port))
                except OSError:
                    continue
                return port
    raise RuntimeError("no free port")


# -- CPU accounting -------------------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (0 once it is gone)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def children_cpu() -> float:
    """CPU seconds of this script's reaped children."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def own_cpu() -> float:
    """CPU seconds of this script."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def machine_busy() -> float:
    """CPU seconds spent so far on all CPUs in user, system and steal time.

    Softirq time is left out: loopback delivery runs there for both ends of a benchmark.
    """
    with open("/proc/stat") as stat:
        fields = [int(x) for x in stat.readline().split()[1:]]
    user, nice, system, steal = fields[0], fields[1], fields[2], fields[7]
    return (user + nice + system + steal) / os.sysconf("SC_CLK_TCK")


class Others:
    """Cores kept busy by processes that are not ours over a window.

    Ours: this script, its reaped children, and the running processes ``pids``.
    """

    def __init__(self, pids: Iterable[int] = ()) -> None:
        self.pids = list(pids)
        self.start = self._ours()
        self.busy = machine_busy()
        self.wall = time.monotonic()

    def _ours(self) -> float:
        return own_cpu() + children_cpu() + sum(cpu_seconds(pid) for pid in self.pids)

    def cores(self) -> float:
        """Average number of cores the others kept busy since the window began."""
        wall = time.monotonic() - self.wall
        other = (machine_busy() - self.busy) - (self._ours() - self.start)
        return max(0.0, other / wall) if wall > 0 else 0.0


def settle(limit: float, pids: Iterable[int] = (), threshold: float = 0.1) -> float:
    """Wait (at most ``limit`` s) until other processes use under ``threshold`` of a core.

    Other work on the machine (tests, builds) distorts the numbers; this waits for a quiet
    half second.  Returns the seconds waited beyond that half second.
    """
    pids = list(pids)
    begun = time.monotonic()
    while True:
        window = Others(pids)
        time.sleep(0.5)
        if window.cores() < threshold or time.monotonic() - begun >= limit:
            return time.monotonic() - begun - 0.5


# -- machine --------------------------------------------------------------------------------


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo, or "unknown"."""
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"

