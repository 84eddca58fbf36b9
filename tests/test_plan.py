"""The lookup plan without a network: tokens -> names, answers -> scores, wire parsing, cache."""

from __future__ import annotations

import json
import math
import struct

import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.ANY.TXT
import dns.rrset
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from client.answers import Answer, Query, answer_from_reply, failure
from client.cache import TTLCache, negative_ttl
from client.dnswire import (
    Reply,
    ReplyError,
    _Fallback,
    _fast_reply,
    query_wire,
    question_wire,
    read_reply,
    reply_from_message,
    response_matches,
)
from client.facts import DkimResult, Facts, Url
from client.plan import LookupPlan, owner_name, score_record, value_tokens
from client.selectorconfig import PlanError, SelectorConfig, ZoneRef
from client.selectors import Token, spf_token
from listformat import txt
from listformat.hashing import HashScheme
from listformat.names import OwnerScheme

IP_SCHEME = OwnerScheme("ip")
NAME = OwnerScheme("name")
HASHED = OwnerScheme("hash", HashScheme("blake2", "base32", 32))


def rspamd(mean: float, reject: float = 15.0) -> float:
    """Rspamd's formula written out, for comparison."""
    return math.tanh(mean / reject * 1.83178 - 0.5493)


def ip_config(**kw: object) -> SelectorConfig:
    components = {
        "asn": ZoneRef("asn.example.net", NAME),
        "country": ZoneRef("cc.example.net", NAME),
    }
    return SelectorConfig("ip", "ip", "bl.example.net", IP_SCHEME, components=components,
                          **kw)  # type: ignore[arg-type]


def hit(query: Query, text: str, ttl: int = 300) -> Answer:
    return answer_from_reply(query, Reply(0, (text.encode(),), ttl))


def answer_all(plan: LookupPlan, facts: Facts, texts: dict[str, str]) -> list[Answer]:
    """Answer every query: a TXT where ``texts`` has the name, NXDOMAIN elsewhere."""
    answers = []
    for query in plan.start(facts).queries:
        if query.qname in texts:
            answers.append(hit(query, texts[query.qname]))
        else:
            answers.append(answer_from_reply(query, Reply(3, soa=(3600, 60))))
    return answers


# ------------------------------------------------------------------ scoring one record


def record(text: str) -> txt.TxtRecord:
    return txt.decode(text)


def test_rspamd_fields_give_the_tanh_score_on_known_numbers() -> None:
    """reject 15, mean 12 gives tanh(12/15*1.83178-0.5493) = 0.72, as the issue states."""
    scored = score_record(record("v=1;n=120;v1m=12;sc=0.1"), ip_config())
    assert scored.method == "rspamd"
    assert scored.score == pytest.approx(rspamd(12))
    assert round(scored.score, 2) == 0.72


def test_the_site_reject_score_recomputes_the_published_numbers() -> None:
    """A site with reject 10 gets its own score, not the publisher's sc."""
    scored = score_record(record("v=1;n=120;v1m=12;sc=0.72"), ip_config(reject_score=10.0))
    assert scored.score == pytest.approx(rspamd(12, 10.0))
    assert scored.score > 0.9


def test_the_mean_of_several_buckets_is_scored() -> None:
    scored = score_record(record("v=1;n=50;v1m=10;v1h=14"), ip_config())
    assert scored.score == pytest.approx(rspamd(12))


def test_below_the_lower_bound_a_token_scores_zero() -> None:
    assert score_record(record("v=1;n=9;v1m=30"), ip_config()).score == 0.0
    assert score_record(record("v=1;n=10;v1m=30"), ip_config()).score > 0.9
    assert score_record(record("v=1;n=5;v1m=30"), ip_config(lower_bound=5)).score > 0.9


def test_counters_are_scored_by_the_counters_formula() -> None:
    scored = score_record(record("v=1;n=120;s=110;h=4;p=6;sc=0.5"), ip_config())
    assert scored.method == "counters"
    assert scored.score == pytest.approx((110 - 4 + 3) / 120)


def test_buckets_fields_are_scored_by_the_buckets_formula() -> None:
    text = "v=1;n=20;b1d.s=10;b1d.h=10;b1d.j=0;b1d.m=1;b1h.s=20;b1h.h=0;b1h.j=0;b1h.m=1.5"
    scored = score_record(record(text), ip_config())
    assert scored.method == "buckets"
    assert scored.score == pytest.approx((0 * 1 + 20 * 1.5) / (20 * 1 + 20 * 1.5))


