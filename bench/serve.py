#!/usr/bin/env python3
"""Serving benchmark: zoned against rbldnsd on the same data, the same queries, one core each.

Usage (from the repository root, with the project's virtualenv)::

    python bench/serve.py [--tokens 1000000] [--duration 10] [--rounds 2] [--workdir DIR]

What it does (see bench/README.md for how to read the table):

1. Makes ``--tokens`` random IPv4 tokens (fixed seed) with reputation fields, and writes
   them into a repzone zone store (with :func:`publisher.publish.publish`, which plans
   and commits records as ``zonepub import`` does) and into an rbldnsd ``ip4set``
   dataset holding the same A code and the same TXT text per entry.
2. Writes one dnsperf query file used for both servers: 70% hits, 30% misses, half A,
   half TXT, reversed-octet names under ``bench.example.net``.
3. In interleaved rounds (zoned, rbldnsd, zoned, rbldnsd, ...) starts each server pinned
   to CPU 0, times its start-up (spawn to the first good answer to a hit), runs dnsperf
   pinned to CPU 1 flat out (throughput), then at a fixed rate (latency from dnsperf's
   per-query ``-v`` lines), reads the server's RSS, and stops it.
4. Prints a table (medians over rounds and every round), the ratio zoned/rbldnsd, the
   machine and the exact commands.

Only 127.0.0.1 is used.  Every process started is stopped on exit.
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import platform
import random
import re
import select
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from addresses import is_public, make_tokens  # noqa: E402
from procs import (  # noqa: E402
    Others,
    children_cpu,
    cpu_model,
    cpu_seconds,
    free_port,
    on_signal,
    run,
    settle,
    spawn,
    stop_all,
    stop_process,
)

from listformat import txt  # noqa: E402
from publisher.entries import TokenRecord  # noqa: E402
from publisher.publish import publish  # noqa: E402
from zoned import config  # noqa: E402

ZONE = "bench.example.net"
SEED = 20251122
LAST_SEEN = 1763769600
SERVER_CPU = "0"
CLIENT_CPU = "1"
SERVERS = ("zoned", "rbldnsd")

ZONE_FILE = f"""\
# Written by bench/serve.py: the benchmark zone (see zones/bl.example.net.yaml).
zone: {ZONE}
ttl: 300
soa:
  mname: ns1.example.net
  rname: hostmaster@example.net
ns:
  - ns1.example.net
owner:
  scheme: ip
