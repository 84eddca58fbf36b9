"""Twisted adapters: move bytes between sockets and the sans-IO :class:`Responder`.

They frame and unframe, keep the TCP limits (:mod:`zoned.connections`), and nothing
else; every decision about what to answer is the core's.
"""

from __future__ import annotations

import logging
import socket
from collections import deque
from collections.abc import Iterator
from typing import Any

from twisted.internet.interfaces import IPushProducer
from twisted.internet.protocol import DatagramProtocol, Factory, Protocol
from twisted.python.failure import Failure
from zope.interface import implementer

from zoned.connections import DEFAULT_IDLE_TIMEOUT, ConnectionTable, TcpLimits
from zoned.core import Responder
from zoned.framing import Framer, FramingError, frame
from zoned.ratelog import limited

log = logging.getLogger(__name__)

__all__ = ["DEFAULT_IDLE_TIMEOUT", "TCPFactory", "TCPServer", "UDPServer"]

RECEIVE_BUFFER = 4 * 1024 * 1024


class UDPServer(DatagramProtocol):
    """One UDP socket; replies are written straight to the socket.

    ``Port.write`` re-validates the address string of every datagram (measured at a few
    microseconds, a large share of our per-query cost), so we call ``sendto`` on the
    port's socket ourselves and fall back to ``write`` where there is none.
    """

    def __init__(self, responder: Responder) -> None:
        self.responder = responder
        self._sendto: Any = None
        self.send_errors = 0

    def startProtocol(self) -> None:
        sock = getattr(self.transport, "socket", None)
        self._sendto = sock.sendto if isinstance(sock, socket.socket) else None
        if isinstance(sock, socket.socket):
            # The default receive buffer holds a few hundred queries: bursts from busy
            # resolvers or scanners would be dropped.  The kernel caps it at rmem_max.
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER)
            except OSError:
                pass

    def datagramReceived(self, datagram: bytes, addr: Any) -> None:
        reply = self.responder.respond(datagram, False, addr[0])
        if reply is None:
            return
        try:
            if self._sendto is not None:
                self._sendto(reply, addr)
            else:
                transport: Any = self.transport
                transport.write(reply, addr)
        except OSError:
            # A full socket buffer or an unreachable peer costs this reply only.
            self.send_errors += 1