def test_a_record_with_only_a_published_score_uses_it() -> None:
    scored = score_record(record("v=1;sc=-0.45;reason=manual"), ip_config())
    assert (scored.method, scored.score) == ("published", -0.45)
    assert score_record(record("v=1;test=1"), ip_config()).method == "none"


def test_unknown_keys_are_ignored() -> None:
    scored = score_record(record("v=1;n=120;v1m=12;zz=whatever;new.key=3"), ip_config())
    assert scored.score == pytest.approx(rspamd(12))


# ------------------------------------------------------------------ owner names


def test_owner_names_follow_the_zone_scheme() -> None:
    assert owner_name(ZoneRef("bl.example.net", IP_SCHEME), "192.0.2.1") == (
        "1.2.0.192.bl.example.net")
    # An IPv6 sender's /64 token is asked at its network address, inside the listed /64.
    v6 = owner_name(ZoneRef("bl.example.net", IP_SCHEME), "2001:db8:1:2::/64")
    assert v6 == "0." * 16 + "2.0.0.0.1.0.0.0.8.b.d.0.1.0.0.2.bl.example.net"
    assert owner_name(ZoneRef("Dom.Example.NET.", NAME), "Example.COM.a") == (
        "example.com.a.dom.example.net")
    hashed = owner_name(ZoneRef("hash.example.net", HASHED), "192.0.2.1")
    assert len(hashed.split(".")[0]) == 32


def test_value_tokens_use_the_rules_own_derivation() -> None:
    ip = ip_config()
    assert [t.value for t in value_tokens(ip, "2001:db8:1:2::5")] == ["2001:db8:1:2::/64"]
    assert [(t.component, t.value, t.weight) for t in value_tokens(ip, "64496", "asn")] == [
        ("asn", "64496", 0.4)]
    dkim = SelectorConfig("dkim", "dkim", "dom.example.net", NAME)
    assert [t.value for t in value_tokens(dkim, "mail.example.com")] == ["example.com.a"]
    assert [t.value for t in value_tokens(dkim, "example.com.r")] == ["example.com.r"]
    spf = SelectorConfig("spf", "spf", "spf.example.net", NAME)
    assert [t.value for t in value_tokens(spf, "v=spf1 -all")] == [spf_token("v=spf1 -all")]
    url = SelectorConfig("url", "url", "url.example.net", NAME)
    assert [t.value for t in value_tokens(url, "https://www.example.co.uk/x")] == [
        "example.co.uk"]


# ------------------------------------------------------------------ combining per selector


def test_ip_components_add_up_weighted_and_unclamped() -> None:
    """ip 1.0, asn 0.4, country 0.01: a weighted sum, which may exceed 1 as in Rspamd."""
    plan = LookupPlan([ip_config()])
    facts = Facts(ip="192.0.2.10", asn="64496", country="XX")
    answers = answer_all(plan, facts, {
        "10.2.0.192.bl.example.net": "v=1;n=100;v1m=30",
        "64496.asn.example.net": "v=1;n=100;v1m=30",
        "xx.cc.example.net": "v=1;n=100;v1m=30",
    })
    result = plan.start(facts).result(answers)["ip"]
    top = rspamd(30)
    assert result.score == pytest.approx(top * 1.41)
    assert result.score > 1
    assert [(c.token.component, c.weight) for c in result.components] == [
        ("ip", 1.0), ("asn", 0.4), ("country", 0.01)]
    assert result.symbol == "SENDER_REP_SPAM"
    assert result.errors == []


def test_a_good_sender_gets_the_ham_symbol() -> None:
    plan = LookupPlan([ip_config()])
    facts = Facts(ip="192.0.2.11")
    answers = answer_all(plan, facts, {"11.2.0.192.bl.example.net": "v=1;n=100;v1m=0"})
    result = plan.start(facts).result(answers)["ip"]
    assert result.score == pytest.approx(-0.5, abs=1e-4)
    assert result.symbol == "SENDER_REP_HAM"


