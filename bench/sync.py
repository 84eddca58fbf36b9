#!/usr/bin/env python3
"""Publisher benchmark: full sync, incremental publish and change-to-answer lag, from Redis.

Usage (from the repository root, with the project's virtualenv)::

    python bench/sync.py [--tokens 1000000] [--changes 1000] [--lag-samples 20] [--workdir DIR]

What it does (see bench/README.md for how to read the table):

1. Starts its own redis-server (free loopback port, no persistence, files in the work
   directory) and fills it with ``--tokens`` hashes in the layout Rspamd's reputation
   plugin writes (``publisher.layouts``, ``rspamd``): key ``RR:i:<random IPv4>``, fields
   ``n`` (10..1000 messages), ``l`` (last update, unix ms), ``v1m`` (-15..15), generated as
   RESP in Python and piped into ``redis-cli --pipe``.
2. Writes a zone directory with one IP zone, ``bench.example.net``, whose ``source``
   is that Redis (``layout: rspamd``, ``prefix: "RR:"``, ``selector: ip``).
3. Full sync: times ``zonepub -c ZONES sync --once`` into an empty store (keys/s, as
   zonepub prints them, and the time split from its log lines) and measures the store.
4. Incremental publish: starts ``zonepub -c ZONES sync`` (continuous) and zoned, waits
   for the continuous mode's first full pass (nothing to change: the cost of a
   reconciliation), changes ``--changes`` existing keys in one pipeline (HSET new ``n``,
   ``l``, ``v1m``), and reads from zonepub's log lines how long the incremental passes
   that applied them took, and from zoned when a sample of them answers the new TXT.
5. Change-to-answer lag: ``--lag-samples`` times, HSETs one new key and polls zoned
   (one UDP query every 10 ms) until the name answers.
6. Prints a table, the machine and the exact commands.

Only 127.0.0.1 is used.  Every process started is stopped on exit.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import dns.exception
import dns.flags
import dns.message
import dns.query
import dns.rcode
import dns.rdatatype
import redis
from addresses import make_tokens, new_token
from procs import (
    Others,
    cpu_model,
    free_port,
    on_signal,
    pinned,
    settle,
    spawn,
    stop_all,
    stop_process,
)

REPO = Path(__file__).resolve().parent.parent
ZONE = "bench.example.net"
PREFIX = "RR:"
SEED = 20251123
NOW_MS = 1_763_769_600_000
# zonepub (single-threaded Python) on one CPU; Redis and zoned on the other.
PUBLISHER_CPU = "0"
SERVER_CPU = "1"

ZONE_FILE = """\
# Written by bench/sync.py: the benchmark zone (see zones/bl.example.net.yaml).
zone: {zone}
ttl: 300
soa:
  mname: ns1.example.net
  rname: hostmaster@example.net
ns:
  - ns1.example.net
