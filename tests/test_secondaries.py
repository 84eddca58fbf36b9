"""Knot DNS and NSD as secondaries of a real zoned: AXFR, NOTIFY then IXFR, TSIG, ACLs.

Each secondary runs the configuration of its docs page (docs/peers/), and zoned runs the
docs' ``transfer``/``keys`` sections appended to copies of the example zones.  One zoned
and one secondary are started per kind of secondary and TSIG mode, and shared by the
tests of this module, which run in order: the first transfer (AXFR), the answers, then
a publish that NOTIFY brings by IXFR.
"""

from __future__ import annotations

import base64
import os
import re
import shlex
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import dns.exception
import dns.flags
import dns.message
import dns.query
import dns.rcode
import dns.rdatatype
import dns.rrset
import pytest

from listformat import names
from tests.docsnippets import snippet
from tests.secondaries import (
    DOC_ADDRESS,
    DOC_PRIMARY,
    DOC_SECRET,
    PAGE,
    Key,
    Kind,
    Secondary,
    add_transfer_section,
    start_secondary,
    wait_for,
    zone_transfer_section,
)
from tests.support.ports import free_port
from tests.support.processes import tool
from tests.support.publishing import copy_zones, publish, publish_samples
from tests.support.zoned_process import Zoned, start_zoned
from zoned.config import load_zones

pytestmark = pytest.mark.e2e

IP = "bl.example.net"
HASH = "hash.example.net"
ORIGINS = (IP, HASH)

# Published before zoned starts, on top of the shipped samples.
BEFORE = [
    {"token": "192.0.2.40", "n": 20, "s": 12, "h": 6, "p": 2, "sc": 0.45, "l": 1763769600},
    {"token": "10.20.0.0/16", "n": 900, "s": 880, "h": 10, "p": 10, "sc": 0.93},
    {"token": "2001:db8:5::7", "n": 12, "sc": -0.5},
]
# Published while the secondaries run: a changed score and new addresses, which no
# network covers (incremental by nature) ...
AFTER = [
    {"token": "192.0.2.1", "n": 130, "s": 20, "h": 100, "p": 10, "sc": -0.6},
    {"token": "192.0.2.41", "n": 50, "s": 50, "h": 0, "p": 0, "sc": 0.99},
    {"token": "2001:db8:7::1", "n": 14, "sc": 0.5},
]
# ... and networks, one not aligned on an octet (16 wildcards in the zone's names).
NETWORKS = [
    {"token": "172.16.0.0/12", "n": 70, "sc": 0.2},
    {"token": "10.30.0.0/16", "n": 400, "sc": -0.7},
]
HASH_BEFORE = ["192.0.2.40", "spam@example.org"]
HASH_AFTER = ["192.0.2.41", "192.0.2.1"]

IP_NAMES = [
    "1.2.0.192", "2.2.0.192", "3.2.0.192", "40.2.0.192", "4.2.0.192", "99.2.0.192",
    "5.100.51.198", "200.100.51.198", "1.113.0.203", "9.9.20.10", "1.2.21.10",
    "2.0.0.127", "1.0.0.127",  # RFC 5782 test entries: listed, never listed
    "2.0.192", "100.51.198", "0.0.127",  # empty non-terminals
    names.reverse_ip("2001:db8::1"), names.reverse_ip("2001:db8:1::99"),
    names.reverse_ip("2001:db8:5::7"), names.reverse_ip("2001:db8:2::1"),
    "www", "nothing-here",
]
IP_AFTER_NAMES = ["1.2.0.192", "41.2.0.192", names.reverse_ip("2001:db8:7::1")]
NETWORK_NAMES = ["1.3.16.172", "200.255.31.172", "9.9.30.10"]
NETWORK_MISSES = ["1.0.32.172", "1.255.15.172", "9.9.31.10"]


# --------------------------------------------------------------------------- helpers


def ask(port: int, qname: str, rdtype: str) -> dns.message.Message:
    """One non-recursive query over TCP (no truncation to tell apart)."""
    query = dns.message.make_query(qname, rdtype, use_edns=0)
    query.flags &= ~dns.flags.RD
    return dns.query.tcp(query, "127.0.0.1", port=port, timeout=5)


View = tuple[str, bool, frozenset[str], frozenset[str]]


