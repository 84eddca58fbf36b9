"""The fast path: answer the common query from precomputed bytes.

A reputation zone's traffic is almost entirely one shape: one question, class IN,
maybe an EDNS OPT record, asking A or TXT (or ANY) for a token under a served zone.
For that shape (:class:`~zoned.kinds.Query`, read from the header and the question by
:func:`~zoned.kinds.classify`) we splice the answer from the store's precomputed RRs.
Anything else -- and anything we are not sure of -- is declined
(:data:`~zoned.kinds.OTHER`) and goes to the full path, which must produce the same
bytes; a test runs a large generated query set through both to prove it.
"""

from __future__ import annotations

from listformat.wire import (
    AA,
    CLASS_IN,
    HEADER,
    OUR_PAYLOAD,
    RR_FIXED,
    T_A,
    T_AAAA,
    T_SOA,
    T_TXT,
    TC,
)
from zoned.authority import Authority
from zoned.kinds import DROP, OTHER, Kind, Query
from zoned.reply import policy
from zoned.wire import Compressor
from zoned.zone import ServedZone

# Our OPT RR (root owner, type 41, our payload, version 0), with and without DO.
_OPT_HEAD = b"\x00\x00\x29" + OUR_PAYLOAD.to_bytes(2, "big") + b"\x00\x00"
_OPT_NO_DO = _OPT_HEAD + b"\x00\x00\x00\x00"
_OPT_DO = _OPT_HEAD + b"\x80\x00\x00\x00"

# Question types the fast path answers; the rest (meta types, transfers) take the full path.
FAST_QTYPES = frozenset({1, 2, 5, 6, 12, 15, 16, 28, 33, 64, 65, 99, 255, 257})
# Answer types whose RDATA holds no names, so no compression can differ.
_SPLICEABLE = frozenset({0, T_A, T_AAAA, T_TXT})


class FastPath:
    """Per-server state of the fast path: the authority and a cache of negative SOAs."""

    def __init__(self, authority: Authority) -> None:
        self.authority = authority
        self._soa_cache: dict[tuple[int, int], bytes] = {}

    def clear(self) -> None:
        """Forget cached SOA bytes (their serial changed)."""
        self._soa_cache.clear()

    def answer(
        self, query: Query, data: bytes, tcp: bool, peer: str | None = None
    ) -> bytes | Kind:
        """The reply to ``query`` (read from ``data``); :data:`~zoned.kinds.DROP` to send
        nothing, :data:`~zoned.kinds.OTHER` when the full path must decide."""
        ident, flags, labels, qtype, pos, qend, payload, ednsflags = query
        if qtype not in FAST_QTYPES:
            return OTHER
        rflags, limit, our_edns = policy(flags, tcp, payload, ednsflags)
        opt = b"" if our_edns is None else _OPT_DO if our_edns else _OPT_NO_DO

        outcome = self.authority.resolve(labels, qtype, peer)
        if outcome is DROP:
            return DROP
        rcode, zone, answer_type, count, answer, negative = outcome
        if answer_type not in _SPLICEABLE:
            return OTHER
        rflags |= rcode
        authority = b""
        nscount = 0
        if zone is not None:
            rflags |= AA
            if negative:
                authority = self._negative_soa(zone, data, pos - zone.compiled.wire_length)
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
        if not zone.compiled.soa_names_in_zone:
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
        compressor.write(out, zone.compiled.labels)
        soa = zone.snapshot.negative_soa
        fixed = len(out)
        out += b"\x00" * 10
        rdata_start = len(out)
        mname, rname = zone.compiled.soa_names
        compressor.write(out, mname)
        compressor.write(out, rname)
        out += soa.rdata[-20:]
        RR_FIXED.pack_into(out, fixed, T_SOA, CLASS_IN, soa.ttl, len(out) - rdata_start)
        result = bytes(out[start:])
        if not zone.compiled.soa_names_in_zone:
            if len(self._soa_cache) > 4096:
                self._soa_cache.clear()
            self._soa_cache[key] = result
        return result