def test_components_without_a_zone_are_shown_but_not_asked() -> None:
    plan = LookupPlan([SelectorConfig("ip", "ip", "bl.example.net", IP_SCHEME)])
    lookup = plan.start(Facts(ip="192.0.2.1", asn="64496"))
    assert [q.qname for q in lookup.queries] == ["1.2.0.192.bl.example.net"]
    result = lookup.result([])["ip"]
    assert [c.status for c in result.components] == ["error", "unconfigured"]


def test_only_accepted_dkim_signatures_count_and_the_sum_is_clamped() -> None:
    plan = LookupPlan([SelectorConfig("dkim", "dkim", "dom.example.net", NAME)])
    facts = Facts(dkim=(DkimResult("a.example.com", "pass"), DkimResult("example.org", "pass"),
                        DkimResult("example.net", "fail")))
    bad = "v=1;n=100;v1m=40"
    answers = answer_all(plan, facts, {
        "example.com.a.dom.example.net": bad,
        "example.org.a.dom.example.net": bad,
        "example.net.r.dom.example.net": "v=1;n=100;v1m=0",
    })
    result = plan.start(facts).result(answers)["dkim"]
    assert [c.counted for c in result.components] == [True, True, False]
    assert 2 * rspamd(40) > 1
    assert result.score == 1.0
    assert result.symbol == "DKIM_SCORE"


def test_dkim_inserts_its_symbol_whenever_it_looked_up_a_signature() -> None:
    plan = LookupPlan([SelectorConfig("dkim", "dkim", "dom.example.net", NAME)])
    facts = Facts(dkim=(DkimResult("example.com", "pass"),))
    result = plan.start(facts).result(answer_all(plan, facts, {}))["dkim"]
    assert (result.score, result.symbol) == (0.0, "DKIM_SCORE")
    empty = plan.start(Facts()).result([])["dkim"]
    assert empty.symbol is None and empty.components == []


def url_facts() -> Facts:
    urls = [Url("a.example.com", "http://a.example.com/1", frozenset()),
            Url("b.example.com", "http://b.example.com/2", frozenset()),
            Url("www.example.org", "http://www.example.org/", frozenset())]
    return Facts(urls=tuple(urls))


def test_url_domains_are_weighted_by_hits_relative_to_the_most_frequent() -> None:
    plan = LookupPlan([SelectorConfig("url", "url", "url.example.net", NAME)])
    facts = url_facts()
    answers = answer_all(plan, facts, {
        "example.com.url.example.net": "v=1;n=100;v1m=30",
        "example.org.url.example.net": "v=1;n=400;v1m=30",
    })
    result = plan.start(facts).result(answers)["url"]
    assert [(c.token.value, c.weight) for c in result.components] == [
        ("example.com", 1.0), ("example.org", 0.5)]
    assert result.score == pytest.approx(rspamd(30) * 1.5)
    assert result.symbol == "URL_SCORE"


def test_url_weights_by_answers_follow_rspamds_current_code() -> None:
    config = SelectorConfig("url", "url", "url.example.net", NAME, url_weights="answers")
    plan = LookupPlan([config])
    facts = url_facts()
    answers = answer_all(plan, facts, {
        "example.com.url.example.net": "v=1;n=100;v1m=30",
        "example.org.url.example.net": "v=1;n=400;v1m=30",
    })
    result = plan.start(facts).result(answers)["url"]
    assert [c.weight for c in result.components] == [2 / 400, 1 / 400]


def test_generic_values_add_with_weight_one() -> None:
    config = SelectorConfig("helo_rep", "generic", "gen.example.net", HASHED,
                            expression="helo")
    plan = LookupPlan([config])
    facts = Facts(helo="mx.example.com")
    name = owner_name(ZoneRef("gen.example.net", HASHED), "mx.example.com")
    result = plan.start(facts).result(
        answer_all(plan, facts, {name: "v=1;n=100;v1m=30"}))["helo_rep"]
    assert result.score == pytest.approx(rspamd(30))
    assert result.symbol == "HELO_REP"


