"""Our Rspamd plugin (integrations/rspamd) against the real thing.

Two real Rspamd 3.4 on loopback: A runs the stock reputation plugin on its redis backend
and writes to a real redis-server as it scans; zonepub publishes that Redis into zones a
real zoned serves; B runs repzone_reputation (the plugin file and the docs' config block)
reading those zones.  After A has seen each sender often enough, both scan the same
messages: B's symbols, scores and options equal A's, and repq's scores equal both.  Then
a change in A reaches B through the continuous zonepub, and the lag is printed.

Both read ASN and country through Rspamd's asn module from a zone in the Team Cymru TXT
format served by the same zoned; DKIM keys and SPF records come from Rspamd's
``fake_records``.  A small Lua rule (``TEST_VERDICT``, from the message's X-Test-Score)
gives each message the score A learns.
"""

from __future__ import annotations

import base64
import json
import math
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dkim
import dns.message
import dns.query
import dns.rdatatype
import pytest

from listformat.names import reverse_ip
from tests.docsnippets import snippet
from tests.rspamd_process import (
    Rspamd,
    Symbol,
    base_conf,
    new_port,
    options_block,
    running_rspamd,
)
from tests.support.polling import poll, until
from tests.support.processes import stop
from tests.support.redis_server import RedisServer, launch_redis
from tests.support.repo import REPO
from tests.support.zoned_process import Zoned, start_zoned
from zoned.config import load_zones
from zoned.store import ZoneStore

PAGE = "peers/rspamd.md"
PLUGIN = REPO / "integrations" / "rspamd" / "repzone_reputation.lua"
DATA = Path(__file__).resolve().parent / "data" / "rspamd_plugin"
SELECTOR = "sel"
LOWER_BOUND = 10
ASN4, ASN6 = "origin.asn.example.net", "origin6.asn.example.net"


@dataclass(frozen=True)
class Sender:
    """A sending host: address, domain, what the asn zone says of it, its verdict."""

    ip: str
    domain: str
    asn: str
    country: str
    verdict: float  # the TEST_VERDICT score of its messages
    training: int  # messages A sees before the comparison

    @property
    def address(self) -> str:
        return f"user@{self.domain}"

    @property
    def spf(self) -> str:
        mech = "ip6" if ":" in self.ip else "ip4"
        return f"v=spf1 {mech}:{self.ip} -all"


SENDERS = (
    Sender("192.0.2.10", "spammer.test", "64500", "DE", 10.0, 12),
    Sender("192.0.2.20", "friendly.test", "64501", "FR", -8.0, 12),
    Sender("192.0.2.30", "lowvol.test", "64502", "NL", 10.0, 4),  # below lower_bound
    Sender("192.0.2.40", "newcomer.test", "64503", "SE", 3.0, 0),  # unseen
    Sender("2001:db8:1:2::5", "sixer.test", "64504", "CH", 9.0, 12),  # counted per /64
)
LOW = SENDERS[2]

# The zones B reads: (apex, owner scheme, source selector, Redis prefix).
REP_ZONES = (
    ("bl.example.net", "ip", "ip", "RR:"),
    ("hash.example.net", "{scheme: hash, alg: sha256, encoding: rbase32, length: 40}",
     "ip", "RR:"),
    ("asn.rep.example.net", "name", "asn", "RR:"),
    ("cc.rep.example.net", "name", "country", "RR:"),
    ("dkim.rep.example.net", "name", "dkim", "RR:"),
    ("spf.rep.example.net", "name", "spf", "RR:"),
    ("url.rep.example.net", "name", "url", "RR:"),
    ("gen.rep.example.net", "{scheme: hash, alg: blake2, encoding: base32, length: 32}",
     "generic", "RG:"),
)
# Symbols the stock plugin inserts for the rules of A, and their weights (the same in B).
WEIGHTS = {
    "SENDER_REP_SPAM": 1.0, "SENDER_REP_HAM": -1.0, "SPF_REP_SPAM": 1.0, "SPF_REP_HAM": -1.0,
    "DKIM_SCORE": 1.0, "SENDER_DOMAIN_REP": 1.0, "HASHED_SENDER_REP_SPAM": 1.0,
    "HASHED_SENDER_REP_HAM": -1.0, "URL_SCORE": 1.0, "TEST_VERDICT": 1.0,
    **{f"FAULT_{name.upper()}": 1.0 for name in (
        "good", "garbage", "multi", "huge", "nov", "newer", "absent", "refused", "silent")},
}
REPUTATION = ("SENDER_REP_SPAM", "SENDER_REP_HAM", "SPF_REP_SPAM", "SPF_REP_HAM",
              "DKIM_SCORE", "SENDER_DOMAIN_REP")

