"""What TCP may hold: the limits per connection, and the table of open connections.

An outsider decides how many connections to open, how fast to send and whether to read
our replies, so every one of those is bounded here rather than by the descriptor limit
or memory.  The table counts connections in total and per source (an IPv6 source is its
/64, which one host usually holds whole) and keeps them in least-recently-used order:
at the cap, a new connection evicts the one that has gone longest without completing a
message and has no reply being written, so an attacker who holds connections open
without asking anything gives them up first.  When nothing can be evicted the listening
ports stop accepting until a connection closes, instead of accepting and closing in a
loop or running into EMFILE.

The process's soft descriptor limit is raised to its hard limit at start
(:func:`raise_descriptor_limit`), and the connection cap is kept below it with room for
the UDP and listening sockets, the stores and the log (:data:`RESERVED_DESCRIPTORS`).
"""

from __future__ import annotations

import ipaddress
import logging
import resource
import socket
from collections import Counter, OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from zoned.errors import ZonedError
from zoned.ratelog import limited

log = logging.getLogger(__name__)

# RFC 7766 6.2.3 suggests tens of seconds for an idle TCP connection; we keep it short
# because scanners open connections only after a truncated UDP answer.
DEFAULT_IDLE_TIMEOUT = 10.0
# A message must arrive whole within this long of its first byte: a query fits one
# segment, and 5 s still covers two lost segments' retransmissions.
DEFAULT_MESSAGE_TIMEOUT = 5.0
# The largest query we take.  A TSIG-signed IXFR request with 255-byte names everywhere
# and an HMAC-SHA512 is under 1.7 KB, EDNS padding (RFC 8467) adds at most a block:
# 4 KiB keeps every real query and bounds what one pending message costs.
DEFAULT_MAX_MESSAGE = 4096
# Replies a connection may have waiting (pipelined queries whose replies the client has
# not read yet) before we stop reading its socket.
DEFAULT_PENDING = 64
# Open TCP connections in total, and from one source address (IPv6: one /64).
DEFAULT_CLIENTS = 1000
DEFAULT_CLIENTS_PER_SOURCE = 64
# Descriptors kept for everything that is not a TCP client, including the connections
# evicted and not closed yet (their descriptors go one reactor turn later).
RESERVED_DESCRIPTORS = 128
CLOSING_SLACK = 64


@dataclass(frozen=True)
class TcpLimits:
    """The bounds on TCP clients; every field is a command-line option."""

    idle_timeout: float = DEFAULT_IDLE_TIMEOUT
    message_timeout: float = DEFAULT_MESSAGE_TIMEOUT
    max_message: int = DEFAULT_MAX_MESSAGE
    pending: int = DEFAULT_PENDING
    clients: int = DEFAULT_CLIENTS
    clients_per_source: int = DEFAULT_CLIENTS_PER_SOURCE
    backlog: int = 0  # 0: the kernel's somaxconn

    def check(self) -> list[str]:
        """What is wrong with these limits, by option (empty when they are usable)."""
        flags = {option.field: f"--{option.flag}" for option in OPTIONS}
        problems = []
        for name in ("idle_timeout", "message_timeout"):
            if not getattr(self, name) > 0:
                problems.append(f"{flags[name]} must be more than 0 seconds")
        for name, low, high in (("max_message", 12, 0xFFFF), ("pending", 1, 1 << 20),
                                ("clients", 1, 1 << 24), ("clients_per_source", 1, 1 << 24),
                                ("backlog", 0, 1 << 20)):
            value = getattr(self, name)
            if not low <= value <= high:
                problems.append(f"{flags[name]} must be from {low} to {high}")
        return problems


@dataclass(frozen=True)
class Option:
    """One command-line option that sets a :class:`TcpLimits` field (zoned and twistd)."""

    flag: str  # without the leading dashes
    field: str
    kind: type[int] | type[float]
    help: str


OPTIONS = (
    Option("idle-timeout", "idle_timeout", float,
           "seconds a TCP connection may go without a complete message"),
    Option("tcp-message-timeout", "message_timeout", float,
           "seconds a TCP message may take to arrive, from its first byte"),
    Option("tcp-max-message", "max_message", int,
           "largest TCP message taken, in bytes (a longer one closes the connection)"),
    Option("tcp-pending", "pending", int,
           "replies a TCP connection may leave unread before it is no longer read"),
    Option("tcp-clients", "clients", int,
           "open TCP connections at most (kept below the descriptor limit)"),
    Option("tcp-clients-per-source", "clients_per_source", int,
           "open TCP connections from one address (IPv6: one /64)"),
    Option("tcp-backlog", "backlog", int, "listen backlog (0: the kernel's somaxconn)"),
)


class LimitsError(ZonedError, ValueError):
    """An option's value cannot be used; the message names the option."""


