"""Turning what is known of a token, or a static record, into a packed answer.

The publisher calls this for every token it writes to the store, and the server for
the answers it keeps in memory (overrides, RFC 5782 test entries, static records), so
a token's A and TXT records are built in exactly one place, from the zone's TTL, its
return-code bands and the shared TXT format.
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Mapping

import dns.rdatatype

from listformat import txt
from listformat.codes import ReturnCodes
from listformat.wire import T_A, T_TXT
from zoned.config import ZoneConfig
from zoned.packed import Record, pack, single, txt_rdata
from zoned.zonerecords import StaticRecord

Fields = Mapping[str, int | float | str]


def token_answer(
    config: ZoneConfig, fields: Fields | None, code: ipaddress.IPv4Address | None = None
) -> bytes | None:
    """Packed A and TXT records for a token; None when the zone would publish nothing.

    Without an explicit ``code`` the A record comes from the score ``sc`` through the
    zone's bands; a score in the neutral band publishes the TXT data alone.
    """
    if code is None and fields is not None:
        score = fields.get("sc")
        if isinstance(score, int | float):
            code = _code_for(config.codes, float(score))
    answer = b""
    if code is not None and config.publish_a:
        answer = _a_rrset(config.ttl, code)
    if fields is not None and config.publish_txt:
        answer += single(T_TXT, config.ttl, txt_rdata(txt.encode(fields)))
    return answer or None


_CODE_CACHES: dict[int, tuple[ReturnCodes, dict[float, ipaddress.IPv4Address | None]]] = {}


def _code_for(codes: ReturnCodes, score: float) -> ipaddress.IPv4Address | None:
    """Band lookup, memoised per band set: published scores are rounded, so few distinct
    values occur (keyed by identity: hashing the frozen band set costs more than a lookup)."""
    entry = _CODE_CACHES.get(id(codes))
    if entry is None or entry[0] is not codes:
        entry = _CODE_CACHES[id(codes)] = (codes, {})
    cache = entry[1]
    code = cache.get(score, _MISSING)
    if code is _MISSING:
        if len(cache) > 65536:
            cache.clear()
        code = cache[score] = codes.code_for(score)
    return code  # type: ignore[return-value]


_MISSING = object()


@functools.lru_cache(maxsize=1024)
def _a_rrset(ttl: int, code: ipaddress.IPv4Address) -> bytes:
    return single(T_A, ttl, code.packed)


def static_answers(records: tuple[StaticRecord, ...]) -> dict[str, bytes]:
    """Packed answers of the static records, by relative owner name ('' is the apex)."""
    by_name: dict[str, list[Record]] = {}
    for record in records:
        rtype = int(dns.rdatatype.from_text(record.rtype))
        by_name.setdefault(record.name.lower(), []).append(
            Record(rtype, record.ttl, record.rdata())
        )
    return {name: pack(group) for name, group in by_name.items()}
