"""How the faces' queries reach a server: the UDP multiplexers, and TCP after a TC bit.

A transport moves bytes and matches replies to queries; what the bytes mean (the
question, the reply read as an answer, retries and their order) is the faces' and the
plan's.  Both faces take one (``transport=``; :class:`UdpTransport` by default)::

    Transport                 the multiplexing, once for each face
    |-- UdpTransport          real sockets; TCP through dnspython (RFC 7766)
    `-- MemoryTransport       every datagram handed to a function and its reply handed
                              back as if received: the faces tested without a network

**The sync face** asks an attempt's queries with :meth:`Transport.exchange`: all sent at
once from one socket opened for the call (at most ``limit`` in flight), the replies read
as they come, each query waiting at most ``timeout`` from its own sending.

**The async face** keeps one :class:`Channel` per server: one socket shared by every
outstanding query, keyed by its 16-bit ID and checked against its question, so a reply
from elsewhere or to another question is ignored (RFC 5452 section 9.1).  A check's
queries go out as one :class:`Batch` with one future and one timer, so its task wakes
once.

In both, the ID is random (``os.urandom``) and not in use on the socket.
"""

from __future__ import annotations

import asyncio
import os
import socket
import struct
import time
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import Any, Protocol, Self

import dns.asyncquery
import dns.exception
import dns.message
import dns.query

from client.dnswire import query_wire, response_matches

Server = tuple[str, int]

#: The async face's socket buffer: hundreds of replies may arrive while the loop is busy,
#: and the default (about 256 small datagrams on Linux) would drop the rest.
RECEIVE_BUFFER = 1 << 20

#: What a server's reply to a message is, for :class:`MemoryTransport`: the reply's bytes,
#: or None for no reply (a lost datagram; over TCP, a timeout).  Called with the query's
#: bytes, the server it was sent to and whether it came over TCP.
Respond = Callable[[bytes, Server, bool], bytes | None]


class DatagramSocket(Protocol):
    """What :meth:`Transport.exchange` needs of a socket (a UDP ``socket.socket`` has it)."""

    def sendto(self, data: bytes, address: Server, /) -> int: ...
    def recvfrom(self, size: int, /) -> tuple[bytes, Any]: ...
    def settimeout(self, value: float | None, /) -> None: ...
    def __enter__(self) -> Self: ...
    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None, /) -> None: ...


class Transport(ABC):
    """Where the faces' queries go; subclasses say how bytes travel (see the module doc)."""

    @abstractmethod
    def datagram_socket(self, server: Server) -> DatagramSocket:
        """A socket for one sync exchange with ``server``, closed when the exchange ends."""
        ...

    @abstractmethod
    def channel(self, server: Server, loop: asyncio.AbstractEventLoop) -> Channel:
        """A socket to ``server`` shared by the async face's queries (raises OSError)."""
        ...

    @abstractmethod
    def tcp(self, message: dns.message.Message, server: Server, timeout: float
            ) -> dns.message.Message:
        """One query over TCP; dnspython's errors (Timeout, OSError, EOFError, parse
        errors) raise."""
        ...

    @abstractmethod
    async def tcp_async(self, message: dns.message.Message, server: Server, timeout: float
                        ) -> dns.message.Message:
        """:meth:`tcp` for the async face."""
        ...

    def exchange(self, server: Server, items: Sequence[tuple[int, bytes]], *,
                 timeout: float, limit: int) -> dict[int, bytes | OSError]:
        """One attempt at ``server``: the reply to each (index, question), by index;
        absent when none came within the timeout of its sending, OSError when the
        query could not be sent."""
        host, port = server
        results: dict[int, bytes | OSError] = {}
        queue = deque(items)
        pending: dict[int, tuple[int, bytes, float]] = {}  # qid -> index, question, deadline
        ids: list[int] = []
        with self.datagram_socket(server) as sock:

            def send_more() -> None:
                while queue and len(pending) < limit:
                    index, question = queue.popleft()
                    if not ids:
                        ids.extend(struct.unpack("!64H", os.urandom(128)))
                    qid = ids.pop()
                    while qid in pending:
                        qid = int.from_bytes(os.urandom(2), "big")
                    try:
                        sock.sendto(query_wire(qid, question), server)
                    except OSError as exc:
                        results[index] = exc
                        continue
                    pending[qid] = (index, question, time.monotonic() + timeout)

            send_more()
            while pending:
                now = time.monotonic()
                # Sent in order, so the first pending query is the first to expire.
                first = next(iter(pending))
                if pending[first][2] <= now:
                    del pending[first]
                    send_more()
                    continue
                sock.settimeout(pending[first][2] - now)
                try:
                    data, addr = sock.recvfrom(65535)
                except TimeoutError:
                    continue
                except OSError as exc:
                    for index, _, _ in pending.values():
                        results[index] = exc
                    break
                if addr[0] != host or addr[1] != port or len(data) < 12:
                    continue  # from elsewhere (RFC 5452 section 9.1)
                qid = (data[0] << 8) | data[1]
                entry = pending.get(qid)
                if entry is None or not response_matches(data, qid, entry[1]):
                    continue  # late, or not ours: keep waiting for the real reply
                del pending[qid]
                results[entry[0]] = data
                send_more()
        return results


