"""Postfix postscreen with the postscreen_dnsbl_sites of docs/peers/postfix.md against a
real zoned, in a private network namespace where zoned is the system resolver's server."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import dns.rcode
import pytest

from listformat.names import reverse_ip
from tests.docsnippets import snippet
from tests.peer_common import (
    BAND_SENDERS,
    IP,
    NEUTRAL_SENDER,
    UNLISTED_SENDER,
    peer_records,
    published_zoned,
)
from tests.support.publishing import copy_zones, publish
from tests.support.repo import REPO
from tests.support.zoned_process import Zoned

PAGE = "peers/postfix.md"
CLIENTS = [*BAND_SENDERS, NEUTRAL_SENDER, UNLISTED_SENDER]
#: Weight per band of the docs' table, which the snippet must implement.
WEIGHTS = {"127.0.0.2": 3, "127.0.0.3": 2, "127.0.0.4": 1, "127.0.0.6": -2, "127.0.0.7": -2}
THRESHOLD = 3

MAIN_HARNESS = """compatibility_level = 3.6
myhostname = mx.example.org
mydestination = example.org
alias_maps =
alias_database =
local_recipient_maps =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
queue_directory = {dir}/spool
data_directory = {dir}/data
maillog_file_prefixes = {dir}
maillog_file = {dir}/maillog
postscreen_greet_wait = 2s
"""

MASTER_HARNESS = """postlog   unix-dgram n  -       n       -       1       postlogd
cleanup   unix  n       -       n       -       0       cleanup
rewrite   unix  -       -       n       -       -       trivial-rewrite
proxymap  unix  -       -       n       -       -       proxymap
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
"""


# ------------------------------------------------------------------ the snippet's meaning


def dnsbl_sites(main_cf: str) -> list[tuple[str, str | None, int]]:
    """(site, filter, weight) of each postscreen_dnsbl_sites entry of a main.cf text."""
    match = re.search(r"^postscreen_dnsbl_sites\s*=(.*?)(?=^\S)", main_cf + "\nend", re.S | re.M)
    assert match is not None
    entries = []
    for item in re.split(r"[\s,]+", match.group(1).strip()):
        site, _, weight = item.partition("*")
        domain, _, pattern = site.partition("=")
        entries.append((domain, pattern or None, int(weight or 1)))
    return entries


def octet_matches(pattern: str, octet: int) -> bool:
    if pattern.startswith("[") and pattern.endswith("]"):
        for part in pattern[1:-1].split(";"):
            low, _, high = part.partition("..")
            if int(low) <= octet <= int(high or low):
                return True
        return False
    return int(pattern) == octet


def filter_matches(pattern: str | None, answer: str) -> bool:
    """postscreen's reply filter: an address with per-octet [a..b] ranges and [a;b] lists."""
    if pattern is None:
        return True
    parts = re.findall(r"\[[^\]]*\]|[^.]+", pattern)
    octets = [int(o) for o in answer.split(".")]
    return len(parts) == 4 and all(map(octet_matches, parts, octets))


def rank(entries: list[tuple[str, str | None, int]], zone: str, answers: set[str]) -> int:
    """postscreen's score: the weights of every entry of ``zone`` that an answer matches."""
    return sum(weight for site, pattern, weight in entries
               if site == zone and any(filter_matches(pattern, a) for a in answers))


@pytest.fixture(scope="module")
def zoned(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Zoned]:
    with published_zoned(tmp_path_factory.mktemp("zoned")) as server:
        yield server


def test_snippet_weights_per_band(zoned: Zoned) -> None:
    """The docs' weights, applied to zoned's answers, give each band its documented rank."""
    entries = dnsbl_sites(snippet(PAGE, "main.cf"))
    for addr, (_score, code) in BAND_SENDERS.items():
        reply = zoned.ask(f"{reverse_ip(addr)}.{IP}")
        answers = {r.to_text() for rrset in reply.answer for r in rrset}
        assert answers == {code}
        assert rank(entries, IP, answers) == WEIGHTS[code], addr
    for addr in (NEUTRAL_SENDER, UNLISTED_SENDER):
        reply = zoned.ask(f"{reverse_ip(addr)}.{IP}")
        assert not reply.answer and reply.rcode() in (dns.rcode.NOERROR, dns.rcode.NXDOMAIN)
    assert filter_matches("127.0.0.[6..7]", "127.0.0.6")
    assert not filter_matches("127.0.0.[6..7]", "127.0.0.5")