VERDICT_LUA = """
rspamd_config:register_symbol{
  name = 'TEST_VERDICT', type = 'normal', score = 1.0,
  callback = function(task)
    local value = tonumber(task:get_header('X-Test-Score') or '')
    if value then task:insert_result('TEST_VERDICT', value) end
  end,
}
"""


def _zone_file(apex: str, owner: str, extra: str = "") -> str:
    return (f"zone: {apex}\nttl: 60\nsoa: {{mname: ns1.example.net, rname: "
            f"hostmaster@example.net, minimum: 1}}\nns: [ns1.example.net]\n"
            f"owner: {owner}\nstore: ../var/{apex}\n{extra}")


def _txt_records(records: dict[str, list[str]]) -> str:
    lines = ["records:"]
    for name, texts in records.items():
        lines.append(f"  {json.dumps(name)}:")
        lines.append("    TXT: [" + ", ".join(json.dumps(t) for t in texts) + "]")
    return "\n".join(lines) + "\n"


def _asn_name(ip: str) -> tuple[str, str]:
    """The asn module's query for ``ip``: reversed octets or nibbles, and its zone."""
    return reverse_ip(ip), ASN6 if ":" in ip else ASN4


#: Records of the fault zone, by label; each fault rule asks one of them.
FAULTS = {
    "good": ["v=1;n=50;sc=0.9;v1m=20"],
    "garbage": ["hello, this is not reputation data"],
    "multi": ["v=1;n=50;v1m=20;pad=" + "x" * 300],  # over 255 bytes: several strings
    "huge": ["v=1;n=50;v1m=20;pad=" + "y" * 1400],  # over 1232 bytes: TCP only
    "nov": ["n=50;v1m=20"],
    "newer": ["v=2;n=50;v1m=20"],
}
FAULT_RULES = ("good", "garbage", "multi", "huge", "nov", "newer", "absent", "refused",
               "silent")


def write_zones(zones: Path, redis_url: str) -> None:
    zones.mkdir(parents=True)
    for apex, owner, selector, prefix in REP_ZONES:
        source = (f"source: {{redis: {json.dumps(redis_url)}, layout: rspamd, "
                  f"prefix: {json.dumps(prefix)}, selector: {selector}, max_delete: 1.0}}\n")
        (zones / f"{apex}.yaml").write_text(_zone_file(apex, owner, source))
    for apex in (ASN4, ASN6):
        records = {
            _asn_name(s.ip)[0]: [f"{s.asn} | {s.ip}/32 | {s.country} | ripencc |"]
            for s in SENDERS if _asn_name(s.ip)[1] == apex
        }
        (zones / f"{apex}.yaml").write_text(_zone_file(apex, "name", _txt_records(records)))
    (zones / "bad.example.net.yaml").write_text(
        _zone_file("bad.example.net", "name", _txt_records(FAULTS)))
    for apex, denied in (("refused.example.net", "refuse"), ("silent.example.net", "drop")):
        (zones / f"{apex}.yaml").write_text(_zone_file(
            apex, "name", _txt_records({"any": ["v=1;n=50;v1m=20"]})
            + f"queries: {{allow: [10.0.0.0/8], denied: {denied}}}\n"))


def zonepub(zones: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "publisher.cli", "-c", str(zones), *args],
                          cwd=REPO, capture_output=True, text=True, check=True, timeout=120)


def public_key() -> str:
    done = subprocess.run(["openssl", "rsa", "-in", str(DATA / "dkim.key"), "-pubout",
                           "-outform", "DER"], capture_output=True, check=True)
    return base64.b64encode(done.stdout).decode("ascii")


def fake_records() -> str:
    """DKIM keys and SPF records of every sender domain, for both scanners."""
    key = f"v=DKIM1; k=rsa; p={public_key()}"
    items = []
    for s in SENDERS:
        items.append(f'{{ name = "{SELECTOR}._domainkey.{s.domain}"; type = "txt"; '
                     f'replies = ["{key}"]; }}')
        items.append(f'{{ name = "{s.domain}"; type = "txt"; replies = ["{s.spf}"]; }}')
    return "    fake_records = [\n      " + ",\n      ".join(items) + "\n    ];"


