"""The fast path: answer the common query from precomputed bytes.

A reputation zone's traffic is almost entirely one shape: one question, class IN,
maybe an EDNS OPT record, asking A or TXT (or ANY) for a token under a served zone.
For that shape we parse only the header and the question, and splice the answer from
the store's precomputed RRs.  Anything else -- and anything we are not sure of --
returns None and goes to the full path, which must produce the same bytes; a test
runs a large generated query set through both to prove it.
"""

from __future__ import annotations

from zoned.authority import DROP, Authority
from zoned.wire import (
    AA,
    CD,
    CLASS_IN,
    EDNS_DO,
    HEADER,
    MAX_TCP,
    MIN_UDP,
    OUR_PAYLOAD,
    RD,
    RR_FIXED,
    T_A,
    T_AAAA,
    T_OPT,
    T_SOA,
    T_TXT,
    TC,
    Compressor,
)
from zoned.zone import ServedZone

QR = 0x8000
_OPT_HEAD = b"\x00\x00\x29" + OUR_PAYLOAD.to_bytes(2, "big") + b"\x00\x00"
_OPT_NO_DO = _OPT_HEAD + b"\x00\x00\x00\x00"
_OPT_DO = _OPT_HEAD + b"\x80\x00\x00\x00"

# Question types the fast path answers; the rest (meta types, transfers) take the full path.
FAST_QTYPES = frozenset({1, 2, 5, 6, 12, 15, 16, 28, 33, 64, 65, 99, 255, 257})
# Answer types whose RDATA holds no names, so no compression can differ.
_SPLICEABLE = frozenset({0, T_A, T_AAAA, T_TXT})
# EDNS options we accept unparsed (RFC 6891 6.1.2: unknown options are ignored) and the
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


class FastPath:
    """Per-server state of the fast path: the authority and a cache of negative SOAs."""

    def __init__(self, authority: Authority) -> None:
        self.authority = authority
        self._soa_cache: dict[tuple[int, int], bytes] = {}

    def clear(self) -> None:
        """Forget cached SOA bytes (their serial changed)."""
        self._soa_cache.clear()

    def answer(self, data: bytes, tcp: bool, peer: str | None = None) -> bytes | None:
        """The reply to ``data``, or None when the full path must decide; b"" to drop it."""
        n = len(data)
        if n < 17:
            return None
        ident, flags, qdcount, ancount, nscount, arcount = HEADER.unpack_from(data)
        if flags & 0xF800 or qdcount != 1 or ancount or nscount or arcount > 1:
            return None
        # The question name: plain labels only, lowercased in one go (length bytes are
        # all below 64, so lower() leaves them alone).
        pos = 12
        lowered = data[12:267].lower()
        labels: list[bytes] = []
        append = labels.append
        try:
            while length := data[pos]:
                if length > 63:
                    return None  # a compression pointer or a reserved label type
                append(lowered[pos - 11 : pos - 11 + length])
                pos += length + 1
        except IndexError:
            return None  # the name runs past the end
        qend = pos + 5
        if qend > n or pos - 12 > 254:
            return None
        qtype = data[pos + 1] << 8 | data[pos + 2]
        if qtype not in FAST_QTYPES or data[pos + 3] != 0 or data[pos + 4] != CLASS_IN:
            return None
        if arcount:
            # One OPT RR: root owner, type 41, version 0, well-formed options.
            if qend + 11 > n or data[qend] != 0:
                return None
            otype, payload, ttl, rdlen = RR_FIXED.unpack_from(data, qend + 1)
            end = qend + 11 + rdlen
            if otype != T_OPT or ttl & 0xFFFF0000 or end != n:
                return None  # not OPT, an extended rcode or version other than 0, or junk
            if rdlen and not _options_ok(data, qend + 11, end):
                return None
            ednsflags = ttl
            opt = _OPT_DO if ednsflags & EDNS_DO else _OPT_NO_DO
            limit = MAX_TCP if tcp else max(MIN_UDP, min(payload, OUR_PAYLOAD))
        else:
            if qend != n:
                return None
            opt = b""
            limit = MAX_TCP if tcp else MIN_UDP

        rcode, zone, answer_type, count, answer, negative = self.authority.resolve(
            tuple(labels), qtype, peer
        )
        if rcode == DROP:
            return b""
        if answer_type not in _SPLICEABLE:
            return None
        rflags = QR | (flags & (RD | CD)) | rcode
        authority = b""
        nscount = 0
        if zone is not None:
            rflags |= AA
            if negative:
                authority = self._negative_soa(zone, data, pos - zone.wire_length)
                nscount = 1
        question = data[12:qend]
        reply = b"".join((
            HEADER.pack(ident, rflags, 1, count, nscount, 1 if opt else 0),
            question,
            answer,
            authority,
            opt,
        ))
        if len(reply) > limit:
            # Does not fit: TC and no records; the client retries over TCP (RFC 2181 9).
            reply = HEADER.pack(ident, rflags | TC, 1, 0, 0, 1 if opt else 0) + question + opt
        return reply

    def _negative_soa(self, zone: ServedZone, data: bytes, apex_offset: int) -> bytes:
        """The authority-section SOA, compressed against this question as dnspython would."""
        key = (id(zone), apex_offset)
        if not zone.soa_names_in_zone:
            cached = self._soa_cache.get(key)
            if cached is not None:
                return cached
        # Rebuild with the question's own letters: pointers only carry offsets, but the
        # table must see the same suffixes the renderer saw.
        question = []
        pos = 12
        while data[pos]:
            question.append(data[pos + 1 : pos + 1 + data[pos]])
            pos += data[pos] + 1
        out = bytearray(12)
        compressor = Compressor()
        compressor.write(out, question)
        out += b"\x00" * 4
        start = len(out)
        compressor.write(out, zone.labels)
        soa = zone.negative_soa
        fixed = len(out)
        out += b"\x00" * 10
        rdata_start = len(out)
        mname, rname = zone.soa_names
        compressor.write(out, mname)
        compressor.write(out, rname)
        out += soa.rdata[-20:]
        RR_FIXED.pack_into(out, fixed, T_SOA, CLASS_IN, soa.ttl, len(out) - rdata_start)
        result = bytes(out[start:])
        if not zone.soa_names_in_zone:
            if len(self._soa_cache) > 4096:
                self._soa_cache.clear()
            self._soa_cache[key] = result
        return result

