"""Outgoing zone transfers: AXFR (RFC 5936) and IXFR (RFC 1995) as streams of messages.

A transfer is a generator of wire messages, so the TCP adapter sends each one as the
client reads and a zone of millions of names never sits in memory: AXFR reads its own
store snapshot (:meth:`zoned.store.Reader.snapshot`) through :mod:`zoned.contents`.
IXFR answers from the store's journal when every change in it is a name of its own;
a change that moves wildcards (a network, or an address next to an override) makes
the whole reply a full transfer in IXFR form, which RFC 1995 4 allows.

Who may transfer (``transfer.allow``, ``transfer.key``) is checked here too; refusals
are logged with the client's address, because a secondary that silently gets nothing
is what operators debug (rate-limited: anyone can ask, over UDP from any address).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from functools import partial

import dns.message
import dns.name
import dns.rdatatype

from listformat.wire import (
    AA,
    CLASS_IN,
    FORMERR,
    HEADER,
    NOTAUTH,
    OPCODE_MASK,
    QR,
    RD,
    REFUSED,
    RR_FIXED,
    SERVFAIL,
    T_AXFR,
    T_SOA,
)
from zoned import contents, keys, tsig
from zoned.authority import Authority
from zoned.contents import Shadows, address_name, is_aligned, is_full, key_path
from zoned.fullpath import header_only
from zoned.journal import JournalEntry
from zoned.kinds import Transfer
from zoned.packed import QUESTION_POINTER, ownerless
from zoned.ratelog import limited
from zoned.serial import serial_gt
from zoned.store import Reader, StoreDamaged, StoreError
from zoned.zone import ServedZone, prefix_range

log = logging.getLogger(__name__)

MESSAGE_SIZE = 16384  # bytes of records per message; fewer messages, fewer TSIG digests


def owner_wire(name: str) -> bytes:
    """A relative presentation name as wire labels ending in a pointer to the apex.

    The apex is the question name of every message of the transfer, at offset 12.
    """
    if name == "@":
        return QUESTION_POINTER
    if "\\" in name:
        labels = dns.name.from_text(name, origin=None).labels
    else:
        labels = tuple(label.encode("ascii") for label in name.split("."))
    return b"".join(bytes((len(label),)) + label for label in labels) + QUESTION_POINTER


class _Messages:
    """Packs records into messages of about MESSAGE_SIZE bytes, signing each if asked."""

    def __init__(
        self, header: tuple[int, int], question: bytes, signer: tsig.Signer | None
    ) -> None:
        self.ident, self.flags = header
        self.question = question
        self.signer = signer
        self.parts: list[bytes] = []
        self.size = 0
        self.records = 0
        self.messages = 0

    def add(self, rr: bytes) -> bytes | None:
        """Queue one record; returns a full message when this one starts the next."""
        out = None
        if self.parts and self.size + len(rr) > MESSAGE_SIZE:
            out = self.flush()
        self.parts.append(rr)
        self.size += len(rr)
        self.records += 1
        return out

    def flush(self) -> bytes:
        wire = (
            HEADER.pack(self.ident, self.flags, 1, len(self.parts), 0, 0)
            + self.question
            + b"".join(self.parts)
        )
        self.parts = []
        self.size = 0
        self.messages += 1
        return self.signer.sign(wire) if self.signer is not None else wire


@dataclass(frozen=True)
class _Request:
    kind: str  # "AXFR" or "IXFR"
    zone: ServedZone
    peer: str
    client_serial: int | None  # IXFR: the serial the client has
    header: tuple[int, int]  # id, response flags
    question: bytes
    signer: tsig.Signer | None


class Transfers:
    """Answers AXFR and IXFR requests for the zones of one :class:`Authority`."""

    def __init__(self, authority: Authority, clock: Callable[[], float] = time.time) -> None:
        self.authority = authority
        self.clock = clock
        self.ring = authority.keyring

    def answer(
        self, data: bytes, shape: Transfer, peer: str | None, tcp: bool
    ) -> Iterator[bytes]:
        """The reply messages to transfer request ``data`` (one for a refusal, or over UDP)."""
        question = data[12 : shape.qend]
        try:
            request = tsig.parse(data, self.ring)
        except tsig.TsigRejected as exc:
            limited(log, "tsig-rejected", logging.WARNING,
                    "transfer request from %s rejected: %s", peer, exc)
            yield tsig.rejection(data, exc, self.clock)
            return
        except tsig.MALFORMED:  # the client's fault; anything else is ours (SERVFAIL)
            # No question: the one dnspython rejected would make the reply as unparsable.
            yield header_only(data, FORMERR)
            return
        ident, flags = HEADER.unpack_from(data)[:2]
        rflags = QR | AA | (flags & (OPCODE_MASK | RD))
        signer = None
        if request.had_tsig and request.keyname is not None:
            key = self.ring[request.keyname]
            signer = tsig.Signer(key, request.mac or b"", ident, self.clock)
        kind = "AXFR" if request.question[0].rdtype == T_AXFR else "IXFR"

        def refuse(rcode: int, why: str) -> bytes:
            limited(log, "transfer-refused", logging.WARNING, "%s of %s refused to %s: %s",
                    kind, qname, peer, why)
            reply = _header_reply(data, question, rcode)
            return signer.sign(reply) if signer is not None else reply

        qname = request.question[0].name.to_text(omit_final_dot=True)
        if flags & OPCODE_MASK or request.question[0].rdclass != CLASS_IN:
            yield refuse(FORMERR if flags & OPCODE_MASK else NOTAUTH, "not a class IN query")
            return
        labels = tuple(label.lower() for label in request.question[0].name.labels[:-1])
        zone = self.authority.zones.get(labels)
        if zone is None:
            yield refuse(NOTAUTH, "not a zone served here")
            return
        access = zone.compiled.config.transfer
        if access is None:
            yield refuse(REFUSED, "the zone has no transfer section")
            return
        if peer is None or peer not in access.allow:
            yield refuse(REFUSED, "address not in transfer.allow")
            return
        if access.key is not None and request.keyname != dns.name.from_text(access.key.name):
            why = "unsigned" if not request.had_tsig else f"signed with {request.keyname}"
            yield refuse(NOTAUTH if request.had_tsig else REFUSED,
                         f"{why}; transfer.key requires {access.key.name}")
            return
        client_serial = None
        if kind == "IXFR":
            soa = [rrset for rrset in request.authority if rrset.rdtype == dns.rdatatype.SOA]
            if not soa or not len(soa[0]):
                yield refuse(FORMERR, "IXFR without the client's SOA")
                return
            client_serial = soa[0][0].serial
        elif not tcp:
            yield refuse(FORMERR, "AXFR over UDP")  # RFC 5936 4.2: TCP only
            return
        req = _Request(kind, zone, peer, client_serial, (ident, rflags), question, signer)
        yield from self._stream(req, tcp)

    def _stream(self, req: _Request, tcp: bool) -> Iterator[bytes]:
        zone = req.zone
        reader = zone.snapshot.reader
        snapshot = None
        try:
            if reader is not None:
                snapshot = reader.snapshot()
            view = _view(zone, snapshot)
        except StoreError as exc:
            limited(log, "transfer-failed", logging.ERROR, "%s of %s to %s failed: %s",
                    req.kind, zone.compiled.origin, req.peer, exc)
            yield _header_reply_raw(req, SERVFAIL)
            return
        try:
            yield from self._send(req, view, tcp)
        finally:
            if snapshot is not None:
                snapshot.close()

    def _send(self, req: _Request, view: ServedZone, tcp: bool) -> Iterator[bytes]:
        serial = view.snapshot.serial
        out = _Messages(req.header, req.question, req.signer)
        soa = _soa_rr(view, serial)
        if req.kind == "IXFR":
            assert req.client_serial is not None
            if not serial_gt(serial, req.client_serial) or not tcp:
                # Up to date (or newer: RFC 1995 2), or UDP: the current SOA alone says
                # "nothing for you here" or "ask again over TCP" (RFC 1995 2, 4).
                out.add(soa)
                yield out.flush()
                # Over UDP the source address may be spoofed: that line is rate-limited.
                line = (log.info if tcp else partial(limited, log, "transfer-udp", logging.INFO))
                line("IXFR of %s from serial %d to %s: up to date at %d%s", view.compiled.origin,
                     req.client_serial, req.peer, serial, "" if tcp else " (UDP)")
                return
            entries, why = self._journal(view, req.client_serial)
            if entries is not None:
                yield from self._incremental(out, view, soa, entries)
                log.info("IXFR of %s from serial %d to %d to %s: %d changes", view.compiled.origin,
                         req.client_serial, serial, req.peer,
                         sum(len(entry.changes) for entry in entries))
                return
            log.info("IXFR of %s from serial %d to %s answered with a full transfer: %s",
                     view.compiled.origin, req.client_serial, req.peer, why)
        yield from self._full(out, view, soa)
        log.info("%s of %s serial %d to %s: %d records in %d messages", req.kind,
                 view.compiled.origin, serial, req.peer, out.records, out.messages)

    def _full(self, out: _Messages, view: ServedZone, soa: bytes) -> Iterator[bytes]:
        """SOA, every other record, SOA (RFC 5936 2.2)."""
        yield from _add_all(out, [soa])
        for name, packed in contents.names(view):
            owner = owner_wire(name)
            for rtype, rr in ownerless(packed):
                if name == "@" and rtype == T_SOA:
                    continue
                full = out.add(owner + rr)
                if full is not None:
                    yield full
        yield from _add_all(out, [soa])
        yield out.flush()

    def _incremental(
        self, out: _Messages, view: ServedZone, soa: bytes, entries: list[JournalEntry]
    ) -> Iterator[bytes]:
        """SOA(new), then per serial: SOA(old), deletions, SOA(next), additions; SOA(new)."""
        yield from _add_all(out, [soa])
        for entry in entries:
            yield from _add_all(out, [_soa_rr(view, entry.from_serial)])
            for change in entry.changes:
                if change.old is not None:
                    yield from self._rrs(out, view, change.key, change.old)
            yield from _add_all(out, [_soa_rr(view, entry.to_serial)])
            for change in entry.changes:
                if change.new is not None:
                    yield from self._rrs(out, view, change.key, change.new)
        yield from _add_all(out, [soa])
        yield out.flush()

    def _rrs(self, out: _Messages, view: ServedZone, key: bytes, packed: bytes) -> Iterator[bytes]:
        name = _change_name(view, key)
        if name is None:
            return  # hidden by a static record or an ``unlisted`` block, before and after
        owner = owner_wire(name)
        yield from _add_all(out, (owner + rr for _, rr in ownerless(packed)))

    def _journal(
        self, view: ServedZone, client_serial: int
    ) -> tuple[list[JournalEntry] | None, str]:
        """The journal from ``client_serial``, or None and why a full transfer is needed."""
        reader = view.snapshot.reader
        if reader is None:
            return None, "no store"
        try:
            entries = reader.journal_since(client_serial)
        except StoreError as exc:
            limited(log, "transfer-failed", logging.ERROR, "zone=%s journal unreadable: %s",
                    view.compiled.origin, exc)
            return None, "the journal is unreadable"
        if entries is None:
            return None, f"the journal does not reach back to serial {client_serial}"
        if view.compiled.is_ip:
            why = self._ip_changes_local(view, entries)
            if why:
                return None, why
        return entries, ""

    def _ip_changes_local(self, view: ServedZone, entries: list[JournalEntry]) -> str:
        """Why the changes cannot be sent as names of their own ('' when they can).

        A change is local when no network, override or block lies at, above or below
        its node, now or in any state the changes pass through; the store is probed
        per change (prefix lengths in use, one range), so the cost follows the change.
        """
        changed = {c.key for e in entries for c in e.changes}
        shadows = Shadows(view, (key for key in changed if not is_full(key)))
        reader = view.snapshot.reader
        for key in changed:
            path = key_path(key)
            if _crosses_family(view, key, path):
                return "an IPv4 and an IPv6 name share labels near a network"
            if is_full(key):
                if shadows.touches(path) or _covered_in_store(view, key):
                    return f"{address_name(key)} lies at or under a network or override"
                continue
            if (not is_aligned(key) or shadows.related_to_other(path)
                    or _covered_in_store(view, key)
                    or (reader is not None and _has_entries_inside(reader, key))):
                return "a changed network overlaps other entries"
        return ""


def _add_all(out: _Messages, rrs: Iterable[bytes]) -> Iterator[bytes]:
    for rr in rrs:
        message = out.add(rr)
        if message is not None:
            yield message


def _change_name(view: ServedZone, key: bytes) -> str | None:
    """The relative owner of a changed store key, None when that name is not served."""
    if view.compiled.is_ip:
        if is_full(key):
            hidden = contents.static_key(key_path(key)) in view.compiled.statics
            return None if hidden else address_name(key)
        return "*." + ".".join(reversed(key_path(key)))
    if key in view.compiled.statics or key in view.compiled.blocked_names:
        return None
    return contents.name_text(contents.key_labels(key))


def _covered_in_store(view: ServedZone, key: bytes) -> bool:
    """Whether a shorter network of the store covers network (or address) ``key``."""
    reader = view.snapshot.reader
    if reader is None:
        return False
    v4 = key[:1] == keys.V4
    address = key[1:-1]
    for plen in reader.plens4 if v4 else reader.plens6:
        if plen < key[-1] and reader.get(keys.net_key_from(address, plen)) is not None:
            return True
    return False


def _has_entries_inside(reader: Reader, key: bytes) -> bool:
    """Whether store keys other than network ``key`` lie inside it."""
    lo, hi = prefix_range(key[:1], key[1:-1], key[-1])
    return reader.has_range(lo, key) or reader.has_range(key + b"\x00", hi)


def _digit_path(path: contents.Path) -> bool:
    """Whether the top labels read as both IPv4 octets and IPv6 nibbles (all 0-9)."""
    return all(len(label) == 1 and label.isdigit() for label in path[:4])


def _crosses_family(view: ServedZone, key: bytes, path: contents.Path) -> bool:
    """Whether a network of the other family lies at or above ``key``'s node.

    Labels 0-9 are IPv4 octets and IPv6 nibbles at once, so ``*.2`` of 2.0.0.0/8 also
    covers IPv6 names under 2000::/4: the wildcard tree must place both.  IPv6 keys are
    the common case (2001:db8::/64 reads 2.0.0.1...) and are probed exactly; an IPv4
    key all of whose labels are digits is rare, and any IPv6 network makes it non-local.
    """
    if not _digit_path(path):
        return False
    reader = view.snapshot.reader
    config_keys = (*view.compiled.nets.answers, *view.compiled.blocked_nets.answers)
    if key[:1] == keys.V4:
        if reader is not None and any(p < 128 for p in reader.plens6):
            return True
        return any(k[:1] == keys.V6 and k[-1] < 128 for k in config_keys)
    if len(path) < 4:
        return True  # a short IPv6 network could hold IPv4 names below it
    for k in config_keys:
        if k[:1] == keys.V4 and path[: len(key_path(k))] == key_path(k):
            return True
    if reader is None:
        return False
    for plen in reader.plens4:
        if plen >= 32:
            continue
        octets = bytes(int(label) for label in path[: plen // 8])
        if plen % 8 == 0:
            probe = keys.V4 + octets + bytes(4 - len(octets)) + bytes((plen,))
            if reader.get(probe) is not None:
                return True
        else:
            lo = keys.V4 + octets
            if reader.has_range(lo, lo + b"\xff" * (6 - len(lo))):
                return True  # unaligned: anything in that node counts (rare)
    return False


def _view(zone: ServedZone, reader: Reader | None) -> ServedZone:
    """``zone``'s compiled half over ``reader``, a store snapshot of the transfer's own, so
    the transfer sees one serial throughout; StoreError if the store is refused."""
    served = zone.snapshot
    if reader is not None:
        reader.refresh()
        serial = reader.serial
    elif served.refused:
        raise StoreDamaged(f"zone {zone.compiled.origin}: store {zone.compiled.config.store} "
                           "is refused")
    else:
        serial = 0
    snapshot = zone.compiled.snapshot(reader, served.refused, serial)
    return ServedZone.over(zone.compiled, zone.pool, snapshot)


def _soa_rr(zone: ServedZone, serial: int) -> bytes:
    """The zone's SOA record with ``serial``, owned by the apex (the question name)."""
    soa = zone.snapshot.soa
    rdata = soa.rdata[:-20] + serial.to_bytes(4, "big") + soa.rdata[-16:]
    return QUESTION_POINTER + RR_FIXED.pack(T_SOA, CLASS_IN, soa.ttl, len(rdata)) + rdata


def _header_reply(data: bytes, question: bytes, rcode: int) -> bytes:
    ident, flags = HEADER.unpack_from(data)[:2]
    return HEADER.pack(ident, QR | (flags & (OPCODE_MASK | RD)) | rcode, 1, 0, 0, 0) + question


def _header_reply_raw(req: _Request, rcode: int) -> bytes:
    ident, flags = req.header
    wire = HEADER.pack(ident, (flags & ~AA) | rcode, 1, 0, 0, 0) + req.question
    return req.signer.sign(wire) if req.signer is not None else wire
