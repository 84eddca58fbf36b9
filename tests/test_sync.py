"""``zonepub sync`` against a real redis-server: full, dry-run, safety, faults."""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import dns.message
import dns.rcode
import pytest
import redis

from publisher.cli import main as zonepub
from publisher.judge import BAD_KEY
from tests.support.publishing import copy_zones
from tests.support.redis_cluster import redis_cluster_url  # noqa: F401  (fixture)
from tests.support.redis_server import redis_url  # noqa: F401  (fixture)
from tests.support.repo import REPO
from zoned.core import Responder
from zoned.ratelog import LIMITER
from zoned.service import build_authority
from zoned.store import ZoneStore
from zoned.zone import ReaderPool

IP = "bl.example.net"
NOW_MS = 1_763_769_600_000


def rspamd_hash(n: int, v: float, l_ms: int = NOW_MS) -> dict[str, str]:
    return {"n": str(n), "l": str(l_ms), "v1m": repr(v)}


def ask(responder: Responder, qname: str, rdtype: str = "A") -> dns.message.Message:
    wire = responder.respond(dns.message.make_query(qname, rdtype).to_wire())
    assert wire is not None
    return dns.message.from_wire(wire)


def answers(zones: Path) -> Responder:
    return Responder(build_authority(zones, ReaderPool()))


def serial_of(zones: Path, zone: str = IP) -> int:
    store = ZoneStore.open_readonly(zones.parent / "var" / zone)
    if store is None:
        return 0
    with store:
        return store.serial()


def sync(zones: Path, url: str, *extra: str) -> int:
    return zonepub(["-c", str(zones), "sync", "--zone", IP, "--redis", url, *extra])


@pytest.fixture
def zones(tmp_path: Path) -> Path:
    return copy_zones(tmp_path)


@pytest.fixture(autouse=True)
def fresh_log_quota() -> None:
    """Skipped keys are logged a few a minute (zoned.ratelog); each test starts afresh."""
    LIMITER.kinds.pop(BAD_KEY, None)


@pytest.fixture
def r(redis_url: str) -> redis.Redis:  # noqa: F811
    client = redis.Redis.from_url(redis_url)
    client.flushall()
    return client


def test_full_sync_publishes_rspamd_counters(zones: Path, redis_url: str,  # noqa: F811
                                              r: redis.Redis) -> None:
    r.hset("RR:i:192.0.2.1", mapping=rspamd_hash(20, 12.0))
    r.hset("RR:i:192.0.2.2", mapping=rspamd_hash(5, 14.0))  # below lower_bound: score 0
    r.hset("RR:a:15169", mapping=rspamd_hash(50, 1.0))  # an ASN token: not this zone's
    assert sync(zones, redis_url, "--once") == 0
    responder = answers(zones)
    txt = ask(responder, f"1.2.0.192.{IP}", "TXT").answer[0][0].to_text()
    assert "n=20" in txt and "v1m=12" in txt and "l=1763769600" in txt
    expected = math.tanh(12 / 15 * 1.83178 - 0.5493)
    assert f"sc={round(expected, 4)}" in txt
    assert ask(responder, f"1.2.0.192.{IP}").answer[0][0].to_text() == "127.0.0.3"
    low = ask(responder, f"2.2.0.192.{IP}", "TXT")
    assert "sc=0;" in low.answer[0][0].to_text() + ";"
    assert not ask(responder, f"2.2.0.192.{IP}").answer  # neutral: TXT only


def test_dry_run_shows_the_plan_and_writes_nothing(
    zones: Path, redis_url: str, r: redis.Redis, capsys: pytest.CaptureFixture[str]  # noqa: F811
) -> None:
    r.hset("RR:i:192.0.2.1", mapping=rspamd_hash(20, 12.0))
    assert sync(zones, redis_url, "--dry-run") == 0
    out = capsys.readouterr().out
    assert "1 to add, 0 to change, 0 to delete" in out
    assert f"add 1.2.0.192.{IP}" in out
    assert serial_of(zones) == 0


def test_a_plan_deleting_most_of_the_zone_is_refused_unless_forced(
    zones: Path, redis_url: str, r: redis.Redis  # noqa: F811
) -> None:
    for i in range(10):
        r.hset(f"RR:i:192.0.2.{i + 1}", mapping=rspamd_hash(20, 12.0))
    assert sync(zones, redis_url, "--once") == 0
    before = serial_of(zones)
    r.flushall()  # an emptied Redis must not wipe the list
    assert sync(zones, redis_url, "--once") == 3
    assert serial_of(zones) == before
    assert sync(zones, redis_url, "--once", "--force") == 0
    assert serial_of(zones) != before
    assert ask(answers(zones), f"1.2.0.192.{IP}").rcode() == dns.rcode.NXDOMAIN