@implementer(IPushProducer)
class TCPServer(Protocol):
    """One TCP connection: pipelined queries, answered in order, within bounds.

    Replies are produced only as fast as the client reads them (Twisted's push-producer
    flow control), so a zone transfer never piles up in our buffers.  Queries are taken
    from the stream only while fewer than ``limits.pending`` replies wait; past that the
    socket is not read (the client's sends block: TCP's own flow control), and reading
    resumes once the replies are drained.  A message must arrive whole within
    ``message_timeout`` of its first byte; the idle timer runs from the last complete
    message or reply written, so a byte now and then keeps nothing open.
    """

    # Twisted's zope interfaces are opaque to mypy, so the transport, the clock and the
    # delayed calls are typed Any here; the tests drive them with in-memory fakes.
    transport: Any

    def __init__(self, responder: Responder, clock: Any, limits: TcpLimits,
                 table: ConnectionTable | None = None, source: str = "?") -> None:
        self.responder = responder
        self.clock = clock
        self.limits = limits
        self.table = table
        self.source = source
        self.framer = Framer(limits.max_message)
        self._idle: Any = None
        self._deadline: Any = None
        self._closing: Any = None
        self._queue: deque[bytes] = deque()  # messages whose replies have not started
        self._current: Iterator[bytes] | None = None  # the reply stream being written
        self._paused = False  # the transport asked us to stop writing
        self._not_reading = False  # we asked the transport to stop reading
        self._lost = False
        self._peer_host: str | None = None

    # The idle timeout is read from the limits; kept as an attribute for the tests.
    @property
    def idle_timeout(self) -> float:
        return self.limits.idle_timeout

    def connectionMade(self) -> None:
        peer = self.transport.getPeer() if self.transport is not None else None
        self._peer_host = getattr(peer, "host", None)
        self.transport.registerProducer(self, True)
        self._idle = self.clock.callLater(self.limits.idle_timeout, self._timed_out)

    def dataReceived(self, data: bytes) -> None:
        if self._lost:
            return
        self.framer.push(data)
        self._pump()

    @property
    def pending(self) -> int:
        """Replies waiting or being written."""
        return len(self._queue) + (self._current is not None)

    def busy(self) -> bool:
        return self.pending > 0

    def _pump(self) -> None:
        """Take messages up to the cap, write replies until paused, then set reading."""
        while not self._lost:
            self._take()
            before = self.pending
            self._drain()
            if self._paused or self.pending == before:
                break  # the client is not reading, or no reply was finished: no room made
        if self._lost:
            return
        self._flow()

    def _take(self) -> None:
        """Move complete messages from the framer to the queue while there is room."""
        while self.pending < self.limits.pending:
            try:
                message = self.framer.pop()
            except FramingError as exc:
                limited(log, "tcp-framing", logging.INFO, "closing TCP connection from %s: %s",
                        self._peer(), exc)
                self._abort()
                return
            if message is None:
                return
            self._queue.append(message)
            self._activity()

    def _flow(self) -> None:
        """Read while there is room for replies; time a message that has begun."""
        full = self.pending >= self.limits.pending
        if full and not self._not_reading:
            self._not_reading = True
            self.transport.pauseProducing()
        elif not full and self._not_reading:
            self._not_reading = False
            self.transport.resumeProducing()
        # Only time the client while we read it: a paused socket is our doing.
        started = self.framer.pending > 0 and not self._not_reading
        if started and self._deadline is None:
            self._deadline = self.clock.callLater(self.limits.message_timeout, self._too_slow)
        elif not started and self._deadline is not None:
            self._cancel_deadline()

    def _drain(self) -> None:
        """Write replies until the transport asks us to pause."""
        while not self._paused and not self._lost:
            if self._current is None:
                if not self._queue:
                    return
                message = self._queue.popleft()
                self._current = self.responder.respond_stream(message, self._peer_host)
            try:
                reply = next(self._current, None)
            except Exception:  # noqa: BLE001 - a broken transfer costs this connection only
                limited(log, "internal-error", logging.ERROR,
                        "transfer to %s failed; closing the connection", self._peer(),
                        exc_info=True)
                self.responder.errors += 1
                self._abort()
                return
            if reply is None:
                self._current = None
                continue
            self.transport.write(frame(reply))
            self._touch()

    def pauseProducing(self) -> None:
        self._paused = True

    def resumeProducing(self) -> None:
        self._paused = False
        if not self._lost:
            self._pump()

    def stopProducing(self) -> None:
        self._queue.clear()
        self._current = None

    def _activity(self) -> None:
        """A complete message: restart the idle timer and the message deadline."""
        self._touch()
        self._cancel_deadline()
        if self.table is not None:
            self.table.touch(self)

    def _touch(self) -> None:
        if self._idle is not None and self._idle.active():
            self._idle.reset(self.limits.idle_timeout)

    def _cancel_deadline(self) -> None:
        if self._deadline is not None and self._deadline.active():
            self._deadline.cancel()
        self._deadline = None

    def connectionLost(self, reason: Failure | None = None) -> None:
        self._stop()
        if self.table is not None:
            self.table.remove(self)

    def _stop(self) -> None:
        """Nothing more is read, written or timed on this connection."""
        self._lost = True
        for call in (self._idle, self._deadline, self._closing):
            if call is not None and call.active():
                call.cancel()
        self._idle = self._deadline = self._closing = None
        self._queue.clear()
        self._current = None

    def evict(self) -> bool:
        """Closed to make room for a new connection (the table chose us).

        Twisted closes an aborted socket on the reactor's next turn, and one turn may
        accept hundreds of connections; the descriptor is released now instead, so the
        cap holds in descriptors too.  The reactor stopped watching it in the abort.
        """
        self._abort()
        sock = getattr(self.transport, "socket", None)
        if not isinstance(sock, socket.socket):
            return False
        sock.close()
        return True

    def _abort(self) -> None:
        self._stop()  # connectionLost follows, on the reactor's next turn
        self.transport.abortConnection()

    def _too_slow(self) -> None:
        self._deadline = None
        limited(log, "tcp-slow", logging.INFO,
                "closing TCP connection from %s: a message incomplete after %.0f s",
                self._peer(), self.limits.message_timeout)
        if self.table is not None:
            self.table.stats["cut-slow"] += 1
        self._abort()

    def _timed_out(self) -> None:
        self._idle = None
        if self.pending:
            # Mid-transfer, or replies unread: the client stopped reading; do not wait.
            limited(log, "tcp-stalled", logging.INFO,
                    "closing TCP connection from %s: stalled for %.0f s with replies unread",
                    self._peer(), self.limits.idle_timeout)
            if self.table is not None:
                self.table.stats["cut-stalled"] += 1
            self._abort()
            return
        if self.table is not None:
            self.table.stats["cut-idle"] += 1
        self.transport.loseConnection()
        # A reply still unread in the socket buffer keeps a clean close waiting for the
        # client; it gets as long as a message does, then the connection is aborted.
        self._closing = self.clock.callLater(self.limits.message_timeout, self._close_late)

    def _close_late(self) -> None:
        self._closing = None
        if not self._lost:
            self.transport.abortConnection()

    def _peer(self) -> str:
        return str(self.transport.getPeer()) if self.transport is not None else "?"


class TCPFactory(Factory):
    """Builds a :class:`TCPServer` per connection, sharing the responder and the table."""

    def __init__(
        self, responder: Responder, clock: Any, limits: TcpLimits | float | None = None
    ) -> None:
        self.responder = responder
        self.clock = clock
        if limits is None:
            limits = TcpLimits()
        elif not isinstance(limits, TcpLimits):
            limits = TcpLimits(idle_timeout=float(limits))  # the idle timeout alone
        self.limits = limits
        self.table = ConnectionTable(limits.clients, limits.clients_per_source)

    @property
    def idle_timeout(self) -> float:
        return self.limits.idle_timeout

    def buildProtocol(self, addr: Any) -> TCPServer | None:
        source = self.table.admit(getattr(addr, "host", None))
        if source is None:
            return None  # Twisted closes the socket at once
        protocol = TCPServer(self.responder, self.clock, self.limits, self.table, source)
        protocol.factory = self
        self.table.add(protocol, source)
        return protocol
