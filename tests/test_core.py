"""The sans-IO core, in memory: authoritative answers for every kind of question."""

from __future__ import annotations

import struct
import subprocess
import sys

import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.rcode
import dns.rdatatype
import pytest

from listformat import names
from listformat.hashing import HashScheme
from listformat.names import OwnerScheme
from tests.support.repo import REPO
from zoned.core import Responder

IP = "bl.example.net"
HASH = "hash.example.net"
DOM = "dom.example.net"


def ask(
    responder: Responder,
    qname: str,
    rdtype: str = "A",
    *,
    edns: int = -1,
    payload: int = 1232,
    dnssec: bool = False,
    tcp: bool = False,
) -> dns.message.Message:
    query = dns.message.make_query(qname, rdtype, use_edns=edns, payload=payload,
                                   want_dnssec=dnssec)
    wire = responder.respond(query.to_wire(), tcp)
    assert wire is not None
    reply = dns.message.from_wire(wire)
    assert reply.id == query.id
    assert reply.flags & dns.flags.QR
    return reply


def texts(reply: dns.message.Message) -> list[str]:
    return [rdata.to_text() for rrset in reply.answer for rdata in rrset]


def soa_in_authority(reply: dns.message.Message, zone: str) -> bool:
    return (
        len(reply.authority) == 1
        and reply.authority[0].rdtype == dns.rdatatype.SOA
        and reply.authority[0].name == dns.name.from_text(zone)
    )


def test_txt_hit_on_ip_zone_carries_the_counters(responder: Responder) -> None:
    reply = ask(responder, f"1.2.0.192.{IP}", "TXT")
    assert reply.rcode() == dns.rcode.NOERROR
    assert reply.flags & dns.flags.AA
    assert texts(reply) == ['"v=1;n=120;s=110;h=4;p=6;sc=0.87;l=1763769600"']
    assert reply.answer[0].ttl == 300


def test_a_hit_maps_the_score_to_its_band(responder: Responder) -> None:
    assert texts(ask(responder, f"1.2.0.192.{IP}")) == ["127.0.0.2"]  # 0.87 >= 0.8
    assert texts(ask(responder, f"2.2.0.192.{IP}")) == ["127.0.0.7"]  # -0.45 <= -0.4


def test_neutral_score_publishes_txt_without_a(responder: Responder) -> None:
    reply = ask(responder, f"3.2.0.192.{IP}")
    assert reply.rcode() == dns.rcode.NOERROR and not reply.answer
    assert soa_in_authority(reply, IP)
    assert ask(responder, f"3.2.0.192.{IP}", "TXT").answer


def test_cidr_entries_answer_by_longest_prefix(responder: Responder) -> None:
    assert texts(ask(responder, f"200.100.51.198.{IP}")) == ["127.0.0.2"]  # /25, 0.91
    assert texts(ask(responder, f"5.100.51.198.{IP}")) == ["127.0.0.4"]  # /24, 0.2
    assert "sc=0.91" in texts(ask(responder, f"200.100.51.198.{IP}", "TXT"))[0]


def test_ipv6_nibble_names_and_prefixes(responder: Responder) -> None:
    host = names.reverse_ip("2001:db8::1")
    assert texts(ask(responder, f"{host}.{IP}")) == ["127.0.0.2"]
    inside = names.reverse_ip("2001:db8:1:ffff::5")
    assert texts(ask(responder, f"{inside}.{IP}")) == ["127.0.0.7"]
    outside = names.reverse_ip("2001:db8:2::5")
    assert ask(responder, f"{outside}.{IP}").rcode() == dns.rcode.NXDOMAIN


def test_listed_override_wins_over_the_store(responder: Responder) -> None:
    reply = ask(responder, f"7.100.51.198.{IP}", "TXT")
    assert texts(reply) == ['"v=1;reason=manual"']
    assert texts(ask(responder, f"9.113.0.203.{IP}")) == ["127.0.0.3"]


def test_unlisted_override_hides_a_published_token(responder: Responder, zones) -> None:
    from tests.support.publishing import publish

    publish(zones, IP, [{"token": "192.0.2.99", "sc": 1.0}])
    responder.refresh()
    assert ask(responder, f"99.2.0.192.{IP}").rcode() == dns.rcode.NXDOMAIN