def test_bad_keys_are_skipped_and_counted(
    zones: Path, redis_url: str, r: redis.Redis, capsys: pytest.CaptureFixture[str],  # noqa: F811
    caplog: pytest.LogCaptureFixture,
) -> None:
    r.hset("RR:i:192.0.2.1", mapping=rspamd_hash(20, 12.0))
    r.set("RR:i:192.0.2.7", "not a hash")
    r.hset("RR:i:192.0.2.8", mapping={"n": "lots", "v1m": "x"})
    r.hset("RR:i:not-an-ip", mapping=rspamd_hash(20, 12.0))
    assert sync(zones, redis_url, "--once") == 0
    captured = capsys.readouterr()
    assert "wrong_type=1" in captured.out and "bad_fields=1" in captured.out
    assert "bad_token=1" in captured.out
    for key in ("RR:i:192.0.2.7", "RR:i:192.0.2.8", "RR:i:not-an-ip"):
        assert key in caplog.text  # each skipped key is named in the log
    responder = answers(zones)
    assert ask(responder, f"1.2.0.192.{IP}").answer


def test_exclusions_min_count_and_never_listed(
    zones: Path, redis_url: str, r: redis.Redis  # noqa: F811
) -> None:
    (zones / "exclude.map").write_text("# our own relays\n192.0.2.0/28\n")
    config = zones / "bl.example.net.yaml"
    config.write_text(config.read_text().replace(
        "  selector: ip\n", "  selector: ip\n  exclude: [exclude.map]\n  min_count: 15\n"))
    r.hset("RR:i:192.0.2.1", mapping=rspamd_hash(20, 12.0))  # excluded by the map
    r.hset("RR:i:192.0.2.99", mapping=rspamd_hash(20, 12.0))  # never listed (override)
    r.hset("RR:i:192.0.2.50", mapping=rspamd_hash(12, 12.0))  # below min_count
    r.hset("RR:i:192.0.2.51", mapping=rspamd_hash(16, 12.0))
    assert sync(zones, redis_url, "--once") == 0
    responder = answers(zones)
    for host, listed in (("1", False), ("99", False), ("50", False), ("51", True)):
        reply = ask(responder, f"{host}.2.0.192.{IP}", "TXT")
        assert bool(reply.answer) is listed, host


def test_several_servers_are_merged(zones: Path, redis_url: str, r: redis.Redis,  # noqa: F811
                                    tmp_path: Path) -> None:
    from tests.support.redis_server import start_redis

    with start_redis(tmp_path / "second") as second_url:
        second = redis.Redis.from_url(second_url)
        r.hset("RR:i:192.0.2.1", mapping=rspamd_hash(20, 12.0))
        second.hset("RR:i:192.0.2.1", mapping=rspamd_hash(30, 2.0, NOW_MS + 5000))
        second.hset("RR:i:192.0.2.2", mapping=rspamd_hash(30, 2.0))
        config = zones / "bl.example.net.yaml"
        config.write_text(config.read_text().replace(
            "  redis: redis://127.0.0.1:6379/0\n", f"  redis: [{redis_url}, {second_url}]\n"))
        assert zonepub(["-c", str(zones), "sync", "--zone", IP, "--once"]) == 0
    txt = ask(answers(zones), f"1.2.0.192.{IP}", "TXT").answer[0][0].to_text()
    assert "n=50" in txt and "l=1763769605" in txt
    assert "v1m=6" in txt  # (20 * 12 + 30 * 2) / 50
    assert ask(answers(zones), f"2.2.0.192.{IP}", "TXT").answer


def test_redis_cluster_source(zones: Path, redis_cluster_url: str) -> None:  # noqa: F811
    import redis.cluster

    cluster = redis.cluster.RedisCluster.from_url(redis_cluster_url)
    for i in range(1, 60):
        cluster.hset(f"RR:i:198.18.0.{i}", mapping=rspamd_hash(20, 12.0))
    cluster.close()
    config = zones / "bl.example.net.yaml"
    config.write_text(config.read_text().replace(
        "  redis: redis://127.0.0.1:6379/0\n", f"  redis: {redis_cluster_url}\n  cluster: true\n"))
    assert zonepub(["-c", str(zones), "sync", "--zone", IP, "--once"]) == 0
    responder = answers(zones)
    for i in range(1, 60):
        assert ask(responder, f"{i}.0.18.198.{IP}").answer, i