def test_spf_scores_only_when_spf_passed() -> None:
    plan = LookupPlan([SelectorConfig("spf", "spf", "spf.example.net", NAME)])
    record_text = "v=spf1 ip4:192.0.2.0/24 -all"
    qname = f"{spf_token(record_text)}.spf.example.net"
    passed = Facts(spf_result="pass", spf_record=record_text)
    result = plan.start(passed).result(answer_all(plan, passed, {qname: "v=1;n=50;v1m=15"}))
    assert result["spf"].score == pytest.approx(rspamd(15))
    assert result["spf"].symbol == "SPF_REP_SPAM"
    assert plan.start(Facts(spf_result="fail", spf_record=record_text)).queries == []


def test_tokens_sharing_a_name_are_asked_once() -> None:
    one = SelectorConfig("a", "ip", "bl.example.net", IP_SCHEME)
    two = SelectorConfig("b", "ip", "bl.example.net", IP_SCHEME, symbol="OTHER")
    plan = LookupPlan([one, two])
    lookup = plan.start(Facts(ip="192.0.2.1"))
    assert len(lookup.queries) == 1
    query = lookup.queries[0]
    result = lookup.result([hit(query, "v=1;n=100;v1m=30")])
    assert result["a"].score == result["b"].score == pytest.approx(rspamd(30))
    assert result.symbols == {"SENDER_REP_SPAM": result["a"].score,
                              "OTHER_SPAM": result["b"].score}


# ------------------------------------------------------------------ failures


@pytest.mark.parametrize("status", ["timeout", "servfail", "refused", "error"])
def test_a_failed_lookup_scores_zero_and_is_listed(status: str) -> None:
    plan = LookupPlan([ip_config()])
    facts = Facts(ip="192.0.2.1")
    answers = [failure(q, status, "detail") for q in plan.start(facts).queries]
    result = plan.start(facts).result(answers)
    assert result["ip"].score == 0.0 and result["ip"].symbol is None
    assert result.errors == [
        f"ip: ip 192.0.2.1: {status} (1.2.0.192.bl.example.net): detail"]


def test_rcodes_become_statuses() -> None:
    query = Query(Token("ip", "ip", "192.0.2.1", 1.0), "1.2.0.192.bl.example.net")
    assert answer_from_reply(query, Reply(2)).status == "servfail"
    assert answer_from_reply(query, Reply(5)).status == "refused"
    assert answer_from_reply(query, Reply(4)).status == "error"
    assert answer_from_reply(query, Reply(4)).detail == "rcode NOTIMP"
    nodata = answer_from_reply(query, Reply(0, soa=(3600, 60)))
    assert (nodata.status, nodata.ttl) == ("nodata", 60)
    assert answer_from_reply(query, Reply(3)).ttl is None  # no SOA: not cacheable


def test_a_newer_format_is_reported_not_misread() -> None:
    query = Query(Token("ip", "ip", "192.0.2.1", 1.0), "1.2.0.192.bl.example.net")
    answer = hit(query, "v=2;n=120;v1m=12")
    assert answer.status == "newer_version"
    assert answer.record is None and answer.text == "v=2;n=120;v1m=12"
    # A list in transition publishes both versions: the readable one is used.
    both = answer_from_reply(query, Reply(0, (b"v=2;x", b"v=1;n=120;v1m=12"), 300))
    assert both.status == "hit" and both.text == "v=1;n=120;v1m=12"


@pytest.mark.parametrize("text", ["n=120;v1m=12", "v=1;n", "v=1;N=3", "v=x", "hello"])
def test_malformed_txt_is_reported(text: str) -> None:
    query = Query(Token("ip", "ip", "192.0.2.1", 1.0), "1.2.0.192.bl.example.net")
    plan = LookupPlan([ip_config()])
    facts = Facts(ip="192.0.2.1")
    lookup = plan.start(facts)
    result = lookup.result([hit(query, text)])
    assert result["ip"].components[0].status == "malformed"
    assert result["ip"].score == 0.0
    assert "malformed" in result.errors[0]


def test_negative_counts_make_an_answer_malformed() -> None:
    plan = LookupPlan([ip_config()])
    facts = Facts(ip="192.0.2.1")
    lookup = plan.start(facts)
    result = lookup.result([hit(lookup.queries[0], "v=1;s=-5;h=20")])
    assert result["ip"].components[0].status == "malformed"
    assert result["ip"].score == 0.0


# ------------------------------------------------------------------ explain and json


