"""The full path: any query, parsed and rendered by dnspython.

Everything the fast path declines comes here: malformed messages, other opcodes, EDNS
versions and options, meta query types, apex records with names in their RDATA.  The
answer itself comes from :mod:`zoned.authority` and the header, size limit and OPT
from :func:`zoned.reply.policy`; what is decided here is what a message must be before
it is answered at all: its TSIG verified (a failure is NOTAUTH, RFC 8945 5.2), opcode
QUERY (else NOTIMP), one question (else FORMERR), EDNS version 0 (else BADVERS, RFC
6891 6.1.3), a type one may ask for (OPT, TSIG and TKEY are FORMERR, MAILA and MAILB
NOTIMP), class IN and no transfer type (else REFUSED: a transfer request comes here only
when :func:`zoned.kinds.classify` could not read its question).

dnspython was chosen over dnslib for this path: it is stricter on malformed input
(typed exceptions for every fault, all under ``dns.exception.DNSException``: it wraps
whatever an RDATA or EDNS option parser raises in ``FormError``), renders with name
compression and a size limit, and is the library the client side and the tests use.
Only the parse is guarded, and only against :data:`zoned.tsig.MALFORMED`: that is the
client's fault, FORMERR.  Any other exception here is a bug of ours; it reaches
:class:`~zoned.core.Responder`, which answers SERVFAIL, counts it and logs it.
"""

from __future__ import annotations

import logging
from typing import Literal

import dns.exception
import dns.message
import dns.name
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rrset

from listformat.wire import (
    AA,
    BADVERS,
    CLASS_IN,
    FORMERR,
    HEADER,
    NOTIMP,
    OPCODE_MASK,
    OPCODE_QUERY,
    OPCODE_SHIFT,
    OUR_PAYLOAD,
    QR,
    RD,
    REFUSED,
    RR_FIXED,
    T_AXFR,
    T_IXFR,
    T_MAILA,
    T_MAILB,
    T_SOA,
    TC,
)
from zoned import tsig
from zoned.authority import Authority, Outcome
from zoned.kinds import DROP, Kind
from zoned.ratelog import limited
from zoned.reply import policy

# Types that cannot be asked for (RFC 6891 6.1.1: OPT; RFC 8945: TSIG; RFC 2930: TKEY).
_FORMERR_QTYPES = frozenset({41, 249, 250})
_NOTIMP_QTYPES = frozenset({T_MAILA, T_MAILB})
_TRANSFER_QTYPES = frozenset({T_AXFR, T_IXFR})

log = logging.getLogger(__name__)


def header_only(data: bytes, rcode: int) -> bytes:
    """A reply of just a header: for a message whose question cannot be trusted."""
    ident, flags = HEADER.unpack_from(data)[:2]
    return HEADER.pack(ident, QR | (flags & (OPCODE_MASK | RD)) | rcode, 0, 0, 0, 0)


