"""What kind of message this is, read once from the header and the question.

Every message the server receives is one of four kinds, and :func:`classify` tells
which from the header and the question alone, without a DNS library:

- :data:`DROP`: too short to hold a header, or a response (QR set).  Never answered:
  answering responses is how reflection loops start.
- :class:`Transfer`: one question asking AXFR or IXFR (whatever the opcode: the
  transfer code refuses the others itself).  :mod:`zoned.transfer` parses it properly.
- :class:`Query`: an ordinary query of the common shape: opcode QUERY, one question of
  plain labels in class IN, no records but at most one OPT of EDNS version 0 carrying
  only options known to be well-formed.  The fast path reads it from these fields.
- :data:`OTHER`: anything else (other opcodes, EDNS versions and options, malformed
  messages, several questions).  The full path parses it with dnspython and decides.

The :class:`Kind` members double as the answer paths' "no bytes" outcomes: ``DROP``
for "send nothing" (a private zone's ``denied: drop``), ``OTHER`` for "the fast path
cannot answer this one; the full path decides".
"""

from __future__ import annotations

from enum import Enum
from typing import Final, NamedTuple

from listformat.wire import CLASS_IN, HEADER, OPCODE_MASK, QR, RR_FIXED, T_AXFR, T_IXFR, T_OPT

_QR_HIGH = QR >> 8  # QR in the header's third byte


class Kind(Enum):
    """The kinds of message that carry nothing the paths need beyond the bytes."""

    DROP = "drop"
    OTHER = "other"


DROP: Final = Kind.DROP
OTHER: Final = Kind.OTHER


class Transfer(NamedTuple):
    """An AXFR or IXFR request; its question ends at ``qend``."""

    qend: int


class Query(NamedTuple):
    """An ordinary query of the common shape, as the fast path needs it.

    A tuple because one is made per query on the hot path.
    """

    ident: int
    flags: int
    labels: tuple[bytes, ...]  # the question name, lowercase, leftmost first
    qtype: int
    name_end: int  # offset of the question name's root label
    qend: int  # offset just past the question
    payload: int | None  # the OPT's UDP payload size; None without an OPT
    ednsflags: int  # the OPT's TTL field (extended rcode, version, flags); 0 without


# EDNS options accepted unparsed (RFC 6891 6.1.2: unknown options are ignored) and the
# lengths dnspython's parser accepts for them, so both paths agree on what is malformed.
_COOKIE = 10
_PADDING = 12


def _options_ok(data: bytes, pos: int, end: int) -> bool:
    while pos < end:
        if pos + 4 > end:
            return False
        code = data[pos] << 8 | data[pos + 1]
        length = data[pos + 2] << 8 | data[pos + 3]
        pos += 4 + length
        if code == _COOKIE:
            if length != 8 and not 16 <= length <= 40:
                return False
        elif code != _PADDING:
            return False
    return pos == end


def drops(data: bytes) -> bool:
    """Whether ``data`` gets no reply at all: no room for a header, or a response."""
    return len(data) < 12 or bool(data[2] & _QR_HIGH)


def classify(data: bytes) -> Query | Transfer | Kind:
    """The kind of message ``data`` is (see the module docstring)."""
    n = len(data)
    if n < 12 or data[2] & _QR_HIGH:  # drops(), inlined: this runs for every datagram
        return DROP
    if n < 17:
        return OTHER
    ident, flags, qdcount, ancount, nscount, arcount = HEADER.unpack_from(data)
    if qdcount != 1:
        return OTHER
    # The question name: plain labels only, lowercased in one go (length bytes are all
    # below 64, so lower() leaves them alone).
    pos = 12
    lowered = data[12:267].lower()
    labels: list[bytes] = []
    append = labels.append
    try:
        while length := data[pos]:
            if length > 63:
                return OTHER  # a compression pointer or a reserved label type
            append(lowered[pos - 11 : pos - 11 + length])
            pos += length + 1
    except IndexError:
        return OTHER  # the name runs past the end
    qend = pos + 5
    if qend > n:
        return OTHER
    qtype = data[pos + 1] << 8 | data[pos + 2]
    if qtype == T_AXFR or qtype == T_IXFR:
        return Transfer(qend)
    if flags & OPCODE_MASK or ancount or nscount or arcount > 1 or pos - 12 > 254:
        return OTHER  # another opcode, records in the query, or a name too long
    if data[pos + 3] != 0 or data[pos + 4] != CLASS_IN:
        return OTHER
    if not arcount:
        if qend != n:
            return OTHER  # junk after the question
        return Query(ident, flags, tuple(labels), qtype, pos, qend, None, 0)
    # One OPT RR: root owner, type 41, version 0, well-formed options, nothing after.
    if qend + 11 > n or data[qend] != 0:
        return OTHER
    otype, payload, ttl, rdlen = RR_FIXED.unpack_from(data, qend + 1)
    end = qend + 11 + rdlen
    if otype != T_OPT or ttl & 0xFFFF0000 or end != n:
        return OTHER  # not OPT, an extended rcode or version other than 0, or junk
    if rdlen and not _options_ok(data, qend + 11, end):
        return OTHER
    return Query(ident, flags, tuple(labels), qtype, pos, qend, payload, ttl)
