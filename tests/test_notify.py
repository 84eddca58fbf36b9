"""NOTIFY to secondaries: the state machine in memory, the adapter on a fake clock, and a
real zoned process notifying a socket of the test's."""

from __future__ import annotations

import base64
import dataclasses
import itertools
import logging
import re
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.rcode
import dns.rdatatype
import dns.tsig
import pytest
from twisted.internet.task import Clock

from tests.support.publishing import copy_zones, publish
from tests.support.repo import ZONES
from tests.support.zoned_process import start_zoned
from zoned.access import Networks, Target, Transfer, TsigKey
from zoned.config import ZoneConfig, load_zone_file
from zoned.notifier import NotifySender
from zoned.notify import INITIAL_RETRY, MAX_RETRY, Notifier, tsig_key
from zoned.service import ZonedService

ZONE = "bl.example.net"
KEY = TsigKey("xfr-key", "hmac-sha256", b"s" * 32)
OTHER_KEY = TsigKey("xfr-key", "hmac-sha256", b"t" * 32)
A = Target("127.0.0.1", 5301)
B = Target("::1", 5302)


def zone_config(*targets: Target, key: TsigKey | None = None, origin: str = ZONE) -> ZoneConfig:
    base = load_zone_file(ZONES / f"{origin}.yaml")
    return dataclasses.replace(base, transfer=Transfer(Networks(()), key, targets))


def counting_ids() -> Iterator[int]:
    return itertools.count(100)


def notifier() -> Notifier:
    ids = counting_ids()
    return Notifier(ids=lambda: next(ids))


def parse(wire: bytes, key: TsigKey | None = None) -> dns.message.Message:
    return dns.message.from_wire(wire, keyring=tsig_key(key) if key else None)


def ack(wire: bytes, key: TsigKey | None = None, rcode: dns.rcode.Rcode = dns.rcode.NOERROR,
        **changes: Any) -> bytes:
    """The reply a secondary sends to the NOTIFY ``wire`` (signed when the NOTIFY was)."""
    request = parse(wire, key)
    reply = dns.message.make_response(request)  # signs with the request's key, if any
    reply.set_rcode(rcode)
    for name, value in changes.items():
        setattr(reply, name, value)
    return reply.to_wire()


def test_a_new_serial_notifies_every_target_at_once() -> None:
    """One NOTIFY per target: opcode NOTIFY, AA, the zone's SOA question and the new SOA."""
    n = notifier()
    assert n.next_wakeup() is None
    n.serial_changed(zone_config(A, B), 1234, now=10.0)
    assert n.next_wakeup() == 10.0
    sent = n.due(10.0)
    assert [target for _, target in sent] == [A, B]
    for wire, _ in sent:
        message = parse(wire)
        assert message.opcode() == dns.opcode.NOTIFY
        assert message.flags & dns.flags.AA and not message.flags & dns.flags.QR
        assert not message.flags & dns.flags.RD
        (question,) = message.question
        assert question.name.to_text() == ZONE + "." and question.rdtype == dns.rdatatype.SOA
        (soa,) = message.answer
        assert soa.rdtype == dns.rdatatype.SOA and soa[0].serial == 1234
        assert soa[0].mname.to_text() == "ns1.example.net."
    assert n.due(10.0) == []  # nothing more until the retry
    assert n.next_wakeup() == 10.0 + INITIAL_RETRY


def test_a_zone_without_targets_sends_nothing() -> None:
    n = notifier()
    n.serial_changed(load_zone_file(ZONES / f"{ZONE}.yaml"), 5, now=0.0)
    assert n.due(0.0) == [] and n.next_wakeup() is None


def test_retries_back_off_doubling_to_the_cap() -> None:
    """2 s, 4 s, 8 s ... never more often, never less often than every 60 s."""
    n = notifier()
    n.serial_changed(zone_config(A), 7, now=0.0)
    times: list[float] = []
    for _ in range(10):
        wakeup = n.next_wakeup()
        assert wakeup is not None
        assert n.due(wakeup - 0.001) == []  # not early
        assert len(n.due(wakeup)) == 1
        times.append(wakeup)
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert gaps == [2, 4, 8, 16, 32, MAX_RETRY, MAX_RETRY, MAX_RETRY, MAX_RETRY]