class FullPath:
    """Answers any message with dnspython; stateless apart from the authority."""

    def __init__(self, authority: Authority) -> None:
        self.authority = authority
        # Secondaries sign their SOA queries with the transfer key (Knot does before every
        # refresh); such a query is verified, and its answer signed (RFC 8945 5.2, 5.3).
        self.ring = authority.keyring

    def answer(
        self, data: bytes, tcp: bool, peer: str | None = None
    ) -> bytes | Literal[Kind.DROP]:
        """The reply to ``data`` (a message not of kind :data:`~zoned.kinds.DROP`: it has a
        header and is no response); DROP when nothing is to be sent."""
        flags = HEADER.unpack_from(data)[1]
        try:
            query = tsig.parse(data, self.ring)
        except tsig.TsigRejected as exc:
            limited(log, "tsig-rejected", logging.INFO, "query from %s rejected: %s", peer, exc)
            return tsig.rejection(data, exc)
        except tsig.MALFORMED:
            # The client's fault: the parser rejected the message.  Anything else raised
            # here is ours and reaches the responder, which answers SERVFAIL.
            return header_only(data, FORMERR)
        opcode = (flags & OPCODE_MASK) >> OPCODE_SHIFT
        if opcode != OPCODE_QUERY:
            return self._reply(query, data, tcp, NOTIMP)
        if len(query.question) != 1:
            return self._reply(query, data, tcp, FORMERR)
        if query.edns > 0:
            return self._reply(query, data, tcp, BADVERS)  # RFC 6891 6.1.3
        question = query.question[0]
        qtype = question.rdtype
        if qtype in _FORMERR_QTYPES:
            return self._reply(query, data, tcp, FORMERR)
        if qtype in _NOTIMP_QTYPES:
            return self._reply(query, data, tcp, NOTIMP)
        if question.rdclass != CLASS_IN or qtype in _TRANSFER_QTYPES:
            return self._reply(query, data, tcp, REFUSED)
        labels = tuple(label.lower() for label in question.name.labels[:-1])
        outcome = self.authority.resolve(labels, qtype, peer)
        if outcome is DROP:
            return DROP
        return self._reply(query, data, tcp, outcome.rcode, outcome)

    def _reply(
        self,
        query: dns.message.Message,
        data: bytes,
        tcp: bool,
        rcode: int,
        outcome: Outcome | None = None,
    ) -> bytes:
        response = dns.message.Message(id=query.id)
        if query.had_tsig and query.keyname is not None:
            key = self.ring[query.keyname]
            response.use_tsig(key, query.keyname, algorithm=key.algorithm)
            response.request_mac = query.mac or b""
        flags = HEADER.unpack_from(data)[1]
        payload = query.payload if query.edns >= 0 else None
        response.flags, limit, our_edns = policy(flags, tcp, payload, query.ednsflags)
        if our_edns is not None:
            response.use_edns(0, our_edns, OUR_PAYLOAD)
        response.set_rcode(dns.rcode.Rcode.make(rcode))  # after EDNS: it holds the high bits
        if rcode != FORMERR or len(query.question) == 1:
            response.question = list(query.question)
        if outcome is not None and outcome.zone is not None:
            response.flags |= AA
            zone = outcome.zone
            qname = query.question[0].name
            if outcome.answer_count:
                response.answer.append(_rrset(qname, outcome.answer_type, outcome.answer))
            if outcome.negative:
                soa = zone.snapshot.negative_soa
                apex = dns.name.Name(zone.compiled.labels + (b"",))
                rrset = dns.rrset.RRset(apex, dns.rdataclass.IN, dns.rdatatype.SOA)
                rrset.add(_rdata(T_SOA, soa.rdata), soa.ttl)
                response.authority.append(rrset)
        try:
            return response.to_wire(max_size=limit, want_shuffle=False)
        except dns.exception.TooBig:
            # RFC 2181 9: set TC and send no partial RRsets; the client retries over TCP.
            response.answer = []
            response.authority = []
            response.additional = []
            response.flags |= TC
            return response.to_wire(max_size=limit, want_shuffle=False)


def _rdata(rtype: int, rdata: bytes) -> dns.rdata.Rdata:
    return dns.rdata.from_wire(
        dns.rdataclass.IN, dns.rdatatype.RdataType.make(rtype), rdata, 0, len(rdata)
    )


def _rrset(owner: dns.name.Name, rtype: int, wire: bytes) -> dns.rrset.RRset:
    """An RRset from packed wire RRs (owner pointer, fixed fields, RDATA)."""
    rrset = dns.rrset.RRset(owner, dns.rdataclass.IN, dns.rdatatype.RdataType.make(rtype))
    pos = 0
    while pos < len(wire):
        _, _, ttl, rdlen = RR_FIXED.unpack_from(wire, pos + 2)
        rrset.add(_rdata(rtype, wire[pos + 12 : pos + 12 + rdlen]), ttl)
        pos += 12 + rdlen
    return rrset

