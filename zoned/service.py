"""The zoned service: zones loaded from a directory, served on UDP and TCP ports.

Loading the zone files is separate from answering: a reload (SIGHUP) builds a whole
new :class:`Authority` first and swaps it in only if every file is valid, so a broken
edit is reported while the previous configuration keeps serving.

Each new serial, and every zone's serial at start, is announced to the zone's
secondaries by NOTIFY (:mod:`zoned.notifier`); serial 0 (nothing published) is not.
"""

from __future__ import annotations

import logging
import signal
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from twisted.application import service
from twisted.internet.defer import gatherResults, maybeDeferred
from twisted.internet.task import LoopingCall

from zoned.authority import Authority
from zoned.config import ConfigError, load_zones
from zoned.connections import TcpLimits, client_cap, raise_descriptor_limit, somaxconn
from zoned.core import Responder
from zoned.notifier import NotifySender
from zoned.protocol import TCPFactory, UDPServer
from zoned.ratelog import LIMITER
from zoned.zone import ReaderPool, ServedZone

log = logging.getLogger(__name__)

# How often the stores are checked for a new serial; well inside the one-second promise.
REFRESH_INTERVAL = 0.25


def build_authority(config_dir: Path, pool: ReaderPool) -> Authority:
    """Load every zone file and open its store; raises ConfigError listing every problem."""
    configs = load_zones(config_dir)
    authority = Authority(ServedZone(config, pool) for config in configs)
    pool.retain(config.store for config in configs)
    return authority


class ZonedService(service.Service):
    """Listens on every address, refreshes serials, reloads on demand."""

    def __init__(
        self,
        config_dir: Path,
        addresses: Sequence[str],
        port: int,
        reactor: Any,
        idle_timeout: float | None = None,
        install_signals: bool = False,
        limits: TcpLimits | None = None,
    ) -> None:
        self.config_dir = config_dir
        self.addresses = tuple(addresses)
        self.port = port
        self.reactor = reactor
        limits = limits or TcpLimits()
        if idle_timeout is not None:
            limits = replace(limits, idle_timeout=idle_timeout)
        self.limits = limits
        self.install_signals = install_signals
        self.tcp: TCPFactory | None = None
        self.pool = ReaderPool()
        self.responder = Responder(build_authority(config_dir, self.pool))
        self.ports: list[Any] = []  # IListeningPort providers
        self.notifier = NotifySender(reactor)
        self._refresher = LoopingCall(self.refresh)
        self._refresher.clock = reactor

    def startService(self) -> None:
        service.Service.startService(self)  # type: ignore[no-untyped-call]
        # Every TCP client costs a descriptor: take all the process may have, and keep
        # the connection cap below it so accept() never meets EMFILE.
        limits = replace(self.limits,
                         clients=client_cap(self.limits.clients, raise_descriptor_limit()))
        backlog = limits.backlog or somaxconn()
        tcp = self.tcp = TCPFactory(self.responder, self.reactor, limits)
        for address in self.addresses:
            self.ports.append(self.reactor.listenUDP(self.port, UDPServer(self.responder), address))
            listening = self.reactor.listenTCP(self.port, tcp, backlog=backlog, interface=address)
            tcp.table.ports.append(listening)
            self.ports.append(listening)
        for zone in self.responder.authority.zones.values():
            log.info("serving zone=%s serial=%d", zone.compiled.origin, zone.snapshot.serial)
        log.info("listening on %s port %d (udp, tcp)", ", ".join(self.addresses), self.bound_port)
        log.info("tcp: at most %d clients, %d per source, backlog %d; idle %g s, a message "
                 "within %g s and %d bytes, %d replies pending", limits.clients,
                 limits.clients_per_source, backlog, limits.idle_timeout,
                 limits.message_timeout, limits.max_message, limits.pending)
        self._notify_all()
        self._refresher.start(REFRESH_INTERVAL, now=False)
        if self.install_signals:
            # SIGHUP re-reads the zone files in the reactor thread, between queries.
            signal.signal(signal.SIGHUP, lambda *_: self.reactor.callFromThread(self.reload))

    def stopService(self) -> Any:
        service.Service.stopService(self)  # type: ignore[no-untyped-call]
        held = {kind: n for kind, n in LIMITER.suppressed().items() if n}
        if held:
            log.info("rate-limited lines not written, by kind: %s",
                     ", ".join(f"{kind}={n}" for kind, n in sorted(held.items())))
        if self.tcp is not None and self.tcp.table.stats:
            log.info("tcp connections: %s", ", ".join(
                f"{name}={n}" for name, n in sorted(self.tcp.table.stats.items())))
        if self._refresher.running:
            self._refresher.stop()
        ports, self.ports = self.ports, []
        return gatherResults(
            [maybeDeferred(p.stopListening) for p in ports] + [self.notifier.stop()]
        )

    @property
    def bound_port(self) -> int:
        """The port actually bound (useful when asked for port 0)."""
        if not self.ports:
            return self.port
        return int(self.ports[0].getHost().port)

    def refresh(self) -> None:
        """Serve new serials; a failure is logged and the last snapshot keeps serving."""
        LIMITER.flush()  # the summaries of rate-limited lines whose window has ended
        zones = self.responder.authority.zones.values()
        before = {zone.compiled.origin: zone.snapshot.serial for zone in zones}
        try:
            if not self.responder.refresh():
                return
        except Exception:  # noqa: BLE001 - the refresh loop must survive anything
            log.exception("refreshing zone stores failed; serving the last good data")
        for zone in zones:
            if zone.snapshot.serial != before[zone.compiled.origin]:
                log.debug("zone=%s serial=%d", zone.compiled.origin, zone.snapshot.serial)
                self._notify(zone)

    def reload(self) -> bool:
        """Re-read the zone files; keep the old zones if the new ones have any error."""
        try:
            authority = build_authority(self.config_dir, self.pool)
        except ConfigError as exc:
            log.error("reload of %s failed, keeping the running zones:\n%s", self.config_dir, exc)
            return False
        except Exception:  # noqa: BLE001 - same promise for unexpected failures
            log.exception("reload of %s failed, keeping the running zones", self.config_dir)
            return False
        self.responder.replace(authority)
        log.info("reloaded %d zones from %s", len(authority.zones), self.config_dir)
        # Targets told of the current serial already are not told again: only new ones are.
        self.notifier.retain(zone.compiled.origin for zone in authority.zones.values())
        self._notify_all()
        return True

    def _notify_all(self) -> None:
        for zone in self.responder.authority.zones.values():
            self._notify(zone)

    def _notify(self, zone: ServedZone) -> None:
        """NOTIFY the zone's secondaries of its serial; a failure costs the NOTIFY only."""
        if zone.snapshot.serial <= 0:
            return
        try:
            self.notifier.notify(zone.compiled.config, zone.snapshot.serial)
        except Exception:  # noqa: BLE001 - serving comes first
            log.exception("zone=%s cannot schedule NOTIFY of serial %d", zone.compiled.origin,
                          zone.snapshot.serial)
