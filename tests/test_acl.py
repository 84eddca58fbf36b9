"""Query ACLs for private lists: allowed clients get answers, the others REFUSED or nothing."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import dns.edns
import dns.exception
import dns.flags
import dns.message
import dns.query
import dns.rcode
import pytest

from tests.support.publishing import copy_zones, publish_samples
from tests.support.zoned_process import Zoned, start_zoned
from zoned.core import Responder
from zoned.service import build_authority
from zoned.zone import ReaderPool

HIT = "1.2.0.192.bl.example.net"
HASHED = "2.0.0.127.hash.example.net"  # not a hash: NXDOMAIN, but an answer all the same


def _private(zones: Path, zone: str, denied: str) -> None:
    path = zones / f"{zone}.yaml"
    path.write_text(path.read_text() + f"\nqueries:\n  allow: [127.0.0.2, 10.0.0.0/8, "
                                       f"'2001:db8::/32']\n  denied: {denied}\n")


@pytest.fixture
def responder(tmp_path: Path) -> Responder:
    zones = copy_zones(tmp_path)
    publish_samples(zones)
    _private(zones, "bl.example.net", "refuse")
    _private(zones, "dom.example.net", "drop")
    return Responder(build_authority(zones, ReaderPool()))


def _queries(name: str) -> Iterator[dns.message.Message]:
    """The same question on the fast path and, with an unknown EDNS option, the full path."""
    yield dns.message.make_query(name, "A")
    yield dns.message.make_query(name, "A", use_edns=0,
                                 options=[dns.edns.GenericOption(65001, b"x")])


@pytest.mark.parametrize("peer", ["127.0.0.2", "10.1.2.3", "2001:db8::53", "::ffff:10.0.0.1"])
def test_allowed_clients_get_the_answer(responder: Responder, peer: str) -> None:
    for query in _queries(HIT):
        reply = dns.message.from_wire(responder.respond(query.to_wire(), False, peer) or b"")
        assert reply.rcode() == dns.rcode.NOERROR
        assert reply.answer[0][0].to_text() == "127.0.0.2"


@pytest.mark.parametrize("peer", ["127.0.0.1", "192.0.2.1", "2001:db9::1", None])
def test_other_clients_are_refused_without_authority(responder: Responder,
                                                     peer: str | None) -> None:
    for query in _queries(HIT):
        reply = dns.message.from_wire(responder.respond(query.to_wire(), False, peer) or b"")
        assert reply.rcode() == dns.rcode.REFUSED
        assert not reply.answer and not reply.authority
        assert not reply.flags & dns.flags.AA  # says nothing of the zone


def test_a_dropping_zone_sends_nothing_and_other_zones_answer_everyone(
    responder: Responder,
) -> None:
    for query in _queries("example.com.dom.example.net"):
        assert responder.respond(query.to_wire(), False, "192.0.2.1") is None
        assert responder.respond(query.to_wire(), False, "10.0.0.1") is not None
    for query in _queries(HASHED):
        reply = dns.message.from_wire(responder.respond(query.to_wire(), False, "192.0.2.1")
                                      or b"")
        assert reply.rcode() == dns.rcode.NXDOMAIN  # hash.example.net is public


def test_a_real_server_checks_the_source_address(tmp_path: Path) -> None:
    """Over UDP and TCP, from 127.0.0.1 (refused or dropped) and 127.0.0.2 (allowed)."""
    zones = copy_zones(tmp_path)
    publish_samples(zones)
    _private(zones, "bl.example.net", "refuse")
    _private(zones, "dom.example.net", "drop")
    server: Zoned = start_zoned(zones, tmp_path / "zoned.log")
    try:
        query = dns.message.make_query(HIT, "A")
        for send in (dns.query.udp, dns.query.tcp):
            allowed = send(query, "127.0.0.1", port=server.port, timeout=2, source="127.0.0.2")
            assert allowed.answer[0][0].to_text() == "127.0.0.2"
            refused = send(query, "127.0.0.1", port=server.port, timeout=2, source="127.0.0.1")
            assert refused.rcode() == dns.rcode.REFUSED
        dropped = dns.message.make_query("example.com.dom.example.net", "A")
        with pytest.raises(dns.exception.Timeout):
            dns.query.udp(dropped, "127.0.0.1", port=server.port, timeout=0.5)
    finally:
        server.stop()
