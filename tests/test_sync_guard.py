"""The delete guard on every path of the sync: plans, the live path, the periodic pass.

A mass DEL in the scanners' Redis must not empty a public list, neither in one full
pass nor a few keys at a time through keyspace notifications (issue 15 item 3).
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from publisher.describe import describe_answer
from publisher.entries import owner_keys
from publisher.guard import LiveDeletes
from publisher.live import LiveZone, Runner
from publisher.plan import DeleteGuard, Plan, PlanRefused
from publisher.settings import source_settings
from publisher.sync import ZoneSync
from tests.support.polling import until
from tests.support.processes import stop
from tests.support.publishing import copy_zones
from tests.support.redis_server import (
    RedisServer,
    launch_redis,
    redis_url,  # noqa: F401  (fixture)
)
from tests.support.repo import REPO
from zoned.config import ZoneConfig, load_zone_file
from zoned.store import ZoneStore

pytestmark = pytest.mark.adversarial

IP = "bl.example.net"
NOW_MS = 1_763_769_600_000
GOOD = {"n": 20, "l": NOW_MS, "v1m": 12}


# --------------------------------------------------------------------------- in memory


def test_the_guard_exempts_small_zones_and_allows_up_to_the_share() -> None:
    guard = DeleteGuard(0.3, 10)
    assert guard.allows(9, 9)  # below the minimum size: any share
    assert guard.allows(3, 10) and not guard.allows(4, 10)
    assert guard.allows(0, 0) and guard.allows(0, 100)
    plan = Plan(1, 10, deletes=[b"k%d" % i for i in range(4)])
    with pytest.raises(PlanRefused, match="deletes 4 of 10 entries"):
        plan.check(guard, force=False)
    plan.check(guard, force=True)
    Plan(1, 9, deletes=[b"k%d" % i for i in range(9)]).check(guard, force=False)


def _plan(deletes: list[bytes]) -> Plan:
    return Plan(1, 0, deletes=list(deletes))


def test_live_deletions_add_up_to_the_share_then_are_held() -> None:
    live = LiveDeletes(DeleteGuard(0.3, 10))
    assert live.reset(20) is None
    first = _plan([b"a", b"b", b"c"])
    assert live.admit({b"a": None, b"b": None, b"c": None}, first, 1.0) is None
    assert first.deletes == [b"a", b"b", b"c"] and live.applied == 3
    second = _plan([b"d", b"e", b"f"])
    live.admit({k: None for k in second.deletes}, second, 2.0)
    assert live.applied == 6  # 6 of 20: the share exactly
    third = _plan([b"g"])
    assert live.admit({b"g": None}, third, 3.0) == "held"
    assert third.deletes == [] and live.held == {b"g"} and live.holding_since == 3.0
    fourth = _plan([b"h"])
    assert live.admit({b"h": None}, fourth, 4.0) is None  # reported once, not per pass
    assert fourth.deletes == [] and live.held == {b"g", b"h"}
    # Keys recreated leave the held set; once it is empty, deletions resume.
    assert live.admit({b"g": b"new"}, _plan([]), 5.0) is None
    assert live.admit({b"h": b"new"}, _plan([]), 6.0) == "resumed"
    assert not live.holding and live.applied == 6


def test_held_deletions_are_applied_together_once_they_fit_again() -> None:
    live = LiveDeletes(DeleteGuard(0.5, 10))
    live.reset(10)
    plan = _plan([b"a", b"b", b"c", b"d", b"e", b"f"])
    assert live.admit(dict.fromkeys(plan.deletes), plan, 1.0) == "held"
    recreated = _plan([])
    assert live.admit({b"f": b"x"}, recreated, 2.0) == "resumed"
    assert sorted(recreated.deletes) == [b"a", b"b", b"c", b"d", b"e"]  # 5 of 10: fits
    assert live.applied == 5 and not live.held


def test_an_operators_force_or_a_full_pass_starts_the_count_again() -> None:
    live = LiveDeletes(DeleteGuard(0.3, 10))
    live.reset(20)
    plan = _plan([b"k%d" % i for i in range(20)])
    assert live.admit(dict.fromkeys(plan.deletes), plan, 1.0) == "held"
    assert live.rebase(lambda key: key == b"k0", 1, 2.0) is None  # k0 still published
    assert live.held == {b"k0"} and live.size == 1
    assert live.rebase(lambda key: False, 0, 3.0) == "resumed"
    live.hold([b"x"], 4.0)
    assert live.reset(5) == "resumed" and live.size == 5 and live.applied == 0


# --------------------------------------------------------------------------- in process


def _config(zones: Path) -> ZoneConfig:
    return load_zone_file(zones / f"{IP}.yaml")


def _listed(config: ZoneConfig, store: ZoneStore) -> dict[str, str]:
    """Every address of 192.0.2.0/24 the store lists, with its answer."""
    result = {}
    with store.reader() as reader:
        for i in range(1, 256):
            (key,) = owner_keys(config, f"192.0.2.{i}")
            value = reader.get(key)
            if value is not None:
                result[f"192.0.2.{i}"] = describe_answer(value)
    return result


def _published(config: ZoneConfig) -> dict[str, str]:
    """What another process (zonepub sync) has published."""
    store = ZoneStore.open_readonly(config.store)
    if store is None:
        return {}
    with store:
        return _listed(config, store)


@pytest.fixture
def r(redis_url: str) -> Iterator[redis.Redis]:  # noqa: F811
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


def test_a_periodic_full_pass_past_the_guard_holds_its_deletions_and_applies_the_rest(
    tmp_path: Path, redis_url: str, r: redis.Redis  # noqa: F811
) -> None:
    zones = copy_zones(tmp_path)
    for i in range(1, 21):
        r.hset(f"RR:i:192.0.2.{i}", mapping=GOOD)
    config = _config(zones)
    settings = source_settings(config, redis_url)
    assert settings is not None
    sync = ZoneSync(config, settings)
    try:
        sync.full(hold=True, workers=0)
        assert sync.health().zone_size == 20 and sync.health().deletes_held == 0
        r.delete(*[f"RR:i:192.0.2.{i}" for i in range(1, 21)])
        r.hset("RR:i:192.0.2.100", mapping=GOOD)
        r.hset("RR:i:192.0.2.1", mapping={**GOOD, "n": 99})  # changed, not deleted
        result = sync.full(hold=True, workers=0)
        assert result.held == 19
        health = sync.health()
        assert health.deletes_held == 19 and health.holding_since is not None
        assert Runner([sync]).health() == [health]  # what a metrics endpoint reads
        listed = _listed(config, sync.store)
        assert len(listed) == 21 and "n=99" in listed["192.0.2.1"]
        # Without hold (zonepub sync --once) the same plan is refused whole.
        with pytest.raises(PlanRefused):
            sync.full(workers=0)
        # zonepub sync --force: the continuous mode's first full pass is forced; it
        # applies the deletions and clears the hold.
        live = LiveZone(sync)
        live.force_next = True
        assert live.step(time.monotonic(), 0.2, 100)
        assert not live.force_next
        assert sorted(_listed(config, sync.store)) == ["192.0.2.1", "192.0.2.100"]
        assert sync.health().deletes_held == 0 and sync.health().holding_since is None
    finally:
        sync.close()


# --------------------------------------------------------------------------- continuous


class Continuous:
    """``zonepub sync`` running against its own redis-server, its log in a file."""

    def __init__(self, base: Path) -> None:
        self.zones = copy_zones(base)
        self.redis: RedisServer = launch_redis(base / "redis")
        self.log = base / "zonepub.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as sink:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "publisher.cli", "-c", str(self.zones), "sync",
                 "--zone", IP, "--redis", self.redis.url], cwd=REPO, stdout=sink, stderr=sink)
        until(lambda: "full sync" in self.log.read_text(), "the full sync", 20)

    def text(self) -> str:
        return self.log.read_text()

    def stop(self) -> None:
        if self.process is not None:
            stop(self.process)
        self.redis.stop()


@pytest.fixture
def continuous(tmp_path: Path) -> Iterator[Continuous]:
    setup = Continuous(tmp_path)
    client = setup.redis.client()
    for i in range(1, 21):
        client.hset(f"RR:i:192.0.2.{i}", mapping=GOOD)
    setup.start()
    yield setup
    setup.stop()
    assert setup.process is not None and setup.process.returncode == 0, setup.text()


def test_a_mass_del_does_not_empty_the_zone_through_the_live_path(
    continuous: Continuous,
) -> None:
    client = continuous.redis.client()
    config = _config(continuous.zones)
    assert len(_published(config)) == 20
    # 6 of 20 (the 30% share) since the last full pass: applied.
    client.delete(*[f"RR:i:192.0.2.{i}" for i in range(1, 7)])
    until(lambda: len(_published(config)) == 14, "14 tokens published", 15.0)
    # Every further deletion is held; additions and changes still arrive.
    client.delete(*[f"RR:i:192.0.2.{i}" for i in range(7, 21)])
    client.hset("RR:i:192.0.2.200", mapping=GOOD)
    until(lambda: "192.0.2.200" in _published(config), "192.0.2.200 published", 15.0)
    assert len(_published(config)) == 15
    client.hset("RR:i:192.0.2.7", mapping={**GOOD, "n": 77})  # a held key recreated
    until(lambda: "n=77" in _published(config).get("192.0.2.7", ""), "n=77 for 192.0.2.7", 15.0)
    client.delete("RR:i:192.0.2.200")
    client.hset("RR:i:192.0.2.201", mapping=GOOD)
    until(lambda: "192.0.2.201" in _published(config), "192.0.2.201 published", 15.0)
    assert "192.0.2.200" in _published(config)
    assert continuous.text().count("ERROR publisher.sync: zone=bl.example.net deletions held:") == 1
    assert "Traceback" not in continuous.text()
    # The operator checks the source and forces a full sync: the deletions apply.
    subprocess.run([sys.executable, "-m", "publisher.cli", "-c", str(continuous.zones), "sync",
                    "--zone", IP, "--redis", continuous.redis.url, "--once", "--force"],
                   cwd=REPO, check=True, capture_output=True)
    assert sorted(_published(config)) == ["192.0.2.201", "192.0.2.7"]
    # The running sync sees the operator's serial and deletes live again.
    client.hset("RR:i:192.0.2.202", mapping=GOOD)
    until(lambda: "deletions resumed" in continuous.text(), "deletions resumed", 15.0)
    client.delete("RR:i:192.0.2.201")
    until(lambda: "192.0.2.201" not in _published(config), "192.0.2.201 deleted", 15.0)