def message(sender: Sender, serial: int, extra: str = "") -> bytes:
    """A DKIM-signed message from ``sender`` with its verdict and one URL."""
    # The URL's domain is under a public suffix: the client finds URLs in text only there.
    link = f"http://www.{sender.domain.split('.')[0]}-example.com/page{serial}"
    body = f"Hello.\r\nSee {link}\r\n"
    headers = (
        f"From: Sender <{sender.address}>\r\n"
        f"To: rcpt@example.org\r\n"
        f"Subject: test {serial}\r\n"
        f"Message-ID: <{serial}.{sender.domain}@{sender.domain}>\r\n"
        f"Date: Sat, 22 Nov 2025 10:00:00 +0000\r\n"
        f"X-Test-Score: {sender.verdict:g}\r\n"
        "MIME-Version: 1.0\r\n"
        "Content-Type: text/plain; charset=us-ascii\r\n"
        f"{extra}"
    )
    raw = (headers + "\r\n" + body).encode("ascii")
    signature = dkim.sign(raw, SELECTOR.encode(), sender.domain.encode(),
                          (DATA / "dkim.key").read_bytes(),
                          include_headers=[b"from", b"to", b"subject", b"message-id"])
    return bytes(signature) + raw


def common_conf(directory: Path, zoned: Zoned) -> str:
    """What A and B share: DNS (zoned and the fake records), asn, dkim, spf, verdicts."""
    (directory / "verdict.lua").write_text(VERDICT_LUA)
    dns = (f'    nameserver = ["127.0.0.1:{zoned.port}"];\n    timeout = 2s;\n'
           f"    retransmits = 1;\n{fake_records()}")
    weights = "\n".join(f'    "{name}" {{ weight = {weight}; }}'
                        for name, weight in WEIGHTS.items())
    return f"""
{options_block(directory, dns, filters="dkim")}
lua = "{directory}/verdict.lua"
actions {{ reject = 15; add_header = 6; greylist = 4; }}
group "test" {{
  symbols {{
{weights}
  }}
}}
asn {{
  provider_type = "rspamd";
  provider_info {{ ip4 = "{ASN4}"; ip6 = "{ASN6}"; }}
  symbol = "ASN";
}}
dkim {{ }}
spf {{ }}
"""


def conf_a(directory: Path, zoned: Zoned, redis: RedisServer, port: int) -> str:
    body = common_conf(directory, zoned) + f"""
redis {{ servers = "127.0.0.1:{redis.port}"; timeout = 5s; }}
reputation {{
  rules {{
    ip_reputation {{
      selector "ip" {{ }}
      backend "redis" {{ }}
      symbol = "SENDER_REP";
    }}
    dkim_reputation {{
      selector "dkim" {{ }}
      backend "redis" {{ }}
      symbol = "DKIM_SCORE";
    }}
    spf_reputation {{
      selector "spf" {{ }}
      backend "redis" {{ }}
      symbol = "SPF_REP";
    }}
    url_reputation {{
      selector "url" {{ }}
      backend "redis" {{ }}
      symbol = "URL_SCORE";
    }}
    sender_domain {{
      selector "generic" {{ selector = "from('smtp'):addr"; }}
      backend "redis" {{ prefix = "RG:"; }}
      symbol = "SENDER_DOMAIN_REP";
    }}
  }}
}}
"""
    return base_conf(directory, port, body)


#: A second ip rule in B, on the hashed zone: it must score as the plain one does.
HASHED_CONF = """    hashed_ip {
      selector "ip" { }
      backend "repzone" {
        zone = "hash.example.net"; scheme = "hash"; alg = "sha256"; encoding = "rbase32";
        length = 40;
        components {
          asn { zone = "asn.rep.example.net"; scheme = "name"; }
          country { zone = "cc.rep.example.net"; scheme = "name"; }
        }
      }
      symbol = "HASHED_SENDER_REP";
    }"""

FAULT_CONF = "\n".join(
    f"""    fault_{name} {{
      selector "generic" {{ selector = "header('X-Fault-{name}')"; }}
      backend "repzone" {{ zone = "{
          'refused' if name == 'refused' else 'silent' if name == 'silent' else 'bad'
      }.example.net"; scheme = "name"; }}
      symbol = "FAULT_{name.upper()}";
    }}""" for name in FAULT_RULES)