def view(reply: dns.message.Message) -> View:
    """What a resolver takes from an answer: rcode, AA, the answer, the authority SOA."""
    def texts(rrsets: list[dns.rrset.RRset], only: int | None = None) -> frozenset[str]:
        return frozenset(
            f"{rrset.name} {rrset.ttl} {dns.rdatatype.to_text(rrset.rdtype)} {rdata}"
            for rrset in rrsets if only is None or rrset.rdtype == only
            for rdata in rrset
        )
    return (dns.rcode.to_text(reply.rcode()), bool(reply.flags & dns.flags.AA),
            texts(reply.answer), texts(reply.authority, dns.rdatatype.SOA))


def soa_serial(port: int, origin: str) -> int:
    reply = ask(port, origin, "SOA")
    return int(reply.answer[0][0].serial)


def hashed_names(zones: Path, tokens: list[str]) -> list[str]:
    """Every name (the scheme and its aliases) under which the hash zone lists ``tokens``."""
    scheme = next(zone for zone in load_zones(zones) if zone.origin == HASH).scheme
    return [name for token in tokens for name in names.owner_names(scheme, token)]


def questions(zones: Path, origin: str) -> list[tuple[str, str]]:
    """Hits, misses, empty non-terminals, the apex and the test entries of a zone."""
    if origin == IP:
        labels = IP_NAMES
    else:
        labels = hashed_names(zones, ["192.0.2.1", "192.0.2.2", "user@example.com",
                                      "198.51.100.7", "192.0.2.99", "test", "127.0.0.2",
                                      "invalid", *HASH_BEFORE])
        labels += ["nothing-here"]
    out = [(f"{label}.{origin}", rdtype) for label in labels for rdtype in ("A", "TXT")]
    out += [(origin, rdtype) for rdtype in ("SOA", "NS", "TXT", "A")]
    return out


def new_secret() -> str:
    return base64.b64encode(os.urandom(32)).decode()


def zoned_log(zoned: Zoned) -> str:
    return zoned.log.read_text(errors="replace") if zoned.log.exists() else ""


@dataclass
class Pair:
    """zoned serving the example zones, and one secondary following two of them."""

    zoned: Zoned
    secondary: Secondary
    key: Key | None
    zones: Path
    first: dict[str, int]  # the serial of each zone when the secondary started


def start_pair(base: Path, kind: Kind, key: Key | None, *, allow: list[str]) -> Pair:
    zones = copy_zones(base)
    publish_samples(zones)
    publish(zones, IP, BEFORE)
    publish(zones, HASH, [{"token": token, "n": 30, "sc": 0.85} for token in HASH_BEFORE])
    port = free_port()
    section = zone_transfer_section(kind, allow=allow, notify=[f"127.0.0.1:{port}"], key=key)
    for origin in ORIGINS:
        add_transfer_section(zones / f"{origin}.yaml", section)
    zoned = start_zoned(zones, base / "zoned.log", "--log-level", "info")
    try:
        secondary = start_secondary(kind, base / kind, zoned.port, key=key, port=port)
    except BaseException:
        zoned.stop()
        raise
    first = {origin: soa_serial(zoned.port, origin) for origin in ORIGINS}
    return Pair(zoned, secondary, key, zones, first)


PAIRS = ["knot", "knot+tsig", "nsd", "nsd+tsig"]


@pytest.fixture(scope="module")
def pair(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
         ) -> Iterator[Pair]:
    """``knot``, ``nsd``, ``knot+tsig`` or ``nsd+tsig``, set by indirect parametrization."""
    name = str(request.param)
    kind: Kind = "knot" if name.startswith("knot") else "nsd"
    key = Key(new_secret()) if name.endswith("+tsig") else None
    started = start_pair(tmp_path_factory.mktemp(name.replace("+", "-")), kind, key,
                         allow=["127.0.0.0/8", "::1"])
    yield started
    started.secondary.stop()
    started.zoned.stop()


def synced(pair: Pair, origin: str) -> int:
    """Wait until the secondary serves zoned's serial of ``origin``; that serial.

    Any failed transfer in the secondary's log ends the wait: it retries only minutes later.
    """
    serial = soa_serial(pair.zoned.port, origin)
    pair.secondary.wait_for_serial(origin, serial, since=0)
    return serial


# --------------------------------------------------------------------------- AXFR