def test_nxdomain_carries_the_soa_with_the_negative_ttl(responder: Responder) -> None:
    reply = ask(responder, f"9.9.9.9.{IP}")
    assert reply.rcode() == dns.rcode.NXDOMAIN
    assert reply.flags & dns.flags.AA
    assert not reply.answer
    assert soa_in_authority(reply, IP)
    assert reply.authority[0].ttl == 60  # min(SOA TTL 3600, minimum 60), RFC 2308 3


def test_nodata_for_a_type_the_name_lacks(responder: Responder) -> None:
    reply = ask(responder, f"1.2.0.192.{IP}", "AAAA")
    assert reply.rcode() == dns.rcode.NOERROR and not reply.answer
    assert reply.flags & dns.flags.AA
    assert soa_in_authority(reply, IP)


@pytest.mark.parametrize("qname", ["0.0.127", "0.127", "127", "2.0.192", "100.51.198",
                                   "1.0.0.2", "2", "8.b.d.0.1.0.0.2"])
def test_empty_non_terminals_are_nodata(responder: Responder, qname: str) -> None:
    """IPv4 and IPv6 prefixes above listed entries; ``1.0.0.2`` reads both ways (2001::/16)."""
    reply = ask(responder, f"{qname}.{IP}", "A")
    assert reply.rcode() == dns.rcode.NOERROR, qname
    assert not reply.answer and soa_in_authority(reply, IP)


def test_rfc5782_test_entries(responder: Responder) -> None:
    assert texts(ask(responder, f"2.0.0.127.{IP}")) == ["127.0.0.2"]
    assert texts(ask(responder, f"2.0.0.127.{IP}", "TXT")) == ['"v=1;test=1"']
    assert ask(responder, f"1.0.0.127.{IP}").rcode() == dns.rcode.NXDOMAIN
    v6 = names.reverse_ip("::ffff:127.0.0.2")
    assert texts(ask(responder, f"{v6}.{IP}")) == ["127.0.0.2"]
    assert texts(ask(responder, f"test.{DOM}")) == ["127.0.0.2"]
    assert ask(responder, f"invalid.{DOM}").rcode() == dns.rcode.NXDOMAIN


def test_random_label_is_nxdomain(responder: Responder) -> None:
    for zone in (IP, HASH, DOM):
        assert ask(responder, f"xq7rkzp2vw.{zone}").rcode() == dns.rcode.NXDOMAIN


def test_refused_outside_every_zone(responder: Responder) -> None:
    for qname in ("example.com", "net", "xbl.example.net", "."):
        reply = ask(responder, qname)
        assert reply.rcode() == dns.rcode.REFUSED, qname
        assert not reply.flags & dns.flags.AA
        assert not reply.answer and not reply.authority


def test_apex_soa_and_ns(responder: Responder) -> None:
    soa = ask(responder, IP, "SOA")
    assert soa.rcode() == dns.rcode.NOERROR and soa.flags & dns.flags.AA
    (rdata,) = soa.answer[0]
    assert rdata.mname.to_text() == "ns1.example.net." and rdata.serial > 0
    assert rdata.rname.to_text() == "hostmaster.example.net."
    assert sorted(texts(ask(responder, IP, "NS"))) == ["ns1.example.net.", "ns2.example.net."]
    assert texts(ask(responder, IP, "TXT"))[0].startswith('"repzone example list')
    nodata = ask(responder, IP, "AAAA")
    assert nodata.rcode() == dns.rcode.NOERROR and soa_in_authority(nodata, IP)


def test_any_is_minimal(responder: Responder) -> None:
    """RFC 8482: ANY gets one RRset, not everything the name has."""
    reply = ask(responder, f"1.2.0.192.{IP}", "ANY")
    assert [rrset.rdtype for rrset in reply.answer] == [dns.rdatatype.A]
    apex = ask(responder, IP, "ANY")
    assert [rrset.rdtype for rrset in apex.answer] == [dns.rdatatype.SOA]


def test_hashed_zone_answers_under_the_primary_scheme_and_alias(responder: Responder) -> None:
    primary = names.owner_names(
        OwnerScheme("hash", HashScheme("blake2", "base32", 32), (HashScheme("sha1", "hex"),)),
        "192.0.2.1",
    )
    assert len(primary) == 2
    for owner in primary:
        assert texts(ask(responder, f"{owner}.{HASH}")) == ["127.0.0.2"]
        assert "n=120" in texts(ask(responder, f"{owner}.{HASH}", "TXT"))[0]


