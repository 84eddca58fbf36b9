"""TCP bounded against a real zoned: pipelines, idle crowds, dribblers, bursts, the cap.

Each test starts its own zoned with limits made small by the command-line options, opens
real sockets on loopback, and polls for what it expects with a deadline of seconds.
"""

from __future__ import annotations

import errno
import os
import resource
import select
import socket
import struct
import time
from collections.abc import Iterator
from pathlib import Path

import dns.message
import dns.rcode
import pytest

from tests.support.polling import until
from tests.support.publishing import copy_zones, publish_samples
from tests.support.zoned_process import Zoned, start_zoned
from zoned.framing import Framer, frame

pytestmark = [pytest.mark.e2e, pytest.mark.adversarial]

IP = "bl.example.net"
HIT = f"1.2.0.192.{IP}"
ATTACKER = "127.0.0.2"  # loopback is all of 127/8: a second source address for free


@pytest.fixture(scope="module", autouse=True)
def descriptors() -> None:
    """This process holds thousands of sockets in these tests."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    assert resource.getrlimit(resource.RLIMIT_NOFILE)[0] >= 6000, "needs 6,000 descriptors"


@pytest.fixture(scope="module")
def zones(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = copy_zones(tmp_path_factory.mktemp("tcp-limits"))
    publish_samples(directory)
    return directory


@pytest.fixture
def run(zones: Path, tmp_path: Path) -> Iterator[object]:
    started: list[Zoned] = []

    def start(*options: str, nofile: int | None = None) -> Zoned:
        server = start_zoned(zones, tmp_path / f"zoned{len(started)}.log", *options,
                             nofile=nofile)
        started.append(server)
        return server

    yield start
    for server in started:
        assert server.stop() == 0, server.log.read_text()


def rss(pid: int) -> int:
    """Resident memory of a process, in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


_QUERY = dns.message.make_query(HIT, "A").to_wire()


def query_wire(ident: int) -> bytes:
    return struct.pack("!H", ident) + _QUERY[2:]


def connect(server: Zoned, source: str = "127.0.0.1") -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind((source, 0))
    sock.connect(("127.0.0.1", server.port))
    return sock


def tcp_ask(server: Zoned, source: str = "127.0.0.1", timeout: float = 3) -> dns.message.Message:
    with connect(server, source) as sock:
        sock.settimeout(timeout)
        sock.sendall(frame(query_wire(4242)))
        framer = Framer()
        while True:
            data = sock.recv(4096)
            if not data:
                raise ConnectionError("closed without an answer")
            messages = framer.feed(data)
            if messages:
                return dns.message.from_wire(messages[0])


def closed_by_peer(sock: socket.socket) -> bool:
    """Whether the other end has closed (EOF or reset); never blocks."""
    try:
        return sock.recv(4096, socket.MSG_DONTWAIT) == b""
    except BlockingIOError:
        return False
    except ConnectionResetError:
        return True


def test_a_pipeline_that_is_never_read_does_not_grow_zoneds_memory(run: object) -> None:
    """100,000 pipelined queries, replies unread: zoned stops reading instead of queueing.

    Bound: RSS grows by less than 8 MiB (before flow control the replies were queued:
    tens of MiB).  Then the client reads and every reply arrives, in order.
    """
    server: Zoned = run("--idle-timeout", "60", "--tcp-pending", "64")  # type: ignore[operator]
    for _ in range(20):
        tcp_ask(server)
    before = rss(server.process.pid)
    count = 100_000
    stream = b"".join(frame(query_wire(i & 0xFFFF)) for i in range(count))
    sock = connect(server)
    sock.setblocking(False)
    poller = select.poll()
    poller.register(sock, select.POLLOUT)
    sent = 0
    while sent < len(stream):  # until the pipe is full: zoned has stopped reading
        if not poller.poll(1000):
            break
        try:
            sent += sock.send(stream[sent : sent + 65536])
        except BlockingIOError:
            continue
    assert server.ask(HIT).rcode() == dns.rcode.NOERROR  # UDP unaffected
    assert tcp_ask(server).rcode() == dns.rcode.NOERROR  # and other TCP clients too
    grown = rss(server.process.pid) - before
    assert grown < 8 * 1024 * 1024, f"RSS grew by {grown} bytes with {sent} bytes sent"
    # Now read: the rest of the pipeline is taken as the replies drain, none lost.
    framer, replies = Framer(), 0
    deadline = time.monotonic() + 60
    while replies < count and time.monotonic() < deadline:
        poller.modify(sock, select.POLLIN | (select.POLLOUT if sent < len(stream) else 0))
        events = dict(poller.poll(1000))
        if events.get(sock.fileno(), 0) & select.POLLOUT:
            try:
                sent += sock.send(stream[sent : sent + 65536])
            except BlockingIOError:
                pass
        if events.get(sock.fileno(), 0) & select.POLLIN:
            data = sock.recv(1 << 20)
            assert data, f"closed after {replies} replies"
            got = framer.feed(data)
            for offset, message in enumerate(got):
                assert struct.unpack_from("!H", message)[0] == (replies + offset) & 0xFFFF
            replies += len(got)
    sock.close()
    assert replies == count


