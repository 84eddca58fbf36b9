"""Zone transfers from a real zoned: AXFR, IXFR from the journal, TSIG and the ACLs.

The check that matters: a secondary that takes an AXFR, then applies each IXFR, holds
exactly what a fresh AXFR gives (dnspython applies the IXFR, as a secondary would).
"""

from __future__ import annotations

import base64
import socket
import struct
import time
from collections.abc import Iterator
from pathlib import Path

import dns.message
import dns.name
import dns.query
import dns.rcode
import dns.rdatatype
import dns.tsig
import dns.tsigkeyring
import dns.versioned
import dns.xfr
import dns.zone
import pytest
from twisted.internet.address import IPv4Address
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport

from tests.support.polling import until
from tests.support.publishing import copy_zones, publish, publish_samples
from tests.support.zoned_process import Zoned, start_zoned
from zoned.core import Responder
from zoned.framing import Framer
from zoned.protocol import TCPFactory
from zoned.service import build_authority
from zoned.zone import ReaderPool

SECRET = base64.b64encode(b"repzone-transfer-test-key-32byte").decode()
KEY = dns.tsig.Key("xfr-key.", SECRET, "hmac-sha256")
WRONG = dns.tsig.Key("xfr-key.", base64.b64encode(b"another secret entirely, 32 byte").decode(),
                     "hmac-sha256")
OTHER = dns.tsig.Key("other-key.", SECRET, "hmac-sha256")
IP = "bl.example.net"
HASH = "hash.example.net"
DOM = "dom.example.net"


def _append(path: Path, text: str) -> None:
    path.write_text(path.read_text() + text)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Zoned]:
    base = tmp_path_factory.mktemp("transfer")
    zones = copy_zones(base)
    publish_samples(zones)
    _append(zones / f"{IP}.yaml", f"""
transfer:
  allow: [127.0.0.0/8]
  key: xfr-key
keys:
  xfr-key: {{secret: "{SECRET}"}}
  other-key: {{secret: "{SECRET}"}}
""")
    _append(zones / f"{HASH}.yaml", "\ntransfer:\n  allow: [127.0.0.1]\n")
    _append(zones / f"{DOM}.yaml", "\ntransfer:\n  allow: [192.0.2.0/24]\n")
    zoned = start_zoned(zones, base / "zoned.log")
    yield zoned
    zoned.stop()


def axfr(server: Zoned, zone: str, key: dns.tsig.Key | None = None) -> dns.versioned.Zone:
    copy = dns.versioned.Zone(zone)
    query, _ = dns.xfr.make_query(copy, keyring=key)
    dns.query.inbound_xfr("127.0.0.1", copy, query, port=server.port, timeout=10)
    return copy


def ixfr(server: Zoned, copy: dns.versioned.Zone, key: dns.tsig.Key | None = None) -> None:
    query, _ = dns.xfr.make_query(copy, keyring=key)
    assert query.question[0].rdtype == dns.rdatatype.IXFR
    dns.query.inbound_xfr("127.0.0.1", copy, query, port=server.port, timeout=10)


def records(zone: dns.versioned.Zone) -> set[str]:
    return {
        f"{name} {rdataset.ttl} {rdataset.rdtype} {rdata}"
        for name, rdataset in zone.iterate_rdatasets()
        for rdata in rdataset
    }


def serial(zone: dns.versioned.Zone) -> int:
    soa = zone.get_rdataset("@", "SOA")
    assert soa is not None
    return int(soa[0].serial)


def log_lines(server: Zoned, needle: str) -> list[str]:
    return [line for line in server.log.read_text().splitlines() if needle in line]


