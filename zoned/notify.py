"""NOTIFY (RFC 1996) of new serials to a zone's secondaries: the sans-IO state machine.

A secondary learns of a new serial from our NOTIFY and then asks for IXFR at once,
instead of waiting out the SOA refresh.  :class:`Notifier` holds, per zone and target,
the one serial still to be acknowledged (a newer serial supersedes an older one: the
secondary would transfer the newest anyway) and when to send it again.  Nothing here
touches a socket or reads a clock: the adapter (:mod:`zoned.notifier`) passes ``now``
in, sends what :meth:`Notifier.due` returns, feeds replies to :meth:`Notifier.received`
and sleeps until :meth:`Notifier.next_wakeup`.

Retries back off exponentially (2 s doubling to 60 s) and never stop until the target
acknowledges or the serial is superseded: a secondary that is down costs one datagram
a minute, never a busy loop nor a delayed answer.  Logging follows state changes only
(a target falls silent, refuses, answers again), so a dead secondary logs once.
"""

from __future__ import annotations

import ipaddress
import logging
import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import dns.tsig

from listformat.wire import QR
from zoned.access import Target, TsigKey
from zoned.config import ZoneConfig
from zoned.wire import name_labels

log = logging.getLogger(__name__)

INITIAL_RETRY = 2.0  # seconds before the first retry (BIND waits a few seconds too)
MAX_RETRY = 60.0  # backoff cap: a dead secondary costs one datagram a minute
KEPT_ATTEMPTS = 8  # ids (and TSIG MACs) of recent attempts a late reply may answer

_OPCODE_NOTIFY = int(dns.opcode.NOTIFY)

Address = tuple[str, int]


def tsig_key(key: TsigKey) -> dns.tsig.Key:
    """The dnspython key for a configured TSIG key."""
    return dns.tsig.Key(key.name + ".", key.secret, key.algorithm + ".")


def notify_message(
    config: ZoneConfig, serial: int, message_id: int, key: TsigKey | None
) -> dns.message.Message:
    """The NOTIFY for ``serial``: opcode NOTIFY, AA, question ``<zone>. SOA IN``.

    The current SOA rides in the answer section (RFC 1996 3.7 allows it; Knot and NSD
    take it as a hint and skip their SOA query when it is not newer).  With a key the
    message is TSIG-signed when rendered (RFC 8945).
    """
    origin = _name(config.origin)
    message = dns.message.Message(id=message_id)
    message.set_opcode(dns.opcode.NOTIFY)
    message.flags |= dns.flags.AA
    message.find_rrset(message.question, origin, dns.rdataclass.IN, dns.rdatatype.SOA,
                       create=True, force_unique=True)
    soa = config.soa
    rdata = dns.rdata.from_text(
        dns.rdataclass.IN, dns.rdatatype.SOA,
        f"{_name(soa.mname)} {_name(soa.rname)} {serial} {soa.refresh} {soa.retry} "
        f"{soa.expire} {soa.minimum}",
    )
    message.answer.append(dns.rrset.from_rdata(origin, soa.ttl, rdata))
    if key is not None:
        message.use_tsig(tsig_key(key))
    return message


@dataclass
class _Pending:
    """The serial one target has not acknowledged yet, and when to send it again."""

    config: ZoneConfig
    serial: int
    target: Target
    key: TsigKey | None
    due: float
    interval: float = INITIAL_RETRY
    attempts: int = 0
    answered: bool = False  # the last attempt got a reply (an error rcode, a bad TSIG)
    sent: dict[int, bytes] = field(default_factory=dict)  # id -> request MAC (b"" unsigned)


