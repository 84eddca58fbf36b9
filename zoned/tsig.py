"""TSIG (RFC 8945) for messages zoned builds itself: transfer streams and errors.

dnspython verifies a signed request while parsing it (:func:`parse`); our transfer
replies are hand-built wire, so :class:`Signer` signs them the way RFC 8945 5.3.1
chains the messages of one stream (each MAC covers the previous one), using
dnspython's TSIG primitives for the digest itself.
"""

from __future__ import annotations

import struct
import time
from collections.abc import Callable, Iterable

import dns.exception
import dns.message
import dns.name
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.ANY.TSIG
import dns.tsig

from listformat.wire import FORMERR, HEADER, NOTAUTH, OPCODE_MASK, QR, RD
from zoned.access import TsigKey
from zoned.errors import ZonedError

FUDGE = 300  # seconds of clock skew accepted, as RFC 8945 10 recommends
_TSIG_FIXED = struct.Struct("!HHIH")

# TSIG error codes (RFC 8945 3).
BADSIG = 16
BADKEY = 17
BADTIME = 18

Keyring = dict[dns.name.Name, dns.tsig.Key]


class TsigRejected(ZonedError):
    """A signed request failed verification; ``error`` is the TSIG error to report."""

    def __init__(self, error: int, reason: str) -> None:
        super().__init__(reason)
        self.error = error


def dns_key(key: TsigKey) -> dns.tsig.Key:
    return dns.tsig.Key(dns.name.from_text(key.name), key.secret, key.algorithm)


def keyring(keys: Iterable[TsigKey]) -> Keyring:
    """The keys by owner name; the same name with two secrets is a configuration error."""
    ring: Keyring = {}
    for key in keys:
        dk = dns_key(key)
        ring[dk.name] = dk
    return ring


# What dnspython raises for input it rejects: every fault of the wire (short header,
# bad pointer or label, trailing junk, OPT or TSIG misplaced) is a DNSException, and an
# RDATA that fails to parse, whatever the rdtype's code raised, is wrapped in FormError
# (dns.rdata.from_wire_parser).  Anything else out of parse() is a bug, not the client's.
MALFORMED = dns.exception.DNSException


def parse(data: bytes, ring: Keyring) -> dns.message.Message:
    """The request, its TSIG verified when it has one; TsigRejected if that fails.

    Other parse errors propagate as dnspython raises them: :data:`MALFORMED` for the
    client's faults (the caller answers FORMERR).
    """
    try:
        return dns.message.from_wire(data, keyring=ring)
    except dns.message.UnknownTSIGKey as exc:
        raise TsigRejected(BADKEY, f"unknown TSIG key ({exc})") from exc
    except dns.tsig.BadTime as exc:
        raise TsigRejected(BADTIME, "TSIG time outside the fudge window") from exc
    except (dns.tsig.BadSignature, dns.tsig.BadAlgorithm, dns.tsig.BadKey) as exc:
        raise TsigRejected(BADSIG, f"bad TSIG signature ({exc})") from exc


def _tsig_rr(owner: dns.name.Name, rdata: dns.rdtypes.ANY.TSIG.TSIG) -> bytes:
    body: bytes = rdata.to_wire() or b""
    name: bytes = owner.to_wire() or b""
    return (
        name
        + _TSIG_FIXED.pack(dns.rdatatype.TSIG, dns.rdataclass.ANY, 0, len(body))
        + body
    )


def _with_additional(wire: bytes, rr: bytes) -> bytes:
    """``wire`` with one more additional record appended and counted."""
    arcount: int = HEADER.unpack_from(wire)[5]
    return wire[:10] + (arcount + 1).to_bytes(2, "big") + wire[12:] + rr


class Signer:
    """Signs the messages of one reply stream with the request's key.

    The first MAC covers the request's MAC; each later one covers the previous MAC and
    only the timers (RFC 8945 5.3.1), which dnspython's ``multi`` digest implements.
    """

    def __init__(
        self,
        key: dns.tsig.Key,
        request_mac: bytes,
        original_id: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.key = key
        self.request_mac = request_mac
        self.original_id = original_id
        self.clock = clock
        self._ctx: object = None

    def sign(self, wire: bytes) -> bytes:
        """``wire`` (a complete message, without TSIG) with its TSIG record appended."""
        template = dns.rdtypes.ANY.TSIG.TSIG(  # type: ignore[no-untyped-call]
            dns.rdataclass.ANY, dns.rdatatype.TSIG, self.key.algorithm, 0, FUDGE, b"",
            self.original_id, 0, b"",
        )
        rdata, self._ctx = dns.tsig.sign(  # type: ignore[no-untyped-call]
            wire, self.key, template, int(self.clock()), self.request_mac, self._ctx,
            multi=True,
        )
        return _with_additional(wire, _tsig_rr(self.key.name, rdata))


def rejection(data: bytes, rejected: TsigRejected, clock: Callable[[], float] = time.time) -> bytes:
    """NOTAUTH with an unsigned TSIG that carries the error (RFC 8945 5.3.2)."""
    ident, flags = HEADER.unpack_from(data)[:2]
    # Parse again without verifying, for the question, the key name and the algorithm.
    # dnspython verifies the TSIG before it looks past it: junk after the TSIG (or any
    # fault the first parse did not reach) makes the request malformed after all.
    try:
        request = dns.message.from_wire(data, keyring=lambda _message, _name: False)
    except MALFORMED:
        return HEADER.pack(ident, QR | (flags & (OPCODE_MASK | RD)) | FORMERR, 0, 0, 0, 0)
    question = request.question[0] if len(request.question) == 1 else None
    header = HEADER.pack(ident, QR | (flags & 0x7800) | NOTAUTH, int(question is not None), 0, 0, 0)
    wire = header
    if question is not None:
        qname: bytes = question.name.to_wire() or b""
        wire += qname + struct.pack("!HH", question.rdtype, question.rdclass)
    if request.tsig is None:
        return wire
    tsig = request.tsig[0]
    rdata = dns.rdtypes.ANY.TSIG.TSIG(  # type: ignore[no-untyped-call]
        dns.rdataclass.ANY, dns.rdatatype.TSIG, tsig.algorithm, int(clock()), FUDGE, b"",
        ident, rejected.error, b"",
    )
    return _with_additional(wire, _tsig_rr(request.tsig.name, rdata))
