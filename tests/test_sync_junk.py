"""Junk in Redis never stops or widens a list (issues 9 and 15): real redis-server.

Anyone who can write to the scanners' Redis can leave values of other types, binary
field names and values, 10 MB fields, 64 KiB keys, NUL bytes, text that is not UTF-8
and network-shaped tokens.  Through ``zonepub sync --once``, the continuous sync and
``zonepub learn`` each such key is skipped and counted, the run goes on, the good keys
next to them are published, and the store holds exactly what it should.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from publisher.cli import main as zonepub
from publisher.describe import describe_answer
from publisher.judge import BAD_KEY
from tests.support.polling import until
from tests.support.processes import stop
from tests.support.publishing import copy_zones
from tests.support.redis_server import redis_url  # noqa: F401  (fixture)
from tests.support.repo import REPO
from zoned import keys
from zoned.config import ZoneConfig, load_zone_file
from zoned.ratelog import LIMITER
from zoned.store import ZoneStore

pytestmark = pytest.mark.adversarial

IP = "bl.example.net"
NOW_MS = 1_763_769_600_000
GOOD = {"n": "20", "l": str(NOW_MS), "v1m": "12"}
GOOD_TXT = "v=1;n=20;sc=0.7241;l=1763769600;v1m=12"
BIG = 10 * 1024 * 1024


def fill_junk(client: redis.Redis) -> None:
    """Good keys 192.0.2.1-5 among junk of every kind, in the rspamd layout."""
    for i in range(1, 6):
        client.hset(f"RR:i:192.0.2.{i}", mapping=GOOD)
    # Values of other types (5: wrong_type).
    client.rpush("RR:i:192.0.2.10", "x")
    client.sadd("RR:i:192.0.2.11", "x")
    client.zadd("RR:i:192.0.2.12", {"x": 1.0})
    client.xadd("RR:i:192.0.2.13", {"n": "20"})
    client.set("RR:i:192.0.2.14", "n=20")
    # Bad fields (4: bad_fields): binary junk as a value, a NUL in a count, a bucket
    # whose name is binary, a 10 MB bucket value.
    client.hset("RR:i:192.0.2.20", mapping={b"n": b"\xff\xfe\x00\x01", b"l": b"1"})
    client.hset("RR:i:192.0.2.21", mapping={b"n": b"20\x00", b"v1m": b"1"})
    client.hset("RR:i:192.0.2.22", mapping={b"n": b"20", b"v\xff\x00": b"15"})
    client.hset("RR:i:192.0.2.23", mapping={b"n": b"20", b"v1m": b"7" * BIG})
    # Fields no layout knows are ignored, junk names and 10 MB values included: these
    # are published with what n, l and v say.
    client.hset("RR:i:192.0.2.30", mapping={**GOOD, "x" * 65536: "1", "\xff\x00": "\x00"})
    client.hset("RR:i:192.0.2.31", mapping={**GOOD, "junk": b"\xff" * BIG})
    # Bad tokens (8: bad_token): NUL, not UTF-8, 64 KiB, networks (never a Redis token).
    for key in (b"RR:i:1.2.3.4\x00", b"RR:i:192.0.2.4\xff", b"RR:i:" + b"1" * 65536,
                b"RR:i:0.0.0.0/0", b"RR:i:::/0", b"RR:i:198.19.0.0/16",
                b"RR:i:" + b"\xff" * 65536, b"RR:i:fe80::1%eth0"):
        client.hset(key, mapping=GOOD)
    # Not this zone's (2: not_ours): another selector's shape, junk without i:.
    client.hset(b"RR:\xff\xfe", mapping=GOOD)
    client.hset(b"RR:" + b"\x00" * 65536, mapping=GOOD)


GOOD_HOSTS = {f"192.0.2.{i}" for i in (1, 2, 3, 4, 5, 30, 31)}
COUNTS = "keys=26 published=7 not_ours=2 wrong_type=5 bad_fields=4 bad_token=8"


def published(config: ZoneConfig) -> dict[str, str]:
    """Every network in the zone's store with its answer (read by another process's rules:
    the store as zoned would open it)."""
    store = ZoneStore.open_readonly(config.store)
    if store is None:
        return {}
    with store, store.reader() as reader:
        result = {}
        for key, value in reader.entries():
            network = keys.key_network(key)
            name = str(network.network_address) if network.num_addresses == 1 else str(network)
            result[name] = describe_answer(value)
        return result


@pytest.fixture(autouse=True)
def fresh_log_quota() -> None:
    """Skipped keys are logged a few a minute (zoned.ratelog); each test starts afresh."""
    LIMITER.kinds.pop(BAD_KEY, None)


@pytest.fixture
def r(redis_url: str) -> Iterator[redis.Redis]:  # noqa: F811
    client = redis.Redis.from_url(redis_url)
    client.flushall()
    yield client
    client.close()


def test_sync_once_skips_and_counts_junk_and_publishes_the_rest(
    tmp_path: Path, redis_url: str, r: redis.Redis,  # noqa: F811
    capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture,
) -> None:
    fill_junk(r)
    zones = copy_zones(tmp_path)
    assert zonepub(["-c", str(zones), "sync", "--zone", IP, "--redis", redis_url,
                    "--once"]) == 0
    assert COUNTS in capsys.readouterr().out
    listed = published(load_zone_file(zones / f"{IP}.yaml"))
    assert set(listed) == GOOD_HOSTS
    assert all(answer.endswith(f'TXT "{GOOD_TXT}"') for answer in listed.values())
    # Log lines stay short (a 64 KiB key is cut) and few (rate-limited).
    lines = [record.getMessage() for record in caplog.records if "skipped" in record.getMessage()]
    assert 0 < len(lines) <= 5 and max(map(len, lines)) < 1000


def test_a_hash_zone_skips_the_same_junk(tmp_path: Path, redis_url: str,  # noqa: F811
                                         r: redis.Redis,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    fill_junk(r)
    zones = copy_zones(tmp_path)
    assert zonepub(["-c", str(zones), "sync", "--zone", "hash.example.net", "--redis",
                    redis_url, "--once"]) == 0
    assert COUNTS in capsys.readouterr().out
    store = ZoneStore.open_readonly(load_zone_file(zones / "hash.example.net.yaml").store)
    assert store is not None
    with store:
        assert store.count() == 2 * len(GOOD_HOSTS)  # two hash schemes per token


def test_continuous_sync_survives_junk_written_while_it_runs(
    tmp_path: Path, redis_url: str, r: redis.Redis  # noqa: F811
) -> None:
    fill_junk(r)
    zones = copy_zones(tmp_path)
    config = load_zone_file(zones / f"{IP}.yaml")
    log = tmp_path / "zonepub.log"
    with log.open("ab") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "publisher.cli", "-c", str(zones), "sync", "--zone", IP,
             "--redis", redis_url], cwd=REPO, stdout=sink, stderr=sink)
    try:
        until(lambda: "full sync" in log.read_text(), "the full sync", 20)
        assert COUNTS in log.read_text()
        assert set(published(config)) == GOOD_HOSTS
        # Junk through keyspace notifications: each kind once more, then a good key.
        r.rpush("RR:i:192.0.2.60", "x")
        r.xadd("RR:i:192.0.2.61", {"n": "1"})
        r.hset("RR:i:192.0.2.62", mapping={b"n": b"\x00" * BIG})
        r.hset(b"RR:i:9.9.9.9\x00", mapping=GOOD)
        r.hset(b"RR:i:0.0.0.0/0", mapping={"n": "5000"})
        r.hset(b"RR:i:" + b"\xfe" * 65536, mapping=GOOD)
        # A published token whose key turns into a list keeps what it had (unreadable).
        r.delete("RR:i:192.0.2.3")
        r.rpush("RR:i:192.0.2.3", "x")
        r.hset("RR:i:192.0.2.70", mapping=GOOD)
        until(lambda: "192.0.2.70" in published(config), "192.0.2.70 published", 15.0)
        assert process.poll() is None, log.read_text()
        assert set(published(config)) == GOOD_HOSTS | {"192.0.2.70"}
        assert "Traceback" not in log.read_text()
    finally:
        stop(process)
    assert process.returncode == 0, log.read_text()


# --------------------------------------------------------------------------- learn


def learn(*argv: str) -> int:
    return zonepub(["learn", *argv])


def test_learn_lists_junk_verdicts_and_writes_nothing(
    tmp_path: Path, redis_url: str, r: redis.Redis,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
) -> None:
    csv = tmp_path / "verdicts.csv"
    csv.write_bytes(b"ip,192.0.2.1,spam\n"
                    b"ip,1.2.3.4\x00,spam\n"
                    b"ip,192.0.2.\xff,spam\n"
                    b"generic,\xfe\xfe,ham\n"
                    b"ip,0.0.0.0/0,spam\n"
                    b"ip," + b"1" * 65536 + b",spam\n"
                    b"\x00,x,spam\n"
                    b"generic," + b"x" * BIG + b",spam\n"
                    b"ip,192.0.2.2,ham\n")
    assert learn("--redis", redis_url, "--file", str(csv)) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err and len(err) < 5000
    assert "verdicts.csv:9:" not in err
    for line in range(2, 9):
        assert f"verdicts.csv:{line}:" in err, line
    assert "verdicts.csv:1:" not in err
    lines = tmp_path / "verdicts.jsonl"
    lines.write_bytes(b'{"kind": "ip", "value": "1.2.3.4\\u0000", "verdict": "spam"}\n'
                      b'{"kind": "generic", "value": "\\ud800", "verdict": "spam"}\n'
                      b'{"kind": "ip", "value": "192.0.2.\xff", "verdict": "spam"}\n'
                      + json.dumps({"kind": "ip", "value": "9" * BIG, "verdict": 1}).encode()
                      + b"\n")
    assert learn("--redis", redis_url, "--file", str(lines)) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err and len(err) < 5000
    assert all(f"verdicts.jsonl:{line}:" in err for line in range(1, 5))
    assert r.dbsize() == 0  # every line is checked before anything is written


def test_learn_skips_tokens_whose_keys_are_junk_and_the_sync_publishes_the_rest(
    tmp_path: Path, redis_url: str, r: redis.Redis,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
) -> None:
    zones = copy_zones(tmp_path)
    path = zones / f"{IP}.yaml"
    path.write_text(path.read_text().replace('  layout: rspamd\n  prefix: "RR:"\n',
                                             "  layout: buckets\n"))
    r.rpush("RB:{i:192.0.2.7}:1h", "junk")  # a list where a bucket hash would be
    r.set("RB:{i:192.0.2.8}:1d", b"\xff" * 1024)
    r.hset("RB:{i:192.0.2.9}:1h", mapping={b"1h:s": b"\x00junk"})
    verdicts = tmp_path / "verdicts.csv"
    verdicts.write_text("".join(f"ip,192.0.2.{i},spam\n" for i in range(1, 10) for _ in range(12)))
    assert learn("-c", str(zones), "--zone", IP, "--redis", redis_url,
                 "--file", str(verdicts)) == 1
    captured = capsys.readouterr()
    assert "learned 72 verdicts" in captured.out  # 6 of 9 tokens, 12 each
    assert "skipped 36 verdicts of 3 tokens" in captured.err
    assert "RB:{i:192.0.2.7}:1h" in captured.err and "holds a list" in captured.err
    assert "holds a string" in captured.err and "not an integer" in captured.err
    assert r.lrange("RB:{i:192.0.2.7}:1h", 0, -1) == [b"junk"]  # left as it was
    assert zonepub(["-c", str(zones), "sync", "--zone", IP, "--redis", redis_url,
                    "--once"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"wrong_type=2 bad_fields=1\b", out), out
    listed = published(load_zone_file(path))
    # 192.0.2.9 was learned on top of a junk field: its hash stays unreadable, so unlisted.
    assert set(listed) == {f"192.0.2.{i}" for i in range(1, 7)}