def conf_b(directory: Path, zoned: Zoned, port: int) -> str:
    plugins = directory / "plugins.d"
    plugins.mkdir()
    (plugins / PLUGIN.name).write_text(PLUGIN.read_text())
    block = snippet(PAGE, "repzone_reputation.conf")
    # The fault rules go inside the same rules section.
    block = block.replace("  rules {\n", "  rules {\n" + HASHED_CONF + "\n" + FAULT_CONF + "\n", 1)
    (directory / "rspamd.conf.local").write_text(block)
    body = common_conf(directory, zoned) + f'.include "{directory}/rspamd.conf.local"\n'
    return base_conf(directory, port, body, plugins=plugins)


@dataclass
class World:
    zones: Path
    zoned: Zoned
    redis: RedisServer
    a: Rspamd
    b: Rspamd
    serial: int = 0
    notes: list[str] = field(default_factory=list)

    def mail(self, sender: Sender, extra: str = "") -> bytes:
        self.serial += 1
        return message(sender, self.serial, extra)

    def scan(self, who: Rspamd, sender: Sender, data: bytes,
             headers: dict[str, str] | None = None) -> dict[str, Symbol]:
        return who.scan(data, ip=sender.ip, sender=sender.address, headers=headers)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    base = tmp_path_factory.mktemp("plugin")
    redis = launch_redis(base / "redis")
    zones = base / "zones"
    write_zones(zones, redis.url)
    zonepub(zones, "sync", "--once")  # creates the (empty) stores zoned serves
    zoned = start_zoned(zones, base / "zoned.log")
    dir_a, dir_b = base / "a", base / "b"
    dir_a.mkdir()
    dir_b.mkdir()
    port_a, port_b = new_port(), new_port()
    try:
        with running_rspamd(dir_a, conf_a(dir_a, zoned, redis, port_a), port_a) as a, \
                running_rspamd(dir_b, conf_b(dir_b, zoned, port_b), port_b) as b:
            yield World(zones, zoned, redis, a, b)
    finally:
        zoned.stop()
        redis.stop()


def reputation(symbols: dict[str, Symbol]) -> dict[str, Symbol]:
    return {name: sym for name, sym in symbols.items() if name in REPUTATION}


def test_plugin_matches_the_stock_plugin(world: World) -> None:
    """B's reputation symbols, scores and options equal A's; repq's scores equal both."""
    for sender in SENDERS:
        for _ in range(sender.training):
            world.scan(world.a, sender, world.mail(sender))
    zonepub(world.zones, "sync", "--once")
    served_as_stored(world)
    table = []
    for sender in SENDERS:
        data = world.mail(sender)
        got_b = world.scan(world.b, sender, data)
        got_a = world.scan(world.a, sender, data)
        assert "TEST_VERDICT" in got_a and "TEST_VERDICT" in got_b
        rep_a, rep_b = reputation(got_a), reputation(got_b)
        assert sorted(rep_b) == sorted(rep_a), (sender, got_a, got_b)
        for name, sym in rep_a.items():
            assert abs(rep_b[name].score - sym.score) < 0.001, (sender, name, sym, rep_b[name])
            if name.startswith("SENDER_REP"):
                assert rep_b[name].options == sym.options, (sender, name)
        hashed = {k[len("HASHED_"):]: v for k, v in got_b.items() if k.startswith("HASHED_")}
        assert {k: round(v.score, 6) for k, v in hashed.items()} == {
            k: round(v.score, 6) for k, v in rep_a.items() if k.startswith("SENDER_REP")}
        if "R_DKIM_ALLOW" in got_a:
            assert abs(got_b["R_DKIM_ALLOW"].score - got_a["R_DKIM_ALLOW"].score) < 0.001
        table.append((sender, rep_a, rep_b))
        check_repq(world, sender, data, rep_a, got_b)
    seen = {name for _, rep_a, _ in table for name in rep_a}
    # Every kind of symbol was compared, and the senders below lower_bound gave none.
    assert {"SENDER_REP_SPAM", "SENDER_REP_HAM", "DKIM_SCORE", "SPF_REP_SPAM",
            "SENDER_DOMAIN_REP"} <= seen
    for sender, rep_a, _ in table:
        if sender.training < LOWER_BOUND:
            assert not [n for n in rep_a if n != "DKIM_SCORE"], (sender, rep_a)
            assert rep_a.get("DKIM_SCORE", Symbol(0.0, ())).score == 0.0
    print_table(table)
    print("\n".join(world.notes))