def test_axfr_lists_the_zone_as_the_master_file_export_does(server: Zoned) -> None:
    """The hashed zone by AXFR: SOA, NS, the static and test records, every token."""
    copy = axfr(server, HASH)
    answer = server.ask(f"{HASH}.", "SOA").answer[0][0]
    assert serial(copy) == answer.serial
    names = {name.to_text() for name in copy.nodes}
    assert "@" in names and len(names) > 10
    for name in names - {"@"}:
        reply = server.ask(f"{name}.{HASH}.", "TXT")
        assert reply.rcode() == dns.rcode.NOERROR
        held = copy.get_rdataset(name, "TXT")
        assert held is not None
        assert {r.to_text() for r in reply.answer[0]} == {r.to_text() for r in held}
    assert log_lines(server, f"AXFR of {HASH} serial {serial(copy)} to 127.0.0.1: ")


def test_ixfr_brings_a_secondary_to_what_a_fresh_axfr_holds(server: Zoned) -> None:
    """Additions, changes and deletions, over several serials, applied as a secondary would."""
    copy = axfr(server, HASH)
    before = serial(copy)
    publish(server.zones, HASH, [{"token": "ixfr-1@example.com", "n": 5, "sc": 0.9}])
    publish(server.zones, HASH, [{"token": "ixfr-2@example.com", "n": 7, "sc": -0.5},
                                 {"token": "ixfr-1@example.com", "n": 6, "sc": 0.5}])
    _wait_serial(server, HASH, before, 2)
    ixfr(server, copy)
    assert records(copy) == records(axfr(server, HASH))
    assert serial(copy) != before
    lines = log_lines(server, f"IXFR of {HASH} from serial {before} to {serial(copy)}")
    assert lines and lines[-1].endswith("changes")


def test_ixfr_of_an_ip_zone_sends_addresses_and_lone_networks_as_names(server: Zoned) -> None:
    copy = axfr(server, IP, KEY)
    before = serial(copy)
    publish(server.zones, IP, [
        {"token": "192.0.2.201", "n": 5, "sc": 0.9},
        {"token": "2001:db8:77::/64", "n": 9, "sc": 0.95},
    ])
    _wait_serial(server, IP, before, 1)
    ixfr(server, copy, KEY)
    assert records(copy) == records(axfr(server, IP, KEY))
    assert log_lines(server, f"IXFR of {IP} from serial {before} to {serial(copy)}")
    assert copy.get_rdataset("*.0.0.0.0.7.7.0.0.8.b.d.0.1.0.0.2", "TXT") is not None


def test_a_change_that_moves_wildcards_is_sent_as_a_full_transfer(server: Zoned) -> None:
    """A network over published addresses changes what the wildcards cover: full reply."""
    copy = axfr(server, IP, KEY)
    before = serial(copy)
    publish(server.zones, IP, [{"token": "192.0.2.0/24", "n": 50, "sc": 0.6}])
    _wait_serial(server, IP, before, 1)
    ixfr(server, copy, KEY)
    assert records(copy) == records(axfr(server, IP, KEY))
    assert log_lines(server, f"IXFR of {IP} from serial {before} to 127.0.0.1 answered with "
                             "a full transfer")


def test_ixfr_from_an_unknown_or_future_serial(server: Zoned) -> None:
    """Too old for the journal: the full zone; newer than ours: our SOA alone (RFC 1995 2)."""
    current = axfr(server, HASH)
    now = serial(current)
    for asked, expect_full in ((12345, True), ((now + 1000) % 2**32, False), (now, False)):
        query = dns.message.make_query(HASH, "IXFR")
        query.authority.append(_soa_rrset(asked))
        messages = list(_tcp_messages(server, query))
        answers = [rr for m in messages for rrset in m.answer for rr in rrset]
        if expect_full:
            assert len(answers) > 3 and answers[0].serial == now and answers[-1].serial == now
        else:
            assert len(answers) == 1 and answers[0].serial == now


def test_ixfr_over_udp_answers_the_soa_and_axfr_over_udp_is_an_error(server: Zoned) -> None:
    query = dns.message.make_query(HASH, "IXFR")
    query.authority.append(_soa_rrset(1))
    reply = dns.query.udp(query, "127.0.0.1", port=server.port, timeout=2)
    assert [rrset.rdtype for rrset in reply.answer] == [dns.rdatatype.SOA]
    reply = dns.query.udp(dns.message.make_query(HASH, "AXFR"), "127.0.0.1", port=server.port,
                          timeout=2)
    assert reply.rcode() == dns.rcode.FORMERR