def test_name_zone_hits_graded_codes_and_empty_non_terminals(responder: Responder) -> None:
    assert texts(ask(responder, f"mail.spammer.example.{DOM}")) == ["127.0.1.199"]
    assert texts(ask(responder, f"example.com.{DOM}")) == ["127.0.1.5"]
    for ent in ("spammer.example", "sub.spammer.example", "example"):
        reply = ask(responder, f"{ent}.{DOM}")
        assert reply.rcode() == dns.rcode.NOERROR and not reply.answer, ent
    assert ask(responder, f"other.spammer.example.{DOM}").rcode() == dns.rcode.NXDOMAIN


def test_question_case_is_preserved(responder: Responder) -> None:
    qname = "1.2.0.192.Bl.ExAmPlE.NeT"
    reply = ask(responder, qname, "TXT")
    assert reply.question[0].name.to_text() == qname + "."
    assert reply.answer[0].name.to_text() == qname + "."
    miss = ask(responder, "NoPe.bL.example.NET")
    assert miss.question[0].name.to_text() == "NoPe.bL.example.NET."


def test_edns_is_echoed_with_our_payload_and_the_do_bit(responder: Responder) -> None:
    reply = ask(responder, f"1.2.0.192.{IP}", edns=0, payload=4096, dnssec=True)
    assert reply.edns == 0
    assert reply.payload == 1232
    assert reply.ednsflags & dns.flags.DO
    plain = ask(responder, f"1.2.0.192.{IP}")
    assert plain.edns == -1


def test_udp_truncation_and_tcp_retry(responder: Responder) -> None:
    small = ask(responder, f"big.{IP}", "TXT")  # no EDNS: 512 bytes
    assert small.flags & dns.flags.TC and not small.answer
    fits = ask(responder, f"big.{IP}", "TXT", edns=0, payload=1232)
    assert not fits.flags & dns.flags.TC and len(texts(fits)) == 3
    honoured = ask(responder, f"big.{IP}", "TXT", edns=0, payload=600)
    assert honoured.flags & dns.flags.TC
    capped = ask(responder, f"huge.{IP}", "TXT", edns=0, payload=4096)
    assert capped.flags & dns.flags.TC and not capped.answer  # UDP is capped at 1232
    tcp = ask(responder, f"huge.{IP}", "TXT", edns=0, payload=4096, tcp=True)
    assert not tcp.flags & dns.flags.TC and len(texts(tcp)) == 6


def test_garbage_gets_formerr(responder: Responder) -> None:
    garbage = b"\x12\x34\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x05ab"
    wire = responder.respond(garbage)
    assert wire is not None
    ident, flags = struct.unpack("!HH", wire[:4])
    assert ident == 0x1234 and flags & 0x8000 and flags & 0xF == dns.rcode.FORMERR


def test_two_questions_get_formerr(responder: Responder) -> None:
    query = dns.message.make_query(f"1.2.0.192.{IP}", "A")
    wire = bytearray(query.to_wire())
    question = wire[12:]
    wire[4:6] = b"\x00\x02"
    reply = dns.message.from_wire(responder.respond(bytes(wire + question)) or b"")
    assert reply.rcode() == dns.rcode.FORMERR


def test_short_datagrams_and_responses_are_dropped(responder: Responder) -> None:
    assert responder.respond(b"") is None
    assert responder.respond(b"\x00" * 11) is None
    response = dns.message.make_response(dns.message.make_query(f"x.{IP}", "A"))
    assert responder.respond(response.to_wire()) is None


def test_unsupported_opcode_gets_notimp(responder: Responder) -> None:
    query = dns.message.make_query(f"x.{IP}", "A")
    query.set_opcode(dns.opcode.STATUS)
    reply = dns.message.from_wire(responder.respond(query.to_wire()) or b"")
    assert reply.rcode() == dns.rcode.NOTIMP
    assert reply.opcode() == dns.opcode.STATUS


def test_unknown_edns_version_gets_badvers(responder: Responder) -> None:
    reply = ask(responder, f"1.2.0.192.{IP}", edns=1)
    assert reply.rcode() == dns.rcode.BADVERS
    assert reply.edns == 0 and not reply.answer


def test_transfers_are_refused_until_allowed(responder: Responder) -> None:
    reply = ask(responder, IP, "AXFR", tcp=True)
    assert reply.rcode() == dns.rcode.REFUSED


