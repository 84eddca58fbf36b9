"""TCP fuzz: framed mutations, partial frames, stalled and slow clients against a real zoned.

zoned runs with a short message deadline (--tcp-message-timeout 1) and a long idle
timeout (30 s), and takes messages up to 65535 bytes, so what cuts a stalled message
off is the deadline itself, not the idle timer or the size cap.  Its per-source cap is
raised to 200 (all our clients are 127.0.0.1): a fuzz connection refused because zoned
had not yet seen the previous ones close would look like a connection cut for nothing.
"""

from __future__ import annotations

import random
import selectors
import socket
import struct
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import dns.message
import pytest

from tests.adversarial import target
from tests.adversarial.mutations import Generator
from tests.adversarial.wirewalk import walk
from tests.support.zoned_process import Zoned

pytestmark = pytest.mark.adversarial

FIXED_SEED = 7_2025
FIXED_CONNECTIONS = 900
FRESH_CONNECTIONS = 300
MAX_PIPELINE = 24  # messages per connection, under zoned's --tcp-pending default of 64
CONCURRENCY = 24  # open at once
PER_SOURCE = 200
MARKER_ID = 0xBEEF  # above any fuzz message's id on a connection
ANSWER_WAIT = 15.0  # seconds a connection may take to answer its marker
MESSAGE_TIMEOUT = 1.0
IDLE_TIMEOUT = 30.0
RSS_BOUND_KIB = 16 * 1024
T_IXFR, T_AXFR = 251, 252


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Zoned]:
    zoned = target.start(tmp_path_factory.mktemp("tcp-fuzz"),
                         "--tcp-message-timeout", str(MESSAGE_TIMEOUT),
                         "--idle-timeout", str(IDLE_TIMEOUT), "--tcp-max-message", "65535",
                         "--tcp-clients-per-source", str(PER_SOURCE))
    yield zoned
    zoned.stop()


def framed(message: bytes) -> bytes:
    return struct.pack("!H", len(message)) + message


def deframe(buffer: bytearray) -> list[bytes]:
    """Complete messages taken off the front of ``buffer``."""
    out = []
    while len(buffer) >= 2:
        length = buffer[0] << 8 | buffer[1]
        if len(buffer) < 2 + length:
            break
        out.append(bytes(buffer[2 : 2 + length]))
        del buffer[: 2 + length]
    return out


def connect(server: Zoned, rcvbuf: int | None = None) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf is not None:  # before connecting, so the window is small from the start
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.settimeout(10)
    sock.connect(("127.0.0.1", server.port))
    return sock


def exchange(server: Zoned, query: bytes) -> bytes:
    """One query over a fresh TCP connection, the raw reply."""
    with connect(server) as sock:
        sock.sendall(framed(query))
        buffer = bytearray()
        while not (replies := deframe(buffer)):
            data = sock.recv(65536)
            assert data, "zoned closed the connection without answering"
            buffer += data
    return replies[0]


def is_transfer(packet: bytes) -> bool:
    records = walk(packet).records
    return bool(records) and records[0].section == "question" and records[0].rtype in (
        T_AXFR, T_IXFR)


def send_all(sock: socket.socket, data: bytes) -> bool:
    """Send, False if zoned already closed the connection."""
    try:
        sock.sendall(data)
    except (BrokenPipeError, ConnectionResetError):
        return False
    return True


# -- framed mutations, pipelined ----------------------------------------------------


@dataclass(eq=False)
class Pipeline:
    """One connection's messages by id, and what came back."""

    sock: socket.socket
    sent: dict[int, tuple[str, bytes]]
    empty_frame: bool  # a zero-length frame was sent: zoned must close the connection
    deadline: float
    buffer: bytearray = field(default_factory=bytearray)
    answered: set[int] = field(default_factory=set)


