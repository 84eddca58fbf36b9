"""Queries captured from real peers, replayed to the core: the replies are golden.

Each vector in tests/vectors/captured.json is a message a peer program sent to zoned on
loopback (how each was captured is in tests/vectors/README.md).  Replayed to the sans-IO
core over zones built the same way every time (fixed serials, see :func:`vector_zones`),
the reply must be byte for byte the one recorded, and say what the assertions below spell
out.  TSIG-signed requests are verified at the time they were signed (the clock is set
back to it); the reply's own TSIG may carry the time of the replay (a transfer stream is
signed with the wall clock), so it is compared apart: the message it signs byte for byte,
the TSIG record by its fields and its MAC verified.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdatatype
import dns.tsig
import pytest

from publisher.entries import entries
from publisher.records import parse_record
from tests.support.publishing import copy_zones
from zoned.config import load_zone_file
from zoned.core import Responder
from zoned.service import build_authority
from zoned.store import ZoneStore
from zoned.zone import ReaderPool

VECTORS = Path(__file__).resolve().parent / "vectors" / "captured.json"
IP = "bl.example.net"
HASH = "hash.example.net"

#: The key the Knot vectors were signed with (the capture's knot.conf and zone files).
SECRET = base64.b64encode(b"repzone-vectors-tsig-key-32bytes").decode()
KEY = dns.tsig.Key("xfr-key.", SECRET, "hmac-sha256")
RING = {KEY.name: KEY}
TRANSFER = f"""
transfer:
  allow: ["127.0.0.0/8"]
  key: xfr-key
keys:
  xfr-key:
    algorithm: hmac-sha256
    secret: "{SECRET}"