@pytest.mark.parametrize(
    ("zone", "key", "rcode", "logged"),
    [
        (IP, None, dns.rcode.REFUSED, "unsigned; transfer.key requires xfr-key"),
        (DOM, None, dns.rcode.REFUSED, "address not in transfer.allow"),
        ("nowhere.example", None, dns.rcode.NOTAUTH, "not a zone served here"),
    ],
)
def test_transfers_outside_the_acl_are_refused_and_logged(
    server: Zoned, zone: str, key: dns.tsig.Key | None, rcode: dns.rcode.Rcode, logged: str
) -> None:
    query = dns.message.make_query(zone, "AXFR")
    if key is not None:
        query.use_tsig(key)
    messages = list(_tcp_messages(server, query))
    assert len(messages) == 1 and messages[0].rcode() == rcode and not messages[0].answer
    assert log_lines(server, logged)


@pytest.mark.parametrize(
    ("key", "error", "logged"),
    [(WRONG, dns.rcode.BADSIG, "rejected: bad TSIG signature"),
     (OTHER, dns.rcode.BADKEY, "rejected: unknown TSIG key")],
)
def test_a_bad_tsig_gets_notauth_with_the_tsig_error(
    server: Zoned, key: dns.tsig.Key, error: dns.rcode.Rcode, logged: str
) -> None:
    query = dns.message.make_query(IP, "AXFR")
    query.use_tsig(key)
    reply = _raw_tcp(server, query.to_wire())
    # dnspython refuses to verify an error TSIG; read the header and the TSIG by hand.
    assert reply[3] & 0x0F == dns.rcode.NOTAUTH
    parsed = dns.message.from_wire(reply, keyring=lambda _m, _n: False)
    assert parsed.question[0].name == dns.name.from_text(IP)
    assert parsed.tsig is not None and parsed.tsig[0].error == error
    assert log_lines(server, logged)


def test_a_signed_stream_verifies_message_by_message(server: Zoned) -> None:
    """Every message of a multi-message AXFR carries a TSIG that dnspython verifies."""
    query = dns.message.make_query(IP, "AXFR")
    query.use_tsig(KEY)
    count = 0
    for message in dns.query.xfr("127.0.0.1", IP, port=server.port, keyring={KEY.name: KEY},
                                 keyname=KEY.name, keyalgorithm=KEY.algorithm, timeout=10):
        assert message.had_tsig
        count += 1
    assert count >= 2  # the huge TXT records take more than one message


def test_queries_keep_being_answered_during_a_stalled_transfer(server: Zoned) -> None:
    """A client that asks for AXFR and never reads does not hold up anyone else."""
    stalled = socket.create_connection(("127.0.0.1", server.port))
    try:
        stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        wire = dns.message.make_query(HASH, "AXFR").to_wire()
        stalled.sendall(struct.pack("!H", len(wire)) + wire)
        reply = server.ask(f"2.0.0.127.{IP}", "A")
        assert reply.answer[0][0].to_text() == "127.0.0.2"
    finally:
        stalled.close()


