"""unbound in front of zoned, with the stub zones of docs/peers/unbound.md: scanners that
ask their resolver get our answers, and a miss stays cached for the SOA's negative TTL."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import dns.exception
import dns.message
import dns.query
import dns.rcode
import dns.rdatatype
import pytest
import yaml

from listformat.names import owner_names, reverse_ip
from tests.docsnippets import snippet
from tests.peer_common import (
    BAD_ADDRESS,
    BAND_SENDERS,
    GOOD_ADDRESS,
    HASH,
    IP,
    NEUTRAL_SENDER,
    UNLISTED_ADDRESS,
    UNLISTED_SENDER,
    published_zoned,
)
from tests.support.polling import poll
from tests.support.ports import free_port
from tests.support.processes import stop, tool
from tests.support.publishing import publish
from tests.support.zoned_process import Zoned
from zoned.config import find_zone

#: soa.minimum of the test's copy of bl.example.net: short, so the test does not wait long.
NEGATIVE_TTL = 5


@dataclass
class Unbound:
    process: subprocess.Popen[bytes]
    port: int

    def ask(self, qname: str, rdtype: str = "A") -> dns.message.Message | None:
        query = dns.message.make_query(qname, rdtype)
        try:
            return dns.query.udp(query, "127.0.0.1", port=self.port, timeout=3)
        except (dns.exception.Timeout, OSError):
            return None


def unbound_conf(directory: Path, port: int, zoned_port: int) -> str:
    """The test's server block (unprivileged, temp dir, no trust anchor), then the docs'."""
    harness = f"""server:
    interface: 127.0.0.1
    port: {port}
    do-ip6: no
    username: ""
    chroot: ""
    directory: "{directory}"
    pidfile: "{directory}/unbound.pid"
    use-syslog: no
    logfile: ""
    verbosity: 1
    num-threads: 1
    module-config: "iterator"
    access-control: 127.0.0.0/8 allow

remote-control:
    control-enable: no

"""
    return harness + snippet("peers/unbound.md", "unbound.conf",
                             replace={"127.0.0.1@5353": f"127.0.0.1@{zoned_port}"})


def short_negative_ttl(zones: Path) -> None:
    path = zones / f"{IP}.yaml"
    config = yaml.safe_load(path.read_text())
    config["soa"]["minimum"] = NEGATIVE_TTL
    path.write_text(yaml.safe_dump(config))


@pytest.fixture(scope="module")
def zoned(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Zoned]:
    with published_zoned(tmp_path_factory.mktemp("zoned"), edit=short_negative_ttl) as server:
        yield server


@pytest.fixture(scope="module")
def unbound(zoned: Zoned, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Unbound]:
    binary = tool("unbound", "unbound")
    directory = tmp_path_factory.mktemp("unbound")
    port = free_port()
    conf = directory / "unbound.conf"
    conf.write_text(unbound_conf(directory, port, zoned.port))
    checked = subprocess.run([tool("unbound-checkconf", "unbound"), str(conf)],
                             capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    log = (directory / "unbound.out").open("wb")
    process = subprocess.Popen([binary, "-d", "-c", str(conf)], stdout=log, stderr=log)
    server = Unbound(process, port)
    try:
        poll(lambda: server.ask(f"2.0.0.127.{IP}") if process.poll() is None else True,
             "unbound to answer")
        assert process.poll() is None, (directory / "unbound.out").read_text()
        yield server
    finally:
        stop(process)
        log.close()


def summary(reply: dns.message.Message | None) -> tuple[str, set[str]]:
    """Rcode and the answer section's record data, what a scanner reads from a reply."""
    assert reply is not None, "no reply"
    data = {f"{dns.rdatatype.to_text(rrset.rdtype)} {rdata.to_text()}"
            for rrset in reply.answer for rdata in rrset}
    return dns.rcode.to_text(reply.rcode()), data


def both(zoned: Zoned, unbound: Unbound, qname: str, rdtype: str) -> tuple[str, set[str]]:
    """The answer through unbound, after checking it is zoned's own."""
    through = summary(unbound.ask(qname, rdtype))
    assert through == summary(zoned.ask(qname, rdtype)), qname
    return through


