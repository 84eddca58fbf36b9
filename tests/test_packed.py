"""The packed-answer format's views: RRsets, joined back, and records without owners."""

from __future__ import annotations

import struct

from zoned.packed import Record, join_rrsets, ownerless, pack, rrsets, txt_rdata, unpack

RECORDS = [
    Record(1, 300, bytes([127, 0, 0, 2])),
    Record(16, 300, txt_rdata(b"v=1;n=5")),
    Record(1, 300, bytes([127, 0, 0, 3])),
    Record(16, 300, b"\xc0\x0c" + txt_rdata(b"x")[1:]),  # a pointer's bytes inside RDATA
]


def test_join_rrsets_is_the_inverse_of_rrsets() -> None:
    packed = pack(RECORDS)
    assert join_rrsets(rrsets(packed)) == packed


def test_ownerless_records_are_the_wire_records_after_the_owner_pointer() -> None:
    """Each record's type, class, TTL, length and RDATA, ready for another owner name."""
    packed = pack(RECORDS)
    records = list(ownerless(packed))
    assert [rtype for rtype, _ in records] == [r.rtype for r in unpack(packed)]
    for (rtype, wire), record in zip(records, unpack(packed), strict=True):
        assert wire == struct.pack("!HHIH", rtype, 1, record.ttl, len(record.rdata)) + record.rdata