class TcpFuzz:
    def __init__(self, server: Zoned, seed: int) -> None:
        self.server = server
        self.tally = target.Tally(seed)
        self.generator = Generator(seed, target.corpus(), key_names=target.KEY_NAMES,
                                   now=int(time.time()))
        self.rng = random.Random(seed ^ 0x5EED)  # pipeline lengths and chunking
        self.selector = selectors.DefaultSelector()
        marker = dns.message.make_query(target.TOKEN, "TXT").to_wire()
        self.marker = MARKER_ID.to_bytes(2, "big") + marker[2:]
        self.expected = exchange(server, self.marker)
        assert target.judge(self.marker, self.expected, tcp=True) is None

    def run(self, connections: int) -> target.Tally:
        started = 0
        active: set[Pipeline] = set()
        while started < connections or active:
            while started < connections and len(active) < CONCURRENCY:
                pipeline = self.open()
                started += 1
                if pipeline is not None:
                    active.add(pipeline)
            for key, _ in self.selector.select(0.5):
                pipeline = key.data
                if not self.read(pipeline):
                    self.finish(pipeline, active)
            now = time.monotonic()
            for pipeline in [p for p in active if p.deadline < now]:
                self.tally.problem(f"no answer to the marker in {ANSWER_WAIT:.0f} s after "
                                   + ", ".join(f"{n} {p.hex()}" for n, p in
                                               pipeline.sent.values()))
                self.finish(pipeline, active)
            target.alive(self.server)
        self.selector.close()
        return self.tally

    def open(self) -> Pipeline | None:
        sent: dict[int, tuple[str, bytes]] = {}
        stream = bytearray()
        for ident in range(self.rng.randint(1, MAX_PIPELINE)):
            name, packet = self.generator.next()
            if len(packet) >= 2:
                packet = ident.to_bytes(2, "big") + packet[2:]
                sent[ident] = (name, packet)
            self.tally.sent[name] += 1
            stream += framed(packet)
        stream += framed(self.marker)
        sock = connect(self.server)
        pipeline = Pipeline(sock, sent, b"\x00\x00" in _frame_heads(stream),
                            time.monotonic() + ANSWER_WAIT)
        # Split anywhere, inside length prefixes too: the framer must put it together.
        cuts = sorted(self.rng.sample(range(1, len(stream)), min(3, len(stream) - 1)))
        for start, end in zip([0, *cuts], [*cuts, len(stream)], strict=True):
            if not send_all(sock, bytes(stream[start:end])):
                break
        sock.setblocking(False)
        self.selector.register(sock, selectors.EVENT_READ, pipeline)
        return pipeline

    def read(self, pipeline: Pipeline) -> bool:
        """Take what arrived; False once the connection is done (marker answered or closed)."""
        try:
            data = pipeline.sock.recv(65536)
        except BlockingIOError:
            return True
        except ConnectionResetError:
            data = b""
        if not data:
            self.tally.closed += 1
            if not pipeline.empty_frame:
                self.tally.problem("zoned closed a connection that sent no empty frame: "
                                   + ", ".join(f"{n} {p.hex()}"
                                               for n, p in pipeline.sent.values()))
            return False
        pipeline.buffer += data
        for reply in deframe(pipeline.buffer):
            if reply[:2] == self.marker[:2]:
                if reply[2:] != self.expected[2:]:
                    self.tally.problem(f"the marker's answer changed: {reply.hex()}")
                if pipeline.empty_frame:
                    self.tally.problem("zoned answered past a zero-length frame")
                return False
            self.judge(pipeline, reply)
        return True

    def judge(self, pipeline: Pipeline, reply: bytes) -> None:
        ident = int.from_bytes(reply[:2], "big")
        entry = pipeline.sent.get(ident)
        if entry is None:
            self.tally.problem(f"a reply to nothing sent: {reply.hex()}")
            return
        name, packet = entry
        if ident in pipeline.answered and not is_transfer(packet):
            self.tally.problem(f"{name}: two replies to {packet.hex()}")
            return
        first = ident not in pipeline.answered
        pipeline.answered.add(ident)
        verdict = target.judge(packet, reply, tcp=True)
        if first or verdict is not None:
            self.tally.count(name, reply, verdict, packet)

    def finish(self, pipeline: Pipeline, active: set[Pipeline]) -> None:
        self.selector.unregister(pipeline.sock)
        pipeline.sock.close()
        active.discard(pipeline)


def _frame_heads(stream: bytes | bytearray) -> list[bytes]:
    heads = []
    pos = 0
    while pos + 2 <= len(stream):
        heads.append(bytes(stream[pos : pos + 2]))
        pos += 2 + (stream[pos] << 8 | stream[pos + 1])
    return heads


def test_tcp_fuzz_pipelined_mutations_from_a_fixed_and_a_fresh_seed(server: Zoned) -> None:
    """Connections pipelining up to 24 mutated messages, split at random points, then a
    real query: every reply is a well-formed answer to a message sent on that connection,
    the real query is answered unless a zero-length frame came first (then zoned closes
    the connection), and zoned stays up, answering right, without a traceback."""
    target.assert_answers(server)
    before = target.rss_kib(server.process.pid)
    cpu = target.cpu_seconds(server.process.pid)
    fresh = target.fresh_seed()
    print(f"\nTCP fuzz: fixed seed {FIXED_SEED}, fresh seed {fresh} "
          f"(replay with REPZONE_FUZZ_SEED={fresh})")
    failures = []
    for seed, count in ((FIXED_SEED, FIXED_CONNECTIONS), (fresh, FRESH_CONNECTIONS)):
        started = time.monotonic()
        tally = TcpFuzz(server, seed).run(count)
        print(tally.report(), f"\n  {count} connections, {time.monotonic() - started:.1f} s")
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


# -- partial frames, stalls, closes ---------------------------------------------------