def test_a_newer_serial_supersedes_a_pending_one() -> None:
    """The old serial is not retried, its late ack counts for nothing, the new one goes now."""
    n = notifier()
    config = zone_config(A)
    n.serial_changed(config, 1, now=0.0)
    (old, _), = n.due(0.0)
    n.due(2.0)
    n.serial_changed(config, 2, now=3.0)
    assert n.pending() == {(ZONE, A): 2}
    assert n.next_wakeup() == 3.0
    assert not n.received(ack(old), ("127.0.0.1", 5301), 3.1)
    (new, _), = n.due(3.0)
    assert parse(new).answer[0][0].serial == 2
    assert n.next_wakeup() == 3.0 + INITIAL_RETRY  # the backoff starts over
    assert n.received(ack(new), ("127.0.0.1", 5301), 3.2)
    assert n.pending() == {} and n.next_wakeup() is None


def test_the_same_serial_again_changes_nothing() -> None:
    """Told already (pending or acknowledged): a reload re-announcing it sends nothing new."""
    n = notifier()
    config = zone_config(A)
    n.serial_changed(config, 1, now=0.0)
    (wire, _), = n.due(0.0)
    n.serial_changed(config, 1, now=1.0)
    assert n.next_wakeup() == INITIAL_RETRY  # the schedule kept its backoff
    assert n.received(ack(wire), ("127.0.0.1", 5301), 1.5)
    n.serial_changed(config, 1, now=2.0)
    assert n.next_wakeup() is None


def test_new_targets_get_the_current_serial_and_removed_ones_are_forgotten() -> None:
    n = notifier()
    n.serial_changed(zone_config(A), 1, now=0.0)
    (wire, _), = n.due(0.0)
    assert n.received(ack(wire), ("127.0.0.1", 5301), 0.1)
    n.serial_changed(zone_config(A, B), 1, now=5.0)  # B added by a reload
    assert [t for _, t in n.due(5.0)] == [B]
    n.serial_changed(zone_config(A), 1, now=6.0)  # B removed again: no more retries
    assert n.pending() == {} and n.next_wakeup() is None


def test_zones_no_longer_served_are_forgotten() -> None:
    n = notifier()
    n.serial_changed(zone_config(A), 1, now=0.0)
    n.retain(["other.example.net"])
    assert n.pending() == {} and n.due(100.0) == []


def test_an_ack_must_answer_our_notify_from_the_target(caplog: pytest.LogCaptureFixture) -> None:
    """Wrong id, address, port, zone, type, opcode or a query instead of a reply: ignored."""
    n = notifier()
    n.serial_changed(zone_config(A), 42, now=0.0)
    (wire, _), = n.due(0.0)
    good = dns.message.from_wire(ack(wire))
    source = ("127.0.0.1", 5301)

    def variant(**changes: Any) -> bytes:
        message = dns.message.from_wire(good.to_wire())
        for name, value in changes.items():
            setattr(message, name, value)
        return message.to_wire()

    other_zone = dns.message.make_query("dom.example.net", "SOA")
    other_zone.id, other_zone.flags = good.id, good.flags
    other_zone.set_opcode(dns.opcode.NOTIFY)
    other_type = dns.message.make_query(ZONE, "A")
    other_type.id, other_type.flags = good.id, good.flags
    other_type.set_opcode(dns.opcode.NOTIFY)
    query_opcode = dns.message.from_wire(good.to_wire())
    query_opcode.set_opcode(dns.opcode.QUERY)
    not_a_reply = dns.message.from_wire(good.to_wire())
    not_a_reply.flags &= ~dns.flags.QR
    with caplog.at_level(logging.DEBUG, logger="zoned.notify"):
        assert not n.received(variant(id=(good.id + 1) & 0xFFFF), source, 0.1)
        assert not n.received(good.to_wire(), ("127.0.0.2", 5301), 0.1)
        assert not n.received(good.to_wire(), ("127.0.0.1", 5300), 0.1)
        assert not n.received(other_zone.to_wire(), source, 0.1)
        assert not n.received(other_type.to_wire(), source, 0.1)
        assert not n.received(query_opcode.to_wire(), source, 0.1)
        assert not n.received(not_a_reply.to_wire(), source, 0.1)
        assert not n.received(b"\x00\x01\x80", source, 0.1)
        assert not n.received(good.to_wire()[:20], source, 0.1)  # cut short
    assert n.pending() == {(ZONE, A): 42}
    assert "acknowledged" not in caplog.text
    # The zone's name in another letter case is the same zone (RFC 4343).
    upper = dns.message.from_wire(good.to_wire())
    upper.question[0].name = dns.name.from_text(ZONE.upper())
    assert n.received(upper.to_wire(), ("127.0.0.1", 5301), 0.2)