@pytest.mark.parametrize("pair", PAIRS, indirect=True)
@pytest.mark.parametrize("origin", ORIGINS)
def test_secondary_takes_the_zone_by_axfr_and_answers_as_zoned(pair: Pair, origin: str
                                                               ) -> None:
    """A secondary starting empty takes the zone by AXFR, then answers exactly as zoned."""
    serial = synced(pair, origin)
    log = zoned_log(pair.zoned)
    assert re.search(rf"AXFR of {re.escape(origin)} serial \d+ to 127\.0\.0\.1: "
                     r"\d+ records in \d+ messages", log), log
    transfers = pair.secondary.transfers(origin)
    if transfers is not None:
        assert transfers[0] == "AXFR", pair.secondary.log_text()
    assert soa_serial(pair.zoned.port, origin) == serial
    for qname, rdtype in questions(pair.zones, origin):
        expected = view(ask(pair.zoned.port, qname, rdtype))
        assert view(pair.secondary.ask(qname, rdtype, tcp=True)) == expected, (qname, rdtype)


# --------------------------------------------------------------------------- the docs' checks


@pytest.mark.parametrize("pair", ["knot+tsig", "nsd+tsig"], indirect=True)
def test_the_checks_in_the_docs_show_the_zone_at_both_ends(pair: Pair) -> None:
    """The docs' kdig lines (AXFR, IXFR, SOA at both ends) and status command work."""
    assert pair.key is not None
    kind = pair.secondary.kind
    serial = synced(pair, IP)
    first = pair.first[IP]
    text = snippet(PAGE[kind], "check.sh", replace={
        f"@{DOC_PRIMARY}": f"@127.0.0.1 -p {pair.zoned.port}",
        f"@{DOC_ADDRESS[kind]}": f"@127.0.0.1 -p {pair.secondary.port}",
        DOC_SECRET: pair.key.secret,
        "IXFR=1795315326": f"IXFR={first}",
    })
    outputs = []
    for line in text.splitlines():
        if line.startswith("kdig "):
            argv = [tool("kdig"), *shlex.split(line)[1:]]
            done = subprocess.run(argv, capture_output=True, text=True, timeout=30)
            output = done.stdout + done.stderr
            assert done.returncode == 0 and ";; ERROR" not in output, (line, output)
            outputs.append(output)
    axfr, ixfr, primary_soa, secondary_soa = outputs
    assert f"{IP}." in axfr and f" {serial} " in axfr, axfr
    assert str(serial) in ixfr, ixfr
    if first != serial:
        assert str(first) in ixfr, ixfr  # the changes since, not the whole zone
    assert primary_soa.split()[2] == secondary_soa.split()[2] == str(serial)
    assert str(serial) in pair.secondary.status(IP)


# --------------------------------------------------------------------------- NOTIFY, IXFR


@pytest.mark.parametrize("pair", PAIRS, indirect=True)
@pytest.mark.parametrize("origin", ORIGINS)
def test_notify_brings_a_publish_to_the_secondary_by_ixfr(pair: Pair, origin: str) -> None:
    """After a publish, zoned NOTIFYs the secondary, which takes the change by IXFR.

    The zone's SOA refresh is an hour, so the secondary serving the new serial within
    the deadline is the NOTIFY's doing.
    """
    before = synced(pair, origin)
    mark = pair.secondary.log_mark()
    if origin == IP:
        publish(pair.zones, IP, AFTER)
        changed = IP_AFTER_NAMES
    else:
        publish(pair.zones, HASH, [{"token": token, "n": 77, "sc": -0.3}
                                   for token in HASH_AFTER])
        changed = hashed_names(pair.zones, HASH_AFTER)
    wait_for(lambda: soa_serial(pair.zoned.port, origin) != before, 15,
             lambda: f"zoned did not serve a new serial of {origin}")
    after = soa_serial(pair.zoned.port, origin)
    pair.secondary.wait_for_serial(origin, after, since=mark)

    for label in changed:
        for rdtype in ("A", "TXT"):
            qname = f"{label}.{origin}"
            expected = view(ask(pair.zoned.port, qname, rdtype))
            assert expected[0] == "NOERROR", (qname, rdtype, expected)
            assert view(pair.secondary.ask(qname, rdtype, tcp=True)) == expected, (qname,
                                                                                    rdtype)
    log = zoned_log(pair.zoned)
    port = pair.secondary.port
    assert f"NOTIFY of {origin} serial {after} to 127.0.0.1:{port} acknowledged" in log, log
    assert re.search(rf"IXFR of {re.escape(origin)} from serial {before} to {after} "
                     r"to 127\.0\.0\.1: \d+ changes", log), log
    transfers = pair.secondary.transfers(origin)
    if transfers is not None:
        assert transfers[-1] == "IXFR", pair.secondary.log_text()


