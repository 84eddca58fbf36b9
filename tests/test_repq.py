"""The repq command, run as a process against a real zoned on loopback."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from client.repq import load_config
from listformat.hashing import HashScheme
from listformat.names import OwnerScheme, owner_names
from tests.support.client_zones import SPF_RECORD, filled_zones
from tests.support.repo import REPO, ZONES
from tests.support.zoned_process import Zoned, start_zoned

pytestmark = pytest.mark.e2e


def rspamd(mean: float, reject: float = 15.0) -> float:
    return math.tanh(mean / reject * 1.83178 - 0.5493)


@pytest.fixture(scope="module")
def zoned(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Zoned]:
    base = tmp_path_factory.mktemp("repq")
    server = start_zoned(filled_zones(base), base / "zoned.log")
    yield server
    assert server.stop() == 0, server.log.read_text()


def repq(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "client.repq", *args], cwd=REPO,
                          capture_output=True, text=True, timeout=60)


def at(zoned: Zoned) -> list[str]:
    return ["--server", f"127.0.0.1:{zoned.port}"]


def test_lookup_prints_the_name_the_raw_answer_and_the_score(zoned: Zoned) -> None:
    done = repq(*at(zoned), "bl.example.net", "ip", "192.0.2.10")
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "query   10.2.0.192.bl.example.net. TXT" in out
    assert 'answer  hit "v=1;n=120;l=1763769600;v1m=12", ttl 300' in out
    assert "reject score 15, lower_bound 10" in out
    assert "score   +0.7200" in out or f"score   {rspamd(12):+.4f}" in out
    assert "SENDER_REP_SPAM" in out


def test_json_output_is_one_object(zoned: Zoned) -> None:
    done = repq(*at(zoned), "--json", "bl.example.net", "ip", "192.0.2.10")
    data = json.loads(done.stdout)
    comp = data["components"][0]
    assert comp["qname"] == "10.2.0.192.bl.example.net"
    assert comp["fields"]["v1m"] == 12
    assert data["score"] == pytest.approx(rspamd(12))
    assert data["symbol"] == "SENDER_REP_SPAM"


def test_reject_score_and_lower_bound_options(zoned: Zoned) -> None:
    done = repq(*at(zoned), "--json", "--reject-score", "10", "bl.example.net", "ip",
                "192.0.2.10")
    assert json.loads(done.stdout)["score"] == pytest.approx(rspamd(12, 10))
    done = repq(*at(zoned), "--json", "--lower-bound", "500", "bl.example.net", "ip",
                "192.0.2.10")
    assert json.loads(done.stdout)["score"] == 0.0


def test_schemes_from_options_and_from_zone_files(zoned: Zoned) -> None:
    hashed = repq(*at(zoned), "--json", "--scheme", "hash", "hash.example.net", "ip",
                  "192.0.2.1")
    assert json.loads(hashed.stdout)["score"] == pytest.approx((110 - 4 + 3) / 120)
    from_file = repq(*at(zoned), "--json", "-c", str(zoned.zones), "hash.example.net", "ip",
                     "192.0.2.1")
    assert json.loads(from_file.stdout) == json.loads(hashed.stdout)
    dkim = repq(*at(zoned), "--json", "-c", str(zoned.zones), "dom.example.net", "dkim",
                "mail.example.com")
    data = json.loads(dkim.stdout)
    assert data["components"][0]["qname"] == "example.com.a.dom.example.net"
    assert data["score"] == pytest.approx(rspamd(20))


def test_components_spf_url_and_generic_values(zoned: Zoned) -> None:
    asn = json.loads(repq(*at(zoned), "--json", "asn.example.net", "asn", "64496").stdout)
    assert asn["score"] == pytest.approx(0.4 * rspamd(3))
    spf = json.loads(repq(*at(zoned), "--json", "spf.example.net", "spf", SPF_RECORD).stdout)
    assert spf["score"] == pytest.approx(rspamd(15))
    url = json.loads(repq(*at(zoned), "--json", "url.example.net", "url",
                          "https://www.example.com/path").stdout)
    assert url["components"][0]["token"] == "example.com"
    generic = json.loads(repq(*at(zoned), "--json", "gen.example.net", "generic",
                              "mx.example.com").stdout)
    assert generic["score"] == pytest.approx(rspamd(9))


def test_a_failed_lookup_exits_1_and_says_why(zoned: Zoned) -> None:
    done = repq(*at(zoned), "nowhere.example", "ip", "192.0.2.10")
    assert done.returncode == 1
    assert "refused" in done.stdout
    malformed = repq(*at(zoned), "--json", "bl.example.net", "ip", "192.0.2.77")
    assert malformed.returncode == 1
    assert json.loads(malformed.stdout)["components"][0]["status"] == "newer_version"


def test_an_unlisted_value_exits_0(zoned: Zoned) -> None:
    done = repq(*at(zoned), "bl.example.net", "ip", "192.0.2.200")
    assert done.returncode == 0
    assert "nxdomain" in done.stdout and "(no symbol)" in done.stdout


def test_name_prints_owner_names_without_querying() -> None:
    scheme = OwnerScheme("hash", HashScheme("blake2", "base32", 32))
    done = repq("name", "--scheme", "hash", "--alg", "blake2", "--encoding", "base32",
                "--length", "32", "hash.example.net", "192.0.2.1")
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [f"{owner_names(scheme, '192.0.2.1')[0]}.hash.example.net"]
    with_aliases = repq("name", "-c", str(ZONES), "hash.example.net", "192.0.2.1")
    assert len(with_aliases.stdout.split()) == 2  # blake2/base32/32 and the sha1/hex alias
    assert repq("name", "bl.example.net", "192.0.2.1").stdout.strip() == (
        "1.2.0.192.bl.example.net")
    assert repq("name", "dom.example.net", "Example.COM.a").stdout.strip() == (
        "example.com.a.dom.example.net")


MESSAGE = (
    b"Received: from mx.example.com (mx.example.com [192.0.2.10])\r\n"
    b"\tby mail.example.org with ESMTP id 1; Mon, 1 Jan 2024 00:00:00 +0000\r\n"
    b"Authentication-Results: mail.example.org; dkim=pass header.d=example.com\r\n"
    b"From: sender@example.com\r\nTo: rcpt@example.org\r\nSubject: hi\r\n\r\n"
    b"See http://www.example.com/\r\n"
)


def write_config(tmp_path: Path, zoned: Zoned, extra: str = "") -> Path:
    config = tmp_path / "repq.yaml"
    config.write_text(
        f'servers: ["127.0.0.1:{zoned.port}"]\n'
        f"zones: {zoned.zones}\n"
        "selectors:\n"
        "  - name: ip\n"
        "    zone: bl.example.net\n"
        "    components: {asn: {zone: asn.example.net}}\n"
        "  - {name: dkim, zone: dom.example.net}\n"
        "  - {name: url, zone: url.example.net}\n"
        "  - {name: helo, kind: generic, expression: helo, zone: gen.example.net}\n"
        + extra
    )
    return config


def test_check_message_runs_every_configured_selector(zoned: Zoned, tmp_path: Path) -> None:
    message = tmp_path / "message.eml"
    message.write_bytes(MESSAGE)
    config = write_config(tmp_path, zoned)
    done = repq("check-message", "--config", str(config), str(message), "--asn", "64496")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "symbols: SENDER_REP_SPAM(" in done.stdout
    data = json.loads(repq("--json", "check-message", "--config", str(config), str(message),
                           "--asn", "64496").stdout)
    by_name = {s["name"]: s for s in data["selectors"]}
    assert by_name["ip"]["score"] == pytest.approx(rspamd(12) + 0.4 * rspamd(3))
    assert by_name["dkim"]["components"][0]["token"] == "example.com.a"
    assert by_name["url"]["score"] == pytest.approx(rspamd(30))
    assert by_name["helo"]["score"] == pytest.approx(rspamd(9))
    assert data["errors"] == []


def test_a_bad_configuration_lists_every_problem(tmp_path: Path, zoned: Zoned) -> None:
    config = write_config(tmp_path, zoned, "  - {name: ipp, zone: bl.example.net}\n"
                                           "  - {name: dkim2, kind: dkim, zonee: x}\n")
    message = tmp_path / "m.eml"
    message.write_bytes(MESSAGE)
    done = repq("check-message", "--config", str(config), str(message))
    assert done.returncode == 2
    assert "selectors[4].kind: required" in done.stderr
    assert "selectors[5].zonee: unknown key" in done.stderr
    assert "selectors[5].zone: required" in done.stderr


def test_usage_errors_exit_2() -> None:
    assert repq("--server", "nonsense:1", "bl.example.net", "ip", "192.0.2.1").returncode == 2
    assert repq("bl.example.net", "ip", "not-an-ip").returncode == 2
    assert repq("check-message", "missing.eml").returncode == 2  # --config is required


def test_the_shipped_example_configuration_loads() -> None:
    loaded = load_config(ZONES / "samples" / "repq.yaml")
    assert [s.name for s in loaded.client.selectors] == ["ip", "ip_hashed", "dkim"]
    assert loaded.client.selectors[1].scheme.kind == "hash"  # read from the zone file
    assert loaded.client.servers == (("127.0.0.1", 5353),)
