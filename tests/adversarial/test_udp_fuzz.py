"""UDP fuzz: 200,000 hostile datagrams against a real zoned, which must hold.

Datagrams go out in windows of WINDOW over several non-blocking sockets, each window
closed by a marker query: one zoned process answers datagrams in the order they arrive,
so once the marker's answer is in, every reply to that window has been sent, and the
replies are collected without guessing at timeouts or overflowing a socket buffer.  The
next window is sent before the previous one is collected, so zoned is never idle while
replies are judged.  The first two bytes of every datagram are set to a per-socket
sequence number, so each reply is matched to exactly the datagram it answers.

150,000 datagrams come from a fixed seed and 50,000 from a fresh one, printed with the
counts per class (``pytest -s``) and in every failure; REPZONE_FUZZ_SEED replays it.
"""

from __future__ import annotations

import select
import selectors
import socket
import time
from collections.abc import Iterator

import dns.message
import pytest

from tests.adversarial import target
from tests.adversarial.mutations import Generator
from tests.support.zoned_process import Zoned

pytestmark = pytest.mark.adversarial

FIXED_SEED = 9_2025
FIXED_PACKETS = 150_000
FRESH_PACKETS = 50_000
WINDOW = 512
SOCKETS = 8
MARKER_WAIT = 5.0  # seconds for one window's marker before the window counts as lost
RSS_BOUND_KIB = 16 * 1024


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Zoned]:
    zoned = target.start(tmp_path_factory.mktemp("udp-fuzz"))
    yield zoned
    zoned.stop()


class UdpFuzz:
    """One run: sockets, what each sent by id, and the tally."""

    def __init__(self, server: Zoned, seed: int) -> None:
        self.server = server
        self.tally = target.Tally(seed)
        self.generator = Generator(seed, target.corpus(), key_names=target.KEY_NAMES,
                                   now=int(time.time()))
        self.sockets = []
        for _ in range(SOCKETS + 1):
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
            sock.connect(("127.0.0.1", server.port))
            sock.setblocking(False)
            self.sockets.append(sock)
        self.marker = self.sockets[SOCKETS]
        self.selector = selectors.DefaultSelector()
        for index, sock in enumerate(self.sockets):
            self.selector.register(sock, selectors.EVENT_READ, index)
        self.marker_query = dns.message.make_query(target.TOKEN, "TXT").to_wire()
        self.expected = _expected(server, self.marker_query)
        self.sent: list[dict[int, tuple[str, bytes]]] = [{} for _ in range(SOCKETS)]
        self.answered: list[set[int]] = [set() for _ in range(SOCKETS)]
        self.counter = [0] * SOCKETS
        self.markers: set[bytes] = set()  # marker ids sent and not yet answered
        self.verdicts: dict[bytes, str | None] = {}  # a reply's bytes after its id -> parse

    def close(self) -> None:
        self.selector.close()
        for sock in self.sockets:
            sock.close()

    def run(self, count: int) -> target.Tally:
        """Send ``count`` datagrams, a window at a time; judge every reply."""
        assert count <= SOCKETS * 0x10000, "ids must stay unique per socket"
        total = 0
        window = 0
        previous: bytes | None = None
        while total < count:
            size = min(WINDOW, count - total)
            self.send_window(size)
            total += size
            window += 1
            ident = (window & 0xFFFF).to_bytes(2, "big")
            self.markers.add(ident)
            _send(self.marker, ident + self.marker_query[2:], self.server)
            # While zoned works on this window, collect the one before it.
            if previous is not None:
                self.wait(previous)
            previous = ident
        if previous is not None:
            self.wait(previous)
        return self.tally

    def send_window(self, size: int) -> None:
        for i in range(size):
            index = i % SOCKETS
            name, packet = self.generator.next()
            ident = self.counter[index]
            self.counter[index] += 1
            if len(packet) >= 2:
                packet = ident.to_bytes(2, "big") + packet[2:]
                self.sent[index][ident] = (name, packet)
            self.tally.sent[name] += 1
            _send(self.sockets[index], packet, self.server)

    def wait(self, marker: bytes) -> None:
        """Until the marker's answer is in, then every reply sent before it."""
        deadline = time.monotonic() + MARKER_WAIT
        while marker in self.markers and time.monotonic() < deadline:
            for key, _ in self.selector.select(0.2):
                self.receive(key.data)
            target.alive(self.server)
        if marker in self.markers:
            self.markers.discard(marker)
            self.tally.lost_windows += 1
        for index in range(SOCKETS):
            self.receive(index)

    def receive(self, index: int) -> None:
        """Read and judge everything one socket holds."""
        sock = self.sockets[index]
        while True:
            try:
                reply = sock.recv(65535)
            except BlockingIOError:
                return
            except ConnectionRefusedError:
                target.alive(self.server)
                continue
            if index == SOCKETS:
                self.markers.discard(reply[:2])
                if reply[2:] != self.expected:
                    self.tally.problem(f"the marker's answer changed: {reply.hex()}")
            else:
                self.judge(index, reply)

    def judge(self, index: int, reply: bytes) -> None:
        tally = self.tally
        ident = int.from_bytes(reply[:2], "big") if len(reply) >= 2 else -1
        entry = self.sent[index].get(ident)
        if entry is None:
            tally.problem(f"a reply to nothing sent: {reply.hex()}")
            return
        name, packet = entry
        if ident in self.answered[index]:
            tally.problem(f"{name}: two replies to {packet.hex()}")
            return
        self.answered[index].add(ident)
        if len(packet) < 12 or packet[2] & 0x80 or reply[:2] != packet[:2]:
            verdict = target.judge(packet, reply, tcp=False)
        else:  # the parse does not depend on the id: replies repeat, so parse each once
            body = reply[2:]
            if body not in self.verdicts:
                if len(self.verdicts) > 100_000:
                    self.verdicts.clear()
                self.verdicts[body] = target.judge(packet, reply, tcp=False)
            verdict = self.verdicts[body]
        tally.count(name, reply, verdict, packet)