def limits_from(values: dict[str, object]) -> TcpLimits:
    """TcpLimits from option values keyed by field name (None: the default)."""
    given = {name: value for name, value in values.items() if value is not None}
    limits = TcpLimits(**given)  # type: ignore[arg-type]
    problems = limits.check()
    if problems:
        raise LimitsError("; ".join(problems))
    return limits


def somaxconn(path: Path = Path("/proc/sys/net/core/somaxconn")) -> int:
    """The kernel's cap on a listen backlog (what ``listen()`` is silently cut to)."""
    try:
        return max(1, int(path.read_text().strip()))
    except (OSError, ValueError):
        return socket.SOMAXCONN


def raise_descriptor_limit() -> int:
    """Raise the soft RLIMIT_NOFILE to the hard limit (logged); returns the soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard
    if hard == resource.RLIM_INFINITY:
        try:
            target = int(Path("/proc/sys/fs/nr_open").read_text().strip())
        except (OSError, ValueError):
            target = soft
    if soft != resource.RLIM_INFINITY and target > soft:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        except (OSError, ValueError) as exc:
            log.warning("cannot raise the descriptor limit from %d to %d: %s", soft, target, exc)
            return int(soft)
        log.info("descriptor limit raised from %d to %d", soft, target)
        return int(target)
    log.info("descriptor limit %d", soft)
    return int(soft)


def client_cap(configured: int, descriptors: int) -> int:
    """The connection cap that fits ``descriptors`` (at least 1)."""
    cap = min(configured, descriptors - RESERVED_DESCRIPTORS - CLOSING_SLACK)
    if cap < configured:
        log.warning("TCP clients capped at %d (not %d) to fit the descriptor limit of %d",
                    max(cap, 1), configured, descriptors)
    return max(cap, 1)


def source_of(host: str | None) -> str:
    """The source a connection is counted under: the address, or an IPv6 /64."""
    if host is None:
        return "?"
    try:
        address = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return host
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is None:
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return str(address.ipv4_mapped)
    return str(address)


class Evictable(Protocol):
    """What the table needs of a connection."""

    def busy(self) -> bool:
        """Whether a reply is queued or being written (such a connection is not evicted)."""

    def evict(self) -> bool:
        """Close the connection now; True if its descriptor is released already."""


class Pausable(Protocol):
    def stopReading(self) -> None: ...

    def startReading(self) -> None: ...


class ConnectionTable:
    """Open connections in least-recently-used order, counted per source."""

    def __init__(self, clients: int, clients_per_source: int) -> None:
        self.clients = clients
        self.clients_per_source = clients_per_source
        self._open: OrderedDict[Evictable, str] = OrderedDict()
        self._closing: set[Evictable] = set()
        self._per_source: Counter[str] = Counter()
        self.ports: list[Any] = []  # listening ports to pause when nothing can be evicted
        self.paused = False
        self.stats: Counter[str] = Counter()

    def __len__(self) -> int:
        return len(self._open)

    def admit(self, host: str | None) -> str | None:
        """The source to count a new connection from ``host`` under, or None to refuse it.

        At the total cap the least recently used idle connection is evicted to make room.
        """
        source = source_of(host)
        if self._per_source[source] >= self.clients_per_source:
            self.stats["refused-source"] += 1
            limited(log, "tcp-refused", logging.INFO,
                    "refused a TCP connection from %s: %d open from that source (the limit)",
                    host, self._per_source[source])
            return None
        if len(self._open) - len(self._closing) >= self.clients and not self._evict_one():
            self.stats["refused-full"] += 1
            limited(log, "tcp-refused", logging.WARNING,
                    "refused a TCP connection from %s: %d connections open, none idle; "
                    "not accepting until one closes", host, len(self._open))
            self._pause()
            return None
        return source

    def add(self, connection: Evictable, source: str) -> None:
        self._open[connection] = source
        self._per_source[source] += 1
        self.stats["accepted"] += 1

    def touch(self, connection: Evictable) -> None:
        """The connection completed a message: it becomes the most recently used."""
        if connection in self._open:
            self._open.move_to_end(connection)

    def remove(self, connection: Evictable) -> None:
        source = self._open.pop(connection, None)
        if source is None:
            return
        self._closing.discard(connection)
        self._per_source[source] -= 1
        if not self._per_source[source]:
            del self._per_source[source]
        if self.paused:
            self._resume()

    def _evict_one(self) -> bool:
        if len(self._closing) >= CLOSING_SLACK:
            return False
        for connection in self._open:
            if connection not in self._closing and not connection.busy():
                self._closing.add(connection)
                self.stats["evicted"] += 1
                limited(log, "tcp-evicted", logging.INFO,
                        "at the cap of %d TCP connections: closed the one idle longest",
                        self.clients)
                if connection.evict():
                    self.remove(connection)  # its descriptor is free: it counts no more
                return True
        return False

    def _pause(self) -> None:
        if not self.paused:
            self.paused = True
            for port in self.ports:
                port.stopReading()

    def _resume(self) -> None:
        self.paused = False
        for port in self.ports:
            port.startReading()
