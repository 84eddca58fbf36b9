#!/usr/bin/env python3
"""Client benchmark: async lookups per second against zoned, and check-message cost.

Usage (from the repository root, with the project's virtualenv)::

    python bench/lookups.py [--tokens 100000] [--duration 10] [--messages 100] [--rounds 3]

What it does:

1. Writes two zone files (an ``ip`` zone and a ``name`` zone for DKIM and URL domains)
   and fills their stores with :func:`publisher.publish.publish` (one plan, one commit,
   as ``zonepub import`` does): ``--tokens`` random public IPv4 addresses and a tenth as many
   domains, each with Rspamd-layout TXT data (``n``, ``v1m``, ``l``).
2. Starts zoned on 127.0.0.1 pinned to CPU 0 (``taskset``), and pins itself to CPU 1.
3. **Lookups per second**: ``--messages`` concurrent message tasks (100 by default), each
   handling message after message with one :class:`client.client.AsyncClient` (no
   cache): the ip, dkim and url selectors, four lookups a message (sender IP, one DKIM
   domain, two URL domains), 70% of them listed.  Twice: the lookups alone (each
   message's queries planned beforehand, ``AsyncClient.answers``), then whole checks
   (``AsyncClient.check``: tokens, names, lookups, scores).  Counts answered lookups
   over ``--duration`` seconds; repeated ``--rounds`` times, median reported, with the
   CPU each side spent per lookup.
4. **check-message cost**: a 4 KB message (three Received hops, two trusted,
   Authentication-Results, text and HTML parts with URLs) through
   ``facts_from_message`` alone, through the plan alone (tokens, names, scoring of
   answers already in hand: no I/O), and end to end with the sync ``Client`` (one
   message at a time, its queries one at a time, then all at once) and the
   ``AsyncClient`` (``--messages`` at a time).

Before each measurement it waits (up to ``--settle`` s) for other processes to leave the
CPUs idle, and it prints how many cores others used during it: the numbers only mean
something on a quiet machine.  Only 127.0.0.1 is used; zoned is stopped on exit.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from procs import cpu_seconds, free_port, machine_busy, own_cpu, stop_process  # noqa: E402

from client.answers import answer_from_reply  # noqa: E402
from client.client import AsyncClient, Client  # noqa: E402
from client.dnswire import Reply  # noqa: E402
from client.facts import DkimResult, Facts, Url, facts_from_message  # noqa: E402
from client.plan import LookupPlan  # noqa: E402
from client.selectorconfig import SelectorConfig  # noqa: E402
from listformat.names import OwnerScheme  # noqa: E402
from publisher.entries import TokenRecord  # noqa: E402
from publisher.publish import publish  # noqa: E402
from zoned.config import load_zone_file  # noqa: E402

IP_ZONE = "bench-ip.example.net"
DOM_ZONE = "bench-dom.example.net"
HIT_RATE = 0.7

ZONE_FILE = """zone: {zone}
soa: {{mname: ns1.example.net, rname: hostmaster@example.net}}
ns: [ns1.example.net]
owner: {owner}
store: ../var/{zone}
"""


# -- machine ------------------------------------------------------------------------------


class Window:
    """CPU used during a measurement: ours, zoned's, and everybody else's (in cores)."""

    def __init__(self, server: int) -> None:
        self.server = server
        self.wall = time.monotonic()
        self.busy = machine_busy()
        self.ours = own_cpu()
        self.zoned = cpu_seconds(server)

    def close(self) -> tuple[float, float, float]:
        wall = time.monotonic() - self.wall
        ours = own_cpu() - self.ours
        zoned = cpu_seconds(self.server) - self.zoned
        others = machine_busy() - self.busy - ours - zoned
        return ours / wall, zoned / wall, max(0.0, others / wall)


def settle(server: int, limit: float, threshold: float = 0.15) -> None:
    """Wait (at most ``limit`` s) for a half second in which others use < threshold cores."""
    begun = time.monotonic()
    while time.monotonic() - begun < limit:
        window = Window(server)
        time.sleep(0.5)
        if window.close()[2] < threshold:
            return


# -- data and server -----------------------------------------------------------------------


def public_ips(count: int, rng: random.Random) -> list[str]:
    """Distinct addresses outside 0/8, 10/8, 127/8, 172.16/12, 192.168/16 and multicast."""
    seen: set[int] = set()
    out: list[str] = []
    while len(out) < count:
        value = rng.getrandbits(32)
        first, second = value >> 24, (value >> 16) & 0xFF
        if not 1 <= first <= 223 or first in (10, 127) or value in seen:
            continue
        if (first == 172 and 16 <= second < 32) or (first == 192 and second == 168):
            continue
        seen.add(value)
        out.append(socket.inet_ntoa(value.to_bytes(4, "big")))
    return out


def fill(zones: Path, zone: str, tokens: Sequence[str], rng: random.Random) -> None:
    """Publish Rspamd-layout records for ``tokens`` in one commit, as the publisher does."""
    config = load_zone_file(zones / f"{zone}.yaml")
    records = [
        TokenRecord(f"token {i}", token, {"n": rng.randint(10, 5000),
                                          "v1m": round(rng.uniform(-5, 25), 3),
                                          "l": 1763769600})
        for i, token in enumerate(tokens)
    ]
    written = publish(config, records)
    assert len(written.plan.adds) >= len(set(tokens))  # every token has an answer


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    port: int


def start_zoned(zones: Path, log: Path) -> Server:
    port = free_port()
    cmd = [sys.executable, "-m", "zoned.cli", "-c", str(zones), "--listen", "127.0.0.1",
           "--port", str(port), "--log-file", str(log), "--log-level", "warning"]
    if shutil.which("taskset") and (os.cpu_count() or 1) >= 2:
        cmd = ["taskset", "-c", "0", *cmd]
    process = subprocess.Popen(cmd, cwd=REPO)
    probe = Client([SelectorConfig("ip", "ip", IP_ZONE, OwnerScheme("ip"))],
                   [("127.0.0.1", port)], timeout=0.2, retries=0)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"zoned exited: {log.read_text()}")
        if probe.lookup("ip", "127.0.0.2").components[0].status == "hit":
            return Server(process, port)
        time.sleep(0.1)
    process.kill()
    raise RuntimeError("zoned did not answer in 20 s")


def stop(server: Server) -> None:
    stop_process(server.process, grace=10.0)


# -- workload --------------------------------------------------------------------------------


def selectors() -> list[SelectorConfig]:
    name = OwnerScheme("name")
    return [
        SelectorConfig("ip", "ip", IP_ZONE, OwnerScheme("ip")),
        SelectorConfig("dkim", "dkim", DOM_ZONE, name),
        SelectorConfig("url", "url", DOM_ZONE, name),
    ]


def message_facts(ips: Sequence[str], domains: Sequence[str], count: int,
                  rng: random.Random) -> list[Facts]:
    """Facts of ``count`` messages: 4 lookups each, ~70% of them listed."""
    misses_ip = public_ips(count, random.Random(99))
    facts = []
    for i in range(count):
        def domain() -> str:
            listed = rng.random() < HIT_RATE
            return rng.choice(domains) if listed else f"unlisted{rng.getrandbits(40)}.com"

        ip = rng.choice(ips) if rng.random() < HIT_RATE else misses_ip[i]
        first, second = domain(), domain()
        while second == first:
            second = domain()
        urls = tuple(Url(f"www.{d}", f"http://www.{d}/p{i}", frozenset())
                     for d in (first, second))
        facts.append(Facts(ip=ip, dkim=(DkimResult(domain(), "pass"),), urls=urls))
    return facts


MESSAGE = b"""Return-Path: <news@dom1.com>
Received: from mx2.internal.example (mx2.internal.example [10.0.0.2])
\tby mx1.internal.example (Postfix) with ESMTP id 4AbC1; Mon, 1 Jan 2024 10:00:02 +0000
Received: from filter.internal.example (filter.internal.example [10.0.0.3])
\tby mx2.internal.example (Postfix) with ESMTP id 3XyZ2; Mon, 1 Jan 2024 10:00:01 +0000
Received: from mail.dom1.com (mail.dom1.com [{ip}])
\tby filter.internal.example (Postfix) with ESMTPS id 2QwE3
\tfor <user@example.org>; Mon, 1 Jan 2024 10:00:00 +0000
Authentication-Results: mx1.internal.example;
\tdkim=pass header.d=dom1.com header.s=s1;
\tdkim=fail header.d=dom2.com;
\tspf=pass smtp.mailfrom=news@dom1.com
DKIM-Signature: v=1; a=rsa-sha256; d=dom1.com; s=s1; h=from:to:subject; bh=abc=; b=def=
From: "Newsletter" <news@dom1.com>
To: user@example.org
Subject: =?utf-8?q?Our_offers_this_week?=
Date: Mon, 1 Jan 2024 10:00:00 +0000
Message-ID: <123@dom1.com>
MIME-Version: 1.0
Content-Type: multipart/alternative; boundary="b1"