def test_an_ipv6_target_matches_any_spelling_of_its_address() -> None:
    n = notifier()
    n.serial_changed(zone_config(B), 3, now=0.0)
    (wire, _), = n.due(0.0)
    assert n.received(ack(wire), ("0:0:0:0:0:0:0:1", 5302), 0.1)


def test_ack_is_logged_and_ends_the_retries(caplog: pytest.LogCaptureFixture) -> None:
    n = notifier()
    n.serial_changed(zone_config(A), 123, now=0.0)
    (wire, _), = n.due(0.0)
    with caplog.at_level(logging.INFO, logger="zoned.notify"):
        assert n.received(ack(wire), ("127.0.0.1", 5301), 0.5)
    assert "NOTIFY of bl.example.net serial 123 to 127.0.0.1:5301 acknowledged" in caplog.text
    assert n.next_wakeup() is None and n.due(1000.0) == []
    assert not n.received(ack(wire), ("127.0.0.1", 5301), 0.6)  # a duplicate: nothing


def test_a_late_ack_of_an_earlier_attempt_counts() -> None:
    """A slow secondary's reply to the first attempt, arriving after the retry, ends it."""
    n = notifier()
    n.serial_changed(zone_config(A, key=KEY), 9, now=0.0)
    (first, _), = n.due(0.0)
    (second, _), = n.due(2.0)
    assert parse(first, KEY).id != parse(second, KEY).id
    assert n.received(ack(first, KEY), ("127.0.0.1", 5301), 2.5)


def test_a_silent_target_is_warned_about_once(caplog: pytest.LogCaptureFixture) -> None:
    """WARNING at the first unanswered attempt, nothing at later retries, INFO on recovery."""
    n = notifier()
    n.serial_changed(zone_config(A), 5, now=0.0)
    with caplog.at_level(logging.INFO, logger="zoned.notify"):
        wire = b""
        for _ in range(6):
            wakeup = n.next_wakeup()
            assert wakeup is not None
            (wire, _), = n.due(wakeup)
        warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
        assert len(warnings) == 1
        assert "no answer from 127.0.0.1:5301" in warnings[0].getMessage()
        assert "then in 4 s" in warnings[0].getMessage()
        assert n.received(ack(wire), ("127.0.0.1", 5301), 70.0)
    infos = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
    assert infos == [
        "127.0.0.1:5301 answers NOTIFY of bl.example.net again",
        "NOTIFY of bl.example.net serial 5 to 127.0.0.1:5301 acknowledged",
    ]


@pytest.mark.parametrize("rcode", [dns.rcode.REFUSED, dns.rcode.NOTAUTH, dns.rcode.SERVFAIL])
def test_an_error_rcode_is_logged_and_retried(
    rcode: dns.rcode.Rcode, caplog: pytest.LogCaptureFixture
) -> None:
    n = notifier()
    n.serial_changed(zone_config(A), 5, now=0.0)
    with caplog.at_level(logging.INFO, logger="zoned.notify"):
        (wire, _), = n.due(0.0)
        assert not n.received(ack(wire, rcode=rcode), ("127.0.0.1", 5301), 0.1)
        assert n.next_wakeup() == INITIAL_RETRY  # retried like a timeout, not sooner
        (wire, _), = n.due(2.0)
        assert not n.received(ack(wire, rcode=rcode), ("127.0.0.1", 5301), 2.1)
        (wire, _), = n.due(6.0)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == [
        f"127.0.0.1:5301 answered {dns.rcode.to_text(rcode)} to NOTIFY of bl.example.net "
        f"serial 5; retrying with backoff up to every 60 s"
    ]
    assert n.pending() == {(ZONE, A): 5}


def test_a_signed_notify_verifies_with_the_key() -> None:
    n = notifier()
    n.serial_changed(zone_config(A, key=KEY), 77, now=0.0)
    (wire, _), = n.due(0.0)
    message = parse(wire, KEY)  # raises unless the signature verifies
    assert message.had_tsig and message.keyname == dns.name.from_text("xfr-key")
    assert message.keyalgorithm == dns.name.from_text("hmac-sha256")
    with pytest.raises(dns.tsig.BadSignature):
        parse(wire, OTHER_KEY)


