"""The Twisted adapter around :class:`zoned.notify.Notifier`: sockets and one timer.

One UDP socket per address family, on an ephemeral port, opened when the first NOTIFY
of that family is sent (a server without targets opens none; a host without IPv6 logs
its IPv6 targets once and skips them).  Replies go to the state machine; one
``callLater`` wakes it when it says something is due.  Every step is guarded: NOTIFY
is a courtesy to the secondaries and must never disturb serving.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterable
from typing import Any

from twisted.internet.defer import Deferred, gatherResults, maybeDeferred
from twisted.internet.protocol import DatagramProtocol

from zoned.access import Target
from zoned.config import ZoneConfig
from zoned.notify import Notifier

log = logging.getLogger("zoned.notify")

ERROR_PAUSE = 1.0  # seconds before the timer runs again after an unexpected failure


class _NotifyProtocol(DatagramProtocol):
    """The socket of one address family: datagrams in go to the sender."""

    def __init__(self, sender: NotifySender) -> None:
        self.sender = sender

    def datagramReceived(self, datagram: bytes, addr: Any) -> None:
        self.sender.received(datagram, (str(addr[0]), int(addr[1])))


class NotifySender:
    """Sends what the :class:`Notifier` says is due, when it is due.

    ``reactor`` opens the sockets; ``clock`` (the reactor unless given) supplies
    ``seconds`` and ``callLater``, so tests drive the timer with ``task.Clock``.
    """

    def __init__(self, reactor: Any, clock: Any = None, notifier: Notifier | None = None) -> None:
        self.reactor = reactor
        self.clock = reactor if clock is None else clock
        self.notifier = Notifier() if notifier is None else notifier
        self._ports: dict[int, Any] = {}  # address family -> IListeningPort
        self._skipped: set[Target] = set()  # targets whose family has no socket, logged once
        self._timer: Any = None
        self._stopped = False

    # -- what the service calls -------------------------------------------------------
    def notify(self, config: ZoneConfig, serial: int) -> None:
        """Tell the zone's targets of ``serial`` (those not told already)."""
        self.notifier.serial_changed(config, serial, self.clock.seconds())
        self._schedule()

    def retain(self, origins: Iterable[str]) -> None:
        """Forget the zones that are no longer served."""
        self.notifier.retain(origins)
        self._schedule()

    def stop(self) -> Deferred[Any]:
        """Cancel the timer and close the sockets."""
        self._stopped = True
        self._cancel()
        ports, self._ports = list(self._ports.values()), {}
        return gatherResults([maybeDeferred(p.stopListening) for p in ports])

    # -- socket and timer ---------------------------------------------------------------
    def received(self, datagram: bytes, source: tuple[str, int]) -> None:
        try:
            self.notifier.received(datagram, source, self.clock.seconds())
        except Exception:  # noqa: BLE001 - a bad datagram costs itself only
            log.exception("handling a reply to NOTIFY from %s:%d failed", *source)
        self._schedule()

    def _wake(self) -> None:
        self._timer = None
        pause = 0.0
        try:
            for wire, target in self.notifier.due(self.clock.seconds()):
                self._send(wire, target)
        except Exception:  # noqa: BLE001 - the timer must survive anything
            log.exception("sending NOTIFY failed")
            pause = ERROR_PAUSE
        self._schedule(pause)

    def _schedule(self, pause: float = 0.0) -> None:
        """Arm the timer for the notifier's next wakeup (at least ``pause`` from now)."""
        self._cancel()
        when = self.notifier.next_wakeup()
        if self._stopped or when is None:
            return
        delay = max(when - self.clock.seconds(), pause, 0.0)
        self._timer = self.clock.callLater(delay, self._wake)

    def _cancel(self) -> None:
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None

    def _send(self, wire: bytes, target: Target) -> None:
        family = socket.AF_INET6 if ":" in target.host else socket.AF_INET
        port = self._port(family, target)
        if port is None:
            return
        try:
            port.write(wire, (target.host, target.port))
        except Exception as exc:  # noqa: BLE001 - unreachable now; the retry will tell
            log.debug("sending NOTIFY to %s failed: %s", target, exc)

    def _port(self, family: int, target: Target) -> Any:
        port = self._ports.get(family)
        if port is not None:
            return port
        interface = "::" if family == socket.AF_INET6 else "0.0.0.0"
        try:
            port = self.reactor.listenUDP(0, _NotifyProtocol(self), interface=interface)
        except Exception as exc:  # noqa: BLE001 - e.g. no IPv6 on this host
            if target not in self._skipped:
                self._skipped.add(target)
                log.warning("cannot open a socket on %s to NOTIFY %s, skipping it: %s",
                            interface, target, exc)
            return None
        self._ports[family] = port
        return port