def test_explain_and_json_show_tokens_names_answers_and_scores() -> None:
    plan = LookupPlan([ip_config()])
    facts = Facts(ip="192.0.2.10", asn="64496")
    answers = answer_all(plan, facts, {"10.2.0.192.bl.example.net": "v=1;n=120;v1m=12"})
    result = plan.start(facts).result(answers)
    text = result.explain()
    for expected in ("ip 192.0.2.10", "10.2.0.192.bl.example.net. TXT", '"v=1;n=120;v1m=12"',
                     "+0.72", "64496.asn.example.net", "nxdomain", "SENDER_REP_SPAM",
                     "reject score 15"):
        assert expected in text, text
    data = json.loads(json.dumps(result.to_json()))
    comp = data["selectors"][0]["components"][0]
    assert comp["qname"] == "10.2.0.192.bl.example.net"
    assert comp["fields"] == {"n": 120, "v1m": 12}
    assert comp["score"] == pytest.approx(rspamd(12))
    assert data["symbols"] == {"SENDER_REP_SPAM": pytest.approx(rspamd(12))}


# ------------------------------------------------------------------ configuration


def test_configuration_mistakes_are_refused() -> None:
    with pytest.raises(PlanError, match="unknown kind"):
        SelectorConfig("x", "bogus", "z.example", NAME)
    with pytest.raises(PlanError, match="needs an expression"):
        SelectorConfig("x", "generic", "z.example", NAME)
    with pytest.raises(PlanError, match="unique"):
        LookupPlan([ip_config(), ip_config()])
    with pytest.raises(PlanError, match="length"):
        SelectorConfig("x", "url", "z.example", OwnerScheme("hash", HashScheme("sha512", "hex")))
    assert SelectorConfig("s", "sender", "z.example", IP_SCHEME).kind == "ip"


def test_an_unsupported_generic_expression_names_its_position() -> None:
    config = SelectorConfig("g", "generic", "g.example", HASHED, expression="helo.bogus_fn")
    with pytest.raises(PlanError, match="'g'") as info:
        LookupPlan([config])
    assert info.value.__cause__ is not None
    assert hasattr(info.value.__cause__, "position")


# ------------------------------------------------------------------ wire format

QNAME = "1.2.0.192.bl.example.net"
SOA_TEXT = "ns1.example.net. hostmaster.example.net. 7 3600 600 604800 60"


def response(
    texts: list[list[bytes]], *, rcode: int = 0, ttl: int = 300, soa: bool = False,
    qname: str = QNAME, edns: bool = True,
) -> bytes:
    query = dns.message.make_query(qname, "TXT", use_edns=0 if edns else None)
    reply = dns.message.make_response(query)
    reply.set_rcode(dns.rcode.Rcode(rcode))
    if texts:
        rdatas = [dns.rdtypes.ANY.TXT.TXT(dns.rdataclass.IN, dns.rdatatype.TXT, strings)
                  for strings in texts]
        reply.answer.append(dns.rrset.from_rdata_list(dns.name.from_text(qname), ttl, rdatas))
    if soa:
        reply.authority.append(dns.rrset.from_text("bl.example.net.", 3600, "IN", "SOA",
                                                   SOA_TEXT))
    return reply.to_wire()


def full(wire: bytes) -> Reply:
    return reply_from_message(dns.message.from_wire(wire))


strings = st.lists(st.binary(max_size=255), min_size=1, max_size=3)


@settings(max_examples=200, deadline=None)
@given(texts=st.lists(strings, max_size=3), rcode=st.sampled_from([0, 2, 3, 5]),
       ttl=st.integers(0, 2**31 - 1), soa=st.booleans(), edns=st.booleans())
def test_the_fast_reader_agrees_with_dnspython(
    texts: list[list[bytes]], rcode: int, ttl: int, soa: bool, edns: bool
) -> None:
    """Whatever the fast path reads, dnspython's full parse reads the same."""
    wire = response(texts, rcode=rcode, ttl=ttl, soa=soa, edns=edns)
    fast = _fast_reply(wire, question_wire(QNAME))
    assert fast == full(wire)
    assert read_reply(wire, question_wire(QNAME)) == fast


