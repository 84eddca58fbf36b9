"""Optional DKIM (dkimpy) and SPF (pyspf) verification against a real zoned on loopback
serving the DKIM key and the SPF records."""

from __future__ import annotations

import asyncio
import base64
import logging
import shutil
import subprocess
import threading
from collections.abc import Iterator
from typing import Any

import dns.resolver
import pytest

from client import verify
from client.client import AsyncClient, Client
from client.facts import DkimResult, Facts, facts_from_message
from client.selectorconfig import SelectorConfig
from client.selectors import spf_token
from listformat.names import OwnerScheme
from tests.support.ports import free_port
from tests.support.publishing import copy_zones, publish
from tests.support.zoned_process import Zoned, start_zoned

dkim = pytest.importorskip("dkim")
spf = pytest.importorskip("spf")

pytestmark = pytest.mark.e2e

DOMAIN = "mail.example.net"
SELECTOR = b"sel"

SENDER = "sender.example"  # a zone of its own: the SPF records of the tests below
SPF_TOP = f"v=spf1 ip4:192.0.2.0/24 include:inc.{SENDER} -all"
SPF_INC = "v=spf1 ip4:203.0.113.0/24 -all"
SPF_SOFT = f"v=spf1 mx:{SENDER} ~all"
MX_IP = "198.51.100.25"
# Over 255 bytes: served as two character-strings, hashed joined (as Rspamd does).
SPF_LONG = "v=spf1 " + " ".join(f"ip4:198.51.100.{i}" for i in range(100, 120)) + " -all"
SPF_BROKEN = "v=spf1 include:unserved.example -all"  # zoned REFUSES unserved.example
REP_ZONE = "spf.example.net"

MESSAGE = (
    b"Received: from mx.sender.example (mx.sender.example [192.0.2.1])\r\n"
    b"\tby mx.example.net with ESMTP id 1; Mon, 1 Jan 2024 00:00:00 +0000\r\n"
    b"Authentication-Results: mx.example.net; dkim=neutral header.d=recorded.example;\r\n"
    b"\tspf=softfail smtp.mailfrom=bob@recorded.example\r\n"
    b"Return-Path: <bob@mail.example.net>\r\n"
    b"From: Bob <bob@mail.example.net>\r\n"
    b"To: alice@example.org\r\n"
    b"Subject: hello\r\n"
    b"\r\n"
    b"Hello Alice, see https://example.com/page\r\n"
)


@pytest.fixture(scope="module")
def key() -> tuple[bytes, str]:
    """A fresh RSA key: the PEM private key and the base64 DER public key (``p=``)."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    pem = subprocess.run(["openssl", "genrsa", "2048"], check=True, capture_output=True,
                         timeout=60).stdout
    der = subprocess.run(["openssl", "rsa", "-pubout", "-outform", "DER"], input=pem,
                         check=True, capture_output=True, timeout=60).stdout
    return pem, base64.b64encode(der).decode("ascii")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, key: tuple[bytes, str]
           ) -> Iterator[Zoned]:
    base = tmp_path_factory.mktemp("verify")
    zones = copy_zones(base)
    (zones / f"{DOMAIN}.yaml").write_text(
        f"zone: {DOMAIN}\n"
        "soa: {mname: ns1.example.net, rname: hostmaster@example.net}\n"
        "ns: [ns1.example.net]\n"
        "owner: name\n"
        "records:\n"
        "  sel._domainkey:\n"
        f'    TXT: ["v=DKIM1; k=rsa; p={key[1]}"]\n'
    )
    (zones / f"{SENDER}.yaml").write_text(
        f"zone: {SENDER}\n"
        "soa: {mname: ns1.example.net, rname: hostmaster@example.net}\n"
        "ns: [ns1.example.net]\n"
        "owner: name\n"
        "records:\n"
        f'  "@": {{TXT: ["{SPF_TOP}", "site-verification=abc"], MX: ["10 mx.{SENDER}."]}}\n'
        f'  mx: {{A: [{MX_IP}]}}\n'
        f'  inc: {{TXT: ["{SPF_INC}"]}}\n'
        f'  soft: {{TXT: ["{SPF_SOFT}"]}}\n'
        f'  long: {{TXT: ["{SPF_LONG}"]}}\n'
        f'  broken: {{TXT: ["{SPF_BROKEN}"]}}\n'
        f'  nospf: {{TXT: ["not an spf record"]}}\n'
    )
    (zones / f"{REP_ZONE}.yaml").write_text(
        f"zone: {REP_ZONE}\n"
        "soa: {mname: ns1.example.net, rname: hostmaster@example.net}\n"
        f"ns: [ns1.example.net]\nowner: name\nstore: ../var/{REP_ZONE}\n"
    )
    publish(zones, REP_ZONE, [{"token": spf_token(SPF_TOP), "n": 50, "v1m": 15},
                              {"token": spf_token(SPF_LONG), "n": 50, "v1m": -15}])
    zoned = start_zoned(zones, base / "zoned.log")
    yield zoned
    zoned.stop()


def verified(data: bytes, dns_server: tuple[str, int], **given: Any) -> Facts:
    """The facts of ``data`` with DKIM and SPF verified at ``dns_server``: the step the
    faces take for ``check_message(verify=True)``, the caller's ``given`` facts winning."""
    facts = facts_from_message(data, **given)
    return verify.verify_message(data, facts, given=given.keys(), dns_server=dns_server)