"""

#: The two commits of bl.example.net during the capture: Knot took the zone at the
#: first serial by AXFR and asked for an IXFR from it after the second.
FIRST_SERIAL = 1796684210
SECOND_SERIAL = 1796684216
FIRST = [{"token": "192.0.2.11", "n": 50, "sc": 0.93}]
SECOND = [{"token": "192.0.2.12", "n": 50, "sc": 0.55}]


@dataclass(frozen=True)
class Vector:
    name: str
    peer: str
    transport: str  # "udp" or "tcp"
    query: bytes
    signed_at: int | None  # the TSIG time of a signed query
    replies: list[bytes]


def load_vectors() -> list[Vector]:
    return [
        Vector(v["name"], v["peer"], v["transport"], bytes.fromhex(v["query"]),
               v.get("signed_at"), [bytes.fromhex(r) for r in v["replies"]])
        for v in json.loads(VECTORS.read_text())["vectors"]
    ]


def _commit(zones: Path, zone: str, records: list[dict[str, object]], at: int) -> None:
    """Publish ``records`` as one commit whose serial is ``at`` (a store with a fixed clock)."""
    config = load_zone_file(zones / f"{zone}.yaml")
    store = ZoneStore.create_or_open(config.store, "ip" if config.scheme.kind == "ip"
                                     else "name", clock=lambda: float(at))
    try:
        with store.transaction() as txn:
            for i, record in enumerate(records):
                for key, value in entries(config, parse_record(record, f"vector:{i}")):
                    txn.put(key, value)
        assert txn.serial_after == at
    finally:
        store.close()


def vector_zones(base: Path) -> Path:
    """The example zone files, bl.example.net and hash.example.net transferable with the
    key, and bl.example.net's store at :data:`SECOND_SERIAL` with :data:`FIRST_SERIAL`
    in its journal (dom.example.net and hash.example.net serve their static data)."""
    zones = copy_zones(base)
    for zone in (IP, HASH):
        path = zones / f"{zone}.yaml"
        path.write_text(path.read_text() + TRANSFER)
    _commit(zones, IP, FIRST, FIRST_SERIAL)
    _commit(zones, IP, SECOND, SECOND_SERIAL)
    return zones


def replay(responder: Responder, vector: Vector) -> list[bytes]:
    """The core's replies to the vector's query from 127.0.0.1, at its signing time."""
    with pytest.MonkeyPatch.context() as patch:
        if vector.signed_at is not None:
            signed_at = float(vector.signed_at)
            patch.setattr(time, "time", lambda: signed_at)
        if vector.transport == "tcp":
            return list(responder.respond_stream(vector.query, "127.0.0.1"))
        reply = responder.respond(vector.query, False, "127.0.0.1")
        return [] if reply is None else [reply]


def unsigned(reply: bytes) -> tuple[bytes, bytes]:
    """``reply`` split into the message without its TSIG record (counted out) and that record."""
    at = reply.rindex(KEY.name.to_wire() + b"\x00\xfa\x00\xff")
    arcount = int.from_bytes(reply[10:12], "big")
    return reply[:10] + (arcount - 1).to_bytes(2, "big") + reply[12:at], reply[at:]


@pytest.fixture(scope="module")
def core(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Responder]:
    yield Responder(build_authority(vector_zones(tmp_path_factory.mktemp("vectors")),
                                    ReaderPool()))


VECTOR_LIST = load_vectors()
BY_NAME = {vector.name: vector for vector in VECTOR_LIST}


@pytest.mark.parametrize("vector", VECTOR_LIST, ids=[v.name for v in VECTOR_LIST])
def test_each_captured_query_gets_its_golden_reply(core: Responder, vector: Vector) -> None:
    """Byte for byte, but for the reply's TSIG record (its time is the replay's)."""
    replies = replay(core, vector)
    assert len(replies) == len(vector.replies)
    for got, expected in zip(replies, vector.replies, strict=True):
        if vector.signed_at is None:
            assert got.hex() == expected.hex()
        else:
            assert unsigned(got)[0].hex() == unsigned(expected)[0].hex()


def _reply(responder: Responder, name: str) -> dns.message.Message:
    replies = replay(responder, BY_NAME[name])
    assert len(replies) == 1
    return dns.message.from_wire(replies[0])


def test_rspamds_probe_of_an_ip_list_is_nxdomain(core: Responder) -> None:
    """Rspamd's monitor asks 1.0.0.127 (RFC 5782: never listed) and wants NXDOMAIN."""
    query = dns.message.from_wire(BY_NAME["rspamd-probe-ip"].query)
    reply = _reply(core, "rspamd-probe-ip")
    assert query.flags & dns.flags.RD and query.edns == 0 and query.payload == 4096
    assert reply.rcode() == dns.rcode.NXDOMAIN
    assert reply.flags & dns.flags.AA and reply.flags & dns.flags.RD
    assert not reply.flags & dns.flags.RA
    assert reply.answer == []
    assert [r.to_text() for r in reply.authority] == [
        f"{IP}. 60 IN SOA ns1.example.net. hostmaster.example.net. {SECOND_SERIAL} "
        "3600 600 604800 60"]
    assert reply.edns == 0 and not reply.ednsflags & dns.flags.DO


def test_rspamds_probe_of_a_domain_list_is_the_test_entry(core: Responder) -> None:
    """The domain list's probe ``test`` is its RFC 5782 test entry: 127.0.0.2."""
    reply = _reply(core, "rspamd-probe-dom")
    assert reply.rcode() == dns.rcode.NOERROR and reply.flags & dns.flags.AA
    assert [r.to_text() for r in reply.answer] == ["test.dom.example.net. 300 IN A 127.0.0.2"]


