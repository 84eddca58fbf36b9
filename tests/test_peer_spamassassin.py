"""Debian's SpamAssassin 4.0 with the rules of docs/peers/spamassassin.md against a real
zoned: check_rbl_sub per band on the IP zone, HashBL on the hashed zone's sha1 alias."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.docsnippets import snippet
from tests.peer_common import (
    BAD_ADDRESS,
    BAND_SENDERS,
    GOOD_ADDRESS,
    NEUTRAL_SENDER,
    UNLISTED_ADDRESS,
    UNLISTED_SENDER,
    published_zoned,
)
from tests.support.processes import tool
from tests.support.zoned_process import Zoned

PAGE = "peers/spamassassin.md"

HARNESS = """loadplugin Mail::SpamAssassin::Plugin::Check
loadplugin Mail::SpamAssassin::Plugin::DNSEval
loadplugin Mail::SpamAssassin::Plugin::HashBL
"""

SETTINGS = """use_bayes 0
util_rb_tld com org net
report_safe 0
add_header all Tests _TESTS(,)_
"""

IP_RULES = {"127.0.0.2": "RCVD_IN_REPZONE_VERY_BAD", "127.0.0.3": "RCVD_IN_REPZONE_BAD",
            "127.0.0.4": "RCVD_IN_REPZONE_SUSPICIOUS", "127.0.0.6": "RCVD_IN_REPZONE_GOOD",
            "127.0.0.7": "RCVD_IN_REPZONE_VERY_GOOD"}
SENDER_RULES = {"127.0.0.2": "REPZONE_SENDER_BAD", "127.0.0.3": "REPZONE_SENDER_BAD",
                "127.0.0.4": "REPZONE_SENDER_BAD", "127.0.0.6": "REPZONE_SENDER_GOOD",
                "127.0.0.7": "REPZONE_SENDER_GOOD"}


def message(relay: str, sender: str) -> str:
    return (
        f"Return-Path: <{sender}>\n"
        f"Received: from mail.example.com (mail.example.com [{relay}])\n"
        "\tby mx.example.org (Postfix) with ESMTP id 4AB12\n"
        "\tfor <rcpt@example.org>; Sat, 22 Nov 2025 10:00:00 +0000\n"
        "From: Sender <sender@example.com>\n"
        "To: rcpt@example.org\n"
        "Subject: peer test\n"
        "Message-ID: <peer-test@example.com>\n"
        "Date: Sat, 22 Nov 2025 10:00:00 +0000\n"
        "\n"
        "Hello.\n"
    )


@dataclass
class SpamAssassin:
    directory: Path

    def hits(self, relay: str, sender: str) -> set[str]:
        """Rules that hit a message relayed by ``relay`` with envelope sender ``sender``."""
        done = subprocess.run(
            [tool("spamassassin", "spamassassin"), "-C", str(self.directory / "rules"),
             "--siteconfigpath", str(self.directory / "site"),
             "-p", str(self.directory / "user_prefs"), "-t"],
            input=message(relay, sender), capture_output=True, text=True, check=True)
        header = re.search(r"^X-Spam-Tests: (.*)$", done.stdout, re.M)
        assert header is not None, done.stdout + done.stderr
        return {t for t in header.group(1).strip().split(",") if t and t != "none"}

    def many(self, cases: list[tuple[str, str]]) -> list[set[str]]:
        with ThreadPoolExecutor(max_workers=4) as pool:
            return list(pool.map(lambda case: self.hits(*case), cases))


@pytest.fixture(scope="module")
def zoned(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Zoned]:
    with published_zoned(tmp_path_factory.mktemp("zoned")) as server:
        yield server


@pytest.fixture(scope="module")
def spamassassin(zoned: Zoned, tmp_path_factory: pytest.TempPathFactory) -> SpamAssassin:
    directory = tmp_path_factory.mktemp("spamassassin")
    rules = directory / "rules"
    rules.mkdir()
    (directory / "site").mkdir()
    (rules / "init.pre").write_text(HARNESS)
    (rules / "10_settings.cf").write_text(SETTINGS)
    (rules / "20_dns.cf").write_text(snippet(
        PAGE, "dns.cf", replace={"127.0.0.1:5353": f"127.0.0.1:{zoned.port}"}))
    (rules / "50_repzone.cf").write_text(snippet(PAGE, "repzone.cf"))
    lint = subprocess.run(
        [tool("spamassassin", "spamassassin"), "-C", str(rules), "--siteconfigpath",
         str(directory / "site"), "-p", str(directory / "user_prefs"), "--lint"],
        capture_output=True, text=True)
    assert lint.returncode == 0, lint.stderr
    return SpamAssassin(directory)


def test_relay_ip_rules_per_band(spamassassin: SpamAssassin) -> None:
    """The relay's band gives exactly its check_rbl_sub rule; neutral and unlisted none."""
    relays = [*BAND_SENDERS, NEUTRAL_SENDER, UNLISTED_SENDER]
    found = spamassassin.many([(relay, UNLISTED_ADDRESS) for relay in relays])
    expected = [{IP_RULES[code]} for _score, code in BAND_SENDERS.values()] + [set(), set()]
    assert dict(zip(relays, found, strict=True)) == dict(zip(relays, expected, strict=True))


def test_hashbl_envelope_sender(spamassassin: SpamAssassin) -> None:
    """HashBL's sha1 of the (lowercased) envelope sender finds the zone's sha1/hex alias."""
    cases = [(UNLISTED_SENDER, BAD_ADDRESS), (UNLISTED_SENDER, BAD_ADDRESS.upper()),
             (UNLISTED_SENDER, GOOD_ADDRESS), (UNLISTED_SENDER, UNLISTED_ADDRESS)]
    found = spamassassin.many(cases)
    assert found == [{SENDER_RULES["127.0.0.2"]}, {SENDER_RULES["127.0.0.2"]},
                     {SENDER_RULES["127.0.0.7"]}, set()]


def test_relay_and_sender_together(spamassassin: SpamAssassin) -> None:
    """Both lists are asked for one message and both rules count."""
    assert spamassassin.hits("192.0.2.11", BAD_ADDRESS) == {
        "RCVD_IN_REPZONE_VERY_BAD", "REPZONE_SENDER_BAD"}