def signed(pem: bytes, message: bytes = MESSAGE) -> bytes:
    signature: bytes = dkim.sign(message, SELECTOR, DOMAIN.encode(), pem,
                                 include_headers=[b"from", b"to", b"subject"])
    return signature + message


def test_key_is_served(server: Zoned, key: tuple[bytes, str]) -> None:
    lookup = verify.txt_lookup(("127.0.0.1", server.port))
    assert lookup(b"sel._domainkey." + DOMAIN.encode() + b".") == (
        f"v=DKIM1; k=rsa; p={key[1]}".encode()
    )
    assert lookup("nothing._domainkey." + DOMAIN) is None


def test_signed_message_passes(server: Zoned, key: tuple[bytes, str]) -> None:
    facts = verified(signed(key[0]), ("127.0.0.1", server.port))
    assert facts.dkim == (DkimResult(DOMAIN, "pass"),)


def test_tampered_body_fails(server: Zoned, key: tuple[bytes, str]) -> None:
    tampered = signed(key[0]).replace(b"Hello Alice", b"Hello Mallory")
    facts = verified(tampered, ("127.0.0.1", server.port))
    assert facts.dkim == (DkimResult(DOMAIN, "fail"),)


def test_missing_key_fails(server: Zoned, key: tuple[bytes, str]) -> None:
    message = dkim.sign(MESSAGE, b"gone", DOMAIN.encode(), key[0]) + MESSAGE
    facts = verified(message, ("127.0.0.1", server.port))
    assert facts.dkim == (DkimResult(DOMAIN, "fail"),)


def test_without_verify_uses_authentication_results(key: tuple[bytes, str]) -> None:
    facts = facts_from_message(signed(key[0]))
    assert facts.dkim == (DkimResult("recorded.example", "neutral"),)
    assert facts.spf_result == "softfail"
    assert facts.spf_domain == "recorded.example"


def test_given_facts_win(server: Zoned, key: tuple[bytes, str]) -> None:
    given = (DkimResult("given.example", "pass"),)
    facts = verified(signed(key[0]), ("127.0.0.1", server.port), dkim=given)
    assert facts.dkim == given


def test_missing_package_warns_once_and_falls_back(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
    key: tuple[bytes, str],
) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "dkim", None)  # import dkim raises ImportError
    monkeypatch.setitem(sys.modules, "spf", None)
    monkeypatch.setattr(verify, "_warned", set())
    with caplog.at_level(logging.WARNING, logger="client.verify"):
        for _ in range(2):
            facts = verified(signed(key[0]), ("127.0.0.1", 9))
            assert facts.dkim == (DkimResult("recorded.example", "neutral"),)
            assert facts.spf_result == "softfail"
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 2  # one for dkimpy, one for pyspf
    assert "dkimpy" in warnings[0].getMessage()


# ----------------------------------------------------------------------------- SPF


