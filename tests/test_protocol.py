"""The Twisted adapters on in-memory transports with a fake clock."""

from __future__ import annotations

import socket
from pathlib import Path

import dns.message
import dns.rcode
import pytest
from twisted.internet.address import IPv4Address
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport

from zoned.connections import TcpLimits
from zoned.core import Responder
from zoned.framing import Framer, frame
from zoned.protocol import TCPFactory, TCPServer, UDPServer
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


class RecordingSocket(socket.socket):
    """A UDP socket that is never bound: ``sendto`` records instead of sending.

    It is a real :class:`socket.socket`, which is what :class:`UDPServer` looks for on
    its port before it writes replies with ``sendto`` instead of ``Port.write``.
    """

    def __init__(self, fail: bool = False) -> None:
        super().__init__(socket.AF_INET, socket.SOCK_DGRAM)
        self.sent: list[tuple[bytes, object]] = []
        self.fail = fail

    def sendto(self, data: object, *args: object) -> int:  # type: ignore[override]
        if self.fail:
            raise OSError("no buffer space")
        assert isinstance(data, bytes)
        self.sent.append((data, args[-1]))
        return len(data)


class FakePort(FakeDatagramTransport):
    """A port transport that, like Twisted's ``udp.Port``, exposes its socket."""

    def __init__(self, sock: socket.socket) -> None:
        super().__init__()
        self.socket = sock


def test_udp_replies_are_sent_on_the_ports_own_socket(responder: Responder) -> None:
    """With a real socket on the port, replies bypass ``Port.write`` and use ``sendto``."""
    with RecordingSocket() as sock:
        port = FakePort(sock)
        udp = UDPServer(responder)
        udp.makeConnection(port)  # type: ignore[arg-type]
        query = dns.message.make_query(HIT, "A")
        udp.datagramReceived(query.to_wire(), ("127.0.0.1", 5353))
        udp.datagramReceived(b"\x01", ("127.0.0.1", 5354))  # too short: dropped
        assert port.written == []
        assert len(sock.sent) == 1
        data, addr = sock.sent[0]
        assert addr == ("127.0.0.1", 5353)
        assert dns.message.from_wire(data).answer[0][0].to_text() == "127.0.0.2"
        assert udp.send_errors == 0


