"""The log is a resource: 100,000 packets an outsider may send grow zoned's log by a few KB.

Every kind of line such a packet can cause (an unknown TSIG key, a refused transfer, a
framing error, a refused connection) is rate-limited; what is not written is still
counted, and zoned reports the counts when it stops.
"""

from __future__ import annotations

import random
import re
import socket
import struct
from collections import Counter
from pathlib import Path

import dns.message
import dns.rrset
import dns.tsig
import pytest

from tests.support.publishing import copy_zones, publish_samples
from tests.support.zoned_process import start_zoned

pytestmark = [pytest.mark.e2e, pytest.mark.adversarial]

IP = "bl.example.net"
DOM = "dom.example.net"


def _kinds() -> dict[str, bytes]:
    unknown = dns.message.make_query(f"1.2.0.192.{IP}", "A")
    unknown.use_tsig(dns.tsig.Key("nobody.example.", b"0" * 32, "hmac-sha256"))
    return {
        "tsig-rejected": unknown.to_wire(),
        "tsig-junk": unknown.to_wire() + b"\x00junk",
        "axfr-udp": dns.message.make_query(IP, "AXFR").to_wire(),  # AXFR is TCP only
        "ixfr-refused": _ixfr(DOM),  # 127.0.0.1 is not in its transfer.allow
        "garbage": b"",  # random bytes, drawn per packet
    }


def _garbage(rng: random.Random) -> bytes:
    """Random bytes with a query's header bit, so zoned answers them (FORMERR mostly)."""
    data = bytearray(rng.randbytes(rng.randrange(12, 60)))
    data[2] &= 0x7F
    return bytes(data)


def _ixfr(zone: str) -> bytes:
    query = dns.message.make_query(zone, "IXFR")
    query.authority.append(dns.rrset.from_text(
        f"{zone}.", 0, "IN", "SOA", "ns1.example.net. hostmaster.example.net. 1 1 1 1 1"))
    return query.to_wire()


def test_a_flood_of_loggable_packets_grows_the_log_by_a_few_kb(tmp_path: Path) -> None:
    zones = copy_zones(tmp_path)
    publish_samples(zones)
    log = tmp_path / "zoned.log"
    server = start_zoned(zones, log, "--tcp-clients-per-source", "4")
    try:
        before = log.stat().st_size
        kinds = _kinds()
        names = sorted(kinds)
        rng = random.Random(15)
        replies: Counter[str] = Counter()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.connect(("127.0.0.1", server.port))
            udp.settimeout(0.2)
            sent = timeouts = 0
            while sent < 100_000:
                batch: dict[int, str] = {}
                for _ in range(64):  # a window the socket buffers hold: nothing dropped
                    kind = names[sent % len(names)]
                    ident = sent & 0xFFFF
                    wire = kinds[kind] or _garbage(rng)
                    udp.send(struct.pack("!H", ident) + wire[2:])
                    batch[ident] = kind
                    sent += 1
                for _ in range(len(batch)):
                    try:
                        reply = udp.recv(4096)
                    except TimeoutError:
                        timeouts += 1
                        break
                    kind = batch.pop(struct.unpack_from("!H", reply)[0], "")
                    replies[kind] += 1
        for data in (b"\x00\x00", b"\xff\xff" + b"x" * 10):  # zero length, over the limit
            for _ in range(20):
                with socket.create_connection(("127.0.0.1", server.port), timeout=2) as tcp:
                    tcp.sendall(data)
                    try:
                        assert tcp.recv(10) == b""  # closed by zoned
                    except ConnectionResetError:
                        pass  # closed with our bytes unread: a reset
        held = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(30)]
        assert server.ask(f"2.0.0.127.{IP}").answer  # still answering
        for sock in held:
            sock.close()
        grown = log.stat().st_size - before
        print(f"replies {dict(replies)}, windows that timed out: {timeouts}, "
              f"log grew by {grown} bytes")
        assert grown < 8_000, f"the log grew by {grown} bytes"
        assert replies["tsig-rejected"] > 15_000 and replies["ixfr-refused"] > 15_000
    finally:
        assert server.stop() == 0
    text = log.read_text()
    assert "Traceback" not in text and "internal error" not in text
    summary = re.search(r"rate-limited lines not written, by kind: (.*)", text)
    assert summary is not None, text[-2000:]
    counts = {k: int(v) for k, v in re.findall(r"([\w-]+)=(\d+)", summary.group(1))}
    # Every line held back was counted: each reply to these kinds stands for one line.
    assert counts["tsig-rejected"] >= replies["tsig-rejected"] - 5
    assert counts["transfer-refused"] >= replies["axfr-udp"] + replies["ixfr-refused"] - 5
    assert counts["tcp-framing"] >= 40 - 5
    assert counts.get("tcp-refused", 0) >= 1
