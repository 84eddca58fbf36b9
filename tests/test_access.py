"""Access sections of a zone file: query ACLs, transfer ACLs, TSIG keys, NOTIFY targets."""

from __future__ import annotations

import base64
import ipaddress
from pathlib import Path

import pytest

from tests.support.configs import MINIMAL, problems_of, write
from zoned.access import Networks, Target, TsigKey, parse_target
from zoned.config import load_zone_file

SECRET = base64.b64encode(b"k" * 32).decode()


def test_access_sections_load_into_values(tmp_path: Path) -> None:
    """Networks, keys (inline or from a file) and NOTIFY targets of every spelling load."""
    write(tmp_path, "xfr.key", SECRET + "\n")
    path = write(tmp_path, "z.yaml", MINIMAL + f"""\
queries:
  allow: [127.0.0.0/8, "::1"]
  denied: drop
transfer:
  allow: 192.0.2.0/24
  key: xfr-key
  notify: [192.0.2.1, "192.0.2.2:5300", "[2001:db8::1]:5301", "192.0.2.3@5302"]
keys:
  xfr-key: {{secret_file: xfr.key}}
  other: {{algorithm: hmac-sha512, secret: "{SECRET}"}}
""")
    zone = load_zone_file(path)
    assert zone.queries is not None and zone.queries.denied == "drop"
    assert "127.1.2.3" in zone.queries.allow and "::1" in zone.queries.allow
    assert "::ffff:127.0.0.9" in zone.queries.allow  # IPv4 client on a dual-stack socket
    assert "192.0.2.1" not in zone.queries.allow and "::2" not in zone.queries.allow
    transfer = zone.transfer
    assert transfer is not None
    assert transfer.key == TsigKey("xfr-key", "hmac-sha256", b"k" * 32)
    assert "secret" not in repr(transfer.key) and SECRET not in repr(transfer.key)
    assert transfer.notify == (
        Target("192.0.2.1", 53), Target("192.0.2.2", 5300),
        Target("2001:db8::1", 5301), Target("192.0.2.3", 5302),
    )
    assert str(transfer.notify[2]) == "[2001:db8::1]:5301"
    assert "192.0.2.77" in transfer.allow and "192.0.3.1" not in transfer.allow


def test_without_access_sections_everyone_queries_and_nobody_transfers(tmp_path: Path) -> None:
    zone = load_zone_file(write(tmp_path, "z.yaml", MINIMAL))
    assert zone.queries is None and zone.transfer is None


def test_every_access_mistake_is_named_with_its_line(tmp_path: Path) -> None:
    path = write(tmp_path, "z.yaml", MINIMAL + """\
queries:
  allow: [10.0.0.1/8, nonsense]
  denied: ignore
transfer:
  key: missing
  notify: ["192.0.2.1:99999", host.example.net]
keys:
  bad-alg: {algorithm: hmac-sha3, secret: "a2V5"}
  bad-secret: {secret: "not base64!"}
  both: {secret: "a2V5", secret_file: x}
  unreadable: {secret_file: nope.key}
""")
    found = {(line, field): message for line, _, field, message in problems_of(path)}
    assert "host bits set" in found[(8, "queries.allow[0]")]
    assert (8, "queries.allow[1]") in found
    assert found[(9, "queries.denied")] == "expected refuse or drop, got 'ignore'"
    assert found[(10, "transfer.allow")] == "required field is missing"
    assert found[(11, "transfer.key")].startswith("no key 'missing' in keys (")
    assert (12, "transfer.notify[0]") in found and (12, "transfer.notify[1]") in found
    assert "unknown TSIG algorithm 'hmac-sha3'" in found[(14, "keys.bad-alg.algorithm")]
    assert found[(15, "keys.bad-secret.secret")] == "the secret is not valid base64"
    assert found[(16, "keys.both")] == "expected exactly one of secret and secret_file"
    assert "cannot read" in found[(17, "keys.unreadable.secret_file")]


@pytest.mark.parametrize(
    ("text", "target"),
    [
        ("127.0.0.1", Target("127.0.0.1", 53)),
        ("127.0.0.1:5300", Target("127.0.0.1", 5300)),
        ("127.0.0.1@5300", Target("127.0.0.1", 5300)),
        ("::1", Target("::1", 53)),
        ("[::1]:5300", Target("::1", 5300)),
        ("::1@5300", Target("::1", 5300)),
        ("[::1]", Target("::1", 53)),
        ("example.net", None),
        ("127.0.0.1:0", None),
        ("[::1]5300", None),
        ("127.0.0.1:x", None),
    ],
)
def test_notify_targets_in_every_spelling(text: str, target: Target | None) -> None:
    assert parse_target(text) == target


def test_networks_match_only_their_family() -> None:
    nets = Networks((ipaddress.ip_network("10.0.0.0/8"), ipaddress.ip_network("2001:db8::/32")))
    assert "10.9.9.9" in nets and "2001:db8::5" in nets
    assert "11.0.0.1" not in nets and "2001:db9::1" not in nets
    assert "garbage" not in nets and 42 not in nets
    assert "fe80::1%eth0" not in nets
    assert Networks(()) == Networks(()) and "10.0.0.1" not in Networks(())
