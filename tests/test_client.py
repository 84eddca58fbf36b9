"""Client and AsyncClient against zoned's own answering code: most in memory (the
faces' MemoryTransport handing each query to zoned's sans-IO Responder over the same
stores), a few end to end against a real zoned on loopback (no DNS mocks either way)."""

from __future__ import annotations

import asyncio
import math
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dns.message
import pytest

from client.answers import Answer, Query
from client.cache import TTLCache
from client.client import AsyncClient, Client, _Limiter
from client.facts import DkimResult, Facts, Url
from client.result import Result, SelectorResult
from client.selectorconfig import SelectorConfig, ZoneRef
from client.selectors import Token, spf_token
from client.transport import MemoryTransport, Respond, Server
from listformat.hashing import HashScheme
from listformat.names import OwnerScheme, reverse_ip
from tests.support.client_zones import (
    MALFORMED_IP,
    NEWER_IP,
    SPF_RECORD,
    filled_zones,
)
from tests.support.ports import free_port
from tests.support.zoned_process import Zoned, start_zoned
from zoned.core import Responder
from zoned.service import build_authority
from zoned.zone import ReaderPool

e2e = pytest.mark.e2e

IP_SCHEME = OwnerScheme("ip")
NAME = OwnerScheme("name")
HASHED = OwnerScheme("hash", HashScheme("blake2", "base32", 32))


def rspamd(mean: float, reject: float = 15.0) -> float:
    return math.tanh(mean / reject * 1.83178 - 0.5493)


