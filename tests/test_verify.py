"""Optional DKIM verification (dkimpy) against a real zoned on loopback serving the key."""

from __future__ import annotations

import base64
import logging
import shutil
import subprocess
from collections.abc import Iterator

import pytest

from client import verify
from client.facts import DkimResult, facts_from_message
from tests.conftest import copy_zones
from tests.zoned_process import Zoned, start_zoned

dkim = pytest.importorskip("dkim")

pytestmark = pytest.mark.e2e

DOMAIN = "mail.example.net"
SELECTOR = b"sel"

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
    zoned = start_zoned(zones, base / "zoned.log")
    yield zoned
    zoned.stop()


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
    facts = facts_from_message(signed(key[0]), verify=True,
                               dns_server=("127.0.0.1", server.port))
    assert facts.dkim == (DkimResult(DOMAIN, "pass"),)


def test_tampered_body_fails(server: Zoned, key: tuple[bytes, str]) -> None:
    tampered = signed(key[0]).replace(b"Hello Alice", b"Hello Mallory")
    facts = facts_from_message(tampered, verify=True, dns_server=("127.0.0.1", server.port))
    assert facts.dkim == (DkimResult(DOMAIN, "fail"),)


def test_missing_key_fails(server: Zoned, key: tuple[bytes, str]) -> None:
    message = dkim.sign(MESSAGE, b"gone", DOMAIN.encode(), key[0]) + MESSAGE
    facts = facts_from_message(message, verify=True, dns_server=("127.0.0.1", server.port))
    assert facts.dkim == (DkimResult(DOMAIN, "fail"),)


def test_without_verify_uses_authentication_results(key: tuple[bytes, str]) -> None:
    facts = facts_from_message(signed(key[0]))
    assert facts.dkim == (DkimResult("recorded.example", "neutral"),)
    assert facts.spf_result == "softfail"
    assert facts.spf_domain == "recorded.example"


def test_given_facts_win(server: Zoned, key: tuple[bytes, str]) -> None:
    given = (DkimResult("given.example", "pass"),)
    facts = facts_from_message(signed(key[0]), verify=True, dkim=given,
                               dns_server=("127.0.0.1", server.port))
    assert facts.dkim == given


def test_spf_not_verified_with_a_dns_server(server: Zoned, key: tuple[bytes, str]) -> None:
    # pyspf cannot be pointed at a server: the recorded SPF result stays.
    facts = facts_from_message(signed(key[0]), verify=True,
                               dns_server=("127.0.0.1", server.port))
    assert facts.spf_result == "softfail"


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
            facts = facts_from_message(signed(key[0]), verify=True,
                                       dns_server=("127.0.0.1", 9))
            assert facts.dkim == (DkimResult("recorded.example", "neutral"),)
            assert facts.spf_result == "softfail"
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 2  # one for dkimpy, one for pyspf
    assert "dkimpy" in warnings[0].getMessage()