# ------------------------------------------------------------------ the async channel


class Batch:
    """Queries sent together: one future and one timer for all of them.

    A check sends its queries at once and needs every reply before it can score, so the
    batch wakes its task once, when the last reply is in or the timeout has passed
    (``replies[i]`` stays None for those that never came).
    """

    __slots__ = ("future", "qids", "remaining", "replies", "timer")

    def __init__(self, future: asyncio.Future[None], size: int) -> None:
        self.future = future
        self.replies: list[bytes | None] = [None] * size
        self.qids: list[int] = []
        self.remaining = size
        self.timer: asyncio.TimerHandle | None = None

    def settle(self, index: int, wire: bytes) -> None:
        self.replies[index] = wire
        self.remaining -= 1
        if self.remaining == 0:
            if self.timer is not None:
                self.timer.cancel()
            if not self.future.done():
                self.future.set_result(None)


class Channel(ABC):
    """The queries outstanding at one server, keyed by ID; subclasses carry the bytes.

    Whoever settles a query removes it: a matching reply (:meth:`received`), or its
    batch's timer.  A subclass sends with :meth:`_transmit` and hands every datagram it
    receives to :meth:`received`.
    """

    def __init__(self, server: Server, loop: asyncio.AbstractEventLoop) -> None:
        self.server = server
        self.loop = loop
        self.pending: dict[int, tuple[bytes, Batch, int]] = {}
        self._ids: list[int] = []
        self._closed = False

    @property
    def open(self) -> bool:
        return not self._closed

    @abstractmethod
    def _transmit(self, wire: bytes) -> None:
        """Send one query's bytes; a datagram that cannot go now is simply lost."""
        ...

    def received(self, data: bytes, addr: tuple[Any, ...]) -> None:
        """One datagram from ``addr``: the reply to a pending query, or ignored."""
        if addr[0] != self.server[0] or addr[1] != self.server[1] or len(data) < 12:
            return
        qid = (data[0] << 8) | data[1]
        entry = self.pending.get(qid)
        if entry is None or not response_matches(data, qid, entry[0]):
            return  # late, or not ours: keep waiting for the real reply (RFC 5452 9.1)
        del self.pending[qid]
        entry[1].settle(entry[2], data)

    def _qid(self) -> int:
        """A fresh random ID, not in use; drawn 256 at a time from os.urandom."""
        ids = self._ids
        while True:
            if not ids:
                ids.extend(struct.unpack("!256H", os.urandom(512)))
            qid = ids.pop()
            if qid not in self.pending:
                return qid

    def send(self, questions: Sequence[bytes], timeout: float) -> Batch:
        """Send the queries; the batch settles on the last reply or after ``timeout``.

        A datagram that cannot be sent now (a full send buffer) is lost like any other
        UDP packet: its query times out.  Other errors raise OSError.
        """
        if self._closed:
            raise ConnectionError("socket closed")
        batch = Batch(self.loop.create_future(), len(questions))
        pending = self.pending
        try:
            for index, question in enumerate(questions):
                qid = self._qid()
                pending[qid] = (question, batch, index)
                batch.qids.append(qid)
                self._transmit(query_wire(qid, question))
        except BaseException:
            self._forget(batch)
            raise
        batch.timer = self.loop.call_later(timeout, self._expire, batch)
        return batch

    def _forget(self, batch: Batch) -> None:
        for qid in batch.qids:
            entry = self.pending.get(qid)
            if entry is not None and entry[1] is batch:
                del self.pending[qid]

    def _expire(self, batch: Batch) -> None:
        self._forget(batch)
        if not batch.future.done():
            batch.future.set_result(None)

    def close(self) -> None:
        """Stop; every outstanding batch gets a ConnectionError."""
        if self._closed:
            return
        self._closed = True
        self._release()
        for _, batch, _ in list(self.pending.values()):
            if batch.timer is not None:
                batch.timer.cancel()
            if not batch.future.done():
                batch.future.set_exception(ConnectionError("socket closed"))
        self.pending.clear()

    @abstractmethod
    def _release(self) -> None:
        """Give back what the channel holds (its socket); called once, by close()."""


# ------------------------------------------------------------------ real sockets