def test_a_signed_notify_needs_a_validly_signed_ack(caplog: pytest.LogCaptureFixture) -> None:
    """Unsigned, or signed with another secret: not an acknowledgement; logged once."""
    n = notifier()
    n.serial_changed(zone_config(A, key=KEY), 8, now=0.0)
    (wire, _), = n.due(0.0)
    request = parse(wire, KEY)
    unsigned = dns.message.make_response(dns.message.from_wire(wire, keyring=False))
    assert not unsigned.had_tsig
    forged = dns.message.make_response(request)
    forged.use_tsig(tsig_key(OTHER_KEY), original_id=request.id)
    with caplog.at_level(logging.WARNING, logger="zoned.notify"):
        assert not n.received(unsigned.to_wire(), ("127.0.0.1", 5301), 0.1)
        assert not n.received(forged.to_wire(), ("127.0.0.1", 5301), 0.2)
    assert n.pending() == {(ZONE, A): 8}
    assert "without a valid TSIG signature" in caplog.text
    assert n.received(ack(wire, KEY), ("127.0.0.1", 5301), 0.3)


def test_an_unsigned_notify_takes_a_signed_ack() -> None:
    """Signing is up to the secondary when we did not sign: the rcode decides."""
    n = notifier()
    n.serial_changed(zone_config(A), 8, now=0.0)
    (wire, _), = n.due(0.0)
    reply = dns.message.make_response(parse(wire))
    reply.use_tsig(tsig_key(KEY))
    assert n.received(reply.to_wire(), ("127.0.0.1", 5301), 0.1)


# ------------------------------------------------------------------ the Twisted adapter


class FakePort:
    def __init__(self, protocol: Any, interface: str) -> None:
        self.protocol = protocol
        self.interface = interface
        self.written: list[tuple[bytes, tuple[str, int]]] = []
        self.stopped = False

    def write(self, data: bytes, addr: tuple[str, int]) -> None:
        self.written.append((data, addr))

    def stopListening(self) -> None:
        self.stopped = True

    def getHost(self) -> Any:
        return SimpleNamespace(port=0)


class FakeReactor:
    """listenUDP on port 0 only; IPv6 may be made unavailable."""

    def __init__(self, ipv6: bool = True) -> None:
        self.ipv6 = ipv6
        self.ports: dict[str, FakePort] = {}

    def listenUDP(self, port: int, protocol: Any, interface: str = "") -> FakePort:
        assert port == 0
        if interface == "::" and not self.ipv6:
            raise OSError("Address family not supported by protocol")
        self.ports[interface] = FakePort(protocol, interface)
        return self.ports[interface]


def test_the_adapter_sends_on_its_timer_and_stops_on_ack() -> None:
    reactor, clock = FakeReactor(), Clock()
    sender = NotifySender(reactor, clock)
    sender.notify(zone_config(A, B), 10)
    assert reactor.ports == {}  # nothing is sent inside the caller's call
    clock.advance(0)
    v4, v6 = reactor.ports["0.0.0.0"], reactor.ports["::"]
    assert [addr for _, addr in v4.written] == [("127.0.0.1", 5301)]
    assert [addr for _, addr in v6.written] == [("::1", 5302)]
    v4.protocol.datagramReceived(ack(v4.written[0][0]), ("127.0.0.1", 5301))
    v6.protocol.datagramReceived(ack(v6.written[0][0]), ("::1", 5302, 0, 0))
    assert clock.getDelayedCalls() == []  # all acknowledged: no timer left
    clock.advance(100)
    assert len(v4.written) == 1 and len(v6.written) == 1


def test_the_adapter_retries_and_survives_garbage() -> None:
    reactor, clock = FakeReactor(), Clock()
    sender = NotifySender(reactor, clock)
    sender.notify(zone_config(A), 10)
    clock.advance(0)
    port = reactor.ports["0.0.0.0"]
    port.protocol.datagramReceived(b"\xff" * 40, ("127.0.0.1", 5301))
    clock.pump([1.0] * 7)  # 0 s, 2 s, 6 s
    assert len(port.written) == 3
    (call,) = clock.getDelayedCalls()
    assert call.getTime() == 14.0  # type: ignore[misc]