def test_a_failed_sendto_costs_that_reply_only(responder: Responder) -> None:
    """An OSError from ``sendto`` (a full buffer) is counted and the next query answered."""
    with RecordingSocket(fail=True) as sock:
        udp = UDPServer(responder)
        udp.makeConnection(FakePort(sock))  # type: ignore[arg-type]
        wire = dns.message.make_query(HIT, "A").to_wire()
        udp.datagramReceived(wire, ("127.0.0.1", 5353))
        assert udp.send_errors == 1
        sock.fail = False
        udp.datagramReceived(wire, ("127.0.0.1", 5353))
        assert udp.send_errors == 1 and len(sock.sent) == 1


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
    assert sorted(z.compiled.origin for z in service.responder.authority.zones.values()) == [
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


def _limited(responder: Responder, clock: Clock, **limits: object) -> tuple[TCPServer,
                                                                            StringTransport]:
    factory = TCPFactory(responder, clock, TcpLimits(**limits))  # type: ignore[arg-type]
    protocol = factory.buildProtocol(IPv4Address("TCP", "192.0.2.9", 4000))
    assert protocol is not None
    transport = StringTransport(peerAddress=IPv4Address("TCP", "192.0.2.9", 4000))
    protocol.makeConnection(transport)
    return protocol, transport


def _queries(count: int) -> list[dns.message.Message]:
    return [dns.message.make_query(HIT, "A") for _ in range(count)]


def test_unread_replies_stop_the_reading_at_the_pending_cap(responder: Responder) -> None:
    """A client that pipelines and never reads is no longer read once N replies wait."""
    protocol, transport = _limited(responder, Clock(), pending=8)
    protocol.pauseProducing()  # the socket's send buffer is full: the client is not reading
    queries = _queries(200)
    protocol.dataReceived(b"".join(frame(q.to_wire()) for q in queries))
    assert protocol.pending == 8
    assert transport.producerState == "paused"  # its socket is not read any more
    assert transport.value() == b""
    protocol.resumeProducing()  # the client reads: everything is answered, in order
    replies = [dns.message.from_wire(m) for m in Framer().feed(transport.value())]
    assert [r.id for r in replies] == [q.id for q in queries]
    assert transport.producerState == "producing" and protocol.pending == 0


def test_a_message_must_arrive_whole_within_its_deadline(responder: Responder) -> None:
    """A byte now and then keeps no connection open: the message has a deadline."""
    clock = Clock()
    protocol, transport = _limited(responder, clock, idle_timeout=60, message_timeout=3)
    wire = frame(dns.message.make_query(HIT, "A").to_wire())
    for byte in wire[:-1][:3]:
        protocol.dataReceived(bytes((byte,)))
        clock.advance(0.9)
    assert not transport.disconnecting
    clock.advance(0.4)  # 3 s after the message's first byte
    assert transport.disconnecting and transport.value() == b""


def test_the_idle_timer_runs_from_the_last_complete_message(responder: Responder) -> None:
    clock = Clock()
    protocol, transport = _limited(responder, clock, idle_timeout=5, message_timeout=60)
    protocol.dataReceived(frame(dns.message.make_query(HIT, "A").to_wire()))
    clock.advance(4)
    protocol.dataReceived(b"\x00")  # the start of a next message is not activity
    clock.advance(1.1)
    assert transport.disconnecting


def test_an_announced_length_over_the_limit_closes_at_once(responder: Responder) -> None:
    protocol, transport = _limited(responder, Clock(), max_message=512)
    protocol.dataReceived(b"\xff\xff" + b"x" * 10)
    assert transport.disconnecting and transport.value() == b""


def test_a_reply_left_unread_at_the_idle_timeout_is_aborted_later(responder: Responder) -> None:
    """A clean close waits for the client to read; not longer than a message may take."""
    clock = Clock()
    protocol, transport = _limited(responder, clock, idle_timeout=5, message_timeout=2)
    closed: list[str] = []
    transport.loseConnection = lambda: closed.append("lose")  # type: ignore[method-assign]
    transport.abortConnection = lambda: closed.append("abort")  # type: ignore[method-assign]
    protocol.dataReceived(frame(dns.message.make_query(HIT, "A").to_wire()))
    clock.advance(5.1)
    assert closed == ["lose"]
    clock.advance(2)
    assert closed == ["lose", "abort"]


class _Port:
    def __init__(self) -> None:
        self.reading = True

    def stopReading(self) -> None:
        self.reading = False

    def startReading(self) -> None:
        self.reading = True


def _connect(factory: TCPFactory, host: str) -> tuple[TCPServer | None, StringTransport]:
    address = IPv4Address("TCP", host, 4000)
    transport = StringTransport(peerAddress=address)
    protocol = factory.buildProtocol(address)
    if protocol is not None:
        protocol.makeConnection(transport)
    return protocol, transport


def test_a_source_over_its_cap_is_refused_and_others_are_not(responder: Responder) -> None:
    factory = TCPFactory(responder, Clock(), TcpLimits(clients=10, clients_per_source=2))
    assert all(_connect(factory, "192.0.2.1")[0] is not None for _ in range(2))
    assert _connect(factory, "192.0.2.1")[0] is None
    assert _connect(factory, "192.0.2.2")[0] is not None
    assert factory.table.stats["refused-source"] == 1


def test_ipv6_sources_are_counted_per_64() -> None:
    from zoned.connections import source_of

    assert source_of("2001:db8::1") == source_of("2001:db8::ffff:2") == "2001:db8::/64"
    assert source_of("2001:db8:0:1::1") != source_of("2001:db8::1")
    assert source_of("::ffff:192.0.2.1") == "192.0.2.1"


def test_at_the_cap_the_connection_idle_longest_is_evicted(responder: Responder) -> None:
    clock = Clock()
    factory = TCPFactory(responder, clock, TcpLimits(clients=3, clients_per_source=10))
    conns = [_connect(factory, f"192.0.2.{i}") for i in range(3)]
    first, second, third = conns
    assert first[0] is not None
    first[0].dataReceived(frame(dns.message.make_query(HIT, "A").to_wire()))  # first is used
    newcomer, _ = _connect(factory, "192.0.2.50")
    assert newcomer is not None
    assert second[1].disconnecting  # idle the longest: it never asked anything
    assert not first[1].disconnecting and not third[1].disconnecting
    assert factory.table.stats["evicted"] == 1


def test_when_none_is_idle_the_ports_stop_accepting_until_one_closes(
    responder: Responder,
) -> None:
    factory = TCPFactory(responder, Clock(), TcpLimits(clients=2, clients_per_source=10))
    port = _Port()
    factory.table.ports.append(port)
    busy = [_connect(factory, f"192.0.2.{i}") for i in range(2)]
    for protocol, _ in busy:
        assert protocol is not None
        protocol.pauseProducing()  # not reading its replies: a reply is pending
        protocol.dataReceived(frame(dns.message.make_query(HIT, "A").to_wire()))
    assert _connect(factory, "192.0.2.77")[0] is None
    assert not port.reading and factory.table.stats["refused-full"] == 1
    protocol = busy[0][0]
    assert protocol is not None
    protocol.connectionLost(None)
    assert port.reading
    assert _connect(factory, "192.0.2.77")[0] is not None


def test_every_tcp_limit_is_an_option_of_twistd_and_zoned(zones: Path) -> None:
    from zoned.cli import parse_args
    from zoned.connections import OPTIONS, limits_from

    argv = ["--idle-timeout", "7", "--tcp-message-timeout", "1.5", "--tcp-max-message", "600",
            "--tcp-pending", "3", "--tcp-clients", "40", "--tcp-clients-per-source", "4",
            "--tcp-backlog", "16"]
    expected = TcpLimits(7.0, 1.5, 600, 3, 40, 4, 16)
    options = Options()
    options.parseOptions(["-c", str(zones), *argv])
    assert makeService(options, reactor=Clock()).limits == expected
    args = parse_args(argv)
    assert limits_from({o.field: getattr(args, o.field) for o in OPTIONS}) == expected
    assert {f"--{o.flag}" for o in OPTIONS} == set(argv[::2])


@pytest.mark.parametrize("argv", [["--tcp-pending", "0"], ["--tcp-message-timeout", "-1"],
                                  ["--tcp-max-message", "70000"]])
def test_tcp_limits_out_of_range_are_refused(argv: list[str]) -> None:
    from twisted.python.usage import UsageError

    with pytest.raises(UsageError, match=argv[0]):
        Options().parseOptions(argv)