@pytest.fixture(scope="module")
def client_zones(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return filled_zones(tmp_path_factory.mktemp("client"))


@pytest.fixture(scope="module")
def zoned(client_zones: Path) -> Iterator[Zoned]:
    server = start_zoned(client_zones, client_zones.parent / "zoned.log")
    yield server
    assert server.stop() == 0, server.log.read_text()


@pytest.fixture(scope="module")
def memory(client_zones: Path) -> Respond:
    """zoned's answering code over the same stores, in this process: no zoned, no socket."""
    responder = Responder(build_authority(client_zones, ReaderPool()))

    def respond(wire: bytes, server: Server, tcp: bool) -> bytes | None:
        return responder.respond(wire, tcp, "127.0.0.1")

    return respond


def selectors() -> list[SelectorConfig]:
    return [
        SelectorConfig("ip", "ip", "bl.example.net", IP_SCHEME, components={
            "asn": ZoneRef("asn.example.net", NAME), "country": ZoneRef("cc.example.net", NAME)}),
        SelectorConfig("dkim", "dkim", "dom.example.net", NAME),
        SelectorConfig("spf", "spf", "spf.example.net", NAME),
        SelectorConfig("url", "url", "url.example.net", NAME),
        SelectorConfig("helo", "generic", "gen.example.net", HASHED, expression="helo"),
    ]


FACES = ["sync", "async"]


def run(face: str, config: list[SelectorConfig], servers: Any, method: str, *args: Any,
        **options: Any) -> Any:
    """Call ``method`` on a fresh client of the given face; the async face via asyncio.run."""
    if face == "sync":
        with Client(config, servers, **options) as client:
            return getattr(client, method)(*args)

    async def go() -> Any:
        async with AsyncClient(config, servers, **options) as client:
            return await getattr(client, method)(*args)

    return asyncio.run(go())


def server(zoned: Zoned) -> list[tuple[str, int]]:
    return [("127.0.0.1", zoned.port)]


# Any address: a MemoryTransport opens no socket.
MEMORY: list[Server] = [("127.0.0.1", 53)]


def local(face: str, config: list[SelectorConfig], respond: Respond, method: str, *args: Any,
          **options: Any) -> Any:
    """:func:`run` with the queries handed to ``respond`` in memory, not to the network."""
    return run(face, config, MEMORY, method, *args, transport=MemoryTransport(respond),
               **options)


# ------------------------------------------------------------------ every selector


@pytest.mark.parametrize("face", FACES)
def test_ip_selector_adds_ip_asn_and_country(memory: Respond, face: str) -> None:
    facts = Facts(ip="192.0.2.10", asn="64496", country="XX")
    result: Result = local(face, selectors(), memory, "check", facts)
    ip = result["ip"]
    assert [(c.token.component, c.status) for c in ip.components] == [
        ("ip", "hit"), ("asn", "hit"), ("country", "hit")]
    assert [q.qname for q in ip.queries] == [
        "10.2.0.192.bl.example.net", "64496.asn.example.net", "xx.cc.example.net"]
    expected = rspamd(12) + 0.4 * rspamd(3) + 0.01 * rspamd(8)
    assert ip.score == pytest.approx(expected)
    assert round(ip.components[0].score, 2) == 0.72
    assert ip.symbol == "SENDER_REP_SPAM"
    assert result.errors == []


@pytest.mark.parametrize("face", FACES)
def test_an_ipv6_sender_is_found_under_its_64(memory: Respond, face: str) -> None:
    result: Result = local(face, selectors(), memory, "check",
                         Facts(ip="2001:db8:1:2:aaaa::5"))
    ip = result["ip"]
    assert ip.tokens[0].value == "2001:db8:1:2::/64"
    assert ip.components[0].status == "hit"
    assert ip.score == pytest.approx(rspamd(15))


@pytest.mark.parametrize("face", FACES)
def test_a_hashed_ip_zone_answers_with_counters(memory: Respond, face: str) -> None:
    config = [SelectorConfig("ip", "ip", "hash.example.net", HASHED)]
    result: SelectorResult = local(face, config, memory, "lookup", "ip", "192.0.2.1")
    assert result.components[0].method == "counters"
    assert result.score == pytest.approx((110 - 4 + 3) / 120)


@pytest.mark.parametrize("face", FACES)
def test_dkim_scores_accepted_signatures_only(memory: Respond, face: str) -> None:
    facts = Facts(dkim=(DkimResult("mail.example.com", "pass"),
                        DkimResult("example.net", "fail")))
    dkim = local(face, selectors(), memory, "check", facts)["dkim"]
    assert [(c.token.value, c.status, c.counted) for c in dkim.components] == [
        ("example.com.a", "hit", True), ("example.net.r", "hit", False)]
    assert dkim.score == pytest.approx(rspamd(20))
    assert dkim.symbol == "DKIM_SCORE"


@pytest.mark.parametrize("face", FACES)
def test_spf_record_hash_is_looked_up_when_spf_passed(memory: Respond, face: str) -> None:
    facts = Facts(spf_result="pass", spf_record=SPF_RECORD)
    spf = local(face, selectors(), memory, "check", facts)["spf"]
    assert spf.queries[0].qname == f"{spf_token(SPF_RECORD)}.spf.example.net"
    assert spf.score == pytest.approx(rspamd(15))
    assert spf.symbol == "SPF_REP_SPAM"


@pytest.mark.parametrize("face", FACES)
def test_url_domains_are_weighted_by_their_share_of_urls(memory: Respond, face: str) -> None:
    urls = (Url("a.example.com", "http://a.example.com/1", frozenset()),
            Url("b.example.com", "http://b.example.com/2", frozenset()),
            Url("www.example.org", "https://www.example.org/", frozenset()))
    url = local(face, selectors(), memory, "check", Facts(urls=urls))["url"]
    assert [(c.token.value, c.weight) for c in url.components] == [
        ("example.com", 1.0), ("example.org", 0.5)]
    assert url.score == pytest.approx(rspamd(30) + 0.5 * rspamd(0))
    assert url.symbol == "URL_SCORE"


@pytest.mark.parametrize("face", FACES)
def test_generic_expression_values_are_looked_up_hashed(memory: Respond, face: str) -> None:
    helo = local(face, selectors(), memory, "check", Facts(helo="mx.example.com"))["helo"]
    assert helo.components[0].status == "hit"
    assert helo.score == pytest.approx(rspamd(9))
    assert helo.symbol == "HELO"  # a generic rule's own name, not split (Rspamd's default)


@e2e
@pytest.mark.parametrize("face", FACES)
def test_check_message_runs_every_selector(zoned: Zoned, face: str) -> None:
    message = (
        b"Received: from mx.example.com (mx.example.com [192.0.2.10])\r\n"
        b"\tby mail.example.org with ESMTP id 1; Mon, 1 Jan 2024 00:00:00 +0000\r\n"
        b"Authentication-Results: mail.example.org; dkim=pass header.d=mail.example.com;\r\n"
        b" spf=pass smtp.mailfrom=sender@example.com\r\n"
        b"From: Sender <sender@example.com>\r\nTo: rcpt@example.org\r\nSubject: hi\r\n"
        b"Content-Type: text/plain\r\n\r\n"
        b"See http://a.example.com/x and http://b.example.com/y\r\n"
    )
    result: Result = run(face, selectors(), server(zoned), "check_message", message)
    assert result["ip"].tokens[0].value == "192.0.2.10"
    assert result["ip"].score > 0.7
    assert [t.value for t in result["dkim"].tokens] == ["example.com.a"]
    assert result["url"].tokens[0].value == "example.com"
    assert result["helo"].score == pytest.approx(rspamd(9))
    assert result.errors == []


@pytest.mark.parametrize("face", FACES)
def test_lookup_takes_one_value(memory: Respond, face: str) -> None:
    result: SelectorResult = local(face, selectors(), memory, "lookup", "ip", "192.0.2.10")
    assert result.queries[0].qname == "10.2.0.192.bl.example.net"
    assert result.answers[0].text == "v=1;n=120;l=1763769600;v1m=12"
    assert result.score == pytest.approx(rspamd(12))


def test_lookup_of_a_component_value(memory: Respond) -> None:
    with Client(selectors(), MEMORY, transport=MemoryTransport(memory)) as client:
        asn = client.lookup("ip", "64496", component="asn")
    assert asn.queries[0].qname == "64496.asn.example.net"
    assert asn.score == pytest.approx(0.4 * rspamd(3))


# ------------------------------------------------------------------ failures


@pytest.fixture
def silent_socket() -> Iterator[socket.socket]:
    """A bound UDP socket that never answers (and counts what it was sent)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock


@pytest.fixture
def silent(silent_socket: socket.socket) -> int:
    """The port of a UDP socket that never answers."""
    return int(silent_socket.getsockname()[1])


def received(sock: socket.socket) -> list[bytes]:
    """The datagrams waiting on ``sock``."""
    sock.setblocking(False)
    found = []
    while True:
        try:
            found.append(sock.recv(512))
        except BlockingIOError:
            return found


@pytest.mark.parametrize("face", FACES)
def test_a_server_that_never_answers_times_out_without_raising(
    silent_socket: socket.socket, silent: int, face: str
) -> None:
    """retries=1: the query is sent twice, then the lookup reports a timeout."""
    result: Result = run(face, selectors(), [("127.0.0.1", silent)], "check",
                         Facts(ip="192.0.2.10"), timeout=0.2, retries=1)
    ip = result["ip"]
    assert ip.components[0].status == "timeout"
    assert ip.score == 0.0 and ip.symbol is None
    assert "timeout" in result.errors[0]
    sent = received(silent_socket)
    assert len(sent) == 2
    assert sent[0][2:] == sent[1][2:]  # the same question, under two IDs


@pytest.mark.parametrize("face", FACES)
def test_a_port_where_nothing_listens_times_out(face: str) -> None:
    result: Result = run(face, selectors(), [("127.0.0.1", free_port())], "check",
                         Facts(ip="192.0.2.10"), timeout=0.2, retries=0)
    assert result["ip"].components[0].status == "timeout"
    assert result["ip"].score == 0.0


@pytest.mark.parametrize("face", FACES)
def test_the_next_server_is_asked_after_a_timeout(memory: Respond, face: str) -> None:
    silent, listening = ("127.0.0.1", 5301), ("127.0.0.1", 5302)

    def respond(wire: bytes, server: Server, tcp: bool) -> bytes | None:
        return memory(wire, server, tcp) if server == listening else None

    transport = MemoryTransport(respond)
    result: SelectorResult = run(face, selectors(), [silent, listening], "lookup", "ip",
                                 "192.0.2.10", timeout=0.2, retries=1, transport=transport)
    assert result.components[0].status == "hit"
    assert [server for server, _, _ in transport.sent] == [silent, listening]


@pytest.mark.parametrize("face", FACES)
def test_a_zone_the_server_does_not_serve_is_refused(memory: Respond, face: str) -> None:
    config = [SelectorConfig("ip", "ip", "nowhere.example", IP_SCHEME)]
    result: SelectorResult = local(face, config, memory, "lookup", "ip", "192.0.2.10")
    assert result.components[0].status == "refused"
    assert result.score == 0.0
    assert "refused" in result.errors[0]


@pytest.mark.parametrize("face", FACES)
def test_malformed_and_newer_txt_records_score_zero_and_say_why(memory: Respond, face: str) -> None:
    bad: SelectorResult = local(face, selectors(), memory, "lookup", "ip", MALFORMED_IP)
    assert bad.components[0].status == "malformed"
    assert bad.answers[0].text == "v=1;n=12;broken"
    newer: SelectorResult = local(face, selectors(), memory, "lookup", "ip", NEWER_IP)
    assert newer.components[0].status == "newer_version"
    assert "version 2" in newer.errors[0]
    assert bad.score == newer.score == 0.0


@e2e
@pytest.mark.parametrize("face", FACES)
def test_a_truncated_answer_is_fetched_over_tcp(zoned: Zoned, face: str) -> None:
    """bl.example.net's static "huge" TXT (about 1,770 bytes) only fits TCP."""
    query = Query(Token("generic", "generic", "huge", 1.0), "huge.bl.example.net")
    answer: Answer = run(face, selectors(), server(zoned), "answer", query)
    assert answer.status == "malformed"  # static text, not a v=1 record
    assert answer.text is not None and answer.text.startswith("huge-")


@pytest.mark.parametrize("face", FACES)
def test_a_truncated_answer_is_asked_again_over_the_transports_tcp(
    memory: Respond, face: str
) -> None:
    """The same in memory: a UDP reply with TC, then the query again over TCP."""
    query = Query(Token("generic", "generic", "huge", 1.0), "huge.bl.example.net")
    transport = MemoryTransport(memory)
    answer: Answer = run(face, selectors(), MEMORY, "answer", query, transport=transport)
    assert answer.status == "malformed"
    assert answer.text is not None and answer.text.startswith("huge-")
    assert [tcp for _, _, tcp in transport.sent] == [False, True]


@pytest.mark.parametrize("face", FACES)
def test_more_queries_than_the_concurrency_limit_are_all_answered_in_order(
    memory: Respond, face: str
) -> None:
    """concurrency=2 and nine names: the rest wait for a free slot, none is lost."""
    addresses = ["192.0.2.10", "192.0.2.200", MALFORMED_IP] * 3
    queries = [Query(Token("ip", "ip", a, 1.0), f"{reverse_ip(a)}.bl.example.net")
               for a in addresses]
    answers: list[Answer] = local(face, selectors(), memory, "answers", queries,
                                concurrency=2)
    assert [a.query for a in answers] == queries
    assert [a.status for a in answers] == ["hit", "nxdomain", "malformed"] * 3


@e2e
@pytest.mark.parametrize("face", FACES)
def test_the_system_resolver_path(zoned: Zoned, face: str) -> None:
    """servers=None goes through dnspython's Resolver (pointed at zoned here)."""

    def point(client: Client | AsyncClient) -> None:
        assert client.resolver is not None
        client.resolver.nameservers = ["127.0.0.1"]
        client.resolver.port = zoned.port

    if face == "sync":
        with Client(selectors(), None) as client:
            point(client)
            hit = client.lookup("ip", "192.0.2.10")
            missing = client.lookup("ip", "192.0.2.200")
            refused = client.answer(Query(Token("ip", "ip", "x", 1.0), "x.nowhere.example"))
    else:
        async def go() -> tuple[SelectorResult, SelectorResult, Answer]:
            async with AsyncClient(selectors(), None) as client:
                point(client)
                return (await client.lookup("ip", "192.0.2.10"),
                        await client.lookup("ip", "192.0.2.200"),
                        await client.answer(
                            Query(Token("ip", "ip", "x", 1.0), "x.nowhere.example")))

        hit, missing, refused = asyncio.run(go())
    assert hit.score == pytest.approx(rspamd(12))
    assert missing.components[0].status == "nxdomain"
    assert refused.status in ("refused", "servfail")


# ------------------------------------------------------------------ cache


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize("face", FACES)
def test_the_cache_honours_ttl_and_negative_ttl(memory: Respond, face: str) -> None:
    """TXT TTL 300; NXDOMAIN min(SOA TTL 3600, MINIMUM 60) = 60 (RFC 2308)."""
    clock = Clock()
    cache: TTLCache[tuple[str, str], Answer] = TTLCache(clock=clock)
    facts = Facts(ip="192.0.2.10", asn="64497")  # the ASN is not listed: NXDOMAIN

    def check() -> list[tuple[str, bool, int | None]]:
        result: Result = local(face, selectors(), memory, "check", facts, cache=cache)
        return [(a.status, a.cached, a.ttl) for a in result["ip"].answers]

    assert check() == [("hit", False, 300), ("nxdomain", False, 60)]
    clock.now = 59
    assert check() == [("hit", True, 241), ("nxdomain", True, 1)]
    clock.now = 61
    assert check() == [("hit", True, 239), ("nxdomain", False, 60)]
    clock.now = 100
    assert check() == [("hit", True, 200), ("nxdomain", True, 21)]
    clock.now = 301
    assert check() == [("hit", False, 300), ("nxdomain", False, 60)]


@pytest.mark.parametrize("face", FACES)
def test_a_reply_to_another_question_is_ignored(memory: Respond, face: str) -> None:
    """RFC 5452 section 9.1: a reply under the query's ID but to another question is not
    the reply; nothing else comes, and the query times out."""

    def forged(wire: bytes, server: Server, tcp: bool) -> bytes | None:
        other = dns.message.make_query("10.2.0.192.bl.example.org.", "TXT")
        other.id = dns.message.from_wire(wire).id
        return memory(other.to_wire(), server, tcp)

    result: SelectorResult = local(face, selectors(), forged, "lookup", "ip", "192.0.2.10",
                                   timeout=0.1, retries=0)
    assert result.components[0].status == "timeout"


@pytest.mark.parametrize("face", FACES)
def test_failures_are_not_cached(face: str) -> None:
    cache: TTLCache[tuple[str, str], Answer] = TTLCache(clock=Clock())
    local(face, selectors(), lambda *_: None, "check", Facts(ip="192.0.2.10"),  # no reply
          cache=cache, timeout=0.1, retries=0)
    assert len(cache) == 0


@e2e
def test_concurrent_async_checks_share_one_socket(zoned: Zoned) -> None:
    """Many checks in flight at once all get their own answers."""
    addresses = [f"192.0.2.{i}" for i in range(1, 60)] + ["192.0.2.10"] * 20

    async def go() -> list[Result]:
        async with AsyncClient(selectors(), server(zoned), concurrency=16) as client:
            return await asyncio.gather(*(client.check(Facts(ip=a)) for a in addresses))

    results = asyncio.run(go())
    for address, result in zip(addresses, results, strict=True):
        assert result["ip"].tokens[0].value == address
        assert result["ip"].errors == []
    assert all(r["ip"].score == pytest.approx(rspamd(12)) for r in results[-20:])


# ------------------------------------------------------------------ concurrency limit


def test_the_limiter_hands_out_slots_in_order() -> None:
    """Several slots at once, FIFO waiters, and a cancelled waiter passes its turn on."""

    async def go() -> list[str]:
        limiter = _Limiter(3)
        order: list[str] = []
        assert limiter.try_take(2)
        assert not limiter.try_take(2)

        async def wait(name: str) -> None:
            await limiter.take()
            order.append(name)

        first = asyncio.ensure_future(wait("first"))
        cancelled = asyncio.ensure_future(wait("cancelled"))
        last = asyncio.ensure_future(wait("last"))
        await asyncio.sleep(0)
        assert order == ["first"] and limiter.used == 3  # one slot was free
        cancelled.cancel()
        await asyncio.sleep(0)
        assert not limiter.try_take(1)  # "last" is queued ahead of newcomers
        limiter.give(2)
        await asyncio.gather(first, last)
        assert cancelled.cancelled()
        assert limiter.used == 2
        return order

    assert asyncio.run(go()) == ["first", "last"]


def test_async_checks_wait_for_a_free_slot(silent_socket: socket.socket, silent: int
                                           ) -> None:
    """concurrency=3: a fourth check waits until a slot frees, here by a timeout."""

    async def go() -> tuple[int, list[Result]]:
        async with AsyncClient(selectors(), [("127.0.0.1", silent)], concurrency=3,
                               timeout=0.3, retries=0) as client:
            checks = asyncio.gather(
                *(client.check(Facts(ip=f"192.0.2.{i}")) for i in range(1, 5)))
            for _ in range(5):
                await asyncio.sleep(0)  # every check runs up to its first wait
            in_flight = len(received(silent_socket))
            return in_flight, await checks

    in_flight, results = asyncio.run(go())
    assert in_flight == 3
    assert len(received(silent_socket)) == 1  # the fourth, sent when a slot freed
    assert all(r["ip"].components[0].status == "timeout" for r in results)