# ------------------------------------------------------------------ the real postscreen


def postfix_available() -> str | None:
    """Why a real postscreen cannot run here, or None."""
    if os.geteuid() != 0:
        return "needs root for a private network namespace"
    for program in ("unshare", "ip", "postfix"):
        if shutil.which(program) is None and not Path(f"/usr/sbin/{program}").exists():
            return f"{program} is not installed"
    if not Path("/usr/lib/postfix/sbin/postscreen").exists():
        return "Postfix is not installed (Debian package postfix)"
    return None


@pytest.fixture(scope="module")
def postscreen(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[dict[str, list[str]],
                                                                          str]]:
    """Transcripts of one SMTP session per client address, and postscreen's log."""
    reason = postfix_available()
    if reason is not None:
        pytest.skip(reason)
    base = tmp_path_factory.mktemp("postfix-zones")
    zones = copy_zones(base)
    for zone, records in peer_records().items():
        publish(zones, zone, records)
    # Postfix's daemons run as user postfix: its directories must not be under a 0700 one.
    work = Path(tempfile.mkdtemp(prefix="repzone-postfix-"))
    try:
        work.chmod(0o755)
        etc = work / "etc"
        shutil.copytree("/etc/postfix", etc, ignore=shutil.ignore_patterns("main.cf",
                                                                          "master.cf"))
        for sub in ("spool", "data"):
            (work / sub).mkdir()
        shutil.chown(work / "data", "postfix")
        main = snippet(PAGE, "main.cf", replace={
            "postscreen_access_list = permit_mynetworks": "postscreen_access_list ="})
        (etc / "main.cf").write_text(MAIN_HARNESS.format(dir=work) + main)
        master = snippet(PAGE, "master.cf", replace={
            "smtp      inet  n       -       y": "127.0.0.1:25 inet n    -       n",
            "smtpd     pass  -       -       y": "smtpd     pass  -       -       n",
            "dnsblog   unix  -       -       y": "dnsblog   unix  -       -       n",
            "tlsproxy  unix  -       -       y": "tlsproxy  unix  -       -       n"})
        (etc / "master.cf").write_text(master + MASTER_HARNESS)
        (work / "resolv.conf").write_text("nameserver 127.0.0.1\n")
        config = work / "config.json"
        config.write_text(json.dumps({
            "clients": CLIENTS, "resolv_conf": str(work / "resolv.conf"),
            "postfix_dir": str(etc), "zones": str(zones), "zoned_log": str(base / "zoned.log"),
        }))
        done = subprocess.run(
            ["unshare", "--net", "--mount", "--fork", sys.executable, "-m",
             "tests.peer_postfix_ns", str(config)],
            cwd=REPO, capture_output=True, text=True, timeout=120)
        log = (work / "maillog").read_text() if (work / "maillog").exists() else ""
        assert done.returncode == 0, done.stderr + log
        yield json.loads(done.stdout), log
    finally:
        shutil.rmtree(work, ignore_errors=True)


def test_very_bad_client_is_blocked(postscreen: tuple[dict[str, list[str]], str]) -> None:
    """A client answering 127.0.0.2 reaches the threshold and every RCPT gets 550."""
    transcripts, log = postscreen
    blocked = [a for a, (_s, code) in BAND_SENDERS.items() if WEIGHTS[code] >= THRESHOLD]
    assert blocked == ["192.0.2.11"]
    for addr in blocked:
        rcpt = transcripts[addr][3]
        assert rcpt.startswith("550 5.7.1 Service unavailable; client "
                               f"[{addr}] blocked using {IP}"), transcripts[addr]
        assert re.search(rf"DNSBL rank {THRESHOLD} for \[{re.escape(addr)}\]", log), log


def test_other_clients_pass_to_smtpd(postscreen: tuple[dict[str, list[str]], str]) -> None:
    """Every band below the threshold, neutral and unlisted clients reach the real smtpd."""
    transcripts, log = postscreen
    passing = [a for a in CLIENTS if a != "192.0.2.11"]
    for addr in passing:
        assert transcripts[addr][3].startswith("250"), transcripts[addr]
        assert re.search(rf"PASS NEW \[{re.escape(addr)}\]", log), (addr, log)
        assert not re.search(rf"DNSBL rank \S+ for \[{re.escape(addr)}\]", log), addr