def test_a_client_that_stops_reading_mid_transfer_is_cut_off(tmp_path: Path) -> None:
    """Replies are produced only as the client reads; a stalled reader is aborted."""
    zones = copy_zones(tmp_path)
    _append(zones / f"{HASH}.yaml", "\ntransfer:\n  allow: [127.0.0.1]\n")
    publish(zones, HASH, [{"token": f"t{i}@example.com", "n": i} for i in range(3000)])
    responder = Responder(build_authority(zones, ReaderPool()))
    clock = Clock()
    protocol = TCPFactory(responder, clock, 5.0).buildProtocol(None)
    transport = _FillingTransport(40000)
    protocol.makeConnection(transport)
    assert transport.producer is protocol
    wire = dns.message.make_query(HASH, "AXFR").to_wire()
    protocol.dataReceived(struct.pack("!H", len(wire)) + wire)
    written = len(transport.value())
    assert 40000 < written < 40000 + 20000  # stopped once the window was full
    clock.advance(4.9)
    assert not transport.disconnecting
    clock.advance(0.2)
    assert transport.disconnecting  # aborted, not waiting for a flush
    protocol.resumeProducing()  # a late resume after the abort sends nothing more
    assert len(transport.value()) == written
    messages = Framer().feed(transport.value())
    last = dns.message.from_wire(messages[-1])
    assert last.answer[-1].rdtype != dns.rdatatype.SOA  # the transfer was cut short


class _FillingTransport(StringTransport):
    """A transport whose send window fills after ``window`` bytes and never drains."""

    def __init__(self, window: int) -> None:
        super().__init__(peerAddress=IPv4Address("TCP", "127.0.0.1", 5353))
        self.window = window

    def write(self, data: bytes) -> None:
        super().write(data)
        if len(self.value()) > self.window and self.producer is not None:
            self.producer.pauseProducing()


def _soa_rrset(number: int) -> dns.rrset.RRset:
    return dns.rrset.from_text(
        f"{HASH}.", 0, "IN", "SOA", f"ns1.example.net. hostmaster.example.net. {number} 1 1 1 1"
    )


def _tcp_messages(server: Zoned, query: dns.message.Message) -> Iterator[dns.message.Message]:
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        dns.query.send_tcp(sock, query)
        while True:
            reply, _ = dns.query.receive_tcp(sock, time.time() + 5, one_rr_per_rrset=True,
                                             keyring=query.keyring, request_mac=query.mac)
            yield reply
            answers = [rr for rrset in reply.answer for rr in rrset]
            if reply.rcode() != dns.rcode.NOERROR or _complete(reply, answers):
                return


def _complete(reply: dns.message.Message, answers: list[object]) -> bool:
    """A single SOA, or a stream whose last record is the closing SOA."""
    soas = [rrset for rrset in reply.answer if rrset.rdtype == dns.rdatatype.SOA]
    return len(answers) == 1 or (len(soas) >= 2 and reply.answer[-1].rdtype == dns.rdatatype.SOA)