class Notifier:
    """Which NOTIFY to send to whom, and when; acknowledgements end the retries.

    ``ids`` draws message ids (random by default: an off-path forger must guess them).
    """

    def __init__(self, ids: Callable[[], int] = lambda: secrets.randbits(16)) -> None:
        self._ids = ids
        self._pending: dict[tuple[str, Target], _Pending] = {}
        self._acked: dict[tuple[str, Target], int] = {}
        # Per zone and target, what the last exchange showed: "" fine, else the problem.
        self._trouble: dict[tuple[str, Target], str] = {}

    # -- input -----------------------------------------------------------------------
    def serial_changed(self, config: ZoneConfig, serial: int, now: float) -> None:
        """Schedule a NOTIFY of ``serial`` to every target of the zone, sent at ``now``.

        A target already told of this serial (acknowledged or pending) is left alone, so
        calling this again after a reload reaches only new targets; targets no longer
        configured are forgotten.
        """
        transfer = config.transfer
        targets = transfer.notify if transfer is not None else ()
        key = transfer.key if transfer is not None else None
        self._forget(config.origin, keep=set(targets))
        for target in targets:
            slot = (config.origin, target)
            pending = self._pending.get(slot)
            if pending is not None and pending.serial == serial:
                continue
            if pending is None and self._acked.get(slot) == serial:
                continue
            self._pending[slot] = _Pending(config, serial, target, key, now)

    def retain(self, origins: Iterable[str]) -> None:
        """Forget zones no longer served (after a reload)."""
        keep = set(origins)
        for table in (self._pending, self._acked, self._trouble):
            for slot in [s for s in table if s[0] not in keep]:
                del table[slot]

    def received(self, wire: bytes, source: Address, now: float) -> bool:
        """Take a datagram from the NOTIFY socket; True if it acknowledged a NOTIFY.

        It must answer one of our recent attempts: same id, QR set, opcode NOTIFY, the
        zone's SOA question, from the target's address and port (RFC 1996 3.10), and
        for a signed NOTIFY a valid TSIG over our request's MAC (RFC 8945 5.3).
        """
        if len(wire) < 12 or not wire[2] & (QR >> 8):
            return False
        message_id = int.from_bytes(wire[:2], "big")
        if (wire[2] >> 3) & 0xF != _OPCODE_NOTIFY:
            return False
        host = _normal_host(source[0])
        for slot, pending in self._pending.items():
            mac = pending.sent.get(message_id)
            if mac is None or pending.target.port != source[1]:
                continue
            if _normal_host(pending.target.host) != host:
                continue
            return self._answers(wire, pending, mac) and self._acknowledge(slot, pending)
        log.debug("ignored a %d-byte reply from %s:%d that answers no NOTIFY of ours",
                  len(wire), source[0], source[1])
        return False

    # -- output ----------------------------------------------------------------------
    def due(self, now: float) -> list[tuple[bytes, Target]]:
        """The NOTIFY messages to send at ``now``, each rescheduled with backoff."""
        out: list[tuple[bytes, Target]] = []
        for slot, pending in self._pending.items():
            if pending.due > now:
                continue
            if pending.attempts and not pending.answered:
                self._trouble_changed(
                    slot, pending, "silent",
                    f"no answer from {pending.target} to NOTIFY of {pending.config.origin} "
                    f"serial {pending.serial} after {pending.attempts} attempt(s); retrying now, "
                    f"then in {pending.interval:g} s, backing off to every {MAX_RETRY:g} s",
                )
            pending.attempts += 1
            pending.answered = False
            pending.due = now + pending.interval
            pending.interval = min(pending.interval * 2, MAX_RETRY)
            try:
                out.append((self._render(pending), pending.target))
            except Exception:  # noqa: BLE001 - already rescheduled: never a hot loop
                log.exception("cannot build NOTIFY of %s serial %d to %s",
                              pending.config.origin, pending.serial, pending.target)
        return out

    def next_wakeup(self) -> float | None:
        """When :meth:`due` next has something to send; None while nothing is pending."""
        return min((p.due for p in self._pending.values()), default=None)

    def pending(self) -> dict[tuple[str, Target], int]:
        """Serials not yet acknowledged, by (zone, target)."""
        return {slot: p.serial for slot, p in self._pending.items()}

    # -- internals -------------------------------------------------------------------
    def _render(self, pending: _Pending) -> bytes:
        message_id = self._ids() & 0xFFFF
        for _ in range(3):  # a fresh id: a late reply must find its own attempt's MAC
            if message_id not in pending.sent:
                break
            message_id = self._ids() & 0xFFFF
        message = notify_message(pending.config, pending.serial, message_id, pending.key)
        wire = message.to_wire()
        pending.sent[message_id] = (message.mac or b"") if pending.key is not None else b""
        while len(pending.sent) > KEPT_ATTEMPTS:
            del pending.sent[next(iter(pending.sent))]
        return wire

    def _answers(self, wire: bytes, pending: _Pending, mac: bytes) -> bool:
        """Whether ``wire`` answers ``pending`` positively; problems are logged once."""
        slot = (pending.config.origin, pending.target)
        try:
            reply = dns.message.from_wire(wire, keyring=False)
        except (dns.exception.DNSException, ValueError) as exc:
            log.debug("malformed reply from %s to NOTIFY: %s", pending.target, exc)
            return False
        question = reply.question[0] if len(reply.question) == 1 else None
        if (
            question is None
            or question.rdtype != dns.rdatatype.SOA
            or question.rdclass != dns.rdataclass.IN
            or question.name != _name(pending.config.origin)
        ):
            return False
        pending.answered = True
        if pending.key is not None:
            try:
                dns.message.from_wire(wire, keyring=tsig_key(pending.key), request_mac=mac)
            except (dns.exception.DNSException, ValueError) as exc:
                self._trouble_changed(
                    slot, pending, f"tsig:{type(exc).__name__}",
                    f"{pending.target} answered NOTIFY of {pending.config.origin} serial "
                    f"{pending.serial} without a valid TSIG signature "
                    f"({dns.rcode.to_text(reply.rcode())}, {exc or type(exc).__name__}); "
                    f"retrying with backoff up to every {MAX_RETRY:g} s",
                )
                return False
        rcode = reply.rcode()
        if rcode != dns.rcode.NOERROR:
            name = dns.rcode.to_text(rcode)
            self._trouble_changed(
                slot, pending, f"rcode:{name}",
                f"{pending.target} answered {name} to NOTIFY of {pending.config.origin} "
                f"serial {pending.serial}; retrying with backoff up to every {MAX_RETRY:g} s",
            )
            return False
        return True

    def _acknowledge(self, slot: tuple[str, Target], pending: _Pending) -> bool:
        del self._pending[slot]
        self._acked[slot] = pending.serial
        if self._trouble.pop(slot, ""):
            log.info("%s answers NOTIFY of %s again", pending.target, pending.config.origin)
        log.info("NOTIFY of %s serial %d to %s acknowledged",
                 pending.config.origin, pending.serial, pending.target)
        return True

    def _trouble_changed(
        self, slot: tuple[str, Target], pending: _Pending, state: str, message: str
    ) -> None:
        if self._trouble.get(slot, "") != state:
            self._trouble[slot] = state
            log.warning("%s", message)

    def _forget(self, origin: str, keep: set[Target]) -> None:
        for table in (self._pending, self._acked, self._trouble):
            for slot in [s for s in table if s[0] == origin and s[1] not in keep]:
                del table[slot]


def _name(text: str) -> dns.name.Name:
    """An absolute name split into labels exactly as the served zone splits it."""
    return dns.name.Name((*name_labels(text), b""))


def _normal_host(host: str) -> str:
    """One spelling per address, so ``::1`` and ``0:0::1`` (or ``::ffff:127.0.0.1``) match."""
    try:
        ip = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return host
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return str(ip.ipv4_mapped)
    return str(ip)
