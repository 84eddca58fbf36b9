"""Per-query cost of the sans-IO core, in process: no sockets, no Twisted.

    python bench/handler.py [--tokens 200000] [--queries 100000]

Fills an IP zone store with random tokens, builds a query mix like bench/serve.py's
(70% hits, 30% misses, half A half TXT), and times Responder.respond on it with the fast
path and with the full path alone.  Prints microseconds per query.
"""

from __future__ import annotations

import argparse
import ipaddress
import random
import shutil
import tempfile
import time
from pathlib import Path

import dns.message

from publisher.entries import TokenRecord
from publisher.publish import publish
from zoned.config import load_zone_file
from zoned.core import Responder
from zoned.service import build_authority
from zoned.zone import ReaderPool

ZONE = """\
zone: bench.example.net
soa: {mname: ns1.example.net, rname: hostmaster@example.net}
ns: [ns1.example.net]
owner: ip
store: store
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=200_000)
    parser.add_argument("--queries", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    work = Path(tempfile.mkdtemp(prefix="repzone-handler-"))
    try:
        zones = work / "zones"
        zones.mkdir()
        (zones / "bench.yaml").write_text(ZONE)
        config = load_zone_file(zones / "bench.yaml")
        tokens = [ipaddress.IPv4Address(rng.getrandbits(32)) for _ in range(args.tokens)]
        publish(config, [
            TokenRecord(f"token {i}", str(ip), {"n": rng.randrange(10, 1000),
                                                 "sc": round(rng.uniform(-1, 1), 3)})
            for i, ip in enumerate(tokens)
        ])
        queries = []
        for _ in range(args.queries):
            if rng.random() < 0.7:
                ip = rng.choice(tokens)
            else:
                ip = ipaddress.IPv4Address(rng.getrandbits(32))
            name = ".".join(reversed(str(ip).split("."))) + ".bench.example.net"
            rdtype = "A" if rng.random() < 0.5 else "TXT"
            queries.append(dns.message.make_query(name, rdtype).to_wire())
        authority = build_authority(zones, ReaderPool())
        for label, fast in (("fast path", True), ("full path only", False)):
            responder = Responder(authority, fast=fast)
            for q in queries[:1000]:
                responder.respond(q)
            start = time.perf_counter()
            for q in queries:
                responder.respond(q)
            elapsed = time.perf_counter() - start
            print(f"{label:15s} {elapsed / len(queries) * 1e6:7.2f} us/query "
                  f"({len(queries) / elapsed:,.0f} queries/s on one core)")
    finally:
        shutil.rmtree(work)


if __name__ == "__main__":
    main()
