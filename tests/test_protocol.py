"""The Twisted adapters on in-memory transports with a fake clock."""

from __future__ import annotations

from pathlib import Path

import dns.message
import dns.rcode
import pytest
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport

from zoned.core import Responder
from zoned.framing import Framer, frame
from zoned.protocol import TCPFactory, UDPServer
from zoned.tap import Options, makeService

HIT = "1.2.0.192.bl.example.net"


class FakeDatagramTransport:
    """Collects what a DatagramProtocol writes."""

    def __init__(self) -> None:
        self.written: list[tuple[bytes, object]] = []

    def write(self, data: bytes, addr: object) -> None:
        self.written.append((data, addr))


def test_udp_replies_go_back_to_the_sender(responder: Responder) -> None:
    udp = UDPServer(responder)
    transport = FakeDatagramTransport()
    udp.makeConnection(transport)  # type: ignore[arg-type]
    query = dns.message.make_query(HIT, "A")
    udp.datagramReceived(query.to_wire(), ("127.0.0.1", 5353))
    udp.datagramReceived(b"\x01", ("127.0.0.1", 5354))  # too short: dropped
    assert len(transport.written) == 1
    data, addr = transport.written[0]
    assert addr == ("127.0.0.1", 5353)
    assert dns.message.from_wire(data).answer[0][0].to_text() == "127.0.0.2"


def _tcp(
    responder: Responder, clock: Clock, timeout: float = 10.0
) -> tuple[object, StringTransport]:
    protocol = TCPFactory(responder, clock, timeout).buildProtocol(None)
    transport = StringTransport()
    protocol.makeConnection(transport)
    return protocol, transport


def test_tcp_pipelined_queries_are_answered_in_order(responder: Responder) -> None:
    protocol, transport = _tcp(responder, Clock())
    queries = [dns.message.make_query(name, "TXT") for name in
               (HIT, "9.9.9.9.bl.example.net", "2.0.0.127.bl.example.net")]
    stream = b"".join(frame(q.to_wire()) for q in queries)
    for i in range(0, len(stream), 7):  # arbitrary segment boundaries
        protocol.dataReceived(stream[i : i + 7])  # type: ignore[attr-defined]
    replies = [dns.message.from_wire(m) for m in Framer().feed(transport.value())]
    assert [r.id for r in replies] == [q.id for q in queries]
    assert [r.rcode() for r in replies] == [dns.rcode.NOERROR, dns.rcode.NXDOMAIN,
                                            dns.rcode.NOERROR]
    assert not transport.disconnecting


def test_tcp_idle_connection_is_closed_after_the_timeout(responder: Responder) -> None:
    clock = Clock()
    protocol, transport = _tcp(responder, clock, timeout=5)
    clock.advance(4)
    protocol.dataReceived(frame(dns.message.make_query(HIT, "A").to_wire()))  # type: ignore[attr-defined]
    clock.advance(4)
    assert not transport.disconnecting  # activity restarted the timer
    clock.advance(1.5)
    assert transport.disconnecting


def test_tcp_zero_length_frame_aborts_the_connection(responder: Responder) -> None:
    protocol, transport = _tcp(responder, Clock())
    protocol.dataReceived(b"\x00\x00")  # type: ignore[attr-defined]
    assert transport.disconnecting and transport.value() == b""


def test_make_service_loads_the_zones_without_binding(zones: Path) -> None:
    options = Options()
    options.parseOptions(["-c", str(zones), "--listen", "127.0.0.1,::1", "--port", "5300"])
    service = makeService(options, reactor=Clock())
    assert service.addresses == ("127.0.0.1", "::1") and service.port == 5300
    assert sorted(z.origin for z in service.responder.authority.zones.values()) == [
        "bl.example.net", "dom.example.net", "hash.example.net"]
    assert not service.ports


def test_reload_keeps_old_zones_when_the_new_files_are_broken(zones: Path) -> None:
    options = Options()
    options.parseOptions(["-c", str(zones)])
    service = makeService(options, reactor=Clock())
    before = service.responder.authority
    (zones / "broken.yaml").write_text("zone: [\n")
    assert service.reload() is False
    assert service.responder.authority is before
    (zones / "broken.yaml").unlink()
    assert service.reload() is True
    assert service.responder.authority is not before


@pytest.mark.parametrize("argv", [["--port", "x"]])
def test_options_reject_bad_values(argv: list[str]) -> None:
    from twisted.python.usage import UsageError

    with pytest.raises(UsageError):
        Options().parseOptions(argv)
