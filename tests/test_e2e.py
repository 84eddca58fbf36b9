"""End to end: a real zoned process on loopback, asked by dig and dnspython."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import dns.flags
import dns.message
import dns.query
import dns.rcode
import dns.rdatatype
import pytest

from listformat import names
from listformat.hashing import HashScheme
from listformat.names import OwnerScheme
from tests.support.polling import poll, until
from tests.support.ports import free_port
from tests.support.processes import stop
from tests.support.publishing import copy_zones, publish, publish_samples
from tests.support.repo import REPO
from tests.support.zoned_process import Zoned, start_zoned
from zoned.framing import Framer, frame

pytestmark = pytest.mark.e2e

IP = "bl.example.net"
HASH = "hash.example.net"
HASHED = OwnerScheme("hash", HashScheme("blake2", "base32", 32), (HashScheme("sha1", "hex"),))
DIG = shutil.which("dig")


@pytest.fixture(scope="module")
def zoned(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Zoned]:
    base = tmp_path_factory.mktemp("e2e")
    zones = copy_zones(base)
    publish_samples(zones)
    server = start_zoned(zones, base / "zoned.log")
    yield server
    assert server.stop() == 0, server.log.read_text()


@dataclass
class Dig:
    status: str
    flags: set[str]
    answer: list[str]
    authority: list[str]
    output: str


def dig(port: int, *args: str) -> Dig:
    assert DIG is not None, "dig is required (Debian package bind9-dnsutils)"
    out = subprocess.run([DIG, "@127.0.0.1", "-p", str(port), "+norec", "+time=2", "+tries=1",
                          *args], capture_output=True, text=True, timeout=20).stdout
    header = re.search(r"status: (\w+)", out)
    flags = re.search(r";; flags: ([a-z ]*);", out)
    assert header and flags, out

    def section(name: str) -> list[str]:
        match = re.search(rf";; {name} SECTION:\n(.*?)(?:\n\n|\Z)", out, re.S)
        return [" ".join(line.split()) for line in match.group(1).splitlines()] if match else []

    return Dig(header.group(1), set(flags.group(1).split()), section("ANSWER"),
               section("AUTHORITY"), out)


def test_dig_txt_and_a_hits_on_the_ip_zone(zoned: Zoned) -> None:
    txt = dig(zoned.port, f"1.2.0.192.{IP}", "TXT")
    assert txt.status == "NOERROR" and "aa" in txt.flags
    assert txt.answer == [
        f'1.2.0.192.{IP}. 300 IN TXT "v=1;n=120;s=110;h=4;p=6;sc=0.87;l=1763769600"']
    a = dig(zoned.port, f"1.2.0.192.{IP}", "A")
    assert a.answer == [f"1.2.0.192.{IP}. 300 IN A 127.0.0.2"]


def test_dig_hits_on_the_hashed_zone_under_both_schemes(zoned: Zoned) -> None:
    for owner in names.owner_names(HASHED, "192.0.2.1"):
        result = dig(zoned.port, f"{owner}.{HASH}", "A")
        assert result.status == "NOERROR" and "aa" in result.flags
        assert result.answer == [f"{owner}.{HASH}. 300 IN A 127.0.0.2"]
        txt = zoned.ask(f"{owner}.{HASH}", "TXT")
        assert "n=120" in txt.answer[0][0].to_text()


def test_cidr_longest_prefix(zoned: Zoned) -> None:
    assert dig(zoned.port, f"200.100.51.198.{IP}").answer[0].endswith("A 127.0.0.2")
    assert dig(zoned.port, f"5.100.51.198.{IP}").answer[0].endswith("A 127.0.0.4")


def test_nxdomain_has_aa_and_the_soa(zoned: Zoned) -> None:
    result = dig(zoned.port, f"9.9.9.9.{IP}")
    assert result.status == "NXDOMAIN" and "aa" in result.flags and not result.answer
    assert len(result.authority) == 1
    assert result.authority[0].startswith(f"{IP}. 60 IN SOA ns1.example.net. "
                                          "hostmaster.example.net.")


def test_nodata_for_aaaa(zoned: Zoned) -> None:
    result = dig(zoned.port, f"1.2.0.192.{IP}", "AAAA")
    assert result.status == "NOERROR" and "aa" in result.flags and not result.answer
    assert " IN SOA " in result.authority[0]


def test_empty_non_terminal_is_nodata(zoned: Zoned) -> None:
    result = dig(zoned.port, f"0.0.127.{IP}")
    assert result.status == "NOERROR" and not result.answer and " IN SOA " in result.authority[0]


def test_refused_outside_the_zones(zoned: Zoned) -> None:
    result = dig(zoned.port, "www.example.org")
    assert result.status == "REFUSED" and "aa" not in result.flags


def test_case_of_the_question_is_preserved(zoned: Zoned) -> None:
    reply = zoned.ask(f"1.2.0.192.{IP.upper()}", "TXT")
    assert reply.question[0].name.to_text() == f"1.2.0.192.{IP.upper()}."
    assert reply.answer[0].name.to_text() == f"1.2.0.192.{IP.upper()}."


def test_edns_echo(zoned: Zoned) -> None:
    reply = zoned.ask(f"1.2.0.192.{IP}", use_edns=0, payload=4096, want_dnssec=True)
    assert reply.edns == 0 and reply.payload == 1232 and reply.ednsflags & dns.flags.DO
    result = dig(zoned.port, f"1.2.0.192.{IP}", "+edns=0", "+bufsize=4096")
    assert "; EDNS: version: 0, flags:; udp: 1232" in result.output


def test_truncation_then_tcp_retry(zoned: Zoned) -> None:
    udp = zoned.ask(f"big.{IP}", "TXT")  # no EDNS: 512 bytes
    assert udp.flags & dns.flags.TC and not udp.answer
    result = dig(zoned.port, f"big.{IP}", "TXT", "+noedns")
    assert "Truncated, retrying in TCP mode" in result.output
    assert result.status == "NOERROR" and len(result.answer) == 3 and "tc" not in result.flags


def test_tcp_pipelining_on_one_connection(zoned: Zoned) -> None:
    queries = [dns.message.make_query(f"{q}.{IP}", "TXT") for q in
               ("1.2.0.192", "2.2.0.192", "9.9.9.9", "2.0.0.127")]
    with socket.create_connection(("127.0.0.1", zoned.port), timeout=5) as sock:
        sock.sendall(b"".join(frame(q.to_wire()) for q in queries))
        framer = Framer()
        replies: list[bytes] = []
        while len(replies) < len(queries):
            data = sock.recv(65535)
            assert data, "connection closed early"
            replies += framer.feed(data)
    parsed = [dns.message.from_wire(r) for r in replies]
    assert [p.id for p in parsed] == [q.id for q in queries]
    assert [p.rcode() for p in parsed] == [0, 0, dns.rcode.NXDOMAIN, 0]


def test_formerr_on_garbage_and_short_datagrams_dropped(zoned: Zoned) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(2)
        sock.sendto(b"\xab\xcd" + b"\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x3fzz",
                    ("127.0.0.1", zoned.port))
        reply = sock.recv(512)
        assert reply[:2] == b"\xab\xcd" and reply[2] & 0x80 and reply[3] & 0x0F == 1
        sock.sendto(b"\x00\x01\x02", ("127.0.0.1", zoned.port))
        sock.settimeout(0.3)
        with pytest.raises(socket.timeout):
            sock.recv(512)
    assert zoned.process.poll() is None


def test_rfc5782_test_points_and_random_label(zoned: Zoned) -> None:
    assert dig(zoned.port, f"2.0.0.127.{IP}").answer == [f"2.0.0.127.{IP}. 300 IN A 127.0.0.2"]
    assert dig(zoned.port, f"1.0.0.127.{IP}").status == "NXDOMAIN"
    assert dig(zoned.port, f"q9z7xw3kd0.{IP}").status == "NXDOMAIN"


def test_new_serial_is_served_live(zoned: Zoned) -> None:
    before = zoned.ask(IP, "SOA").answer[0][0].serial
    publish(zoned.zones, IP, [{"token": "192.0.2.123", "n": 30, "sc": 0.95}])
    published = time.monotonic()
    while time.monotonic() - published < 5:
        reply = zoned.ask(f"123.2.0.192.{IP}")
        if reply.answer:
            break
        time.sleep(0.05)
    assert reply.answer and reply.answer[0][0].to_text() == "127.0.0.2"
    assert zoned.ask(IP, "SOA").answer[0][0].serial != before


# -- operations ---------------------------------------------------------------------


def test_check_mode_lists_every_error(tmp_path: Path) -> None:
    zones = copy_zones(tmp_path)
    (zones / "bad.yaml").write_text("zone: bad.example\nttl: -5\nsoa: {mname: ns1.example}\n")
    result = subprocess.run([sys.executable, "-m", "zoned.cli", "-t", "-c", str(zones)],
                            cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 1
    assert "bad.yaml:2" in result.stderr and "ttl" in result.stderr
    assert "soa.rname" in result.stderr and "ns" in result.stderr
    good = subprocess.run([sys.executable, "-m", "zoned.cli", "-t", "-c", str(copy_zones(
        tmp_path / "good"))], cwd=REPO, capture_output=True, text=True)
    assert good.returncode == 0, good.stderr


def test_sighup_reloads_and_survives_a_broken_config(tmp_path: Path) -> None:
    zones = copy_zones(tmp_path)
    publish_samples(zones)
    server = start_zoned(zones, tmp_path / "zoned.log")
    try:
        extra = zones / "extra.yaml"
        text = (zones / "dom.example.net.yaml").read_text()
        extra.write_text(text.replace("zone: dom.example.net", "zone: extra.example.org")
                         .replace("../var/dom.example.net", "../var/extra"))
        assert server.ask("extra.example.org", "SOA").rcode() == dns.rcode.REFUSED
        server.process.send_signal(signal.SIGHUP)
        until(lambda: server.ask("extra.example.org", "SOA").rcode() == dns.rcode.NOERROR,
              "the new zone", 5.0)
        extra.write_text("zone: extra.example.org\nbogus: 1\n")
        server.process.send_signal(signal.SIGHUP)
        until(lambda: "keeping the running zones" in server.log.read_text(),
              "the kept zones logged", 5.0)
        assert server.ask("extra.example.org", "SOA").rcode() == dns.rcode.NOERROR
        assert server.ask(f"1.2.0.192.{IP}").answer
    finally:
        assert server.stop() == 0


def test_sigusr1_reopens_the_log_file(tmp_path: Path) -> None:
    zones = copy_zones(tmp_path)
    log = tmp_path / "zoned.log"
    server = start_zoned(zones, log)
    try:
        rotated = tmp_path / "zoned.log.1"
        os.rename(log, rotated)
        server.process.send_signal(signal.SIGUSR1)
        until(log.exists, "the new log file", 5.0)
        until(lambda: "reopened" in log.read_text(), "reopened", 5.0)
    finally:
        assert server.stop() == 0
    assert "listening on" in rotated.read_text()


def test_sigterm_stops_cleanly(tmp_path: Path) -> None:
    server = start_zoned(copy_zones(tmp_path), tmp_path / "zoned.log")
    assert server.stop() == 0
    assert "stopped" in server.log.read_text()


@pytest.mark.parametrize("runner", ["twist", "twistd"])
def test_twistd_plugin_serves(tmp_path: Path, runner: str) -> None:
    """Both of Twisted's runners find the plugin: ``python -m twisted`` in the checkout, and
    the installed ``twistd`` script from another directory, as README's command runs it."""
    zones = copy_zones(tmp_path)
    port = free_port()
    if runner == "twist":
        command, cwd = [sys.executable, "-m", "twisted", "--log-format", "text"], REPO
    else:
        twistd = Path(sys.executable).parent / "twistd"
        command, cwd = [str(twistd), "-n", "--pidfile=", "--logfile=-"], tmp_path
    command += ["zoned", "-c", str(zones), "--listen", "127.0.0.1", "--port", str(port)]
    output = tmp_path / "twistd.out"
    with output.open("wb") as sink:
        process = subprocess.Popen(command, cwd=cwd, stdout=sink, stderr=subprocess.STDOUT)
    try:
        query = dns.message.make_query(f"2.0.0.127.{IP}", "A")

        def answer() -> dns.message.Message | None:
            try:
                return dns.query.udp(query, "127.0.0.1", port=port, timeout=0.5)
            except dns.exception.Timeout:
                assert process.poll() is None, output.read_text()
                return None

        reply = poll(answer, "twistd zoned to answer", 15, interval=0)
        assert reply is not None and reply.answer[0][0].to_text() == "127.0.0.2"
    finally:
        stop(process)


