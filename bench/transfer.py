"""Zone transfers out of zoned: AXFR of a large zone, and IXFR of a small change.

    python bench/transfer.py [--tokens 1000000] [--changes 1000] [--workdir DIR]

Fills a store with ``--tokens`` IPv4 addresses (and one IPv6 /64 network for every 20
addresses, as Rspamd's IPv6 senders are published), starts a real zoned, and reads:

- AXFR: seconds, records/s, bytes and messages, and zoned's peak resident memory
  before and after (VmHWM), which shows whether the transfer streams;
- IXFR after ``--changes`` changed addresses: seconds and records.

The client is a plain socket that counts records from the message headers, so the
numbers are zoned's, not a client library's.
"""

from __future__ import annotations

import argparse
import ipaddress
import random
import signal
import socket
import struct
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.procs import free_port, on_signal, spawn, stop_all  # noqa: E402
from publisher.entries import TokenRecord  # noqa: E402
from publisher.publish import publish  # noqa: E402
from zoned import config  # noqa: E402

ZONE = "xfr.example.net"
REPO = Path(__file__).resolve().parent.parent
ZONE_FILE = f"""\
zone: {ZONE}
soa: {{mname: ns1.example.net, rname: hostmaster.example.net}}
ns: [ns1.example.net]
owner: ip
store: ../store
transfer:
  allow: [127.0.0.1]
"""


def fill(zone_config: config.ZoneConfig, count: int, seed: int) -> list[ipaddress.IPv4Address]:
    rng = random.Random(seed)
    addresses = list({ipaddress.IPv4Address(rng.getrandbits(32)) for _ in range(count)})
    records: list[TokenRecord] = []
    for i, address in enumerate(addresses):
        fields = {"n": rng.randint(1, 500), "sc": round(rng.uniform(-1, 1), 2)}
        records.append(TokenRecord(f"token {i}", str(address), fields))
        if i % 20 == 0:
            net = ipaddress.IPv6Network((rng.getrandbits(64) << 64, 64))
            records.append(TokenRecord(f"network {i}", str(net), fields))
    written = publish(zone_config, records)
    assert len(written.plan.adds) == len(records)  # every token has an answer
    return addresses


def change(zone_config: config.ZoneConfig, addresses: list[ipaddress.IPv4Address],
           count: int) -> None:
    written = publish(zone_config, [
        TokenRecord(f"change {i}", str(address), {"n": 999, "sc": 0.99})
        for i, address in enumerate(addresses[:count])
    ])
    assert len(written.plan.changes) == len(addresses[:count])  # every token has an answer


def transfer(port: int, qtype: int, serial: int = 0) -> tuple[float, int, int, int]:
    """(seconds, records, bytes, messages) of one transfer read to its closing SOA."""
    question = b"".join(bytes((len(p),)) + p.encode() for p in ZONE.split(".")) + b"\x00"
    question += struct.pack("!HH", qtype, 1)
    authority = b""
    nscount = 0
    if qtype == 251:
        rdata = b"\x00\x00" + struct.pack("!IIIII", serial, 0, 0, 0, 0)
        authority = b"\xc0\x0c" + struct.pack("!HHIH", 6, 1, 0, len(rdata)) + rdata
        nscount = 1
    wire = struct.pack("!HHHHHH", 0x1234, 0, 1, 0, nscount, 0) + question + authority
    started = time.perf_counter()
    records = size = messages = 0
    closing = b""
    with socket.create_connection(("127.0.0.1", port), timeout=300) as sock:
        sock.sendall(struct.pack("!H", len(wire)) + wire)
        stream = sock.makefile("rb", buffering=1 << 20)
        while True:
            head = stream.read(2)
            if len(head) < 2:
                raise RuntimeError("connection closed mid-transfer")
            message = stream.read(struct.unpack("!H", head)[0])
            messages += 1
            size += len(message)
            records += struct.unpack_from("!H", message, 6)[0]
            if not closing:
                # The first record is the zone's SOA; the stream ends with the same bytes.
                at = 12 + len(question)
                rdlen = struct.unpack_from("!H", message, at + 10)[0]
                closing = message[at : at + 12 + rdlen]
            if records == 1 or (records > 1 and message.endswith(closing)):
                break
    return time.perf_counter() - started, records, size, messages


def status(pid: int, field: str) -> int:
    """A /proc/PID/status memory field in MiB (VmHWM: peak RSS; RssAnon: heap now)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) // 1024
    return 0


class AnonPeak(threading.Thread):
    """Samples zoned's anonymous (heap) memory; mapped store pages are not its own."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.peak = 0
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.wait(0.05):
            self.peak = max(self.peak, status(self.pid, "RssAnon"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=1_000_000)
    parser.add_argument("--changes", type=int, default=1000)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/repzone-bench-transfer"))
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, on_signal)
    zones = args.workdir / "zones"
    zones.mkdir(parents=True, exist_ok=True)
    for old in (*(args.workdir / "store").glob("*"), args.workdir / "zoned.log"):
        old.unlink(missing_ok=True)
    (zones / f"{ZONE}.yaml").write_text(ZONE_FILE)
    zone_config = config.load_zone_file(zones / f"{ZONE}.yaml")
    started = time.perf_counter()
    addresses = fill(zone_config, args.tokens, 5)
    print(f"store: {len(addresses):,} addresses + {len(addresses) // 20:,} /64 networks "
          f"in {time.perf_counter() - started:.1f} s")
    port = free_port()
    log = args.workdir / "zoned.log"
    proc = spawn([sys.executable, "-m", "zoned.cli", "-c", str(zones), "--listen", "127.0.0.1",
                  "--port", str(port), "--log-file", str(log)], args.workdir / "zoned.out",
                 cwd=REPO)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError("zoned did not start") from None
                time.sleep(0.1)
        before = status(proc.pid, "RssAnon")
        sampler = AnonPeak(proc.pid)
        sampler.start()
        seconds, records, size, messages = transfer(port, 252)
        sampler.done.set()
        print(f"AXFR: {records:,} records, {size / 2**20:.1f} MiB in {messages:,} messages, "
              f"{seconds:.2f} s = {records / seconds:,.0f} records/s; zoned heap (RssAnon) "
              f"{before} MiB before, peak {sampler.peak} MiB during; peak RSS with mapped "
              f"store pages {status(proc.pid, 'VmHWM')} MiB")
        serial = int(log.read_text().split(f"AXFR of {ZONE} serial ")[-1].split()[0])
        change(zone_config, addresses, args.changes)
        time.sleep(1.0)
        seconds, records, size, messages = transfer(port, 251, serial)
        print(f"IXFR of {args.changes:,} changed addresses: {records:,} records in "
              f"{seconds * 1000:.0f} ms")
        print("zoned said:", *[line.split(" INFO ")[-1] for line in log.read_text().splitlines()
                                if "XFR" in line], sep="\n  ")
    finally:
        stop_all(5)


if __name__ == "__main__":
    main()