def test_a_65535_length_prefix_then_ten_bytes_and_silence_is_cut_off(server: Zoned) -> None:
    """The message never completes: zoned closes the connection at its message deadline,
    long before the idle timeout, and answers UDP and other connections meanwhile."""
    with connect(server) as stalled:
        stalled.sendall(b"\xff\xff" + bytes(10))
        target.assert_answers(server)
        # The deadline is 1 s, the idle timeout 30 s: a cut within 10 s is the deadline's.
        assert target.wait_closed(stalled, within=10), "the stalled message was not cut off"
    target.alive(server)
    target.assert_answers(server)


def test_a_query_sent_one_byte_at_a_time_is_answered(server: Zoned) -> None:
    """Frames split at every byte, length prefix included, still make one message."""
    query = dns.message.make_query(target.TOKEN, "TXT").to_wire()
    expected = exchange(server, query)
    with connect(server) as sock:
        for byte in framed(query):
            sock.send(bytes((byte,)))
            time.sleep(0.005)  # the client's pace: each byte its own segment
        buffer = bytearray()
        while not (replies := deframe(buffer)):
            data = sock.recv(65536)
            assert data, "closed before answering"
            buffer += data
    assert replies == [expected]


def test_connections_closed_mid_frame_or_with_replies_pending(server: Zoned) -> None:
    """Clients that vanish inside a length prefix, inside a message, or with big replies
    unread (by FIN or by reset) cost zoned nothing: it keeps answering, logs no traceback."""
    rng = random.Random(11)
    huge = dns.message.make_query(f"huge.{target.IP}", "TXT").to_wire()
    stream = b"".join(framed(huge) for _ in range(40))
    for i in range(300):
        sock = connect(server)
        if i % 3 == 2:
            sock.sendall(stream)  # forty replies of 1.8 kB queued, none read
        else:
            sock.sendall(stream[: rng.choice((1, rng.randrange(2, len(stream))))])
        if i % 2:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.close()
    target.alive(server)
    # A burst from one address meets zoned's per-source cap until zoned has seen the
    # vanished clients close: poll for TCP to answer again rather than assume it is instant.
    query = dns.message.make_query(target.TOKEN, "A").to_wire()
    deadline = time.monotonic() + 10
    while True:
        try:
            exchange(server, query)
            break
        except (ConnectionError, AssertionError):
            assert time.monotonic() < deadline, "TCP not answering 10 s after the clients left"
            time.sleep(0.05)
    target.assert_answers(server)
    assert not target.tracebacks(server.log), "\n".join(target.tracebacks(server.log)[:3])


def test_slow_readers_of_huge_and_big_get_every_answer(server: Zoned) -> None:
    """Six clients with small receive windows pipeline 300 queries each for the large TXT
    answers (about 400 kB of replies each, far more than the sockets buffer and past
    zoned's 64 pending replies) and read them slowly: each gets all 300, intact and in
    order, while zoned answers everyone else, and its memory stays within the bound."""
    queries = []
    for name in ("huge", "big"):
        query = dns.message.make_query(f"{name}.{target.IP}", "TXT").to_wire()
        queries.append((query, exchange(server, query)))
    assert all(len(reply) > 800 for _, reply in queries)
    before = target.rss_kib(server.process.pid)
    readers: list[tuple[socket.socket, list[bytes], bytearray, list[bytes]]] = []
    for _ in range(6):
        sock = connect(server, rcvbuf=4096)
        wanted: list[bytes] = []
        stream = bytearray()
        for ident in range(300):
            query, reply = queries[ident % 2]
            stream += framed(ident.to_bytes(2, "big") + query[2:])
            wanted.append(ident.to_bytes(2, "big") + reply[2:])
        sock.sendall(stream)
        sock.setblocking(False)
        readers.append((sock, wanted, bytearray(), []))
    selector = selectors.DefaultSelector()
    for index, (sock, *_) in enumerate(readers):
        selector.register(sock, selectors.EVENT_READ, index)
    deadline = time.monotonic() + 60
    checked_meanwhile = False
    try:
        while any(len(got) < len(wanted) for _, wanted, _, got in readers):
            assert time.monotonic() < deadline, [len(got) for *_, got in readers]
            for key, _ in selector.select(0.5):
                sock, wanted, buffer, got = readers[key.data]
                data = sock.recv(4096)  # a little at a time
                assert data, f"reader {key.data} cut off after {len(got)} replies"
                buffer += data
                got += deframe(buffer)
            time.sleep(0.02)  # the readers' pace
            if not checked_meanwhile:
                target.assert_answers(server)  # others are served while the readers lag
                checked_meanwhile = True
        for _, wanted, _, got in readers:
            assert got == wanted
    finally:
        selector.close()
        for sock, *_ in readers:
            sock.close()
    after = target.rss_kib(server.process.pid)
    print(f"\nslow readers: zoned VmRSS {before} -> {after} KiB")
    assert after - before < RSS_BOUND_KIB
    assert not target.tracebacks(server.log), "\n".join(target.tracebacks(server.log)[:3])