owner: ip
store: {store}
source:
  redis: {url}
  layout: rspamd
  prefix: "{prefix}"
  selector: ip
{extra}"""

TARGET_FULL = 100_000.0  # keys/s
TARGET_INCREMENTAL = 1.0  # s
TARGET_LAG = 5.0  # s
DEFAULT_RECONCILE = 300.0  # s, zoned.sourceconf.SourceSettings.reconcile


# -- processes ------------------------------------------------------------------------------

# -- Redis ----------------------------------------------------------------------------------


@dataclass
class Redis:
    proc: subprocess.Popen[bytes]
    port: int
    command: list[str]

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def client(self) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=30)


def start_redis(workdir: Path, pin: bool) -> Redis:
    binary = shutil.which("redis-server")
    if binary is None:
        raise RuntimeError("redis-server not found: apt-get install -y redis-server")
    directory = workdir / "redis"
    directory.mkdir(parents=True, exist_ok=True)
    for _attempt in range(5):
        port = free_port()
        cmd = pinned(SERVER_CPU, [binary, "--port", str(port), "--bind", "127.0.0.1",
                                  "--save", "", "--appendonly", "no", "--dir", str(directory),
                                  "--logfile", str(directory / "redis.log")], pin)
        proc = spawn(cmd, directory / "stdout.log", cwd=REPO)
        server = Redis(proc, port, cmd)
        deadline = time.monotonic() + 10
        while proc.poll() is None and time.monotonic() < deadline:
            client = server.client()
            try:
                if client.ping():
                    return server
            except redis.ConnectionError:
                time.sleep(0.02)
            finally:
                client.close()
        stop_process(proc, grace=10.0)
    raise RuntimeError(f"redis-server did not start; see {directory / 'redis.log'}")


def dotted(value: int) -> str:
    return f"{value >> 24}.{value >> 16 & 255}.{value >> 8 & 255}.{value & 255}"


def reversed_name(value: int) -> str:
    return f"{value & 255}.{value >> 8 & 255}.{value >> 16 & 255}.{value >> 24}.{ZONE}"


def _bulk(data: bytes) -> bytes:
    return b"$%d\r\n%s\r\n" % (len(data), data)


def hset_resp(key: bytes, fields: Sequence[tuple[bytes, bytes]]) -> bytes:
    """One HSET in the Redis protocol, as ``redis-cli --pipe`` reads it."""
    parts = [b"*%d\r\n" % (2 + 2 * len(fields)), _bulk(b"HSET"), _bulk(key)]
    for name, value in fields:
        parts.append(_bulk(name))
        parts.append(_bulk(value))
    return b"".join(parts)


def rspamd_fields(rng: random.Random) -> list[tuple[bytes, bytes]]:
    """n, l, v1m as Rspamd writes them: integer count, integer ms, a float (Lua %.14g)."""
    n = rng.randint(10, 1000)
    last = NOW_MS - rng.randint(0, 30 * 86400 * 1000)
    score = rng.uniform(-15.0, 15.0)
    return [(b"n", b"%d" % n), (b"l", b"%d" % last), (b"v1m", b"%.14g" % score)]


@dataclass
class Fill:
    seconds: float
    generate_seconds: float
    command: list[str]
    used_memory: str


def fill_redis(server: Redis, tokens: Sequence[int], workdir: Path) -> Fill:
    """HSET every token through ``redis-cli --pipe``; checks that every reply was OK."""
    cli = shutil.which("redis-cli")
    if cli is None:
        raise RuntimeError("redis-cli not found: apt-get install -y redis-tools")
    rng = random.Random(SEED + 1)
    cmd = [cli, "-h", "127.0.0.1", "-p", str(server.port), "--pipe"]
    output = workdir / "redis-cli-pipe.log"
    started = time.perf_counter()
    generating = 0.0
    proc = spawn(cmd, output, stdin=subprocess.PIPE, cwd=REPO)
    assert proc.stdin is not None
    try:
        chunk: list[bytes] = []
        for value in tokens:
            began = time.perf_counter()
            chunk.append(hset_resp(f"{PREFIX}i:{dotted(value)}".encode(), rspamd_fields(rng)))
            generating += time.perf_counter() - began
            if len(chunk) >= 20_000:
                proc.stdin.write(b"".join(chunk))
                chunk = []
        proc.stdin.write(b"".join(chunk))
        proc.stdin.close()
        proc.wait(600)
    finally:
        stop_process(proc, grace=10.0)
    seconds = time.perf_counter() - started
    text = output.read_text(errors="replace")
    found = re.search(r"errors: (\d+), replies: (\d+)", text)
    if proc.returncode != 0 or found is None or int(found.group(1)) != 0 \
            or int(found.group(2)) != len(tokens):
        raise RuntimeError(f"redis-cli --pipe failed:\n{text[-2000:]}")
    client = server.client()
    try:
        size = client.dbsize()
        memory = client.info("memory")
    finally:
        client.close()
    if size != len(tokens):
        raise RuntimeError(f"Redis holds {size} keys, expected {len(tokens)}")
    return Fill(seconds, generating, cmd, str(memory.get("used_memory_human", "?")))


# -- zonepub and zoned ----------------------------------------------------------------------


def write_zone(workdir: Path, name: str, url: str, reconcile: float | None = None) -> Path:
    """A zone directory ``name`` whose zone stores into ``workdir/<name>-store``."""
    zone_dir = workdir / name
    store = workdir / f"{name}-store"
    shutil.rmtree(store, ignore_errors=True)
    zone_dir.mkdir(parents=True, exist_ok=True)
    (zone_dir / f"{ZONE}.yaml").write_text(
        ZONE_FILE.format(zone=ZONE, store=f"../{store.name}", url=url, prefix=PREFIX,
                         extra="" if reconcile is None else f"  reconcile: {reconcile:g}\n"))
    return zone_dir


def zonepub(zones: Path, *args: str, level: str = "info") -> list[str]:
    return [sys.executable, "-m", "publisher.cli", "-c", str(zones), "--log-level", level,
            "sync", *args]


# 2025-11-22 10:00:00,123 INFO publisher.sync: zone=bench.example.net incremental sync: ...
LOG_TIME = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) ")
PASS_LINE = re.compile(
    r"zone=(?P<zone>\S+) (?P<kind>full|incremental|reconcile) sync: (?P<add>[\d,]+) to add, "
    r"(?P<change>[\d,]+) to change, (?P<delete>[\d,]+) to delete \(zone has (?P<size>[\d,]+), "
    r"serial \d+\); serial (?P<serial>\d+); (?P<seconds>[\d.]+) s; keys: (?P<keys>.*)$")
ONCE_LINE = re.compile(
    r"zone \S+: .*; serial \d+; (?P<keys>[\d,]+) keys in (?P<seconds>[\d.]+) s "
    r"\((?P<rate>[\d,]+)/s\); (?P<stats>.*)$")


def _num(text: str) -> int:
    return int(text.replace(",", ""))


def log_time(line: str) -> float | None:
    """The unix time of a log line (logging's asctime: local time, milliseconds)."""
    found = LOG_TIME.match(line)
    if found is None:
        return None
    return datetime.strptime(found.group(1), "%Y-%m-%d %H:%M:%S,%f").timestamp()


@dataclass
class Pass:
    """One ``... sync:`` line of zonepub's continuous mode."""

    kind: str
    at: float  # unix time of the line (the commit is done)
    applied: int  # adds + changes + deletes
    size: int
    seconds: float
    keys: str


class LogTail:
    """Reads the complete lines a running process appended to its log since last time."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0

    def skip(self) -> None:
        self.offset = self.path.stat().st_size if self.path.exists() else 0

    def lines(self) -> list[str]:
        if not self.path.exists():
            return []
        with open(self.path, "rb") as log:
            log.seek(self.offset)
            data = log.read()
        end = data.rfind(b"\n") + 1
        self.offset += end
        return data[:end].decode(errors="replace").splitlines()

    def passes(self) -> list[Pass]:
        found = []
        for line in self.lines():
            match = PASS_LINE.search(line)
            at = log_time(line)
            if match is None or at is None:
                continue
            found.append(Pass(match["kind"], at,
                              _num(match["add"]) + _num(match["change"]) + _num(match["delete"]),
                              _num(match["size"]), float(match["seconds"]), match["keys"]))
        return found


def zoned_command(zones: Path, port: int, log: Path, pin: bool) -> list[str]:
    return pinned(SERVER_CPU, [sys.executable, "-m", "zoned.cli", "-c", str(zones),
                               "--listen", "127.0.0.1", "--port", str(port),
                               "--log-file", str(log), "--log-level", "warning"], pin)


def ask(port: int, name: str, rdtype: str, timeout: float = 1.0) -> dns.message.Message | None:
    query = dns.message.make_query(name, rdtype)
    query.flags &= ~dns.flags.RD
    try:
        return dns.query.udp(query, "127.0.0.1", port=port, timeout=timeout)
    except (dns.exception.Timeout, OSError):
        return None


def txt_fields(reply: dns.message.Message | None) -> dict[str, str] | None:
    """The key=value pairs of the first TXT record of a NOERROR reply, else None."""
    if reply is None or reply.rcode() != dns.rcode.NOERROR:
        return None
    for rrset in reply.answer:
        if rrset.rdtype == dns.rdatatype.TXT:
            for rdata in rrset:
                text = b"".join(rdata.strings).decode()
                return dict(part.partition("=")[::2] for part in text.split(";"))
    return None


def wait_zoned(proc: subprocess.Popen[bytes], port: int, timeout: float = 60.0) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if proc.poll() is not None:
            raise RuntimeError(f"zoned exited with {proc.returncode} while starting")
        reply = ask(port, f"2.0.0.127.{ZONE}", "A", timeout=0.2)
        if reply is not None and reply.answer:
            return time.monotonic() - started
        time.sleep(0.05)
    raise RuntimeError(f"zoned did not answer within {timeout:.0f} s")


# -- measurements ---------------------------------------------------------------------------


def percentile(values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), -(-len(ordered) * pct // 100)))
    return ordered[int(rank) - 1]


def store_size(store: Path) -> tuple[int, int]:
    """(apparent bytes, allocated bytes) of an LMDB directory."""
    files = [p for p in store.iterdir() if p.is_file()]
    return (sum(p.stat().st_size for p in files), sum(p.stat().st_blocks * 512 for p in files))


@dataclass
class FullSync:
    command: list[str]
    wall: float
    keys: int
    seconds: float  # zonepub's own: scan, read, evaluate, plan, commit
    rate: float  # zonepub's own keys/s
    stats: str
    read_plan: float | None  # start of the pass to the "committing" log line
    commit: float | None  # "committing" to the process's exit
    store_bytes: tuple[int, int]
    others: float
    waited: float


def full_sync(zones: Path, store: Path, workdir: Path, redis_pid: int,
              args: argparse.Namespace) -> FullSync:
    cmd = pinned(args.full_cpus, zonepub(zones, "--once"), args.pin)
    output = workdir / "zonepub-once.log"
    output.unlink(missing_ok=True)
    waited = settle(args.settle, [redis_pid])
    others = Others([redis_pid])
    started = time.monotonic()
    proc = spawn(cmd, output, cwd=REPO)
    try:
        proc.wait(3600)
    finally:
        stop_process(proc, grace=10.0)
    ended_unix = time.time()
    wall = time.monotonic() - started
    busy = others.cores()
    text = output.read_text(errors="replace")
    found = None
    for line in text.splitlines():
        found = ONCE_LINE.search(line) or found
    if proc.returncode != 0 or found is None:
        raise RuntimeError(f"zonepub sync --once failed ({proc.returncode}):\n{text[-3000:]}")
    seconds = float(found["seconds"])
    committing = [log_time(line) for line in text.splitlines() if " committing " in line]
    commit = read_plan = None
    if committing and committing[0] is not None:
        commit = max(0.0, ended_unix - committing[0])
        read_plan = max(0.0, seconds - commit)
    return FullSync(cmd, wall, _num(found["keys"]), seconds, float(_num(found["rate"])),
                    found["stats"], read_plan, commit, store_size(store), busy, waited)


def new_key_lag(client: redis.Redis, port: int, value: int, timeout: float
                ) -> tuple[float, float]:
    """HSET a new key; (seconds until zoned answers its TXT or inf, unix time of the HSET)."""
    name = reversed_name(value)
    began_unix = time.time()
    began = time.monotonic()
    client.hset(f"{PREFIX}i:{dotted(value)}", mapping={"n": 500, "l": NOW_MS, "v1m": "12.5"})
    while time.monotonic() - began < timeout:
        if txt_fields(ask(port, name, "TXT", timeout=0.5)) is not None:
            return time.monotonic() - began, began_unix
        time.sleep(0.01)
    print(f"\n  {name} not answered within {timeout:.0f} s of its HSET", file=sys.stderr,
          flush=True)
    return float("inf"), began_unix


@dataclass
class Continuous:
    publisher_cmd: list[str]
    zoned_cmd: list[str]
    first_pass: Pass
    zoned_start: float
    changes: int
    change_passes: list[Pass]
    change_first_commit: float | None  # HSET pipeline to the first commit logged after it
    change_sample: list[float]  # HSET pipeline to zoned answering the new TXT, per sampled key
    change_sample_size: int
    change_others: float
    lags: list[float] = field(default_factory=list)
    lag_commits: list[float] = field(default_factory=list)  # HSET to the commit log line
    lag_others: float = 0.0
    stray: list[Pass] = field(default_factory=list)  # full passes during the measurements
    reconcile_lag: float | None = None  # a new key HSET while a reconciliation runs
    reconcile_pass: Pass | None = None
    reconcile_overlap: bool = False  # the HSET did fall inside that pass
    waited: list[float] = field(default_factory=list)  # settling before changes, lag


def continuous(zones: Path, tokens: Sequence[int], server: Redis, workdir: Path,
               args: argparse.Namespace) -> Continuous:
    pin = args.pin
    interval = args.reconcile if args.reconcile is not None else DEFAULT_RECONCILE
    log = workdir / "zonepub-continuous.log"
    log.unlink(missing_ok=True)
    tail = LogTail(log)
    pub_cmd = pinned(PUBLISHER_CPU, zonepub(zones), pin)
    publisher = spawn(pub_cmd, log, cwd=REPO)
    first: Pass | None = None
    deadline = time.monotonic() + 3600
    while first is None:
        if publisher.poll() is not None:
            raise RuntimeError(f"zonepub sync exited {publisher.returncode}:\n"
                               f"{log.read_text(errors='replace')[-3000:]}")
        if time.monotonic() > deadline:
            raise RuntimeError("zonepub sync: no full sync line within an hour")
        first = next((p for p in tail.passes() if p.kind == "full"), None)
        time.sleep(0.1)
    port = free_port()
    zoned_cmd = zoned_command(zones, port, workdir / "zoned.log", pin)
    zoned = spawn(zoned_cmd, workdir / "zoned-stdout.log", cwd=REPO)
    zoned_start = wait_zoned(zoned, port)
    rng = random.Random(SEED + 2)
    client = server.client()
    try:
        # -- incremental: --changes existing keys in one pipeline --------------------------
        chosen = rng.sample(list(tokens), min(args.changes, len(tokens)))
        new_n = {value: 2000 + i for i, value in enumerate(chosen)}  # never an original n
        pipe = client.pipeline(transaction=False)
        for value in chosen:
            pipe.hset(f"{PREFIX}i:{dotted(value)}",
                      mapping={"n": new_n[value], "l": NOW_MS + 1000,
                               "v1m": f"{rng.uniform(-15.0, 15.0):.14g}"})
        ours = [server.proc.pid, publisher.pid, zoned.pid]
        waited = settle(args.settle, ours)
        early = [p for p in tail.passes() if p.kind != "incremental"]
        others = Others(ours)
        began_unix = time.time()
        began = time.monotonic()
        pipe.execute()
        sample = rng.sample(chosen, min(args.change_sample, len(chosen)))
        answered: dict[int, float] = {}
        while len(answered) < len(sample) and time.monotonic() - began < args.timeout:
            for value in sample:
                if value in answered:
                    continue
                fields = txt_fields(ask(port, reversed_name(value), "TXT"))
                if fields is not None and fields.get("n") == str(new_n[value]):
                    answered[value] = time.monotonic() - began
            time.sleep(0.01)
        # Until the incremental passes applied every change, or a full pass (a periodic
        # reconciliation) ran, which applies whatever is pending too.
        passes: list[Pass] = []
        stray: list[Pass] = []
        while (sum(p.applied for p in passes) < len(chosen) and not stray
               and time.monotonic() - began < args.timeout):
            for item in tail.passes():
                (passes if item.kind == "incremental" else stray).append(item)
            time.sleep(0.05)
        change_others = others.cores()
        committed = [p.at for p in passes + stray]
        result = Continuous(
            publisher_cmd=pub_cmd, zoned_cmd=zoned_cmd, first_pass=first,
            zoned_start=zoned_start, changes=len(chosen), change_passes=passes,
            change_first_commit=min(committed) - began_unix if committed else None,
            change_sample=sorted(answered.values()), change_sample_size=len(sample),
            change_others=change_others, stray=early + stray, waited=[waited])

        # -- lag: one new key at a time ----------------------------------------------------
        taken = set(tokens)
        result.waited.append(settle(args.settle, ours))
        others = Others(ours)
        for _ in range(args.lag_samples):
            value = new_token(rng, taken)
            time.sleep(rng.uniform(0.2, 0.7))  # no phase lock with the 50 ms / 250 ms loops
            result.stray += [p for p in tail.passes() if p.kind != "incremental"]
            lag, began_unix = new_key_lag(client, port, value, args.timeout)
            result.lags.append(lag)
            if lag == float("inf"):
                continue
            commit = None
            wait_log = time.monotonic() + 5
            while commit is None and time.monotonic() < wait_log:
                for item in tail.passes():
                    if commit is None and item.applied:
                        commit = item.at - began_unix  # incremental, or a reconciliation
                    if item.kind != "incremental":
                        result.stray.append(item)
                time.sleep(0.02)
            if commit is not None:
                result.lag_commits.append(commit)
        result.lag_others = others.cores()

        # -- lag of a change made while a periodic reconciliation runs ---------------------
        if args.reconcile_lag:
            result.stray += [p for p in tail.passes() if p.kind != "incremental"]
            starts = [p.at - p.seconds for p in [first, *result.stray]]
            # zonepub schedules the next full pass `reconcile` s after the last one began
            due = max(starts) + interval
            if due - time.time() < 0:  # one ran or is running: take the one after it
                due += interval
            print(f"\n  waiting {due - time.time():.0f} s for the periodic reconciliation ...",
                  end=" ", flush=True)
            time.sleep(max(0.0, due - time.time()) + min(0.5, first.seconds / 4))
            value = new_token(rng, taken)
            lag, began_unix = new_key_lag(client, port, value, args.timeout)
            result.reconcile_lag = lag
            deadline = time.monotonic() + args.timeout
            while result.reconcile_pass is None and time.monotonic() < deadline:
                result.reconcile_pass = next(
                    (p for p in tail.passes() if p.kind == "reconcile"), None)
                time.sleep(0.1)
            if result.reconcile_pass is not None:
                done = result.reconcile_pass
                result.reconcile_overlap = done.at - done.seconds <= began_unix <= done.at
        return result
    finally:
        client.close()
        stop_process(zoned, grace=10.0)
        stop_process(publisher, grace=10.0)


# -- profile --------------------------------------------------------------------------------


@dataclass
class Profile:
    """Where a profiled full sync spent its time, as printable lines."""

    command: list[str]
    title: str
    lines: list[str]


def _short(path: str) -> str:
    for base in (str(REPO) + "/", sys.prefix + "/", sys.base_prefix + "/"):
        path = path.replace(base, "")
    return path.replace("lib/python3.11/site-packages/", "").replace("lib/python3.11/", "")


def profile_cprofile(zones: Path, workdir: Path, keys: int, pin: bool, top: int) -> Profile:
    """A full sync into an empty store under cProfile: self and cumulative us per key.

    cProfile's overhead per call inflates code made of many small calls; the shares are
    distorted, the ranking mostly not.  py-spy (``--profile py-spy``) samples without it.
    """
    import pstats

    out = workdir / "full-sync.prof"
    cmd = pinned(PUBLISHER_CPU, [sys.executable, "-m", "cProfile", "-o", str(out),
                                 "-m", "publisher.cli", "-c", str(zones), "--log-level", "info",
                                 "sync", "--once"], pin)
    _run_profiled(cmd, workdir)
    stats = pstats.Stats(str(out))
    table: dict[tuple[str, int, str], tuple[int, int, float, float, object]] = \
        stats.stats  # type: ignore[attr-defined]
    total = sum(tt for _cc, _nc, tt, _ct, _callers in table.values())
    rows = sorted(table.items(), key=lambda kv: -kv[1][2])[:top]
    lines = [f"{'self us/key':>11} {'cum us/key':>10} {'calls/key':>9}  function",
             "-" * 72]
    for (filename, line, name), (_cc, calls, tt, ct, _callers) in rows:
        label = f"{name} ({_short(filename)}:{line})" if line else name
        lines.append(f"{tt / keys * 1e6:>11.2f} {ct / keys * 1e6:>10.2f} "
                     f"{calls / keys:>9.2f}  {label}")
    lines.append(f"{total / keys * 1e6:>11.2f} {'':>10} {'':>9}  total under cProfile")
    title = (f"cProfile, top {top} by self time, microseconds per key over {keys:,} keys; "
             "cProfile's own overhead is included and inflates small calls")
    return Profile(cmd, title, lines)


# Frames of a py-spy raw stack: "function (file:line)"; lines are dropped to merge a
# function's samples.
_FRAME_LINE = re.compile(r":\d+\)$")
_COMPREHENSION = re.compile(r"<(listcomp|dictcomp|setcomp|genexpr)>$")
PROFILE_ROOT = "ZoneSync.full"
BREAKDOWN = ("ZoneSync.full", "Judge.evaluate", "ZoneSync.read", "owner_keys",
             "token_answer", "txt_fields")


def profile_pyspy(zones: Path, workdir: Path, keys: int, pin: bool, top: int,
                  binary: str, seconds: float) -> Profile:
    """A full sync into an empty store sampled by py-spy: us per key per function.

    Only samples inside ZoneSync.full count; their shares are scaled to ``seconds`` (the
    un-profiled sync's own time), so the numbers are those of a normal run.  py-spy runs
    on the other CPU, so sampling does not slow the publisher down.
    """
    out = workdir / "full-sync.pyspy.txt"
    sync_cmd = pinned(PUBLISHER_CPU, zonepub(zones, "--once"), pin)
    cmd = pinned(SERVER_CPU, [binary, "record", "--rate", "250", "--format", "raw",
                              "--output", str(out), "--", *sync_cmd], pin)
    _run_profiled(cmd, workdir)
    self_n: dict[str, int] = {}
    incl_n: dict[str, int] = {}
    children: dict[str, dict[str, int]] = {name: {} for name in BREAKDOWN}
    total = 0
    for line in out.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        frames = [_FRAME_LINE.sub(")", frame) for frame in stack.split(";")]
        names = [frame.split(" (", 1)[0] for frame in frames]
        if PROFILE_ROOT not in names:
            continue
        count = int(count_text)
        total += count
        self_n[frames[-1]] = self_n.get(frames[-1], 0) + count
        for frame in set(frames[names.index(PROFILE_ROOT):]):
            incl_n[frame] = incl_n.get(frame, 0) + count
        for parent, kids in children.items():
            if parent in names:
                at = len(names) - 1 - names[::-1].index(parent)
                # a comprehension is the parent's own code: name what it calls
                below = [frame for frame in frames[at + 1:]
                         if not _COMPREHENSION.search(frame.split(" (", 1)[0])]
                child = below[0] if below else "(its own code)"
                kids[child] = kids.get(child, 0) + count
    if not total:
        raise RuntimeError(f"py-spy recorded no samples inside {PROFILE_ROOT}; see {out}")
    unit = seconds / keys * 1e6 / total  # microseconds per key per sample

    def rows(counts: dict[str, int], limit: int) -> list[str]:
        ordered = sorted(counts.items(), key=lambda kv: -kv[1])[:limit]
        return [f"{n * unit:>8.2f} {n / total:>6.1%}  {name}" for name, n in ordered]

    lines = [f"{total:,} samples in {PROFILE_ROOT}; us/key scaled to the un-profiled "
             f"{seconds:.1f} s = {seconds / keys * 1e6:.1f} us/key",
             "", "by step (what each function's time is spent calling):"]
    for parent in BREAKDOWN:
        kids = children[parent]
        if not kids:
            continue
        spent = sum(kids.values())
        lines.append(f"{spent * unit:>8.2f} {spent / total:>6.1%}  {parent}")
        lines += ["    " + row for row in rows(kids, 12)]
    lines += ["", f"self time, top {top} ({'us/key':>8} share):"]
    lines += rows(self_n, top)
    lines += ["", f"inclusive time, top {top}:"]
    lines += rows(incl_n, top)
    title = f"py-spy, microseconds per key over {keys:,} keys"
    return Profile(cmd, title, lines)


def _run_profiled(cmd: Sequence[str], workdir: Path) -> None:
    log = workdir / "zonepub-profile.log"
    proc = spawn(cmd, log, cwd=REPO)
    try:
        proc.wait(7200)
    finally:
        stop_process(proc, grace=10.0)
    if proc.returncode != 0:
        raise RuntimeError(f"profiled sync failed ({proc.returncode}); see {log}:\n"
                           f"{log.read_text(errors='replace')[-2000:]}")


# -- report ---------------------------------------------------------------------------------


def machine() -> str:
    model = cpu_model()
    try:
        version = subprocess.run(["redis-server", "--version"], capture_output=True,
                                 text=True).stdout
        found = re.search(r"v=([\d.]+)", version)
        redis_version = found.group(1) if found else "?"
    except OSError:
        redis_version = "?"
    return (f"machine: nproc {os.cpu_count()} (usable {len(os.sched_getaffinity(0))}), "
            f"CPU {model}, {platform.platform()}, Python {platform.python_version()}, "
            f"redis-server {redis_version}, load average at the end {os.getloadavg()[0]:.2f}")


def verdict(ok: bool) -> str:
    return "yes" if ok else "NO"


def _fmt(value: float | None, spec: str = ".2f") -> str:
    return "?" if value is None else format(value, spec)


def report(args: argparse.Namespace, fill: Fill, full: FullSync, cont: Continuous,
           redis_cmd: list[str], profiled: Profile | None,
           total: float) -> None:
    keys = args.tokens
    rows: list[tuple[str, str, str, str]] = []
    rows.append(("fill Redis (redis-cli --pipe)",
                 f"{keys:,} keys in {fill.seconds:.1f} s ({keys / fill.seconds:,.0f}/s); "
                 f"used_memory {fill.used_memory}", "", ""))
    rows.append(("full sync --once, empty store",
                 f"{full.rate:,.0f} keys/s ({full.keys:,} keys in {full.seconds:.1f} s)",
                 f">= {TARGET_FULL:,.0f}/s", verdict(full.rate >= TARGET_FULL)))
    for label, part in (("  of which read+evaluate+plan", full.read_plan),
                        ("  of which commit (+ exit)", full.commit)):
        per_key = None if part is None else part / keys * 1e6
        rows.append((label, f"{_fmt(part, '.1f')} s ({_fmt(per_key, '.1f')} us/key)", "", ""))
    rows.append(("  process wall time",
                 f"{full.wall:.1f} s (start-up and exit {full.wall - full.seconds:.1f} s)", "",
                 ""))
    apparent, allocated = full.store_bytes
    rows.append(("store size after it",
                 f"{apparent / 2**20:,.0f} MiB data.mdb+lock ({allocated / 2**20:,.0f} MiB on "
                 f"disk; {allocated / max(keys, 1):,.0f} B/key)", "", ""))
    first = cont.first_pass
    rows.append(("full pass, nothing to change",
                 f"{first.seconds:.1f} s ({keys / max(first.seconds, 1e-9):,.0f} keys/s; "
                 "continuous mode's first pass = a reconciliation)", "", ""))
    inc = sum(p.seconds for p in cont.change_passes)
    applied = sum(p.applied for p in cont.change_passes)
    rows.append((f"incremental publish, {cont.changes:,} changes",
                 f"{inc:.2f} s in {len(cont.change_passes)} pass(es) "
                 f"[{', '.join(f'{p.applied:,} in {p.seconds:.2f} s' for p in cont.change_passes)}]"
                 f"; {applied:,} applied", f"< {TARGET_INCREMENTAL:g} s",
                 verdict(inc < TARGET_INCREMENTAL and applied >= cont.changes)))
    sample = cont.change_sample
    answered = (f"median {statistics.median(sample):.2f} s, max {max(sample):.2f} s"
                if sample else "none")
    if len(sample) < cont.change_sample_size:
        answered += f" ({cont.change_sample_size - len(sample)} not within {args.timeout:g} s)"
    rows.append((f"  HSET pipeline -> new TXT answered ({cont.change_sample_size} sampled)",
                 f"{answered}; first commit {_fmt(cont.change_first_commit)} s after the HSETs",
                 "", ""))
    lags = cont.lags
    missing = sum(1 for lag in lags if lag == float("inf"))
    rows.append((f"change-to-answer lag, new key (n={len(lags)})",
                 f"median {statistics.median(lags):.2f} s, p90 {percentile(lags, 90):.2f} s, "
                 f"max {max(lags):.2f} s"
                 + (f" ({missing} not within {args.timeout:g} s)" if missing else ""),
                 f"<= {TARGET_LAG:g} s", verdict(max(lags) <= TARGET_LAG)))
    if cont.lag_commits:
        commits = cont.lag_commits
        rows.append(("  HSET -> commit logged",
                     f"median {statistics.median(commits):.2f} s, max {max(commits):.2f} s "
                     "(the rest is zoned noticing the serial: it checks 4 times a second)",
                     "", ""))
    if args.reconcile_lag:
        done = cont.reconcile_pass
        during = "not measured" if cont.reconcile_lag is None else f"{cont.reconcile_lag:.2f} s"
        if done is None:
            during += "; no reconcile line seen"
        else:
            during += (f"; that reconcile pass took {done.seconds:.1f} s"
                       + ("" if cont.reconcile_overlap else " (the HSET missed it)"))
        interval = args.reconcile if args.reconcile is not None else DEFAULT_RECONCILE
        rows.append((f"lag, new key during a reconciliation (every {interval:g} s)", during,
                     f"<= {TARGET_LAG:g} s", verdict(cont.reconcile_lag is not None
                                                    and cont.reconcile_lag <= TARGET_LAG)))
    waits = "/".join(f"{w:.0f}" for w in [full.waited, *cont.waited])
    rows.append(("other processes (cores busy)",
                 f"full sync {full.others:.2f}, changes {cont.change_others:.2f}, "
                 f"lag {cont.lag_others:.2f} (waited {waits} s for quiet first)", "< 0.1",
                 verdict(
                     max(full.others, cont.change_others, cont.lag_others) < 0.1)))
    if cont.stray:
        rows.append(("full passes during the measurements",
                     ", ".join(f"{p.kind} {p.seconds:.1f} s ({p.applied:,} applied)"
                               for p in cont.stray), "none", "NO"))

    print()
    print(f"publisher sync benchmark: {keys:,} Rspamd-layout keys ({PREFIX}i:<IPv4>, fields "
          f"n l v1m), zone {ZONE} (owner ip); zonepub sync --once on CPU(s) {args.full_cpus} "
          f"(it judges in one worker process per CPU it may use when that is more than "
          f"one), continuous zonepub on CPU {PUBLISHER_CPU}, "
          f"redis-server and zoned on CPU {SERVER_CPU}" if args.pin else
          f"publisher sync benchmark: {keys:,} Rspamd-layout keys, not pinned")
    print(machine())
    print()
    widths = [max(len(r[i]) for r in rows + [("measurement", "result", "target", "ok")])
              for i in range(4)]
    head = (f"{'measurement':<{widths[0]}}  {'result':<{widths[1]}}  "
            f"{'target':<{widths[2]}}  ok")
    print(head)
    print("-" * len(head))
    for name, result, target, ok in rows:
        print(f"{name:<{widths[0]}}  {result:<{widths[1]}}  {target:<{widths[2]}}  {ok}")
    print()
    print(f"zonepub's full sync line: {full.keys:,} keys; {full.stats}")
    print(f"zoned start-up (spawn to first answer): {cont.zoned_start:.2f} s")
    if profiled is not None:
        print()
        print(f"where a full sync's time goes ({profiled.title}):")
        for line in profiled.lines:
            print(f"  {line}" if line else "")
    print()
    print("commands (ports and the work directory change every run):")
    commands = [redis_cmd, fill.command, full.command, cont.publisher_cmd, cont.zoned_cmd]
    if profiled is not None:
        commands.append(profiled.command)
    for cmd in commands:
        print("  " + " ".join(_quote(part) for part in cmd))
    kept = "removed at exit" if args.temporary else "kept"
    print(f"  (cwd {REPO}; zone files, stores and logs in {args.workdir}, {kept})")
    print(f"total time {total:.0f} s")


def _quote(part: str) -> str:
    return part if part and re.fullmatch(r"[\w@%+=:,./-]+", part) else repr(part)


# -- main -----------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--tokens", type=int, default=1_000_000,
                        help="Rspamd-layout keys in Redis (random IPv4, fixed seed)")
    parser.add_argument("--changes", type=int, default=1000,
                        help="existing keys changed in one pipeline for the incremental publish")
    parser.add_argument("--change-sample", type=int, default=50,
                        help="of those, how many to poll in zoned until they answer the new TXT")
    parser.add_argument("--lag-samples", type=int, default=20,
                        help="new keys, one at a time, for the change-to-answer lag")
    parser.add_argument("--profile", choices=["py-spy", "cprofile"],
                        help="finally run one more full sync (empty store) under this profiler "
                        "and print where the time goes, in microseconds per key")
    parser.add_argument("--py-spy", default="py-spy", metavar="PATH",
                        help="the py-spy binary for --profile py-spy (pip install py-spy)")
    parser.add_argument("--profile-top", type=int, default=25)
    parser.add_argument("--timeout", type=float, default=900.0,
                        help="longest wait for a change to be answered (a periodic full pass "
                        "holds incremental ones back for as long as it runs)")
    parser.add_argument("--reconcile", type=float, default=None,
                        help="the zone's source.reconcile in seconds (default: zonepub's, 300)")
    parser.add_argument("--no-reconcile-lag", dest="reconcile_lag", action="store_false",
                        help="skip the last measurement: the lag of a change made while the "
                        "periodic reconciliation runs (it waits for that pass to come)")
    parser.add_argument("--settle", type=float, default=60.0,
                        help="before each measurement, wait up to this many seconds for other "
                        "processes to leave the CPUs idle")
    parser.add_argument("--no-pin", dest="pin", action="store_false",
                        help="do not pin processes to CPUs with taskset")
    parser.add_argument("--full-cpus", default="0,1",
                        help="CPUs (taskset list) for the full sync --once: with more than one "
                        "zonepub judges in worker processes; '0' measures one process")
    parser.add_argument("--workdir", type=Path, default=None,
                        help="where Redis, zone files, stores and logs go (default: a "
                        "temporary directory, removed afterwards)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.tokens < 1 or args.changes < 1 or args.lag_samples < 1:
        print("--tokens, --changes and --lag-samples must be at least 1", file=sys.stderr)
        return 2
    if args.profile == "py-spy" and shutil.which(args.py_spy) is None:
        print(f"{args.py_spy} not found: pip install py-spy, or give --py-spy PATH",
              file=sys.stderr)
        return 2
    if args.pin and (shutil.which("taskset") is None or len(os.sched_getaffinity(0)) < 2):
        print("not pinning: needs taskset and two CPUs", file=sys.stderr)
        args.pin = False
    temporary = args.workdir is None
    workdir = Path(tempfile.mkdtemp(prefix="repzone-sync-")) if temporary else args.workdir
    workdir = workdir.resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    args.workdir = workdir
    args.temporary = temporary
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, on_signal)
    begun = time.monotonic()
    try:
        print(f"work directory {workdir}", flush=True)
        server = start_redis(workdir, args.pin)
        started = time.perf_counter()
        tokens = make_tokens(args.tokens, random.Random(SEED))
        print(f"  {args.tokens:,} tokens drawn in {time.perf_counter() - started:.1f} s",
              flush=True)
        fill = fill_redis(server, tokens, workdir)
        print(f"  Redis filled in {fill.seconds:.1f} s ({fill.generate_seconds:.1f} s of it "
              f"making RESP), used_memory {fill.used_memory}", flush=True)
        zones = write_zone(workdir, "zones", server.url, args.reconcile)
        store = workdir / "zones-store"
        print("full sync --once ...", end=" ", flush=True)
        full = full_sync(zones, store, workdir, server.proc.pid, args)
        print(f"{full.rate:,.0f} keys/s ({full.seconds:.1f} s)", flush=True)
        print("continuous sync and zoned ...", end=" ", flush=True)
        cont = continuous(zones, tokens, server, workdir, args)
        print(f"incremental {sum(p.seconds for p in cont.change_passes):.2f} s, "
              f"lag median {statistics.median(cont.lags):.2f} s", flush=True)
        profiled = None
        if args.profile:
            print(f"full sync under {args.profile} ...", flush=True)
            pzones = write_zone(workdir, "zones-profile", server.url)
            if args.profile == "cprofile":
                profiled = profile_cprofile(pzones, workdir, args.tokens, args.pin,
                                            args.profile_top)
            else:
                profiled = profile_pyspy(pzones, workdir, args.tokens, args.pin,
                                         args.profile_top, args.py_spy, full.seconds)
        report(args, fill, full, cont, server.command, profiled, time.monotonic() - begun)
    finally:
        stop_all(grace=5.0)
        if temporary:
            shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