def test_new_serial_is_picked_up_on_refresh(responder: Responder, zones) -> None:
    from tests.support.publishing import publish

    before = ask(responder, IP, "SOA").answer[0][0].serial
    assert ask(responder, f"77.2.0.192.{IP}").rcode() == dns.rcode.NXDOMAIN
    publish(zones, IP, [{"token": "192.0.2.77", "sc": 0.5, "n": 20}])
    assert ask(responder, f"77.2.0.192.{IP}").rcode() == dns.rcode.NXDOMAIN  # old snapshot
    assert responder.refresh()
    assert texts(ask(responder, f"77.2.0.192.{IP}")) == ["127.0.0.3"]
    after = ask(responder, IP, "SOA").answer[0][0].serial
    assert after != before


def test_core_imports_no_twisted() -> None:
    """The answering core is sans-IO: importing it must not pull in Twisted."""
    code = (
        "import sys, zoned.core, zoned.fastpath, zoned.fullpath, zoned.authority\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] == 'twisted')\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True)


def test_an_exception_of_ours_is_servfail_counted_and_logged_once(
    responder: Responder, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A bug in the lookup is our fault, not the client's: SERVFAIL, not FORMERR."""
    from zoned import ratelog

    monkeypatch.setattr(ratelog, "LIMITER", ratelog.LogLimiter(burst=1))

    def broken(*_args: object) -> None:
        raise RuntimeError("injected lookup failure")

    monkeypatch.setattr(responder.authority, "resolve", broken)
    responder.fast = None  # every query takes the full path and its lookup
    for _ in range(20):
        reply = ask(responder, f"1.2.0.192.{IP}", "TXT")
        assert reply.rcode() == dns.rcode.SERVFAIL and not reply.answer
    assert responder.errors == 20
    logged = [r for r in caplog.records if "internal error" in r.getMessage()]
    assert len(logged) == 1 and logged[0].exc_info is not None
    assert "injected lookup failure" in str(logged[0].exc_info[1])
    assert ratelog.LIMITER.suppressed()["internal-error"] == 19


def test_junk_after_a_tsig_with_an_unknown_key_is_formerr(responder: Responder) -> None:
    """dnspython checks the TSIG before the trailing junk: the junk is still the client's."""
    import dns.tsig

    query = dns.message.make_query(f"1.2.0.192.{IP}", "A")
    query.use_tsig(dns.tsig.Key("nobody.", b"0" * 32, "hmac-sha256"))
    wire = responder.respond(query.to_wire() + b"\x00", False, "192.0.2.1")
    assert wire is not None and wire[3] & 0x0F == dns.rcode.FORMERR
    assert responder.errors == 0


def test_mutated_queries_are_the_clients_fault_never_ours(responder: Responder) -> None:
    """Whatever dnspython rejects is FORMERR (or NOTAUTH for a TSIG): no internal error."""
    import random

    import dns.tsig

    rng = random.Random(9)
    signed = dns.message.make_query(f"{IP}.", "SOA")
    signed.use_tsig(dns.tsig.Key("xfr-key.", b"0" * 32, "hmac-sha256"))
    seeds = [dns.message.make_query(f"1.2.0.192.{IP}", "TXT", use_edns=0).to_wire(),
             dns.message.make_query(HASH, "IXFR").to_wire(), signed.to_wire()]
    for _ in range(20000):
        data = bytearray(rng.choice(seeds))
        for _ in range(rng.randint(1, 4)):
            roll = rng.random()
            if roll < 0.6:
                data[rng.randrange(len(data))] = rng.randrange(256)
            elif roll < 0.8:
                del data[rng.randrange(len(data)):]
            else:
                data.insert(rng.randrange(len(data) + 1), rng.randrange(256))
            if not data:
                break
        reply = responder.respond(bytes(data), False, "192.0.2.1")
        assert reply is None or reply[3] & 0x0F != dns.rcode.SERVFAIL, bytes(data).hex()
    assert responder.errors == 0


@pytest.mark.parametrize("bug", [ValueError, KeyError, AttributeError])
def test_a_bug_while_parsing_is_servfail_not_formerr(
    responder: Responder, monkeypatch: pytest.MonkeyPatch, bug: type[Exception]
) -> None:
    """Only dnspython's parse errors are the client's: anything else out of the parse is
    ours, SERVFAIL and counted, never the client's FORMERR."""
    from zoned import tsig

    def broken(*_args: object) -> None:
        raise bug("injected parse failure")

    monkeypatch.setattr(tsig, "parse", broken)
    responder.fast = None
    reply = ask(responder, f"1.2.0.192.{IP}", "TXT")
    assert reply.rcode() == dns.rcode.SERVFAIL
    assert responder.errors == 1
