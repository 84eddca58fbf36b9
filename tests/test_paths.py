"""The fast path and the full path give byte-identical replies to the same queries."""

from __future__ import annotations

import struct
from pathlib import Path

import dns.edns
import dns.message
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.support.publishing import copy_zones, publish_samples
from tests.support.queries import generated_queries
from zoned.authority import Authority
from zoned.core import Responder
from zoned.service import build_authority
from zoned.zone import ReaderPool


@pytest.fixture
def authority(zones: Path) -> Authority:
    return build_authority(zones, ReaderPool())


def test_generated_queries_get_identical_replies(authority: Authority) -> None:
    fast = Responder(authority, fast=True)
    full = Responder(authority, fast=False)
    for i, (wire, tcp) in enumerate(generated_queries(12_000, seed=5782)):
        assert fast.respond(wire, tcp) == full.respond(wire, tcp), (i, wire.hex(), tcp)
    assert fast.errors == full.errors == 0
    # The comparison means something only if the fast path answered most of them.
    assert fast.fast_answers > 6_000, (fast.fast_answers, fast.full_answers)


@settings(max_examples=400, deadline=None)
@given(data=st.binary(min_size=0, max_size=80), tcp=st.booleans())
def test_arbitrary_bytes_never_raise_and_agree(zones_for_hypothesis: Authority, data: bytes,
                                                tcp: bool) -> None:
    fast = Responder(zones_for_hypothesis, fast=True)
    full = Responder(zones_for_hypothesis, fast=False)
    reply = fast.respond(data, tcp)
    assert reply == full.respond(data, tcp)
    assert fast.errors == 0
    if reply is not None:
        ident, flags = struct.unpack("!HH", reply[:4])
        assert ident == struct.unpack("!H", data[:2])[0] and flags & 0x8000


@pytest.fixture(scope="module")
def zones_for_hypothesis(tmp_path_factory: pytest.TempPathFactory) -> Authority:
    directory = copy_zones(tmp_path_factory.mktemp("hypothesis"))
    publish_samples(directory)
    return build_authority(directory, ReaderPool())


def test_known_query_types_stay_on_the_fast_path(authority: Authority) -> None:
    fast = Responder(authority, fast=True)
    for qname, rdtype in [("1.2.0.192.bl.example.net", "A"), ("1.2.0.192.bl.example.net", "TXT"),
                          ("9.9.9.9.bl.example.net", "A"), ("nowhere.example", "A")]:
        fast.respond(dns.message.make_query(qname, rdtype).to_wire())
    assert fast.fast_answers == 4 and fast.full_answers == 0