REPQ_CONFIG = """
timeout: 2
asn: {{ip4: {asn4}, ip6: {asn6}}}
selectors:
  - name: ip
    zone: bl.example.net
    scheme: ip
    components:
      asn: {{zone: asn.rep.example.net, scheme: name}}
      country: {{zone: cc.rep.example.net, scheme: name}}
  - {{name: spf, zone: spf.rep.example.net, scheme: name}}
  - {{name: url, zone: url.rep.example.net, scheme: name}}
  - name: sender_domain
    kind: generic
    symbol: SENDER_DOMAIN_REP
    expression: "from('smtp'):addr"
    zone: gen.rep.example.net
    scheme: {{scheme: hash, alg: blake2, encoding: base32, length: 32}}
"""


def repq(world: World, *args: str) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-m", "client.repq", "--server", f"127.0.0.1:{world.zoned.port}",
         "--json", *args], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr + done.stdout
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def check_repq(world: World, sender: Sender, data: bytes, rep_a: dict[str, Symbol],
               got_b: dict[str, Symbol]) -> None:
    """repq, finding the ASN and country itself, scores as A and B do."""
    config = world.zones.parent / "repq.yaml"
    config.write_text(REPQ_CONFIG.format(asn4=ASN4, asn6=ASN6))
    eml = world.zones.parent / "message.eml"
    eml.write_bytes(data)
    result = repq(world, "check-message", "--config", str(config), "--ip", sender.ip,
                  "--from", sender.address, "--spf-result", "pass", "--spf-record",
                  sender.spf, str(eml))
    symbols = result["symbols"]
    assert isinstance(symbols, dict)
    # The ASN and country repq found are those Rspamd's asn module found.
    ip_rule = next(s for s in result["selectors"] if s["name"] == "ip")
    tokens = {c["component"]: c["token"] for c in ip_rule["components"]}
    assert tokens["asn"] == sender.asn and tokens["country"] == sender.country, tokens
    dkim = repq(world, "--scheme", "name", "dkim.rep.example.net", "dkim", sender.domain)
    if "DKIM_SCORE" in rep_a:
        symbols["DKIM_SCORE"] = dkim["score"]
    expected = {name: sym.score for name, sym in rep_a.items()}
    if "URL_SCORE" in got_b:  # A's url rule cannot read (see the docs): B is the reference
        expected["URL_SCORE"] = got_b["URL_SCORE"].score
    assert set(symbols) == set(expected), (sender, symbols, expected)
    for name, score in expected.items():
        assert abs(float(symbols[name]) - score) < 0.001, (sender, name, symbols, expected)
    world.notes.append(f"{sender.ip} | repq " + ", ".join(
        f"{k}({float(v):+.4f})" for k, v in sorted(symbols.items())))


def print_table(table: list[tuple[Sender, dict[str, Symbol], dict[str, Symbol]]]) -> None:
    print("\nsender | A symbol(score) | B symbol(score)")
    for sender, rep_a, rep_b in table:
        shown_a = ", ".join(f"{k}({v.score:+.4f})" for k, v in sorted(rep_a.items()))
        shown_b = ", ".join(f"{k}({v.score:+.4f})" for k, v in sorted(rep_b.items()))
        print(f"{sender.ip} | {shown_a or 'none'} | {shown_b or 'none'}")


def soa_serial(zoned: Zoned, apex: str) -> int | None:
    reply = dns.query.udp(dns.message.make_query(apex, dns.rdatatype.SOA), "127.0.0.1",
                          port=zoned.port, timeout=2)
    return next((rdata.serial for rrset in reply.answer for rdata in rrset), None)


def served_as_stored(world: World) -> None:
    """Wait until zoned serves each list zone at its store's serial: it checks its stores
    four times a second, so a scan right after ``zonepub sync --once`` could still read
    the serial before."""
    stored = {}
    for config in load_zones(world.zones):
        if config.origin in {apex for apex, *_ in REP_ZONES}:
            store = ZoneStore.open_readonly(config.store)
            assert store is not None, config.origin
            try:
                stored[config.origin] = store.serial()
            finally:
                store.close()
    until(lambda: all(soa_serial(world.zoned, apex) == serial
                      for apex, serial in stored.items()),
          lambda: f"zoned to serve the stored serials {stored}", timeout=10)