--b1
Content-Type: text/plain; charset=utf-8

Hello, see https://www.dom1.com/offers and https://shop.dom3.com/cart?id=1 and
http://www.dom4.com/ or write to sales@dom1.com.  Unsubscribe: https://www.dom1.com/u

--b1
Content-Type: text/html; charset=utf-8

<html><body><p>Hello,</p>
<p><a href="https://www.dom1.com/offers">our offers</a>,
<a href="https://shop.dom3.com/cart?id=1">the cart</a>,
<a href="http://track.dom5.com/r?u=1">https://www.dom1.com/</a>,
<img src="https://cdn.dom6.com/logo.png"></p>
<p><a href="https://www.dom1.com/u">unsubscribe</a></p>
</body></html>
--b1--
"""


def per_call(fn: Callable[[], object], seconds: float) -> float:
    """Mean seconds per call of ``fn`` over about ``seconds``."""
    fn()
    count = 0
    started = time.perf_counter()
    while time.perf_counter() - started < seconds:
        for _ in range(20):
            fn()
        count += 20
    return (time.perf_counter() - started) / count


@dataclass
class Load:
    lookups: int
    messages: int
    errors: int
    seconds: float
    cores: tuple[float, float, float]


async def async_load(port: int, facts: Sequence[Facts], messages: int, duration: float,
                     server_pid: int, *, lookups_only: bool) -> Load:
    """``messages`` tasks checking messages back to back for ``duration`` seconds.

    ``lookups_only``: each task answers the queries of its message's plan, made
    beforehand (``AsyncClient.answers``), so token derivation and scoring are left out.
    """
    totals = [0, 0, 0]
    plan = LookupPlan(selectors())
    queries = [plan.start(f).queries for f in facts] if lookups_only else []
    async with AsyncClient(selectors(), [("127.0.0.1", port)], concurrency=4 * messages,
                           timeout=2.0, retries=1) as client:
        await client.check(facts[0])  # open the socket

        async def worker(index: int) -> None:
            position = index
            while time.perf_counter() < deadline:
                if lookups_only:
                    got = await client.answers(queries[position % len(queries)])
                    totals[0] += len(got)
                    totals[2] += sum(a.failed for a in got)
                else:
                    result = await client.check(facts[position % len(facts)])
                    totals[0] += sum(len(s.answers) for s in result.selectors)
                    totals[2] += len(result.errors)
                totals[1] += 1
                position += messages

        window = Window(server_pid)
        started = time.perf_counter()
        deadline = started + duration
        await asyncio.gather(*(worker(i) for i in range(messages)))
        seconds = time.perf_counter() - started
        cores = window.close()
    return Load(totals[0], totals[1], totals[2], seconds, cores)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tokens", type=int, default=100_000)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--messages", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--settle", type=float, default=30.0)
    parser.add_argument("--workdir", type=Path)
    args = parser.parse_args(argv)

    rng = random.Random(20240101)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="repzone-bench-client-"))
    zones = workdir / "zones"
    zones.mkdir(parents=True, exist_ok=True)
    (zones / f"{IP_ZONE}.yaml").write_text(ZONE_FILE.format(zone=IP_ZONE, owner="ip"))
    (zones / f"{DOM_ZONE}.yaml").write_text(ZONE_FILE.format(zone=DOM_ZONE, owner="name"))
    ips = public_ips(args.tokens, rng)
    domains = [f"dom{i}.com" for i in range(max(10, args.tokens // 10))]
    started = time.perf_counter()
    fill(zones, IP_ZONE, ips, rng)
    fill(zones, DOM_ZONE, [f"{d}.a" for d in domains] + domains, rng)
    print(f"filled {len(ips)} ip tokens and {2 * len(domains)} domain tokens in "
          f"{time.perf_counter() - started:.1f} s")

    server = start_zoned(zones, workdir / "zoned.log")
    try:
        if hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) >= 2:
            os.sched_setaffinity(0, {1})
        facts = message_facts(ips, domains, 20_000, rng)

        for lookups_only in (True, False):
            what = ("lookups alone (queries planned beforehand)" if lookups_only
                    else "whole checks (tokens, names, lookups, scores)")
            print(f"\nasync, {what}: {args.messages} concurrent messages, 4 lookups each "
                  f"(ip, dkim, 2 url), no cache, {args.duration:g} s x {args.rounds}")
            rates: list[float] = []
            ceilings: list[float] = []
            for round_no in range(args.rounds):
                settle(server.process.pid, args.settle)
                load = asyncio.run(async_load(server.port, facts, args.messages,
                                              args.duration, server.process.pid,
                                              lookups_only=lookups_only))
                rate = load.lookups / load.seconds
                rates.append(rate)
                ours, zoned_cores, others = load.cores
                client_us = ours / rate * 1e6
                zoned_us = zoned_cores / rate * 1e6
                ceilings.append(1e6 / max(client_us, zoned_us))
                print(f"  round {round_no + 1}: {rate:9,.0f} lookups/s  "
                      f"{load.messages / load.seconds:8,.0f} messages/s  errors {load.errors}  "
                      f"cores: client {ours:.2f}, zoned {zoned_cores:.2f}, others {others:.2f}; "
                      f"cpu a lookup: client {client_us:.0f} us, zoned {zoned_us:.0f} us")
            print(f"  median: {statistics.median(rates):,.0f} lookups/s; with a whole core "
                  f"each, the busier side would allow {statistics.median(ceilings):,.0f}")

        data = MESSAGE.replace(b"{ip}", ips[0].encode())
        trusted = ["10.0.0.0/8"]
        print(f"\ncheck-message cost per message ({len(data)} bytes, "
              f"{len(facts_from_message(data, trusted=trusted).urls)} URLs):")
        settle(server.process.pid, args.settle)
        parse = per_call(lambda: facts_from_message(data, trusted=trusted), 2.0)
        plan = LookupPlan(selectors())
        parsed = facts_from_message(data, trusted=trusted)

        def plan_only() -> None:
            lookup = plan.start(parsed)
            lookup.result([answer_from_reply(q, Reply(0, (b"v=1;n=100;v1m=12",), 300))
                           for q in lookup.queries])

        planned = per_call(plan_only, 2.0)
        queries = len(plan.start(parsed).queries)
        with Client(selectors(), [("127.0.0.1", server.port)], trusted=trusted,
                    concurrency=1) as client:
            sync_cost = per_call(lambda: client.check_message(data), 3.0)
        with Client(selectors(), [("127.0.0.1", server.port)], trusted=trusted,
                    concurrency=8) as client:
            threaded = per_call(lambda: client.check_message(data), 3.0)

        async def many() -> float:
            async with AsyncClient(selectors(), [("127.0.0.1", server.port)],
                                   trusted=trusted, concurrency=4 * args.messages) as client:
                await client.check_message(data)
                count = args.messages * 20
                started = time.perf_counter()
                sem = asyncio.Semaphore(args.messages)

                async def one() -> None:
                    async with sem:
                        await client.check_message(data)

                await asyncio.gather(*(one() for _ in range(count)))
                return (time.perf_counter() - started) / count

        concurrent = asyncio.run(many())
        print(f"  facts_from_message alone:           {parse * 1e6:8.0f} us")
        print(f"  plan alone ({queries} names, scoring):      {planned * 1e6:8.0f} us")
        print(f"  sync Client, queries in sequence:   {sync_cost * 1e6:8.0f} us")
        print(f"  sync Client, 8 queries in flight:   {threaded * 1e6:8.0f} us")
        print(f"  AsyncClient, {args.messages} messages at a time:  "
              f"{concurrent * 1e6:8.0f} us a message ({1 / concurrent:,.0f} messages/s)")
    finally:
        stop(server)
        if args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)

    print(f"\nmachine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"Python {platform.python_version()}, load average {os.getloadavg()[0]:.2f}")
    print("command: " + " ".join([Path(sys.executable).name, "bench/lookups.py",
                                  *(argv if argv is not None else sys.argv[1:])]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