def test_unbounds_query_keeps_do_and_cd_and_gets_the_listed_code(core: Responder) -> None:
    """unbound sends CD, EDNS with DO and a 1232 payload; the reply echoes DO and CD."""
    query = dns.message.from_wire(BY_NAME["unbound-listed"].query)
    assert query.flags & dns.flags.CD and not query.flags & dns.flags.RD
    assert query.ednsflags & dns.flags.DO and query.payload == 1232
    assert query.options == ()  # this unbound sends no cookie to its stub
    reply = _reply(core, "unbound-listed")
    assert reply.rcode() == dns.rcode.NOERROR and reply.flags & dns.flags.AA
    assert reply.flags & dns.flags.CD and not reply.flags & dns.flags.RD
    assert reply.ednsflags & dns.flags.DO
    assert [r.to_text() for r in reply.answer] == [f"11.2.0.192.{IP}. 300 IN A 127.0.0.2"]


def test_unbounds_minimised_query_for_an_empty_non_terminal_is_nodata(
        core: Responder) -> None:
    """QNAME minimisation asks 2.0.192 first: a name with names below it, so NODATA."""
    reply = _reply(core, "unbound-minimised")
    assert reply.rcode() == dns.rcode.NOERROR and reply.answer == []
    assert [r.rdtype for r in reply.authority] == [dns.rdatatype.SOA]


def _verified(wire: bytes, request_mac: bytes, ctx: object = None,
              multi: bool = False) -> dns.message.Message:
    """``wire`` parsed with its TSIG verified at the time it says it was signed."""
    signed_at = float(dns.message.from_wire(wire, keyring=lambda _m, _n: False,
                                            multi=multi).tsig[0].time_signed)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(time, "time", lambda: signed_at)
        return dns.message.from_wire(wire, keyring=RING, request_mac=request_mac,
                                     tsig_ctx=ctx, multi=multi, one_rr_per_rrset=True)


def test_knots_signed_soa_check_is_answered_signed(core: Responder) -> None:
    """Knot signs its SOA query before a refresh; the reply is signed with the same key."""
    vector = BY_NAME["knot-soa-tsig"]
    query = _verified(vector.query, b"")
    assert query.had_tsig and query.question[0].rdtype == dns.rdatatype.SOA
    [got] = replay(core, vector)
    reply = _verified(got, query.mac)
    assert reply.rcode() == dns.rcode.NOERROR and reply.flags & dns.flags.AA
    assert reply.had_tsig and reply.tsig[0].error == 0
    assert reply.tsig[0].original_id == query.id
    assert [r.to_text() for r in reply.answer] == [
        f"{IP}. 3600 IN SOA ns1.example.net. hostmaster.example.net. {SECOND_SERIAL} "
        "3600 600 604800 60"]


def test_knots_ixfr_request_gets_the_signed_difference(core: Responder) -> None:
    """Knot asks for the changes since the serial it holds: one difference sequence
    (RFC 1995 4), from FIRST_SERIAL to SECOND_SERIAL, adding 192.0.2.12's records."""
    vector = BY_NAME["knot-ixfr-tsig"]
    query = _verified(vector.query, b"")
    assert query.question[0].rdtype == dns.rdatatype.IXFR
    assert query.authority[0][0].serial == FIRST_SERIAL
    replies = replay(core, vector)
    mac, ctx, records = query.mac, None, []
    for i, wire in enumerate(replies):
        message = _verified(wire, mac, ctx, multi=i > 0)
        assert message.rcode() == dns.rcode.NOERROR and message.had_tsig
        mac, ctx = message.mac, message.tsig_ctx
        records += [r.to_text() for r in message.answer]
    soa = f"{IP}. 3600 IN SOA ns1.example.net. hostmaster.example.net. {{}} 3600 600 604800 60"
    assert records == [
        soa.format(SECOND_SERIAL),
        soa.format(FIRST_SERIAL),  # deletions since FIRST_SERIAL: none
        soa.format(SECOND_SERIAL),  # additions up to SECOND_SERIAL
        f"12.2.0.192.{IP}. 300 IN A 127.0.0.3",
        f'12.2.0.192.{IP}. 300 IN TXT "v=1;n=50;sc=0.55"',
        soa.format(SECOND_SERIAL),
    ]