@pytest.mark.parametrize("pair", PAIRS, indirect=True)
def test_published_networks_reach_the_secondary_and_answer_as_in_zoned(pair: Pair) -> None:
    """Networks published into the IP zone reach the secondary after the NOTIFY.

    Every address inside a network answers through wildcards; zoned may send the change
    by IXFR or, when a network reshapes them, the whole zone in answer to the IXFR
    (RFC 1995 4): either way the secondary asked for the change and answers as zoned.
    """
    before = synced(pair, IP)
    mark = pair.secondary.log_mark()
    publish(pair.zones, IP, NETWORKS)
    wait_for(lambda: soa_serial(pair.zoned.port, IP) != before, 15,
             lambda: f"zoned did not serve a new serial of {IP}")
    after = soa_serial(pair.zoned.port, IP)
    pair.secondary.wait_for_serial(IP, after, since=mark)
    for label in NETWORK_NAMES + NETWORK_MISSES:
        for rdtype in ("A", "TXT"):
            qname = f"{label}.{IP}"
            expected = view(ask(pair.zoned.port, qname, rdtype))
            assert expected[0] == ("NOERROR" if label in NETWORK_NAMES else "NXDOMAIN")
            assert view(pair.secondary.ask(qname, rdtype, tcp=True)) == expected, (qname,
                                                                                    rdtype)
    log = zoned_log(pair.zoned)
    assert re.search(rf"IXFR of {re.escape(IP)} from serial {before} to "
                     rf"(?:{after} to 127\.0\.0\.1: \d+ changes|127\.0\.0\.1 answered with a "
                     r"full transfer)", log), log


# --------------------------------------------------------------------------- refused


def no_zone(secondary: Secondary, origin: str) -> bool:
    """The secondary holds no data for ``origin``: it answers SERVFAIL (or REFUSED)."""
    reply = secondary.ask(origin, "SOA")
    return reply.rcode() in (dns.rcode.SERVFAIL, dns.rcode.REFUSED)


@pytest.mark.parametrize("pair", ["knot+tsig", "nsd+tsig"], indirect=True)
@pytest.mark.parametrize("secret", ["wrong", "none"])
def test_a_secondary_without_the_right_key_gets_no_zone(pair: Pair, secret: str,
                                                        tmp_path: Path) -> None:
    """With transfer.key set, a transfer signed with another secret, or not signed at all,
    is refused and logged, and the secondary serves nothing."""
    assert pair.key is not None
    kind = pair.secondary.kind
    key = Key(new_secret()) if secret == "wrong" else None
    wrong = start_secondary(kind, tmp_path / kind, pair.zoned.port, key=key)
    try:
        wait_for(lambda: wrong.failed(IP), 20,
                 lambda: f"{kind} logged no failed transfer:\n{wrong.log_text()}", wrong)
        assert no_zone(wrong, IP), wrong.log_text()
        assert wrong.serial(IP) is None
    finally:
        wrong.stop()
    log = zoned_log(pair.zoned)
    why = ("rejected: bad TSIG signature" if secret == "wrong"
           else "refused to 127.0.0.1: unsigned")
    assert why in log, log


@pytest.fixture(scope="module")
def refusing(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Zoned]:
    """zoned whose zones allow transfers only to 192.0.2.0/24, not to loopback."""
    base = tmp_path_factory.mktemp("refusing")
    zones = copy_zones(base)
    section = zone_transfer_section("knot", allow=["192.0.2.0/24"], notify=[], key=None)
    for origin in ORIGINS:
        add_transfer_section(zones / f"{origin}.yaml", section)
    zoned = start_zoned(zones, base / "zoned.log", "--log-level", "info")
    yield zoned
    zoned.stop()


@pytest.mark.parametrize("kind", ["knot", "nsd"])
def test_a_secondary_outside_transfer_allow_is_refused(refusing: Zoned, kind: Kind,
                                                       tmp_path: Path) -> None:
    """A transfer from an address outside ``transfer.allow`` is REFUSED: no zone."""
    secondary = start_secondary(kind, tmp_path / kind, refusing.port, key=None)
    try:
        wait_for(lambda: secondary.failed(IP), 20,
                 lambda: f"{kind} logged no failed transfer:\n{secondary.log_text()}",
                 secondary)
        assert no_zone(secondary, IP), secondary.log_text()
    finally:
        secondary.stop()
    log = zoned_log(refusing)
    assert f"XFR of {IP} refused to 127.0.0.1: address not in transfer.allow" in log, log
    with pytest.raises(dns.query.TransferError, match="REFUSED"):
        list(dns.query.xfr("127.0.0.1", IP, port=refusing.port, timeout=5))
