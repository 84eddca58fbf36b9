"""A reply reduced to what two servers must agree on: its rcode and its answer records.

The export tests and the rbldnsd import tests compare zoned (in memory or on loopback)
with another server serving the same data in these terms.
"""

from __future__ import annotations

from collections.abc import Set as AbstractSet
from pathlib import Path

import dns.flags
import dns.message
import dns.query
import dns.rcode
import dns.rdatatype

from zoned.config import ZoneConfig, load_zones
from zoned.core import Responder

Answer = tuple[str, AbstractSet[str]]  # rcode, "TYPE TTL RDATA" of the answer section


def zone_config(zones: Path, origin: str) -> ZoneConfig:
    return next(zone for zone in load_zones(zones) if zone.origin == origin)


def reply_answer(reply: dns.message.Message) -> Answer:
    return dns.rcode.to_text(reply.rcode()), frozenset(
        f"{dns.rdatatype.to_text(rrset.rdtype)} {rrset.ttl} {rdata.to_text()}"
        for rrset in reply.answer
        for rdata in rrset
    )


def core_answer(responder: Responder, qname: str, rdtype: str) -> Answer:
    query = dns.message.make_query(qname, rdtype)
    wire = responder.respond(query.to_wire(), tcp=True)
    assert wire is not None
    return reply_answer(dns.message.from_wire(wire))


def server_answer(port: int, qname: str, rdtype: str, *, tcp: bool) -> Answer:
    query = dns.message.make_query(qname, rdtype, use_edns=False)
    query.flags &= ~dns.flags.RD
    if tcp:
        return reply_answer(dns.query.tcp(query, "127.0.0.1", timeout=5, port=port))
    return reply_answer(dns.query.udp(query, "127.0.0.1", timeout=5, port=port))