def fuzz(server: Zoned, seed: int, count: int) -> target.Tally:
    run = UdpFuzz(server, seed)
    try:
        return run.run(count)
    finally:
        run.close()


def _send(sock: socket.socket, packet: bytes, server: Zoned) -> None:
    while True:
        try:
            sock.send(packet)
            return
        except BlockingIOError:
            select.select([], [sock], [], 0.05)
        except ConnectionRefusedError:
            target.alive(server)  # an ICMP error for an earlier datagram: retry


def _expected(server: Zoned, query: bytes) -> bytes:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(5)
        sock.sendto(query, ("127.0.0.1", server.port))
        reply = sock.recv(65535)
    assert target.judge(query, reply, tcp=False) is None
    return reply[2:]


def test_udp_fuzz_from_a_fixed_and_a_fresh_seed(server: Zoned) -> None:
    """200,000 random and mutated datagrams: zoned stays up, answers right afterwards,
    logs no traceback, grows its memory by less than RSS_BOUND_KIB, and every reply
    it sends is a well-formed answer to the datagram it answers."""
    target.assert_answers(server)
    before = target.rss_kib(server.process.pid)
    cpu = target.cpu_seconds(server.process.pid)
    fresh = target.fresh_seed()
    print(f"\nUDP fuzz: fixed seed {FIXED_SEED}, fresh seed {fresh} "
          f"(replay with REPZONE_FUZZ_SEED={fresh})")
    failures = []
    for seed, count in ((FIXED_SEED, FIXED_PACKETS), (fresh, FRESH_PACKETS)):
        started = time.monotonic()
        tally = fuzz(server, seed, count)
        print(tally.report(), f"\n  {time.monotonic() - started:.1f} s")
        if tally.lost_windows > 2:
            tally.problems.insert(0, f"{tally.lost_windows} windows' markers unanswered")
        if tally.problems:
            which = (f"fixed seed {seed}" if seed == FIXED_SEED
                     else f"fresh seed {seed} (REPZONE_FUZZ_SEED={seed} replays it)")
            failures.append(f"{which}:\n" + "\n".join(tally.problems[:10]))
        target.alive(server)
    after = target.rss_kib(server.process.pid)
    print(f"  zoned VmRSS {before} -> {after} KiB, "
          f"{target.cpu_seconds(server.process.pid) - cpu:.1f} s of CPU")
    assert not failures, "\n".join(failures)
    target.assert_answers(server)
    assert not target.tracebacks(server.log), f"fresh seed {fresh}:\n" + "\n".join(
        target.tracebacks(server.log)[:3])
    assert after - before < RSS_BOUND_KIB, f"fresh seed {fresh}: RSS {before} -> {after} KiB"