def test_two_thousand_idle_connections_leave_udp_answering_and_the_cap_holding(
    run: object,
) -> None:
    held = 2000
    server: Zoned = run("--idle-timeout", "60", "--tcp-clients", str(held),  # type: ignore[operator]
                        "--tcp-clients-per-source", str(held))
    base = open_fds(server.process.pid)
    idle = [connect(server) for _ in range(held)]
    try:
        until(lambda: open_fds(server.process.pid) >= base + held, f"{held} connections held", 10)
        assert server.ask(HIT).answer[0][0].to_text() == "127.0.0.2"
        # One more from the same source: over the per-source cap, closed at once.
        extra = connect(server)
        until(lambda: closed_by_peer(extra), "the connection over the cap refused", 5)
        extra.close()
        # Another source at the total cap: answered; the connection idle longest made room.
        assert tcp_ask(server, ATTACKER).rcode() == dns.rcode.NOERROR
        until(lambda: closed_by_peer(idle[0]), "the oldest idle connection evicted", 5)
        assert not any(closed_by_peer(sock) for sock in idle[1:])
        assert server.ask(HIT).answer[0][0].to_text() == "127.0.0.2"
    finally:
        for sock in idle:
            sock.close()


def test_dribblers_are_cut_at_the_message_deadline(run: object) -> None:
    """One byte every half second keeps nobody open: a message has 2 s to arrive."""
    server: Zoned = run("--idle-timeout", "30", "--tcp-message-timeout", "2")  # type: ignore[operator]
    dribblers = [connect(server) for _ in range(40)]
    open_ = set(range(len(dribblers)))
    started = time.monotonic()
    sent = 0
    try:
        while open_ and time.monotonic() - started < 12:  # the idle timeout is 30 s
            for i in list(open_):
                if closed_by_peer(dribblers[i]):
                    open_.discard(i)
                    continue
                try:
                    dribblers[i].send(b"\x01" if sent == 0 else b"x")  # a 256+ byte message
                except OSError:
                    open_.discard(i)
            sent += 1
            time.sleep(0.5)
        assert not open_, f"{len(open_)} dribblers still open after {sent} bytes each"
        assert sent >= 4  # they were dribbling past the deadline, not refused at once
        assert "a message incomplete after 2 s" in server.log.read_text()
        assert tcp_ask(server).rcode() == dns.rcode.NOERROR
    finally:
        for sock in dribblers:
            sock.close()


def test_a_burst_of_connects_is_accepted_or_refused_without_waiting(run: object) -> None:
    """5,000 connects at once: each gets its answer or is closed; none waits in a backlog."""
    server: Zoned = run("--idle-timeout", "30", "--tcp-clients", "1000",  # type: ignore[operator]
                        "--tcp-clients-per-source", "5000")
    socks: list[socket.socket] = []
    try:
        for _ in range(5000):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setblocking(False)
            err = sock.connect_ex(("127.0.0.1", server.port))
            assert err in (0, errno.EINPROGRESS), os.strerror(err)
            socks.append(sock)
        unsent = set(range(len(socks)))
        waiting: set[int] = set()
        answered = refused = 0
        deadline = time.monotonic() + 10
        while (unsent or waiting) and time.monotonic() < deadline:
            for i in list(unsent):
                try:
                    socks[i].send(frame(query_wire(i)))
                except BlockingIOError:
                    continue  # not connected yet
                except OSError:
                    refused += 1
                else:
                    waiting.add(i)
                unsent.discard(i)
            poller = select.poll()
            index = {}
            for i in waiting:
                poller.register(socks[i], select.POLLIN)
                index[socks[i].fileno()] = i
            for fd, _ in poller.poll(200):
                i = index[fd]
                sock = socks[i]
                try:
                    data = sock.recv(4096)
                except ConnectionResetError:
                    data = b""
                if data:
                    answered += 1
                else:
                    refused += 1
                waiting.discard(i)
        assert not unsent and not waiting, (
            f"{len(unsent)} not connected and {len(waiting)} unanswered after 10 s")
        assert answered + refused == 5000 and answered >= 1000
    finally:
        for sock in socks:
            sock.close()
    assert tcp_ask(server).rcode() == dns.rcode.NOERROR


def test_tcp_answers_while_an_attacker_dribbles_at_the_cap(run: object) -> None:
    """Under a service manager's 1,024 descriptors, 1,100 dribblers do not shut TCP out.

    The deadline is set long so that only the cap and the eviction of the connection
    idle longest can help; the attacker re-opens every connection it loses.
    """
    server: Zoned = run(  # type: ignore[operator]
        "--tcp-message-timeout", "60", "--idle-timeout", "60",
        "--tcp-clients-per-source", "2000", nofile=1024)
    log = server.log.read_text()
    assert "descriptor limit 1024" in log and "TCP clients capped at 832" in log
    attackers: list[socket.socket] = []

    def attack() -> None:
        for i, sock in enumerate(attackers):
            if closed_by_peer(sock):
                sock.close()
                attackers[i] = connect(server, ATTACKER)
                attackers[i].send(b"\x01")
            else:
                try:
                    sock.send(b"x")
                except OSError:
                    pass
        while len(attackers) < 1100:
            sock = connect(server, ATTACKER)
            sock.send(b"\x01")
            attackers.append(sock)

    try:
        answered = 0
        for turn in range(100):
            if turn % 5 == 0:
                attack()
            if tcp_ask(server).rcode() == dns.rcode.NOERROR:
                answered += 1
        assert answered == 100
        assert server.ask(HIT).rcode() == dns.rcode.NOERROR
    finally:
        for sock in attackers:
            sock.close()
    text = server.log.read_text()
    assert "EMFILE" not in text and "Could not accept" not in text
    assert len(text) < 20_000