class UdpChannel(Channel):
    """One unconnected UDP socket to one server, read from the event loop's reader.

    The socket is read directly from the reader callback, every datagram waiting at
    once: asyncio's datagram transport reads one datagram per wake-up, and at 20,000
    replies a second the wake-ups cost more than the replies.
    """

    def __init__(self, server: Server, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(server, loop)
        family = socket.AF_INET6 if ":" in server[0] else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_DGRAM)
        try:
            self.sock.setblocking(False)
            try:
                self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER)
            except OSError:  # pragma: no cover - capped by the kernel, never fatal
                pass
            self.sock.bind(("::" if family == socket.AF_INET6 else "0.0.0.0", 0))
            loop.add_reader(self.sock.fileno(), self._readable)
        except BaseException:
            self.sock.close()
            raise

    def _readable(self) -> None:
        if self._closed:
            return
        sock = self.sock
        for _ in range(1024):  # then let the loop run others; it calls again if more
            try:
                data, addr = sock.recvfrom(65535)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                # ICMP errors are not reported on an unconnected socket; anything else
                # is about one datagram we cannot name: its query times out.
                return
            self.received(data, addr)

    def _transmit(self, wire: bytes) -> None:
        try:
            self.sock.sendto(wire, self.server)
        except (BlockingIOError, InterruptedError):
            pass

    def _release(self) -> None:
        self.loop.remove_reader(self.sock.fileno())
        self.sock.close()


class UdpTransport(Transport):
    """The network: UDP sockets, and dnspython's TCP after a truncated reply."""

    def datagram_socket(self, server: Server) -> DatagramSocket:
        family = socket.AF_INET6 if ":" in server[0] else socket.AF_INET
        return socket.socket(family, socket.SOCK_DGRAM)

    def channel(self, server: Server, loop: asyncio.AbstractEventLoop) -> Channel:
        return UdpChannel(server, loop)

    def tcp(self, message: dns.message.Message, server: Server, timeout: float
            ) -> dns.message.Message:
        host, port = server
        return dns.query.tcp(message, host, timeout=timeout, port=port)

    async def tcp_async(self, message: dns.message.Message, server: Server, timeout: float
                        ) -> dns.message.Message:
        host, port = server
        return await dns.asyncquery.tcp(message, host, timeout=timeout, port=port)


# ------------------------------------------------------------------ in memory


class MemorySocket:
    """A datagram socket whose peer is a function: each reply waits to be read.

    Reading with nothing waiting sleeps the socket's timeout and raises TimeoutError, as
    a real socket would for a server that does not answer.
    """

    def __init__(self, transport: MemoryTransport) -> None:
        self.transport = transport
        self.waiting: deque[tuple[bytes, Server]] = deque()
        self.timeout: float | None = None

    def sendto(self, data: bytes, address: Server, /) -> int:
        reply = self.transport.deliver(data, address, False)
        if reply is not None:
            self.waiting.append((reply, address))
        return len(data)

    def recvfrom(self, size: int, /) -> tuple[bytes, Server]:
        if not self.waiting:
            time.sleep(self.timeout or 0.0)
            raise TimeoutError("timed out")
        data, address = self.waiting.popleft()
        return data[:size], address

    def settimeout(self, value: float | None, /) -> None:
        self.timeout = value

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None, /) -> None:
        self.waiting.clear()


class MemoryChannel(Channel):
    """The async face's channel to a function: each reply arrives on the next loop turn."""

    def __init__(self, transport: MemoryTransport, server: Server,
                 loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(server, loop)
        self.transport = transport

    def _transmit(self, wire: bytes) -> None:
        reply = self.transport.deliver(wire, self.server, False)
        if reply is not None:
            self.loop.call_soon(self._arrive, reply)

    def _arrive(self, reply: bytes) -> None:
        if not self._closed:
            self.received(reply, self.server)

    def _release(self) -> None:
        """Nothing to give back: a memory channel holds no socket."""


class MemoryTransport(Transport):
    """Every query handed to ``respond`` (see :data:`Respond`); no socket, no network.

    ``sent`` lists every message sent, with its server and whether over TCP, in order.
    """

    def __init__(self, respond: Respond) -> None:
        self.respond = respond
        self.sent: list[tuple[Server, bytes, bool]] = []

    def deliver(self, wire: bytes, server: Server, tcp: bool) -> bytes | None:
        """Record one message and return the server's reply to it (None: no reply)."""
        self.sent.append((server, wire, tcp))
        return self.respond(wire, server, tcp)

    def datagram_socket(self, server: Server) -> DatagramSocket:
        return MemorySocket(self)

    def channel(self, server: Server, loop: asyncio.AbstractEventLoop) -> Channel:
        return MemoryChannel(self, server, loop)

    def tcp(self, message: dns.message.Message, server: Server, timeout: float
            ) -> dns.message.Message:
        reply = self.deliver(message.to_wire(), server, True)
        if reply is None:
            raise dns.exception.Timeout(timeout=timeout)  # type: ignore[no-untyped-call]
        response = dns.message.from_wire(reply)
        if not message.is_response(response):
            raise dns.query.BadResponse
        return response

    async def tcp_async(self, message: dns.message.Message, server: Server, timeout: float
                        ) -> dns.message.Message:
        return self.tcp(message, server, timeout)