def sent(ip: str, mail_from: str, helo: str = "mx.sender.example") -> bytes:
    """A message whose first untrusted hop is ``ip`` and whose envelope sender is
    ``mail_from`` ("" for the null sender), with a recorded SPF result to be replaced."""
    return (
        f"Received: from {helo} ({helo} [{ip}])\r\n"
        "\tby mx.example.net with ESMTP id 2; Mon, 1 Jan 2024 00:00:00 +0000\r\n"
        "Authentication-Results: mx.example.net; spf=neutral smtp.mailfrom=x@recorded.example\r\n"
        f"Return-Path: <{mail_from}>\r\n"
        "From: someone@example.org\r\nSubject: hi\r\n\r\nHello\r\n"
    ).encode()


def spf_facts(server: Zoned, ip: str, mail_from: str, **kw: str) -> tuple[str | None, ...]:
    facts = verified(sent(ip, mail_from, **kw), ("127.0.0.1", server.port))
    return facts.spf_result, facts.spf_domain, facts.spf_record


@pytest.mark.parametrize(("ip", "sender", "expected"), [
    ("192.0.2.1", f"bob@{SENDER}", ("pass", SENDER, SPF_TOP)),
    ("203.0.113.9", f"bob@{SENDER}", ("pass", SENDER, SPF_TOP)),  # through include:
    ("198.51.100.1", f"bob@{SENDER}", ("fail", SENDER, SPF_TOP)),
    (MX_IP, f"bob@soft.{SENDER}", ("pass", f"soft.{SENDER}", SPF_SOFT)),  # mx -> A
    ("198.51.100.26", f"bob@soft.{SENDER}", ("softfail", f"soft.{SENDER}", SPF_SOFT)),
    ("198.51.100.119", f"bob@long.{SENDER}", ("pass", f"long.{SENDER}", SPF_LONG)),
    ("192.0.2.1", f"bob@nospf.{SENDER}", ("none", f"nospf.{SENDER}", None)),
    ("192.0.2.1", f"bob@absent.{SENDER}", ("none", f"absent.{SENDER}", None)),
])
def test_spf_is_checked_against_the_given_server(
    server: Zoned, ip: str, sender: str, expected: tuple[str | None, ...]
) -> None:
    """Every query of the check (record, include, mx, its A) goes to zoned, and the
    verified result, domain and record replace the Authentication-Results ones."""
    assert spf_facts(server, ip, sender) == expected


def test_null_sender_checks_the_helo_name(server: Zoned) -> None:
    assert spf_facts(server, "192.0.2.7", "", helo=SENDER) == ("pass", SENDER, SPF_TOP)


def test_a_long_record_is_served_in_several_strings_and_hashed_joined(server: Zoned) -> None:
    answer = server.ask(f"long.{SENDER}", "TXT").answer[0]
    assert len(next(iter(answer)).strings) == 2  # type: ignore[attr-defined]
    assert spf_facts(server, "198.51.100.100", f"b@long.{SENDER}")[2] == SPF_LONG


@pytest.mark.parametrize("sender", [f"bob@broken.{SENDER}", "bob@unserved.example"])
def test_an_spf_record_that_cannot_be_fetched_is_a_temperror(server: Zoned, sender: str
                                                             ) -> None:
    """REFUSED for the record itself or for an included one: temperror, never raised;
    the top record is still reported when it was fetched."""
    result, _, record = spf_facts(server, "192.0.2.1", sender)
    assert result == "temperror"
    assert record == (SPF_BROKEN if "broken" in sender else None)


def test_a_server_that_does_not_answer_is_a_temperror() -> None:
    port = free_port()  # nothing listens there
    verdict = verify.verify_spf("192.0.2.1", f"bob@{SENDER}", None,
                                dns_server=("127.0.0.1", port), timeout=0.5)
    assert verdict == verify.SpfVerdict("temperror", SENDER, None)


def test_given_spf_facts_win_over_verified_ones(server: Zoned) -> None:
    facts = verified(sent("192.0.2.1", f"bob@{SENDER}"), ("127.0.0.1", server.port),
                     spf_record="v=spf1 -all")
    assert (facts.spf_result, facts.spf_record) == ("pass", "v=spf1 -all")