def test_without_ipv6_the_ipv6_targets_are_logged_once_and_skipped(
    caplog: pytest.LogCaptureFixture,
) -> None:
    reactor, clock = FakeReactor(ipv6=False), Clock()
    sender = NotifySender(reactor, clock)
    with caplog.at_level(logging.WARNING, logger="zoned.notify"):
        sender.notify(zone_config(A, B), 10)
        clock.pump([0.0] + [1.0] * 20)
    skipped = [r for r in caplog.records if "skipping" in r.getMessage()]
    assert len(skipped) == 1 and "[::1]:5302" in skipped[0].getMessage()
    assert len(reactor.ports["0.0.0.0"].written) == 4  # 0, 2, 6, 14 s: IPv4 is unaffected


def test_stopping_the_adapter_cancels_the_timer_and_closes_the_sockets() -> None:
    reactor, clock = FakeReactor(), Clock()
    sender = NotifySender(reactor, clock)
    sender.notify(zone_config(A), 10)
    clock.advance(0)
    sender.stop()
    assert clock.getDelayedCalls() == [] and reactor.ports["0.0.0.0"].stopped
    sender.notify(zone_config(A), 11)  # a late refresh after stop schedules nothing
    assert clock.getDelayedCalls() == []


# ------------------------------------------------------------------ the service


class FakeServiceReactor(Clock):
    """A fake clock that also hands out fake listening ports, for ZonedService."""

    def __init__(self) -> None:
        super().__init__()
        self.udp: dict[str, FakePort] = {}

    def listenUDP(self, port: int, protocol: Any, interface: str = "") -> FakePort:
        self.udp[f"{interface}:{port}"] = FakePort(protocol, interface)
        return self.udp[f"{interface}:{port}"]

    def listenTCP(self, port: int, factory: Any, backlog: int = 50,
                  interface: str = "") -> FakePort:
        return FakePort(factory, interface)


def notifies(port: FakePort) -> list[tuple[int, tuple[str, int]]]:
    """(serial, destination) of every NOTIFY written to ``port``, then forgets them."""
    out = [(parse(wire, KEY).answer[0][0].serial, addr) for wire, addr in port.written]
    port.written.clear()
    return out


def test_the_service_notifies_at_start_on_new_serials_and_new_targets(tmp_path: Path) -> None:
    """Start: the current serial; a publish: the new one; a reload: only the new target."""
    zones = copy_zones(tmp_path)
    with_notify(zones, "127.0.0.1:5301")
    publish(zones, ZONE, [{"token": "192.0.2.1", "n": 50, "s": 50, "sc": 0.9}])
    reactor = FakeServiceReactor()
    service = ZonedService(zones, ["127.0.0.1"], 5353, reactor)
    serial = service.responder.authority.zones[tuple(ZONE.encode().split(b"."))].snapshot.serial
    service.startService()
    try:
        reactor.advance(0)
        port = reactor.udp["0.0.0.0:0"]
        assert notifies(port) == [(serial, ("127.0.0.1", 5301))]
        # Acknowledge the retry; a reload that adds a target tells only the new one.
        reactor.advance(INITIAL_RETRY)
        (retry,) = port.written
        port.protocol.datagramReceived(ack(retry[0], KEY), ("127.0.0.1", 5301))
        port.written.clear()
        path = zones / f"{ZONE}.yaml"
        path.write_text(path.read_text().replace('"127.0.0.1:5301"',
                                                 '"127.0.0.1:5301", "127.0.0.1:5302"'))
        assert service.reload()
        reactor.advance(0)
        assert notifies(port) == [(serial, ("127.0.0.1", 5302))]
        # A publish reaches both targets at the next refresh.
        publish(zones, ZONE, [{"token": "192.0.2.2", "n": 50, "s": 50, "sc": 0.9}])
        reactor.advance(0.25)
        reactor.advance(0)
        sent = notifies(port)
        assert sorted(addr for _, addr in sent) == [("127.0.0.1", 5301), ("127.0.0.1", 5302)]
        assert len({s for s, _ in sent}) == 1 and sent[0][0] != serial
    finally:
        service.stopService()
    assert port.stopped and reactor.getDelayedCalls() == []


# ------------------------------------------------------------------ end to end


SECRET = base64.b64encode(KEY.secret).decode()


def with_notify(zones: Path, *targets: str) -> None:
    """Add a transfer section with NOTIFY targets and a TSIG key to the example IP zone."""
    path = zones / f"{ZONE}.yaml"
    notify = ", ".join(f'"{t}"' for t in targets)
    path.write_text(path.read_text() + f"""
transfer:
  allow: [127.0.0.0/8]
  key: xfr-key
  notify: [{notify}]
keys:
  xfr-key: {{algorithm: hmac-sha256, secret: "{SECRET}"}}
""")


