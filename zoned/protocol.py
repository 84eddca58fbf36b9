"""Twisted adapters: move bytes between sockets and the sans-IO :class:`Responder`.

They frame and unframe, keep TCP idle timers, and nothing else; every decision about
what to answer is the core's.
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

from zoned.core import Responder
from zoned.framing import Framer, FramingError, frame

log = logging.getLogger(__name__)

# RFC 7766 6.2.3 suggests tens of seconds for an idle TCP connection; we keep it short
# because scanners open connections only after a truncated UDP answer.
DEFAULT_IDLE_TIMEOUT = 10.0
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
    """One TCP connection: any number of pipelined queries, answered in order.

    A zone transfer is a stream of messages that are produced only as fast as the
    client reads them (Twisted's push-producer flow control), so a large zone never
    piles up in our buffers; a client that stops reading for ``idle_timeout`` is cut off
    whatever it was doing, and the other connections never notice.
    """

    # Twisted's zope interfaces are opaque to mypy, so the transport, the clock and the
    # delayed call are typed Any here; the tests drive them with in-memory fakes.
    transport: Any

    def __init__(self, responder: Responder, clock: Any, idle_timeout: float) -> None:
        self.responder = responder
        self.clock = clock
        self.idle_timeout = idle_timeout
        self.framer = Framer()
        self._idle: Any = None
        self._queue: deque[Iterator[bytes]] = deque()
        self._paused = False
        self._peer_host: str | None = None

    def connectionMade(self) -> None:
        peer = self.transport.getPeer() if self.transport is not None else None
        self._peer_host = getattr(peer, "host", None)
        self.transport.registerProducer(self, True)
        self._idle = self.clock.callLater(self.idle_timeout, self._timed_out)

    def dataReceived(self, data: bytes) -> None:
        try:
            messages = self.framer.feed(data)
        except FramingError as exc:
            log.info("closing TCP connection from %s: %s", self._peer(), exc)
            self.transport.abortConnection()
            return
        for message in messages:
            self._queue.append(self.responder.respond_stream(message, self._peer_host))
        self._touch()
        self._drain()

    def _drain(self) -> None:
        """Write queued replies until the transport asks us to pause."""
        while self._queue and not self._paused:
            try:
                reply = next(self._queue[0], None)
            except Exception:  # noqa: BLE001 - a broken transfer costs this connection only
                log.exception("transfer to %s failed; closing the connection", self._peer())
                self._queue.clear()
                self.transport.abortConnection()
                return
            if reply is None:
                self._queue.popleft()
                continue
            self.transport.write(frame(reply))
            self._touch()

    def pauseProducing(self) -> None:
        self._paused = True

    def resumeProducing(self) -> None:
        self._paused = False
        self._drain()

    def stopProducing(self) -> None:
        self._queue.clear()

    def _touch(self) -> None:
        if self._idle is not None and self._idle.active():
            self._idle.reset(self.idle_timeout)

    def connectionLost(self, reason: Failure | None = None) -> None:
        if self._idle is not None and self._idle.active():
            self._idle.cancel()
        self._idle = None
        self._queue.clear()

    def _timed_out(self) -> None:
        self._idle = None
        if self._queue:
            # Mid-transfer and the client stopped reading: do not wait for a flush.
            log.info("closing TCP connection from %s: stalled for %.0f s mid-transfer",
                     self._peer(), self.idle_timeout)
            self._queue.clear()
            self.transport.abortConnection()
        else:
            self.transport.loseConnection()

    def _peer(self) -> str:
        return str(self.transport.getPeer()) if self.transport is not None else "?"


class TCPFactory(Factory):
    """Builds a :class:`TCPServer` per connection, sharing the responder."""

    def __init__(
        self, responder: Responder, clock: Any, idle_timeout: float = DEFAULT_IDLE_TIMEOUT
    ) -> None:
        self.responder = responder
        self.clock = clock
        self.idle_timeout = idle_timeout

    def buildProtocol(self, addr: Any) -> TCPServer:
        return TCPServer(self.responder, self.clock, self.idle_timeout)