def txt_n(zoned: Zoned, name: str) -> float | None:
    query = dns.message.make_query(name, dns.rdatatype.TXT)
    reply = dns.query.udp(query, "127.0.0.1", port=zoned.port, timeout=2)
    for rrset in reply.answer:
        for rdata in rrset:
            text = b"".join(rdata.strings).decode()
            for part in text.split(";"):
                if part.startswith("n="):
                    return float(part[2:])
    return None


def test_a_change_reaches_b(world: World) -> None:
    """More scans through A move a sender past lower_bound; B follows the zone."""
    sync = subprocess.Popen([sys.executable, "-m", "publisher.cli", "-c", str(world.zones),
                             "sync"], cwd=REPO, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        name = f"{reverse_ip(LOW.ip)}.bl.example.net"
        start = txt_n(world.zoned, name) or 0.0
        # Before the change: B has no ip symbol for it (n below lower_bound).
        assert not {"SENDER_REP_SPAM", "SENDER_REP_HAM"} & set(
            world.scan(world.b, LOW, world.mail(LOW)))
        for _ in range(LOWER_BOUND - int(start)):
            world.scan(world.a, LOW, world.mail(LOW))
        changed = time.monotonic()
        data = world.mail(LOW)

        def complete() -> dict[str, Symbol] | None:
            # Each zone is published on its own: wait for all three components.
            got = world.scan(world.b, LOW, data)
            symbol = got.get("SENDER_REP_SPAM")
            return got if symbol is not None and "(0.00)" not in symbol.options[0] else None

        got_b = poll(complete, "B to see the sender's new score", timeout=60)
        lag = time.monotonic() - changed
        got_a = world.scan(world.a, LOW, data)
        assert abs(got_b["SENDER_REP_SPAM"].score - got_a["SENDER_REP_SPAM"].score) < 0.001
        assert got_b["SENDER_REP_SPAM"].options == got_a["SENDER_REP_SPAM"].options
        print(f"\nlag from A's write to B's symbol: {lag:.2f} s; "
              f"A {got_a['SENDER_REP_SPAM']}, B {got_b['SENDER_REP_SPAM']}")
    finally:
        stop(sync, 15)


def fault_scan(world: World, fault: str, label: str) -> dict[str, Symbol]:
    sender = SENDERS[3]
    return world.scan(world.b, sender, world.mail(sender, f"X-Fault-{fault}: {label}\r\n"))


def lua_errors(log: str) -> list[str]:
    """Lines of the log that report a Lua error in (or an internal error of) the plugin."""
    bad = ("attempt to", "stack traceback", "internal error", "call to ", "lua error")
    return [line for line in log.splitlines()
            if "repzone_reputation" in line and any(b in line for b in bad)]


def warnings(log: str, rule: str) -> list[str]:
    return [line for line in log.splitlines()
            if f"rule {rule}: no reputation symbol" in line]


@pytest.mark.parametrize("fault", [f for f in FAULT_RULES if f != "good"])
def test_bad_answers_give_no_symbol_and_one_warning(world: World, fault: str) -> None:
    """Garbage, oversized, multi-string, v-less, newer, absent, refused, silent: scanned
    normally, no symbol, at most one warning for the rule however often it happens."""
    label = "any" if fault in ("refused", "silent") else fault
    for _ in range(3):
        got = fault_scan(world, fault, label)
        assert "TEST_VERDICT" in got, got  # the message was scanned
        assert f"FAULT_{fault.upper()}" not in got, got
    shown = warnings(world.b.log, f"fault_{fault}")
    expected = 0 if fault == "absent" else 1
    assert len(shown) == expected, shown
    if fault == "newer":
        assert "newer than 1" in shown[0]
    assert lua_errors(world.b.log) == []


def test_good_answer_of_the_fault_zone_scores(world: World) -> None:
    """The fault rules work: the zone's one good record gives its symbol."""
    got = fault_scan(world, "good", "good")
    expected = math.tanh(20 / 15 * 1.83178 - 0.5493)
    # The option carries the multiplier with Lua's 14 digits; the score is rounded.
    assert abs(float(got["FAULT_GOOD"].options[0]) - expected) < 1e-12, got
    assert abs(got["FAULT_GOOD"].score - expected) < 1e-5, got
    assert warnings(world.b.log, "fault_good") == []