def test_spf_checks_leave_the_default_resolver_alone(server: Zoned) -> None:
    """pyspf's other users keep the system resolver: ours lives only during a check."""
    before = dns.resolver.default_resolver
    spf_facts(server, "192.0.2.1", f"bob@{SENDER}")
    assert dns.resolver.default_resolver is before
    assert verify._spf_dns.get() is None


@pytest.mark.parametrize(("ip", "sender", "symbol", "score"), [
    ("192.0.2.1", f"bob@{SENDER}", "SPF_REP_SPAM", 0.86),  # tanh(15/15*1.83178-0.5493)
    ("198.51.100.110", f"bob@long.{SENDER}", "SPF_REP_HAM", -0.98),  # tanh(-15/15*...)
])
def test_a_verified_spf_pass_feeds_the_spf_selector(
    server: Zoned, ip: str, sender: str, symbol: str, score: float
) -> None:
    """End to end: zoned serves the record, pyspf passes it, its text hashes to the
    token published in the reputation zone, and the selector scores it."""
    facts = verified(sent(ip, sender), ("127.0.0.1", server.port))
    config = [SelectorConfig("spf", "spf", REP_ZONE, OwnerScheme("name"))]
    with Client(config, [("127.0.0.1", server.port)]) as client:
        result = client.check(facts)["spf"]
    assert result.queries[0].qname == f"{spf_token(facts.spf_record or '')}.{REP_ZONE}"
    assert result.components[0].status == "hit"
    assert (result.symbol, round(result.score, 2)) == (symbol, score)


def test_a_verified_spf_fail_queries_nothing(server: Zoned) -> None:
    facts = verified(sent("198.51.100.1", f"bob@{SENDER}"), ("127.0.0.1", server.port))
    config = [SelectorConfig("spf", "spf", REP_ZONE, OwnerScheme("name"))]
    with Client(config, [("127.0.0.1", server.port)]) as client:
        assert client.check(facts)["spf"].queries == []


# ----------------------------------------------------------------------------- the faces


def test_the_sync_face_verifies_as_a_step_of_its_own(server: Zoned) -> None:
    """check_message(verify=True): the verified SPF record, not the recorded neutral,
    is what the spf selector hashes and asks for."""
    config = [SelectorConfig("spf", "spf", REP_ZONE, OwnerScheme("name"))]
    data = sent("192.0.2.1", f"bob@{SENDER}")
    with Client(config, [("127.0.0.1", server.port)]) as client:
        assert client.check_message(data)["spf"].queries == []  # neutral: nothing asked
        result = client.check_message(data, verify=True,
                                      dns_server=("127.0.0.1", server.port))["spf"]
    assert result.queries[0].qname == f"{spf_token(SPF_TOP)}.{REP_ZONE}"
    assert (result.symbol, round(result.score, 2)) == ("SPF_REP_SPAM", 0.86)


def test_the_async_face_verifies_off_its_event_loop(
    server: Zoned, monkeypatch: pytest.MonkeyPatch
) -> None:
    """dkimpy and pyspf block: the async face runs them in a worker thread, so the loop's
    own thread never waits on their DNS."""
    threads: list[threading.Thread] = []
    real = verify.verify_message

    def spy(*args: Any, **kwargs: Any) -> Facts:
        threads.append(threading.current_thread())
        return real(*args, **kwargs)

    monkeypatch.setattr("client.client.verify_message", spy)
    config = [SelectorConfig("spf", "spf", REP_ZONE, OwnerScheme("name"))]

    async def main() -> tuple[str | None, float, threading.Thread]:
        async with AsyncClient(config, [("127.0.0.1", server.port)]) as client:
            result = await client.check_message(sent("192.0.2.1", f"bob@{SENDER}"),
                                                verify=True,
                                                dns_server=("127.0.0.1", server.port))
        return result["spf"].symbol, result["spf"].score, threading.current_thread()

    symbol, score, loop_thread = asyncio.run(main())
    assert (symbol, round(score, 2)) == ("SPF_REP_SPAM", 0.86)
    assert len(threads) == 1 and threads[0] is not loop_thread