def receive_notify(sock: socket.socket, deadline: float, ask: Any) -> tuple[
    dns.message.Message, tuple[str, int]
]:
    """The next NOTIFY on ``sock`` (verified with the key); zoned must answer meanwhile."""
    while time.monotonic() < deadline:
        assert ask().rcode() == dns.rcode.NOERROR  # serving goes on throughout
        try:
            data, source = sock.recvfrom(4096)
        except TimeoutError:
            continue
        return parse(data, KEY), source
    raise AssertionError("no NOTIFY arrived")


@pytest.mark.e2e
def test_zoned_notifies_retries_until_acknowledged_then_stops(tmp_path: Path) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as secondary, \
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as dead:
        secondary.bind(("127.0.0.1", 0))
        secondary.settimeout(0.2)
        dead.bind(("127.0.0.1", 0))  # bound so no one else takes it; never read
        port, dead_port = secondary.getsockname()[1], dead.getsockname()[1]
        zones = copy_zones(tmp_path)
        targets = [f"127.0.0.1:{port}", f"127.0.0.1@{dead_port}"]
        v6 = ipv6_socket()
        if v6 is not None:  # an IPv6 secondary that answers at once, where there is IPv6
            targets.append(f"[::1]:{v6.getsockname()[1]}")
        with_notify(zones, *targets)
        server = start_zoned(zones, tmp_path / "zoned.log")
        try:
            def ask() -> dns.message.Message:
                return server.ask(f"2.0.0.127.{ZONE}")

            publish(zones, ZONE, [{"token": "192.0.2.1", "n": 50, "s": 50, "sc": 0.9}])
            start = time.monotonic()
            first, source = receive_notify(secondary, start + 15, ask)
            assert source[0] == "127.0.0.1"
            assert first.opcode() == dns.opcode.NOTIFY and first.flags & dns.flags.AA
            assert first.had_tsig
            serial = first.answer[0][0].serial
            served = server.ask(ZONE, "SOA").answer[0][0].serial
            assert serial == served != 0
            # Ignore the first attempt: a retry comes, for the same serial.
            retry, source2 = receive_notify(secondary, time.monotonic() + 15, ask)
            assert retry.answer[0][0].serial == serial and retry.id != first.id
            assert source2 == source  # the same socket sends every NOTIFY
            if v6 is not None:
                notify6, source6 = receive_notify(v6, time.monotonic() + 15, ask)
                assert notify6.answer[0][0].serial == serial
                v6.sendto(ack(notify6.to_wire(), KEY), source6)
            secondary.sendto(ack(retry.to_wire(), KEY), source2)
            acked = f"NOTIFY of {ZONE} serial {serial} to 127.0.0.1:{port} acknowledged"
            deadline = time.monotonic() + 15
            while acked not in server.log.read_text():
                assert time.monotonic() < deadline, server.log.read_text()
                time.sleep(0.05)
            # The next retry of an unacknowledged NOTIFY would come 4 s after the retry:
            # wait longer than that and see none.
            quiet_until = time.monotonic() + 5
            while time.monotonic() < quiet_until:
                assert ask().rcode() == dns.rcode.NOERROR
                try:
                    data, _ = secondary.recvfrom(4096)
                except TimeoutError:
                    continue
                raise AssertionError(f"NOTIFY after the ack: {parse(data, KEY)}")
            log = server.log.read_text()
            # The dead target was retried and warned about, once.
            assert len(re.findall(rf"WARNING zoned.notify: no answer from 127.0.0.1:{dead_port}",
                                  log)) == 1, log
            if v6 is not None:
                v6_port = v6.getsockname()[1]
                assert f"serial {serial} to [::1]:{v6_port} acknowledged" in log, log
        finally:
            assert server.stop() == 0, server.log.read_text()
            if v6 is not None:
                v6.close()


def ipv6_socket() -> socket.socket | None:
    """A UDP socket on [::1] and an ephemeral port, or None without IPv6 loopback."""
    try:
        sock = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    except OSError:
        return None
    try:
        sock.bind(("::1", 0))
    except OSError:
        sock.close()
        return None
    sock.settimeout(0.2)
    return sock
