"""Debian's Rspamd 3.4 with the rbl rules of docs/peers/rspamd.md, its DNS pointed at a
real zoned: scans give the documented symbols, and list monitoring keeps the lists on."""

from __future__ import annotations

import json
import re
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import dns.rcode
import pytest

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
from tests.support.zoned_process import Zoned

PAGE = "peers/rspamd.md"
AGENT = "repzone-test-mta"  # not "rspamc": see the docs page
BANDS = {"127.0.0.2": "VERY_BAD", "127.0.0.3": "BAD", "127.0.0.4": "SUSPICIOUS",
         "127.0.0.6": "GOOD", "127.0.0.7": "VERY_GOOD"}

#: A list whose monitoring must fail: its probe name is listed, so Rspamd must disable
#: it.  It proves the test would see a repzone list being disabled.
CANARY = """rbls {
  repzone_canary {
    rbl = "dom.example.net";
    checks = ["from"];
    monitored_address = "test";
    symbol = "REPZONE_CANARY";
  }
}
"""

MESSAGE = (
    "From: Sender <sender@example.com>\r\n"
    "To: rcpt@example.org\r\n"
    "Subject: peer test\r\n"
    "Message-ID: <peer-test@example.com>\r\n"
    "Date: Sat, 22 Nov 2025 10:00:00 +0000\r\n"
    "MIME-Version: 1.0\r\n"
    "Content-Type: text/plain; charset=us-ascii\r\n"
    "\r\n"
    "Hello.\r\n"
)


@dataclass
class Rspamd:
    process: subprocess.Popen[bytes]
    port: int
    directory: Path

    @property
    def log(self) -> str:
        return (self.directory / "rspamd.log").read_text(errors="replace")

    def scan(self, ip: str, sender: str) -> dict[str, float]:
        """rspamc's symbols for a message from ``ip`` with envelope sender ``sender``."""
        message = self.directory / "message.eml"
        message.write_text(MESSAGE)
        done = subprocess.run(
            [tool("rspamc", "rspamd"), "-h", f"127.0.0.1:{self.port}", "-U", AGENT,
             "-t", "20", "-i", ip, "-F", sender, "-j", "symbols", str(message)],
            capture_output=True, text=True, check=True)
        symbols = json.loads(done.stdout)["symbols"]
        return {name: float(data["score"]) for name, data in symbols.items()}

    def repzone(self, ip: str, sender: str) -> set[str]:
        return {name for name in self.scan(ip, sender) if name.startswith("REPZONE_")}


def rspamd_conf(directory: Path, port: int, controller: int) -> str:
    """The test's small rspamd.conf around the docs' three snippets."""
    (directory / "tld.dat").write_text("net\ncom\norg\n")
    return f"""
modules {{ path = "$PLUGINSDIR"; }}
options {{
  pidfile = "{directory}/rspamd.pid";
  cache_file = "{directory}/symbols.cache";
  hs_cache_dir = "{directory}";
  control_socket = "{directory}/rspamd.sock mode=0600";
  history_file = "{directory}/rspamd.history";
  stats_file = "{directory}/stats.ucl";
  url_tld = "{directory}/tld.dat";
  filters = "";
  monitoring_watch_interval = 1s;
  .include "{directory}/local.d/options.inc"
}}
logging {{
  type = "file";
  filename = "{directory}/rspamd.log";
  level = "info";
  debug_modules = ["monitored"];
}}
worker "normal" {{ bind_socket = "127.0.0.1:{port}"; count = 1; }}
worker "controller" {{ bind_socket = "127.0.0.1:{controller}"; count = 1; }}
rbl {{
  .include "{directory}/local.d/rbl.conf"
  .include(duplicate=merge) "{directory}/canary.conf"
}}
group "rbl" {{
  .include "{directory}/local.d/rbl_group.conf"
}}
"""


def ping(port: int) -> bool | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=2) as reply:
            return reply.read().strip() == b"pong" or None
    except (urllib.error.URLError, OSError):
        return None


@pytest.fixture(scope="module")
def zoned(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Zoned]:
    with published_zoned(tmp_path_factory.mktemp("zoned")) as server:
        yield server


@pytest.fixture(scope="module")
def rspamd(zoned: Zoned, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rspamd]:
    binary = tool("rspamd", "rspamd")
    directory = tmp_path_factory.mktemp("rspamd")
    local = directory / "local.d"
    local.mkdir()
    (local / "rbl.conf").write_text(snippet(PAGE, "rbl.conf"))
    (local / "rbl_group.conf").write_text(snippet(PAGE, "rbl_group.conf"))
    (local / "options.inc").write_text(snippet(
        PAGE, "options.inc", replace={'"127.0.0.1:53"': f'"127.0.0.1:{zoned.port}"'}))
    (directory / "canary.conf").write_text(CANARY)
    port, controller = free_port(), free_port()
    conf = directory / "rspamd.conf"
    conf.write_text(rspamd_conf(directory, port, controller))
    out = (directory / "rspamd.out").open("wb")
    process = subprocess.Popen([binary, "-c", str(conf), "-u", "root", "-g", "root", "-f", "-i"],
                               stdout=out, stderr=out, cwd=directory)
    server = Rspamd(process, port, directory)
    try:
        poll(lambda: ping(port) if process.poll() is None else False, "rspamd to start")
        assert process.poll() is None, (directory / "rspamd.out").read_text()
        yield server
    finally:
        stop(process)
        out.close()