def test_ip_zone_bands_through_unbound(zoned: Zoned, unbound: Unbound) -> None:
    """Each band's return code and TXT data reach the scanner through unbound unchanged."""
    for addr, (score, code) in BAND_SENDERS.items():
        name = f"{reverse_ip(addr)}.{IP}"
        assert both(zoned, unbound, name, "A") == ("NOERROR", {f"A {code}"})
        assert both(zoned, unbound, name, "TXT") == ("NOERROR", {f'TXT "v=1;n=50;sc={score}"'})
    neutral = f"{reverse_ip(NEUTRAL_SENDER)}.{IP}"
    assert both(zoned, unbound, neutral, "A") == ("NOERROR", set())
    assert both(zoned, unbound, neutral, "TXT") == ("NOERROR", {'TXT "v=1;n=50;sc=0"'})
    assert both(zoned, unbound, f"{reverse_ip(UNLISTED_SENDER)}.{IP}", "A") == \
        ("NXDOMAIN", set())


def test_ip_zone_specials_through_unbound(zoned: Zoned, unbound: Unbound) -> None:
    """The RFC 5782 test entries, a listed network and the monitoring probe pass through."""
    assert both(zoned, unbound, f"2.0.0.127.{IP}", "A") == ("NOERROR", {"A 127.0.0.2"})
    assert both(zoned, unbound, f"1.0.0.127.{IP}", "A") == ("NXDOMAIN", set())
    # zones/bl.example.net.yaml lists 203.0.113.0/24 with 127.0.0.3.
    assert both(zoned, unbound, f"9.113.0.203.{IP}", "A") == ("NOERROR", {"A 127.0.0.3"})


def test_hashed_zone_through_unbound(zoned: Zoned, unbound: Unbound) -> None:
    """Hashed names (blake2/base32/32 and the sha1/hex alias) answer through unbound."""
    config = find_zone(zoned.zones, HASH)
    assert config is not None
    expected = {BAD_ADDRESS: ("NOERROR", {"A 127.0.0.2"}),
                GOOD_ADDRESS: ("NOERROR", {"A 127.0.0.7"}),
                "192.0.2.11": ("NOERROR", {"A 127.0.0.2"}),
                UNLISTED_ADDRESS: ("NXDOMAIN", set())}
    for token, answer in expected.items():
        names = owner_names(config.scheme, token)
        assert len(names) == 2  # the main scheme and the alias
        for name in names:
            assert both(zoned, unbound, f"{name}.{HASH}", "A") == answer, token


def observe_negative_cache(zoned: Zoned, unbound: Unbound, addr: str) -> bool:
    """Miss ``addr`` through unbound, publish it, and watch unbound keep the miss.

    False when publishing took the whole negative TTL, so that nothing could be observed.
    """
    name = f"{reverse_ip(addr)}.{IP}"
    listed = ("NOERROR", {"A 127.0.0.2"})
    asked = time.monotonic()
    miss = unbound.ask(name)
    assert miss is not None and miss.rcode() == dns.rcode.NXDOMAIN
    soa = miss.authority[0]
    assert soa.rdtype == dns.rdatatype.SOA and soa.ttl <= NEGATIVE_TTL
    publish(zoned.zones, IP, [{"token": addr, "n": 50, "sc": 0.9}])
    poll(lambda: summary(zoned.ask(name)) == listed or None, "zoned to serve the token")
    cached = unbound.ask(name)
    if time.monotonic() - asked >= NEGATIVE_TTL - 1:
        return False
    # zoned has the token, unbound still answers from its negative cache.
    assert cached is not None and cached.rcode() == dns.rcode.NXDOMAIN
    assert cached.authority[0].ttl <= soa.ttl
    poll(lambda: summary(unbound.ask(name)) == listed or None, "unbound to see the token")
    # unbound keeps time in whole seconds, so its entry may end up to 1 s early.
    assert time.monotonic() >= asked + soa.ttl - 1
    return True


def test_nxdomain_is_cached_for_the_negative_ttl(zoned: Zoned, unbound: Unbound) -> None:
    """A token published after a miss reaches scanners only when the negative TTL ends."""
    for addr in ("192.0.2.101", "192.0.2.102", "192.0.2.103"):
        if observe_negative_cache(zoned, unbound, addr):
            return
    pytest.fail("publishing never finished within the negative TTL; cannot observe the cache")