def test_the_fast_reader_leaves_cname_chains_to_dnspython() -> None:
    query = dns.message.make_query("alias.bl.example.net", "TXT")
    reply = dns.message.make_response(query)
    reply.answer.append(dns.rrset.from_text("alias.bl.example.net.", 60, "IN", "CNAME",
                                            "1.2.0.192.bl.example.net."))
    reply.answer.append(dns.rrset.from_text("1.2.0.192.bl.example.net.", 300, "IN", "TXT",
                                            '"v=1;n=3"'))
    wire = reply.to_wire()
    question = question_wire("alias.bl.example.net")
    with pytest.raises(_Fallback):
        _fast_reply(wire, question)
    assert read_reply(wire, question) == Reply(0, (b"v=1;n=3",), 300)


@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_mangled_replies_never_raise_anything_but_reply_error(data: st.DataObject) -> None:
    wire = bytearray(response([[b"v=1;n=120;v1m=12"]], soa=True))
    for _ in range(data.draw(st.integers(1, 4))):
        pos = data.draw(st.integers(0, len(wire) - 1))
        wire[pos] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(wire)))
    try:
        read_reply(bytes(wire[:cut]), question_wire(QNAME))
    except ReplyError:
        pass


def test_queries_are_built_and_matched_on_id_and_question() -> None:
    question = question_wire("1.2.0.192.BL.example.net.")
    wire = query_wire(0x1234, question)
    parsed = dns.message.from_wire(wire)
    assert parsed.id == 0x1234 and parsed.flags & dns.flags.RD
    assert str(parsed.question[0].name) == "1.2.0.192.bl.example.net."
    assert parsed.edns == 0 and parsed.payload == 1232
    reply = dns.message.make_response(parsed).to_wire()
    assert response_matches(reply, 0x1234, question)
    assert not response_matches(reply, 0x1235, question)
    assert not response_matches(reply, 0x1234, question_wire("2.2.0.192.bl.example.net"))
    assert not response_matches(wire, 0x1234, question)  # a query, not a response
    upper = reply[:12] + reply[12:].upper()
    assert response_matches(upper, 0x1234, question)  # case may differ (0x20)
    with pytest.raises(ValueError):
        question_wire("a" * 64 + ".example")


def test_a_truncated_reply_without_tcp_is_an_error() -> None:
    query = Query(Token("ip", "ip", "192.0.2.1", 1.0), QNAME)
    assert answer_from_reply(query, Reply(0, truncated=True)).status == "error"
    flags = struct.unpack("!H", response([], soa=True)[2:4])[0]
    wire = bytearray(response([], soa=True))
    wire[2:4] = struct.pack("!H", flags | 0x0200)
    assert read_reply(bytes(wire), question_wire(QNAME)).truncated


# ------------------------------------------------------------------ cache


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_cache_entries_live_for_their_ttl() -> None:
    clock = Clock()
    cache: TTLCache[str, str] = TTLCache(clock=clock)
    cache.put("a", "A", 300)
    cache.put("n", "N", negative_ttl(3600, 60))
    clock.now += 59.9
    assert (cache.get("a"), cache.get("n")) == ("A", "N")
    assert cache.remaining("n") == pytest.approx(0.1)
    clock.now += 0.2
    assert (cache.get("a"), cache.get("n")) == ("A", None)
    clock.now += 240
    assert cache.get("a") is None
    assert cache.hits == 3 and cache.misses == 2


def test_cache_stores_nothing_without_a_ttl_and_caps_long_ones() -> None:
    clock = Clock()
    cache: TTLCache[str, str] = TTLCache(clock=clock, max_ttl=100)
    cache.put("none", "x", None)
    cache.put("zero", "x", 0)
    cache.put("long", "x", 10**9)
    assert len(cache) == 1
    clock.now += 100
    assert cache.get("long") is None


def test_cache_drops_the_least_recently_used_beyond_its_size() -> None:
    cache: TTLCache[int, int] = TTLCache(3, clock=Clock())
    for key in range(3):
        cache.put(key, key, 60)
    assert cache.get(0) == 0  # 0 is now the most recently used
    cache.put(3, 3, 60)
    assert cache.get(1) is None
    assert [cache.get(k) for k in (0, 2, 3)] == [0, 2, 3]
    with pytest.raises(ValueError):
        TTLCache(0)


def test_negative_ttl_is_the_smaller_of_soa_ttl_and_minimum() -> None:
    assert negative_ttl(3600, 60) == 60
    assert negative_ttl(30, 300) == 30
    assert negative_ttl(-5, 10) == 0