def test_ip_zone_symbols_per_band(rspamd: Rspamd) -> None:
    """The connecting IP gives one REPZONE_IP_<band> symbol per band, none when unlisted."""
    for addr, (_score, code) in BAND_SENDERS.items():
        band = BANDS[code]
        hashed = {"VERY_BAD": "REPZONE_IP_HASHED_VERY_BAD",
                  "VERY_GOOD": "REPZONE_IP_HASHED_VERY_GOOD"}.get(band, "REPZONE_IP_HASHED")
        assert rspamd.repzone(addr, UNLISTED_ADDRESS) == {f"REPZONE_IP_{band}", hashed}, addr
    assert rspamd.repzone(NEUTRAL_SENDER, UNLISTED_ADDRESS) == set()
    assert rspamd.repzone(UNLISTED_SENDER, UNLISTED_ADDRESS) == set()


def test_ip_zone_networks_and_test_entry(rspamd: Rspamd) -> None:
    """A listed network answers for its addresses (zones/bl.example.net.yaml overrides)."""
    assert rspamd.repzone("203.0.113.9", UNLISTED_ADDRESS) == {"REPZONE_IP_BAD"}
    assert rspamd.repzone("198.51.100.7", UNLISTED_ADDRESS) == {
        "REPZONE_IP_VERY_BAD", "REPZONE_IP_HASHED_VERY_BAD"}


def test_hashed_sender_symbols(rspamd: Rspamd) -> None:
    """The envelope sender, lowercased and hashed as the zone does, gives its band."""
    assert rspamd.repzone(UNLISTED_SENDER, BAD_ADDRESS) == {"REPZONE_SENDER_VERY_BAD"}
    assert rspamd.repzone(UNLISTED_SENDER, BAD_ADDRESS.upper()) == {"REPZONE_SENDER_VERY_BAD"}
    assert rspamd.repzone(UNLISTED_SENDER, GOOD_ADDRESS) == {"REPZONE_SENDER_VERY_GOOD"}
    assert rspamd.repzone(UNLISTED_SENDER, UNLISTED_ADDRESS) == set()


def test_documented_scores(rspamd: Rspamd) -> None:
    """The weights of the docs' rbl_group.conf are what a scan adds up."""
    first = next(iter(BAND_SENDERS))
    symbols = rspamd.scan(first, BAD_ADDRESS)
    assert symbols["REPZONE_IP_VERY_BAD"] == 5.0
    assert symbols["REPZONE_SENDER_VERY_BAD"] == 4.0
    assert rspamd.scan("192.0.2.17", GOOD_ADDRESS)["REPZONE_IP_VERY_GOOD"] == -2.0


def checks(log: str, zone: str) -> int:
    """Monitoring checks of ``zone`` Rspamd has logged (debug_modules = monitored)."""
    return len(re.findall(rf"dns callback for {re.escape(zone)} in ", log))


def failures(log: str, zone: str) -> list[str]:
    """Log lines of monitoring checks of ``zone`` that failed, for whatever reason."""
    bad = re.compile(rf"(DNS reply returned .* for {re.escape(zone)} while|"
                     rf"on resolving {re.escape(zone)}, )")
    return [line for line in log.splitlines() if bad.search(line)]


def test_monitoring_probes_answer_nxdomain(zoned: Zoned) -> None:
    """The names Rspamd's monitoring asks are NXDOMAIN in both lists."""
    for zone in (IP, HASH):
        for probe in ("1.0.0.127", "Zq_x-9Abc", "a1B2-c3_D4e5F6g7H8i9J0k1L2m3N"):
            assert zoned.ask(f"{probe}.{zone}").rcode() == dns.rcode.NXDOMAIN, (probe, zone)


def test_monitoring_keeps_the_lists_enabled(rspamd: Rspamd) -> None:
    """Rspamd's periodic probes of our lists all pass, so it never disables them."""
    poll(lambda: "on resolving dom.example.net, disable object" in rspamd.log or None,
         "Rspamd to disable the canary list, whose probe answers 127.0.0.2", timeout=60)
    poll(lambda: min(checks(rspamd.log, IP), checks(rspamd.log, HASH)) >= 3 or None,
         "three monitoring checks of each repzone list (3 failures disable a list)",
         timeout=90)
    log = rspamd.log
    assert failures(log, IP) == []
    assert failures(log, HASH) == []
    # Still enabled: a scan after the checks gives the symbols.
    assert rspamd.repzone("192.0.2.11", BAD_ADDRESS) == {
        "REPZONE_IP_VERY_BAD", "REPZONE_IP_HASHED_VERY_BAD", "REPZONE_SENDER_VERY_BAD"}
