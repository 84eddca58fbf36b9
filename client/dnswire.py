"""DNS wire format for the client: the TXT query it sends and the reply it reads.

The faces send queries built by :func:`query_wire` and read replies with
:func:`read_reply`: a fast path for the common reply (TXT answers owned by the question
name, an SOA in authority) that falls back to dnspython's full parser
(:func:`reply_from_message`) for anything else, so both give the same :class:`Reply`
(tests prove it).  Building and parsing with dnspython costs about 100 us a lookup on the
benchmark machine, several times the rest of a lookup.  What a reply means for a token
(hit, nxdomain, ...) is :func:`client.answers.answer_from_reply`'s business.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final

import dns.flags
import dns.message
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.ANY.SOA
import dns.rdtypes.ANY.TXT

from client.errors import ClientError
from listformat.wire import (
    CLASS_IN,
    HEADER,
    OPCODE_MASK,
    OUR_PAYLOAD,
    QR,
    RD,
    RR_FIXED,
    T_OPT,
    T_SOA,
    T_TXT,
    TC,
)

_U32 = struct.Struct("!I")
# The OPT pseudo-RR: root owner, type 41, our buffer size, extended rcode 0, version 0,
# no flags, no options (RFC 6891).  1232 bytes fits unfragmented over any path (DNS
# flag day 2020), and the TXT answers of a list are far smaller.
_OPT = b"\x00" + struct.pack("!HHIH", T_OPT, OUR_PAYLOAD, 0, 0)

_LENGTHS = [bytes((n,)) for n in range(64)]  # the length octet of a label
_TXT_IN = struct.pack("!HH", T_TXT, CLASS_IN)

RCODE_STATUS: Final = MappingProxyType({2: "servfail", 3: "nxdomain", 5: "refused"})


def question_wire(qname: str, rdtype: int = T_TXT) -> bytes:
    """The question section for ``qname`` (lowercase), class IN; raises ValueError."""
    labels = qname.rstrip(".").lower().encode("ascii").split(b".")
    for label in labels:
        if not 0 < len(label) <= 63:
            raise ValueError(f"{qname!r}: empty or over-long label")
    out = b"".join([_LENGTHS[len(label)] + label for label in labels])
    if len(out) + 1 > 255:
        raise ValueError(f"{qname!r} is over 255 bytes on the wire")
    return out + b"\x00" + (_TXT_IN if rdtype == T_TXT else struct.pack("!HH", rdtype, CLASS_IN))


def query_wire(qid: int, question: bytes) -> bytes:
    """A complete query: header (RD set, so a resolver recurses), question, EDNS0 OPT."""
    return HEADER.pack(qid, RD, 1, 0, 0, 1) + question + _OPT


def response_matches(wire: bytes, qid: int, question: bytes) -> bool:
    """Whether ``wire`` is a response to our query: same ID, QR set, same question.

    A datagram that fails this is someone else's (late, spoofed): ignore it and keep
    waiting, as RFC 5452 section 9.1 asks.  The name's case may differ (0x20 or a
    server that preserves the case it was asked with).
    """
    end = 12 + len(question)
    if len(wire) < end or wire[0] != qid >> 8 or wire[1] != qid & 0xFF:
        return False
    if not wire[2] & 0x80 or wire[4:6] != b"\x00\x01":
        return False
    return wire[12:end].lower() == question


@dataclass(frozen=True)
class Reply:
    """What a DNS response says about our TXT question, whichever parser read it.

    ``texts`` are the TXT records at the question name (each record's strings joined),
    ``ttl`` their RRset's TTL, ``soa`` the (TTL, MINIMUM) of the first SOA in authority.
    """

    rcode: int
    texts: tuple[bytes, ...] = ()
    ttl: int | None = None
    soa: tuple[int, int] | None = None
    truncated: bool = False


class _Fallback(Exception):
    """The fast reader met something it leaves to dnspython."""


def _skip_name(wire: bytes, pos: int) -> int:
    while True:
        length = wire[pos]
        if length == 0:
            return pos + 1
        if length & 0xC0 == 0xC0:
            return pos + 2
        if length & 0xC0:
            raise _Fallback
        pos += 1 + length


def _fast_reply(wire: bytes, question: bytes) -> Reply:
    """The common reply read by hand; raises _Fallback (or IndexError, struct.error)."""
    _, flags, qdcount, ancount, nscount, arcount = HEADER.unpack_from(wire)
    if qdcount != 1 or flags & OPCODE_MASK or not flags & QR:
        raise _Fallback
    pos = 12 + len(question)
    if wire[12:pos].lower() != question:
        raise _Fallback
    texts: list[bytes] = []
    ttl: int | None = None
    for _ in range(ancount):
        if wire[pos : pos + 2] != b"\xc0\x0c":
            raise _Fallback  # an owner other than the question name: CNAME chains...
        rtype, rclass, rttl, rdlen = RR_FIXED.unpack_from(wire, pos + 2)
        pos += 12
        end = pos + rdlen
        if rtype != T_TXT or rclass != CLASS_IN or end > len(wire) or rdlen == 0:
            raise _Fallback
        strings = []
        while pos < end:
            length = wire[pos]
            if pos + 1 + length > end:
                raise _Fallback
            strings.append(wire[pos + 1 : pos + 1 + length])
            pos += 1 + length
        text = b"".join(strings)
        if text not in texts:  # an RRset is a set (RFC 2181 section 5)
            texts.append(text)
        ttl = rttl if ttl is None else min(ttl, rttl)
    soa: tuple[int, int] | None = None
    for _ in range(nscount):
        pos = _skip_name(wire, pos)
        rtype, rclass, rttl, rdlen = RR_FIXED.unpack_from(wire, pos)
        pos += 10
        end = pos + rdlen
        if end > len(wire):
            raise _Fallback
        if rtype == T_SOA:
            # MNAME and RNAME, then exactly SERIAL REFRESH RETRY EXPIRE MINIMUM.
            if _skip_name(wire, _skip_name(wire, pos)) + 20 != end:
                raise _Fallback
            if soa is None:
                soa = (rttl, _U32.unpack_from(wire, end - 4)[0])
        pos = end
    for _ in range(arcount):
        pos = _skip_name(wire, pos)
        rtype, _, rttl, rdlen = RR_FIXED.unpack_from(wire, pos)
        if rtype == T_OPT and rttl >> 24:
            raise _Fallback  # an extended rcode: let dnspython combine it
        pos += 10 + rdlen
    if pos != len(wire):
        raise _Fallback
    return Reply(flags & 0xF, tuple(texts), ttl, soa, bool(flags & TC))


def reply_from_message(message: dns.message.Message) -> Reply:
    """The full path: a parsed dnspython message, CNAME chains followed within it."""
    if not message.question:
        return Reply(message.rcode(), truncated=bool(message.flags & dns.flags.TC))
    name = message.question[0].name
    for _ in range(16):  # a CNAME chain the server included (RFC 1034 section 3.6.2)
        cname = message.get_rrset(
            message.answer, name, dns.rdataclass.IN, dns.rdatatype.CNAME
        )
        if cname is None:
            break
        name = cname[0].target
    texts: list[bytes] = []
    ttl: int | None = None
    rrset = message.get_rrset(message.answer, name, dns.rdataclass.IN, dns.rdatatype.TXT)
    if rrset is not None:
        ttl = rrset.ttl
        for rdata in rrset:
            assert isinstance(rdata, dns.rdtypes.ANY.TXT.TXT)
            text = b"".join(rdata.strings)
            if text not in texts:
                texts.append(text)
    soa: tuple[int, int] | None = None
    for auth in message.authority:
        if auth.rdtype == dns.rdatatype.SOA and len(auth):
            first = auth[0]
            assert isinstance(first, dns.rdtypes.ANY.SOA.SOA)
            soa = (auth.ttl, first.minimum)
            break
    return Reply(
        message.rcode(), tuple(texts), ttl, soa, bool(message.flags & dns.flags.TC)
    )


class ReplyError(ClientError, ValueError):
    """The response cannot be parsed at all."""


def read_reply(wire: bytes, question: bytes) -> Reply:
    """Read a response to ``question``: the fast path, else dnspython's full parser.

    Raises ReplyError when the bytes are not a DNS message.
    """
    try:
        return _fast_reply(wire, question)
    except (_Fallback, IndexError, struct.error):
        pass
    try:
        message = dns.message.from_wire(wire, ignore_trailing=False)
    except Exception as exc:  # hostile bytes: whatever dnspython's parser trips on
        raise ReplyError(f"unparseable response: {exc}") from None
    return reply_from_message(message)
