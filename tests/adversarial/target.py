"""The zoned under attack, and what counts as holding.

A real ``zoned`` process serves the example zones with the demo samples published (as
tests/test_e2e.py does) and ``bl.example.net`` open to signed transfers from loopback,
so TSIG-signed queries reach the verifier.  The pass criteria every adversarial test
shares live here: the replies' shape (:func:`judge`), the log (:func:`tracebacks`),
memory (:func:`rss_kib`), and the answers afterwards (:func:`assert_answers`).
"""

from __future__ import annotations

import base64
import os
import random
import socket
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import dns.exception
import dns.message
import dns.query
import dns.rcode
import dns.tsig

from listformat import names
from listformat.hashing import HashScheme
from listformat.names import OwnerScheme
from tests.adversarial.mutations import Seed, name_wire, real_queries
from tests.support.publishing import copy_zones, publish_samples
from tests.support.zoned_process import Zoned, start_zoned

IP = "bl.example.net"
KEY = dns.tsig.Key("fuzz-key.", base64.b64encode(b"repzone-fuzz-key-of-32-bytes-len").decode())
STRANGER = dns.tsig.Key("stranger-key.",
                        base64.b64encode(b"a key zoned has never heard of!").decode())
KEY_NAMES = (name_wire([b"fuzz-key"]), name_wire([b"stranger-key"]))
# A published sample token and its answers (zones/samples/bl.example.net.jsonl).
TOKEN = f"1.2.0.192.{IP}"
TOKEN_A = "127.0.0.2"
TOKEN_TXT = '"v=1;n=120;s=110;h=4;p=6;sc=0.87;l=1763769600"'
MAX_UDP = 1232  # zoned caps its EDNS buffer there (README), so no UDP reply is larger
SERVFAIL = dns.rcode.SERVFAIL

_HASHED = OwnerScheme("hash", HashScheme("blake2", "base32", 32), (HashScheme("sha1", "hex"),))


def query_names() -> list[str]:
    """Names of every kind the example zones hold, and one outside them."""
    hashed = [f"{owner}.hash.example.net" for owner in names.owner_names(_HASHED, "192.0.2.1")]
    return [
        TOKEN, f"2.0.0.127.{IP}", f"1.0.0.127.{IP}", f"9.9.9.9.{IP}", f"big.{IP}",
        f"huge.{IP}", f"www.{IP}", IP, f"200.100.51.198.{IP}", f"0.0.127.{IP}",
        *hashed, "hash.example.net", "example.com.dom.example.net",
        "mail.spammer.example.dom.example.net", "dom.example.net", "www.example.org",
    ]


def corpus() -> list[Seed]:
    """The real queries the mutations start from (signed ones carry the current time)."""
    return real_queries(query_names(), [KEY, STRANGER], random.Random(0))


def start(base: Path, *extra: str) -> Zoned:
    zones = copy_zones(base)
    publish_samples(zones)
    zone_file = zones / f"{IP}.yaml"
    zone_file.write_text(zone_file.read_text() + f"""
transfer:
  allow: [127.0.0.0/8]
  key: fuzz-key
keys:
  fuzz-key: {{secret: "{base64.b64encode(KEY.secret).decode()}"}}
""")
    return start_zoned(zones, base / "zoned.log", *extra)