store: ../store
"""

# rbldnsd: the same SOA (negative answers carry it, as zoned's do) and NS as the zone file.
RBLDNSD_HEADER = f"""\
# Written by bench/serve.py: the same entries as the zoned store of {ZONE}.
$SOA 3600 ns1.example.net hostmaster.example.net 1 3600 600 604800 60
$NS 3600 ns1.example.net
"""


# -- processes ------------------------------------------------------------------------------

def proc_status(pid: int) -> dict[str, int]:
    """VmRSS, RssAnon, RssFile, VmHWM of a process in KiB."""
    result: dict[str, int] = {}
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            name, _, value = line.partition(":")
            if name in ("VmRSS", "RssAnon", "RssFile", "RssShmem", "VmHWM"):
                result[name] = int(value.split()[0])
    return result


def udp_drops() -> int:
    """System-wide UDP receive-buffer drops (both the server's and dnsperf's sockets)."""
    with open("/proc/net/snmp") as snmp:
        rows = [line.split() for line in snmp if line.startswith("Udp:")]
    header, values = rows[0], rows[1]
    return int(values[header.index("RcvbufErrors")])



# -- data -----------------------------------------------------------------------------------


def token_fields(rng: random.Random) -> dict[str, int | float | str]:
    """Counters and a score outside the neutral band (so zoned publishes an A, as rbldnsd must)."""
    while True:
        spam, ham, probable = rng.randint(0, 2000), rng.randint(0, 2000), rng.randint(0, 200)
        total = spam + ham + probable
        if total < 10:
            continue
        score = round((spam - ham + 0.5 * probable) / total, 4)
        if abs(score) >= 0.1:
            break
    return {"n": total, "s": spam, "h": ham, "p": probable, "sc": score,
            "l": LAST_SEEN - rng.randint(0, 30 * 86400)}


def reversed_name(value: int) -> str:
    return f"{value & 255}.{value >> 8 & 255}.{value >> 16 & 255}.{value >> 24}.{ZONE}"


@dataclass
class Dataset:
    zone_dir: Path
    store_dir: Path
    rbldnsd_file: Path
    queries: Path
    hit_name: str
    sample: list[tuple[str, str]]
    fill_seconds: float
    rbldnsd_write_seconds: float
    store_bytes: int
    rbldnsd_bytes: int
    bands: dict[str, int]


def build(workdir: Path, count: int, n_queries: int) -> Dataset:
    zone_dir = workdir / "zones"
    store_dir = workdir / "store"
    shutil.rmtree(store_dir, ignore_errors=True)
    zone_dir.mkdir(parents=True, exist_ok=True)
    zone_file = zone_dir / f"{ZONE}.yaml"
    zone_file.write_text(ZONE_FILE)
    zone_config = config.load_zone_file(zone_file)
    assert zone_config.store == store_dir, (zone_config.store, store_dir)

    rng = random.Random(SEED)
    started = time.perf_counter()
    tokens = make_tokens(count, rng)
    print(f"  {count:,} tokens generated in {time.perf_counter() - started:.1f} s", flush=True)

    # The store, as the publisher fills it: one plan, one commit.
    bands: dict[str, int] = {}
    started = time.perf_counter()
    frng = random.Random(SEED + 1)
    written = publish(zone_config, [
        TokenRecord(f"token {i}", str(ipaddress.IPv4Address(value)), token_fields(frng))
        for i, value in enumerate(tokens)
    ])
    assert len(written.plan.adds) == len(tokens)  # every token has an answer
    fill_seconds = time.perf_counter() - started
    print(f"  zone store filled in {fill_seconds:.1f} s", flush=True)

    # The rbldnsd dataset: the same fields (same seed), the same A code and TXT text.
    started = time.perf_counter()
    rbl = workdir / "rbldnsd.txt"
    frng = random.Random(SEED + 1)
    codes = zone_config.codes
    with open(rbl, "w") as out:
        out.write(RBLDNSD_HEADER)
        for value in tokens:
            fields = token_fields(frng)
            code = codes.code_for(float(fields["sc"]))
            assert code is not None
            bands[str(code)] = bands.get(str(code), 0) + 1
            address = str(ipaddress.IPv4Address(value))
            out.write(f"{address} :{code}:{txt.encode(fields).decode()}\n")
    rbl_seconds = time.perf_counter() - started
    print(f"  rbldnsd dataset written in {rbl_seconds:.1f} s", flush=True)

    # Queries: 70% hits, 30% misses, half A half TXT; the same file for both servers.
    listed = set(tokens)
    qrng = random.Random(SEED + 2)
    lines: list[tuple[str, str]] = []
    for _ in range(n_queries):
        if qrng.random() < 0.7:
            value = tokens[qrng.randrange(len(tokens))]
        else:
            while True:
                value = qrng.getrandbits(32)
                if is_public(value) and value not in listed:
                    break
        lines.append((reversed_name(value), "A" if qrng.random() < 0.5 else "TXT"))
    queries = workdir / "queries.txt"
    queries.write_text("".join(f"{name} {qtype}\n" for name, qtype in lines))
    sample = qrng.sample(lines, min(1000, len(lines)))

    # rbldnsd drops to an unprivileged user before reading its data.
    for path in (workdir, zone_dir):
        path.chmod(0o755)
    for path in (rbl, queries, zone_file):
        path.chmod(0o644)
    return Dataset(
        zone_dir=zone_dir,
        store_dir=store_dir,
        rbldnsd_file=rbl,
        queries=queries,
        hit_name=reversed_name(tokens[0]),
        sample=sample,
        fill_seconds=fill_seconds,
        rbldnsd_write_seconds=rbl_seconds,
        store_bytes=sum(p.stat().st_size for p in store_dir.iterdir()),
        rbldnsd_bytes=rbl.stat().st_size,
        bands=bands,
    )


# -- servers --------------------------------------------------------------------------------


def server_command(name: str, data: Dataset, port: int) -> list[str]:
    if name == "zoned":
        return ["taskset", "-c", SERVER_CPU, sys.executable, "-m", "zoned.cli",
                "-c", str(data.zone_dir), "--listen", "127.0.0.1", "--port", str(port),
                "--log-level", "warning"]
    # -n: stay in the foreground (no fork: the pid is the server); -c 0: no reload checks;
    # -a: no NS in the authority of positive answers (zoned adds none either); -u: it
    # refuses to run as root.
    return ["taskset", "-c", SERVER_CPU, "rbldnsd", "-n", "-c", "0", "-a", "-u", "rbldns",
            "-w", str(data.rbldnsd_file.parent), "-b", f"127.0.0.1/{port}", "-t", "300",
            f"{ZONE}:ip4set:{data.rbldnsd_file.name}"]


def start_server(name: str, data: Dataset, port: int, log: Path) -> subprocess.Popen[bytes]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + (os.pathsep + env["PYTHONPATH"] if "PYTHONPATH" in env
                                     else "")
    return spawn(server_command(name, data, port), log, cwd=REPO, env=env)


def wait_ready(proc: subprocess.Popen[bytes], port: int, hit_name: str, spawned: float,
               timeout: float = 300.0) -> float:
    """Seconds from ``spawned`` to the first NOERROR answer with an A record for a hit.

    One UDP socket sends the same query every 10 ms and accepts any reply to it, so a
    server that answers an earlier query late still counts from the moment it answers.
    """
    query = dns.message.make_query(hit_name, "A")
    query.flags &= ~dns.flags.RD
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.setblocking(False)
        deadline = spawned + timeout
        next_send = time.monotonic()
        while True:
            now = time.monotonic()
            if proc.poll() is not None:
                raise RuntimeError(f"server exited with {proc.returncode} while starting")
            if now > deadline:
                raise RuntimeError(f"server did not answer within {timeout:.0f} s")
            if now >= next_send:
                query.id = random.getrandbits(16)
                try:
                    sock.sendto(query.to_wire(), ("127.0.0.1", port))
                except OSError:
                    pass
                next_send = now + 0.01
            ready, _, _ = select.select([sock], [], [], max(0.0, next_send - time.monotonic()))
            if not ready:
                continue
            try:
                wire = sock.recv(4096)
            except OSError:  # ICMP port unreachable: nothing bound yet
                continue
            answered = time.monotonic()
            try:
                reply = dns.message.from_wire(wire)
            except Exception:  # noqa: BLE001 - a malformed reply is not "ready"
                continue
            if reply.rcode() == dns.rcode.NOERROR and any(
                rrset.rdtype == dns.rdatatype.A for rrset in reply.answer
            ):
                return answered - spawned


def sample_answers(port: int, sample: Sequence[tuple[str, str]]) -> list[str]:
    """A comparable digest of each answer: rcode, AA, answer RRs, authority types."""
    import dns.query

    digests: list[str] = []
    for name, qtype in sample:
        query = dns.message.make_query(name, qtype)
        query.flags &= ~dns.flags.RD
        try:
            reply = dns.query.udp(query, "127.0.0.1", port=port, timeout=2.0)
        except Exception as exc:  # noqa: BLE001 - recorded as the answer
            digests.append(f"error {type(exc).__name__}")
            continue
        rrs = sorted(f"{rrset.name} {rrset.ttl} {dns.rdatatype.to_text(rrset.rdtype)} {rd}"
                     for rrset in reply.answer for rd in rrset)
        auth = sorted(dns.rdatatype.to_text(rrset.rdtype) for rrset in reply.authority)
        aa = "aa" if reply.flags & dns.flags.AA else "-"
        digests.append(f"{dns.rcode.to_text(reply.rcode())} {aa} {rrs} auth={auth}")
    return digests


# -- dnsperf --------------------------------------------------------------------------------


@dataclass
class Perf:
    qps: float
    sent: int
    completed: int
    lost: int
    rcodes: dict[str, float]
    avg_latency: float | None
    latencies: list[float] = field(default_factory=list)


_RCODES = re.compile(r"([A-Z]+) (\d+) \(([\d.]+)%\)")
_ANSWERED = re.compile(r"^> [A-Z]+ .* (\d+\.\d{6})$", re.MULTILINE)


def parse_dnsperf(out: str, verbose: bool = False) -> Perf:
    def number(pattern: str) -> float:
        found = re.search(pattern, out)
        if found is None:
            raise RuntimeError(f"dnsperf output lacks {pattern!r}:\n{out[-2000:]}")
        return float(found.group(1))

    codes_line = re.search(r"Response codes:\s+(.*)", out)
    rcodes = {m[0]: float(m[2]) for m in _RCODES.findall(codes_line.group(1))} if codes_line \
        else {}
    avg = re.search(r"Average Latency \(s\):\s+([\d.]+)", out)
    latencies: list[float] = []
    if verbose:
        # "> RCODE query-line 0.000123" per answer; a lost query is "> T query-line".
        latencies = [float(m) for m in _ANSWERED.findall(out)]
    return Perf(
        qps=number(r"Queries per second:\s+([\d.]+)"),
        sent=int(number(r"Queries sent:\s+(\d+)")),
        completed=int(number(r"Queries completed:\s+(\d+)")),
        lost=int(number(r"Queries lost:\s+(\d+)")),
        rcodes=rcodes,
        avg_latency=float(avg.group(1)) if avg else None,
        latencies=latencies,
    )


def dnsperf_load(port: int, data: Dataset, duration: float, args: argparse.Namespace) -> list[str]:
    return ["taskset", "-c", CLIENT_CPU, "dnsperf", "-s", "127.0.0.1", "-p", str(port),
            "-d", str(data.queries), "-l", f"{duration:g}", "-c", str(args.clients), "-T", "1",
            "-q", str(args.outstanding), "-t", "2"]


def dnsperf_latency(port: int, data: Dataset, duration: float,
                    args: argparse.Namespace) -> list[str]:
    return ["taskset", "-c", CLIENT_CPU, "dnsperf", "-s", "127.0.0.1", "-p", str(port),
            "-d", str(data.queries), "-l", f"{duration:g}", "-c", "1", "-T", "1",
            "-q", "500", "-t", "2", "-Q", str(args.latency_qps), "-v"]


def percentile(values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile of ``values`` (not necessarily sorted)."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(pct / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


# -- one run --------------------------------------------------------------------------------


@dataclass
class Result:
    server: str
    round: int
    startup: float
    load: Perf
    latency: Perf
    server_cpu: float  # share of one core the server used during the load run
    client_cpu: float  # share of one core dnsperf used during the load run
    other_cpu: float  # cores used by other processes on the machine during both runs
    waited: float  # seconds spent waiting for the machine to be quiet before the runs
    drops: int  # UDP receive-buffer drops during both runs (system-wide)
    status: dict[str, int]
    commands: list[list[str]]

    @property
    def mean_us(self) -> float:
        return statistics.fmean(self.latency.latencies) * 1e6 if self.latency.latencies \
            else float("nan")

    def pct_us(self, pct: float) -> float:
        return percentile(self.latency.latencies, pct) * 1e6 if self.latency.latencies \
            else float("nan")


def run_server(name: str, number: int, data: Dataset, args: argparse.Namespace,
               workdir: Path, samples: dict[str, list[str]]) -> Result:
    port = free_port()
    log = workdir / f"{name}.log"
    with open(log, "a") as out:
        out.write(f"\n=== round {number} port {port} ===\n")
    waited = settle(args.settle)
    spawned = time.monotonic()
    proc = start_server(name, data, port, log)
    try:
        startup = wait_ready(proc, port, data.hit_name, spawned)
        load_cmd = dnsperf_load(port, data, args.duration, args)
        waited += settle(args.settle)
        drops = udp_drops()
        others = Others([proc.pid])
        cpu0, client0, wall0 = cpu_seconds(proc.pid), children_cpu(), time.monotonic()
        load = parse_dnsperf(run(load_cmd, args.duration + 60,
                                 workdir / f"dnsperf-{name}-{number}-load.txt"))
        wall = time.monotonic() - wall0
        server_cpu = (cpu_seconds(proc.pid) - cpu0) / wall
        client_cpu = (children_cpu() - client0) / wall
        lat_cmd = dnsperf_latency(port, data, args.duration, args)
        latency = parse_dnsperf(run(lat_cmd, args.duration + 60,
                                    workdir / f"dnsperf-{name}-{number}-latency.txt"),
                                verbose=True)
        drops = udp_drops() - drops
        other_cpu = others.cores()
        status = proc_status(proc.pid)
        if proc.poll() is not None:
            raise RuntimeError(f"{name} exited with {proc.returncode} during the run")
        if name not in samples:
            samples[name] = sample_answers(port, data.sample)
    finally:
        stop_process(proc)
    commands = [server_command(name, data, port), load_cmd, lat_cmd]
    return Result(name, number, startup, load, latency, server_cpu, client_cpu, other_cpu, waited,
                  drops, status, commands)


# -- report ---------------------------------------------------------------------------------


def machine() -> Iterator[str]:
    model = cpu_model()
    yield f"machine: nproc {len(os.sched_getaffinity(0))}, CPU {model}, " \
          f"{platform.platform()}, Python {platform.python_version()}, " \
          f"load average at the end {os.getloadavg()[0]:.2f}"
    try:
        version = subprocess.run(["dnsperf", "-h"], capture_output=True, text=True).stdout
        found = re.search(r"Version ([\d.]+)", version)
        yield f"dnsperf {found.group(1) if found else '?'}; rbldnsd {_rbldnsd_version()}"
    except OSError:
        pass


def _rbldnsd_version() -> str:
    try:
        out = subprocess.run(["dpkg-query", "-W", "-f", "${Version}", "rbldnsd"],
                             capture_output=True, text=True).stdout
        return out.strip() or "?"
    except OSError:
        return "?"


def fmt_rcodes(perf: Perf) -> str:
    shown = [f"{code} {pct:.1f}%" for code, pct in sorted(perf.rcodes.items(),
                                                          key=lambda kv: -kv[1])]
    return ", ".join(shown) or "none"


def report(results: list[Result], data: Dataset, args: argparse.Namespace,
           samples: dict[str, list[str]], total: float) -> None:
    by: dict[str, list[Result]] = {name: [r for r in results if r.server == name]
                                   for name in SERVERS}
    print()
    print(f"repzone serving benchmark: {args.tokens:,} tokens, {args.duration:g} s per run, "
          f"{args.rounds} interleaved rounds, server on CPU {SERVER_CPU}, dnsperf on CPU "
          f"{CLIENT_CPU}")
    for line in machine():
        print(line)
    print(f"data: zone store {data.store_bytes / 2**20:.0f} MiB on disk, filled in "
          f"{data.fill_seconds:.1f} s ({data.fill_seconds / args.tokens * 1e6:.1f} us a token); "
          f"rbldnsd dataset {data.rbldnsd_bytes / 2**20:.0f} MiB, written in "
          f"{data.rbldnsd_write_seconds:.1f} s")
    bands = ", ".join(f"{code} {n:,}" for code, n in sorted(data.bands.items()))
    print(f"A codes: {bands}")
    print(f"queries: {args.queries:,} names (70% hits, 30% misses, half A half TXT), "
          f"{data.queries}")
    print()
    head = (f"{'server':<8} {'qps median':>11} {'qps each round':<22} {'mean us':>8} "
            f"{'p50 us':>7} {'p99 us':>7} {'p99.9':>7} {'RSS MiB':>8} {'anon':>6} "
            f"{'file':>6} {'start s':>8}")
    print(head)
    print("-" * len(head))
    medians: dict[str, float] = {}
    for name, rows in by.items():
        if not rows:
            continue
        qps = [r.load.qps for r in rows]
        medians[name] = statistics.median(qps)
        each = " ".join(f"{q:,.0f}" for q in qps)
        mean = statistics.median(r.mean_us for r in rows)
        p50 = statistics.median(r.pct_us(50) for r in rows)
        p99 = statistics.median(r.pct_us(99) for r in rows)
        p999 = statistics.median(r.pct_us(99.9) for r in rows)
        rss = max(r.status.get("VmRSS", 0) for r in rows) / 1024
        anon = max(r.status.get("RssAnon", 0) for r in rows) / 1024
        filed = max(r.status.get("RssFile", 0) for r in rows) / 1024
        start = statistics.median(r.startup for r in rows)
        print(f"{name:<8} {medians[name]:>11,.0f} {each:<22} {mean:>8.0f} {p50:>7.0f} "
              f"{p99:>7.0f} {p999:>7.0f} {rss:>8.1f} {anon:>6.1f} {filed:>6.1f} {start:>8.3f}")
    if "zoned" in medians and "rbldnsd" in medians and medians["rbldnsd"]:
        ratios = [z.load.qps / r.load.qps for z, r in zip(by["zoned"], by["rbldnsd"],
                                                          strict=False)]
        print(f"qps ratio zoned/rbldnsd: {medians['zoned'] / medians['rbldnsd']:.2f} "
              f"(medians); per round: {' '.join(f'{x:.2f}' for x in ratios)}")
    print()
    print("per run (load = dnsperf flat out; lat = dnsperf at "
          f"{args.latency_qps:,} qps; cpu = share of one core during the load run; others = "
          "cores busy with other processes during both runs; wait s = time waited for them "
          "to go quiet first; drops = UDP receive-buffer drops):")
    sub = (f"{'server':<8} {'rnd':>3} {'qps':>9} {'lost':>6} {'srv cpu':>7} {'cli cpu':>7} "
           f"{'others':>6} {'wait s':>6} {'drops':>6} {'lat qps':>8} {'lat lost':>8} "
           f"{'avg us':>7}  "
           "response codes (load run)")
    print(sub)
    print("-" * len(sub))
    for r in sorted(results, key=lambda r: (SERVERS.index(r.server), r.round)):
        avg = r.latency.avg_latency * 1e6 if r.latency.avg_latency is not None else float("nan")
        print(f"{r.server:<8} {r.round:>3} {r.load.qps:>9,.0f} {r.load.lost:>6} "
              f"{r.server_cpu:>7.0%} {r.client_cpu:>7.0%} {r.other_cpu:>6.2f} {r.waited:>6.1f} "
              f"{r.drops:>6} "
              f"{r.latency.qps:>8,.0f} {r.latency.lost:>8} {avg:>7.0f}  {fmt_rcodes(r.load)}")
    print()
    if len(samples) == 2:
        zoned, rbl = samples["zoned"], samples["rbldnsd"]
        diffs = [(q, a, b) for q, a, b in zip(data.sample, zoned, rbl, strict=True) if a != b]
        print(f"answer check: {len(data.sample) - len(diffs)}/{len(data.sample)} sampled queries "
              "answered alike (rcode, AA, answer RRs with TTL, authority types)")
        for (name, qtype), a, b in diffs[:3]:
            print(f"  {name} {qtype}\n    zoned:   {a}\n    rbldnsd: {b}")
    print()
    print("commands (the port changes every run):")
    seen: set[str] = set()
    for r in results:
        for cmd in r.commands:
            text = " ".join(cmd)
            key = re.sub(r"\b\d{4,5}\b", "PORT", text)
            if key not in seen:
                seen.add(key)
                print(f"  {text}")
    kept = "removed at exit" if args.temporary else "kept"
    print(f"  (zoned runs with cwd {REPO} and PYTHONPATH={REPO}; logs in {args.workdir}, {kept})")
    print(f"total time {total:.0f} s")


# -- main -----------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--tokens", type=int, default=1_000_000)
    parser.add_argument("--duration", type=float, default=10.0,
                        help="seconds of each dnsperf run (two per server per round)")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--workdir", type=Path, default=None,
                        help="where data, store and logs go (default: a temporary directory, "
                        "removed afterwards)")
    parser.add_argument("--queries", type=int, default=200_000, help="lines in the query file")
    parser.add_argument("--outstanding", type=int, default=100,
                        help="dnsperf -q for the throughput run; above ~150 the servers' "
                        "default 208 KiB UDP receive buffer overflows and queries are lost")
    parser.add_argument("--settle", type=float, default=30.0,
                        help="before each start and run, wait up to this many seconds for "
                        "other processes to leave the CPUs idle")
    parser.add_argument("--clients", type=int, default=1, help="dnsperf -c for the throughput run")
    parser.add_argument("--latency-qps", type=int, default=10_000,
                        help="dnsperf -Q for the latency run")
    parser.add_argument("--servers", default=",".join(SERVERS),
                        help="comma-separated subset of zoned,rbldnsd")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    for tool in ("taskset", "dnsperf", "rbldnsd"):
        if shutil.which(tool) is None:
            print(f"{tool} not found: apt-get install -y util-linux dnsperf rbldnsd",
                  file=sys.stderr)
            return 2
    if len(os.sched_getaffinity(0)) < 2:
        print("needs two CPUs (server on 0, dnsperf on 1)", file=sys.stderr)
        return 2
    servers = [s for s in args.servers.split(",") if s]
    if any(s not in SERVERS for s in servers):
        print(f"--servers: choose from {','.join(SERVERS)}", file=sys.stderr)
        return 2
    temporary = args.workdir is None
    workdir = Path(tempfile.mkdtemp(prefix="repzone-bench-")) if temporary else args.workdir
    workdir = workdir.resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    args.workdir = workdir
    args.temporary = temporary
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, on_signal)
    begun = time.monotonic()
    results: list[Result] = []
    samples: dict[str, list[str]] = {}
    try:
        print(f"building data in {workdir}", flush=True)
        data = build(workdir, args.tokens, args.queries)
        for number in range(1, args.rounds + 1):
            for name in servers:
                print(f"round {number}: {name} ...", end=" ", flush=True)
                result = run_server(name, number, data, args, workdir, samples)
                results.append(result)
                print(f"start {result.startup:.2f} s, {result.load.qps:,.0f} qps, "
                      f"p99 {result.pct_us(99):.0f} us at {result.latency.qps:,.0f} qps",
                      flush=True)
        report(results, data, args, samples, time.monotonic() - begun)
    finally:
        stop_all(grace=2.0)
        if temporary:
            shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