def _raw_tcp(server: Zoned, wire: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(struct.pack("!H", len(wire)) + wire)
        length = struct.unpack("!H", _read(sock, 2))[0]
        return _read(sock, length)


def _read(sock: socket.socket, count: int) -> bytes:
    data = b""
    while len(data) < count:
        chunk = sock.recv(count - len(data))
        if not chunk:
            raise ConnectionError("closed")
        data += chunk
    return data


def _wait_serial(server: Zoned, zone: str, before: int, commits: int) -> None:
    until(lambda: server.ask(f"{zone}.", "SOA").answer[0][0].serial != before,
          lambda: f"{zone} still at serial {before} after {commits} commits", 10)


def test_random_changes_through_ixfr_match_a_fresh_axfr(tmp_path: Path) -> None:
    """Rounds of random additions, changes and deletions of addresses and networks that
    overlap each other, the overrides and the other address family: after each round the
    IXFR-applied copy equals a fresh AXFR, whether zoned sent differences or the zone."""
    import random

    zones = copy_zones(tmp_path)
    publish_samples(zones)
    _append(zones / f"{IP}.yaml", "\ntransfer:\n  allow: [127.0.0.1]\n")
    config = zones / f"{IP}.yaml"  # the pool's 1230::/12 is wider than the default /16
    config.write_text(config.read_text().replace("  v6: 16\n", "  v6: 12\n", 1))
    responder = Responder(build_authority(zones, ReaderPool()))
    rng = random.Random(1995)
    pool = [
        "10.1.2.3", "10.1.2.4", "10.1.9.9", "10.0.0.0/8", "10.1.0.0/16", "10.1.2.0/24",
        "10.1.16.0/20", "1.2.3.4", "1.2.3.0/24", "1230::/12", "2001:db8::/32",
        "2001:db8:1::/64", "2001:db8:1::5", "2001:db8:2::/64", "198.51.100.9",
        "203.0.113.5", "192.0.2.99", "192.0.2.100", "192.0.2.101", "172.16.5.5",
        "172.16.0.0/12", "2a00:1450::/32", "2a00:1450:4001::/48", "8.8.8.8",
    ]
    # Names of their own: nothing else lies at, above or below them.
    lone = ["100.64.1.1", "100.65.2.2", "100.66.3.3", "2a02:6b8:1::/64", "2a02:6b8:2::/64"]
    held: dict[str, float] = {}
    copy = _axfr_in_memory(responder, IP)
    modes: set[str] = set()
    for round_ in range(10):
        choices = lone if round_ % 2 else pool
        for token in rng.sample(choices, rng.randint(1, 3)):
            held[token] = round(rng.uniform(-1, 1), 2)
        for token in rng.sample(sorted(set(held) & set(choices)), rng.randint(0, 1)):
            del held[token]
        publish(zones, IP, [{"token": t, "n": 10, "sc": sc} for t, sc in held.items()],
                replace=True)
        responder.refresh()
        modes.add(_ixfr_in_memory(responder, IP, copy))
        assert records(copy) == records(_axfr_in_memory(responder, IP))
    assert modes == {"incremental", "full"}  # both kinds of reply were exercised


def _axfr_in_memory(responder: Responder, zone: str) -> dns.versioned.Zone:
    copy = dns.versioned.Zone(zone)
    query, _ = dns.xfr.make_query(copy)
    _apply(responder, copy, query)
    return copy


def _ixfr_in_memory(responder: Responder, zone: str, copy: dns.versioned.Zone) -> str:
    query, _ = dns.xfr.make_query(copy)
    messages = _apply(responder, copy, query)
    return "full" if messages[0].answer[0].rdtype == dns.rdatatype.SOA and any(
        rrset.rdtype == dns.rdatatype.NS for m in messages for rrset in m.answer
    ) else "incremental"


def _apply(responder: Responder, copy: dns.versioned.Zone,
           query: dns.message.Message) -> list[dns.message.Message]:
    qtype = query.question[0].rdtype
    serial = None
    if qtype == dns.rdatatype.IXFR:
        serial = query.authority[0][0].serial
    messages = []
    with dns.xfr.Inbound(copy, qtype, serial) as inbound:
        for wire in responder.respond_stream(query.to_wire(), "127.0.0.1"):
            message = dns.message.from_wire(wire, xfr=True, origin=copy.origin,
                                            one_rr_per_rrset=qtype == dns.rdatatype.IXFR)
            messages.append(message)
            if inbound.process_message(message):
                break
    return messages


def test_signed_queries_are_verified_and_answered_signed(server: Zoned) -> None:
    """Secondaries sign their SOA checks (Knot before every refresh): RFC 8945 5.2, 5.3."""
    query = dns.message.make_query(f"{IP}.", "SOA")
    query.use_tsig(KEY)
    for send in (dns.query.udp, dns.query.tcp):
        reply = send(query, "127.0.0.1", port=server.port, timeout=2)  # verifies the TSIG
        assert reply.had_tsig and reply.rcode() == dns.rcode.NOERROR
        assert reply.answer[0].rdtype == dns.rdatatype.SOA
    query = dns.message.make_query(f"{IP}.", "SOA")
    query.use_tsig(WRONG)
    reply = _raw_tcp(server, query.to_wire())
    assert reply[3] & 0x0F == dns.rcode.NOTAUTH
    parsed = dns.message.from_wire(reply, keyring=lambda _m, _n: False)
    assert parsed.tsig is not None and parsed.tsig[0].error == dns.rcode.BADSIG
