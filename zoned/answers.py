"""Turning what is known of a token, or a static record, into a packed answer.

The publisher calls this for every token it writes to the store, and the server for
the answers it keeps in memory (overrides, RFC 5782 test entries, static records), so
a token's A and TXT records are built in exactly one place, from the zone's TTL, its
return-code bands and the shared TXT format.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping

import dns.rdatatype

from client import txt
from zoned.config import ZoneConfig
from zoned.packed import Record, pack, txt_rdata
from zoned.wire import T_A, T_TXT
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
            code = config.codes.code_for(float(score))
    records: list[Record] = []
    if code is not None and config.publish_a:
        records.append(Record(T_A, config.ttl, code.packed))
    if fields is not None and config.publish_txt:
        records.append(Record(T_TXT, config.ttl, txt_rdata(txt.encode(fields))))
    return pack(records) if records else None


def static_answers(records: tuple[StaticRecord, ...]) -> dict[str, bytes]:
    """Packed answers of the static records, by relative owner name ('' is the apex)."""
    by_name: dict[str, list[Record]] = {}
    for record in records:
        rtype = int(dns.rdatatype.from_text(record.rtype))
        by_name.setdefault(record.name.lower(), []).append(
            Record(rtype, record.ttl, record.rdata())
        )
    return {name: pack(group) for name, group in by_name.items()}