def rss_kib(pid: int) -> int:
    """VmRSS of a process, in KiB (/proc/PID/status)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError(f"no VmRSS for {pid}")


def cpu_seconds(pid: int) -> float:
    """User and system CPU time a process has used (/proc/PID/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def tracebacks(log: Path) -> list[str]:
    """Every traceback in the log, each with the lines that follow it."""
    lines = log.read_text(errors="replace").splitlines()
    return ["\n".join(lines[i : i + 25]) for i, line in enumerate(lines) if "Traceback" in line]


def judge(packet: bytes, reply: bytes, *, tcp: bool) -> str | None:
    """What is wrong with ``reply`` as the answer to ``packet``, or None if nothing.

    A reply must carry the query's id and QR, parse (TSIG not checked: zoned signs
    with keys the fuzzer does not hold), fit zoned's UDP limit, and never be SERVFAIL:
    nothing in these zones is damaged, so a SERVFAIL is our own bug.  Messages shorter
    than a header and responses (QR set) are never answered at all.
    """
    if len(packet) < 12:
        return "a reply to a message shorter than a header"
    if packet[2] & 0x80:
        return "a reply to a response (QR set): a reflection loop"
    if len(reply) < 12:
        return f"a {len(reply)}-byte reply"
    if reply[:2] != packet[:2]:
        return "the reply's id is not the query's"
    if not reply[2] & 0x80:
        return "QR not set"
    if not tcp and len(reply) > MAX_UDP:
        return f"a {len(reply)}-byte UDP reply"
    try:
        message = dns.message.from_wire(reply, keyring=False)
    except dns.exception.DNSException as exc:
        return f"malformed reply: {exc!r}"
    if message.rcode() == SERVFAIL:
        return "SERVFAIL"
    return None


def rcode_of(reply: bytes) -> str:
    """The reply's RCODE name (header bits only: the fuzz tally needs no EDNS bits)."""
    return dns.rcode.to_text(dns.rcode.Rcode(reply[3] & 0x0F))


@dataclass
class Tally:
    """Counts per mutation class, and the first problems found."""

    seed: int
    sent: Counter[str] = field(default_factory=Counter)
    answered: Counter[str] = field(default_factory=Counter)
    rcodes: dict[str, Counter[str]] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    lost_windows: int = 0  # UDP: windows whose marker query went unanswered
    closed: int = 0  # TCP: connections zoned closed before the marker's answer

    def count(self, name: str, reply: bytes, verdict: str | None, packet: bytes) -> None:
        self.answered[name] += 1
        if verdict is not None:
            self.problem(f"{name}: {verdict}\n  sent  {packet.hex()}\n  reply {reply.hex()}")
        else:
            self.rcodes.setdefault(name, Counter())[rcode_of(reply)] += 1

    def problem(self, text: str) -> None:
        if len(self.problems) < 20:
            self.problems.append(text)

    def report(self) -> str:
        rows = [f"seed {self.seed}: {sum(self.sent.values())} sent, "
                f"{sum(self.answered.values())} answered, {self.lost_windows} windows lost, "
                f"{self.closed} connections closed by zoned"]
        for name in sorted(self.sent):
            rcodes = ", ".join(f"{k} {v}" for k, v in self.rcodes.get(name, Counter())
                               .most_common())
            rows.append(f"  {name:20} sent {self.sent[name]:6}  answered "
                        f"{self.answered[name]:6}  {rcodes}")
        return "\n".join(rows)


def assert_answers(server: Zoned) -> None:
    """The published token answers right over UDP and TCP, A and TXT."""
    for rdtype, expected in (("A", TOKEN_A), ("TXT", TOKEN_TXT)):
        query = dns.message.make_query(TOKEN, rdtype)
        for reply in (dns.query.udp(query, "127.0.0.1", port=server.port, timeout=5),
                      dns.query.tcp(query, "127.0.0.1", port=server.port, timeout=5)):
            assert reply.rcode() == dns.rcode.NOERROR, reply
            assert [rdata.to_text() for rdata in reply.answer[0]] == [expected], reply


def alive(server: Zoned) -> None:
    assert server.process.poll() is None, (
        f"zoned exited with {server.process.returncode}:\n{server.log.read_text()[-5000:]}")


def fresh_seed() -> int:
    """A new seed per run, unless REPZONE_FUZZ_SEED replays one."""
    chosen = os.environ.get("REPZONE_FUZZ_SEED")
    return int(chosen) if chosen else random.SystemRandom().randrange(2**32)


def wait_closed(sock: socket.socket, within: float) -> bool:
    """True once the peer closes ``sock`` (EOF or reset), reading and dropping data."""
    deadline = time.monotonic() + within
    sock.setblocking(True)
    while (left := deadline - time.monotonic()) > 0:
        sock.settimeout(left)
        try:
            if not sock.recv(65536):
                return True
        except (ConnectionResetError, BrokenPipeError):
            return True
        except TimeoutError:
            return False
    return False