def test_unreachable_redis_is_an_error_and_writes_nothing(
    zones: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.support.ports import free_port

    port = free_port()
    assert sync(zones, f"redis://127.0.0.1:{port}/0", "--once") == 1
    assert f"redis://127.0.0.1:{port}/0" in capsys.readouterr().err
    assert serial_of(zones) == 0


def test_kill_9_during_commit_keeps_the_previous_serial(
    zones: Path, redis_url: str, r: redis.Redis  # noqa: F811
) -> None:
    r.hset("RR:i:192.0.2.1", mapping=rspamd_hash(20, 12.0))
    assert sync(zones, redis_url, "--once") == 0
    before = serial_of(zones)
    pipe = r.pipeline(transaction=False)
    for i in range(200_000):
        pipe.hset(f"RR:i:10.{i >> 16}.{(i >> 8) & 255}.{i & 255}", mapping=rspamd_hash(20, 3.0))
        if i % 10_000 == 9_999:
            pipe.execute()
    pipe.execute()
    log = zones.parent / "sync.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "publisher.cli", "-c", str(zones), "sync", "--zone", IP,
             "--once", "--redis", redis_url], cwd=REPO, stdout=sink, stderr=sink)
    deadline = time.monotonic() + 120
    while "committing" not in log.read_text() and time.monotonic() < deadline:
        assert process.poll() is None, log.read_text()
        time.sleep(0.01)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    assert serial_of(zones) == before
    # The next run (another process, as an operator would start it) completes.
    subprocess.run([sys.executable, "-m", "publisher.cli", "-c", str(zones), "sync", "--zone",
                    IP, "--once", "--redis", redis_url], cwd=REPO, check=True,
                   capture_output=True)
    assert serial_of(zones) != before
    responder = answers(zones)
    assert ask(responder, "1.0.0.10." + IP).rcode() == dns.rcode.NOERROR
    assert ask(responder, "1.2.0.192." + IP).rcode() == dns.rcode.NOERROR


def test_learned_verdicts_are_published_from_the_buckets_layout(
    zones: Path, redis_url: str, r: redis.Redis, tmp_path: Path  # noqa: F811
) -> None:
    config = zones / "bl.example.net.yaml"
    config.write_text(config.read_text().replace(
        '  layout: rspamd\n  prefix: "RR:"\n', "  layout: buckets\n"))
    verdicts = tmp_path / "verdicts.csv"
    verdicts.write_text("".join(["ip,192.0.2.9,spam\n"] * 9 + ["ip,192.0.2.9,ham\n"] * 3))
    assert zonepub(["-c", str(zones), "learn", "--zone", IP, "--redis", redis_url,
                    "--file", str(verdicts), "--format", "csv"]) == 0
    assert sync(zones, redis_url, "--once") == 0
    txt = ask(answers(zones), f"9.2.0.192.{IP}", "TXT").answer[0][0].to_text()
    # Every verdict counts in both default buckets: (9 - 3) / 12 = 0.5.
    assert "sc=0.5" in txt and "b1h.s=9" in txt and "b1d.h=3" in txt, txt
    assert ask(answers(zones), f"9.2.0.192.{IP}").answer[0][0].to_text() == "127.0.0.3"


def test_password_in_the_url_is_used_and_never_printed(
    zones: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.support.redis_server import launch_redis

    server = launch_redis(tmp_path / "auth", "--requirepass", "s3cret-pw")
    try:
        client = redis.Redis(port=server.port, password="s3cret-pw")
        client.hset("RR:i:192.0.2.1", mapping=rspamd_hash(20, 12.0))
        url = f"redis://:s3cret-pw@127.0.0.1:{server.port}/0"
        assert sync(zones, url, "--once") == 0
        wrong = f"redis://:wrong-pw@127.0.0.1:{server.port}/0"
        assert sync(zones, wrong, "--once") == 1
        err = capsys.readouterr().err
        assert "wrong-pw" not in err and "***@127.0.0.1" in err
    finally:
        server.stop()
    assert ask(answers(zones), f"1.2.0.192.{IP}").answer


def test_reconciliation_does_not_undo_newer_incremental_updates(
    zones: Path, redis_url: str, r: redis.Redis  # noqa: F811
) -> None:
    from publisher.describe import describe_answer
    from publisher.entries import owner_keys
    from publisher.settings import source_settings
    from publisher.sync import FullPass, ZoneSync
    from zoned.config import load_zone_file

    r.hset("RR:i:192.0.2.1", mapping=rspamd_hash(20, 12.0))
    r.hset("RR:i:192.0.2.2", mapping=rspamd_hash(20, 12.0))
    config = load_zone_file(zones / "bl.example.net.yaml")
    settings = source_settings(config, redis_url)
    assert settings is not None
    sync_ = ZoneSync(config, settings, batch=1)
    try:
        full = FullPass(sync_, None)
        while not full.step():  # the pass has read both tokens' old counters
            pass
        r.hset("RR:i:192.0.2.1", mapping={"n": 99})
        sync_.incremental([b"RR:i:192.0.2.1"], during=full)  # newer data, committed mid-pass
        full.finish()
        (key,) = owner_keys(config, "192.0.2.1")
        with sync_.store.reader() as reader:
            value = reader.get(key)
            assert value is not None and "n=99" in describe_answer(value)
            (other,) = owner_keys(config, "192.0.2.2")
            assert reader.get(other) is not None  # the pass itself was applied
    finally:
        sync_.close()
