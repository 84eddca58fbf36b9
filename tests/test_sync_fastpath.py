"""The full pass's fast path (publisher.fastpath) writes exactly what the general path writes.

Both paths read the same real redis-server; every store entry, every key kept for an
unreadable token and every count must be equal, on a sample that covers the edges the
fast path hands back to the general one.
"""

from __future__ import annotations

import dataclasses
import random
from pathlib import Path

import pytest
import redis

from publisher.judge import Stats
from publisher.settings import source_settings
from publisher.sync import FullPass, ZoneSync
from tests.support.publishing import copy_zones
from tests.support.redis_server import redis_url  # noqa: F401  (fixture)
from zoned.config import ZoneConfig, load_zone_file
from zoned.sourceconf import SourceSettings

NOW_MS = 1_763_769_600_000

# Hashes at the edges of what the fast path takes on itself.
EDGES: dict[str, dict[str, str]] = {
    "i:192.0.2.1": {"n": "20", "l": str(NOW_MS), "v1m": "12.0"},
    "i:192.0.2.2": {"n": "10", "l": str(NOW_MS), "v1m": "-3.25"},  # n == lower_bound
    "i:192.0.2.3": {"n": "9", "l": str(NOW_MS), "v1m": "14"},  # below lower_bound: 0
    "i:192.0.2.4": {"n": "5000", "v1m": "1e300"},  # no l; score 1
    "i:192.0.2.5": {"n": "5000", "l": "1", "v1m": "-1e300"},  # score -1
    "i:192.0.2.6": {"n": "20", "l": str(NOW_MS + 999), "v1m": "0"},
    "i:192.0.2.7": {"n": "007", "l": "0001763769600000", "v1m": "-0.0"},
    "i:192.0.2.8": {"n": "20", "l": str(NOW_MS), "v1m": "1e999"},  # infinite: slow
    "i:192.0.2.9": {"n": "nan", "l": str(NOW_MS), "v1m": "1"},  # bad field
    "i:192.0.2.10": {"n": "-5", "l": str(NOW_MS), "v1m": "1"},  # negative count
    "i:192.0.2.11": {"n": "1.5", "l": str(NOW_MS), "v1m": "1"},  # a float count
    "i:192.0.2.12": {"n": "1" * 20, "l": str(NOW_MS), "v1m": "2"},  # beyond 2**53
    "i:192.0.2.13": {"l": str(NOW_MS), "v1m": "1"},  # no n
    "i:192.0.2.14": {"n": "30", "l": "1763769600000.5", "v1m": "1"},  # l not whole
    "i:192.0.2.15": {"n": "30", "l": "-1000", "v1m": "1"},
    "i:192.0.2.16": {"n": "30", "l": str(NOW_MS), "v1m": "3", "x": "y"},  # unknown field
    "i:192.0.2.17": {"n": "30", "l": str(NOW_MS), "v1m": "3", "v1h": "-7.5"},  # 2 buckets
    "i:192.0.2.18": {"n": "30", "l": str(NOW_MS), "v": "3"},  # "v" alone is no bucket
    "i:192.0.2.19": {"n": "30", "l": str(NOW_MS), "vA": "3"},  # a name TXT cannot carry
    "i:192.0.2.20": {"n": "30", "l": str(NOW_MS), "v\u00e9": "3"},  # not ASCII
    "i:192.0.2.21": {"n": "30", "l": str(NOW_MS), "v1m": "1_0"},  # float() would take it
    "i:192.0.2.22": {"n": "30", "l": str(NOW_MS), "v1m": " 1"},
    "i:192.0.2.23": {"n": "30", "l": str(NOW_MS), "v1m": ".5"},
    "i:192.0.2.26": {"n": "30", "l": str(NOW_MS), "v1m": "+1"},  # float() takes it
    "i:192.0.2.27": {"n": "30", "l": str(NOW_MS), "v1m": "1e+5"},
    "i:192.0.2.28": {"n": "30", "l": str(NOW_MS), "v1m": "1.e-5"},
    "i:192.0.2.29": {"n": "30", "l": str(NOW_MS), "v1m": "1-2"},
    "i:192.0.2.30": {"n": "30", "l": str(NOW_MS), "v1m": "-.5e-3"},
    "i:192.0.2.31": {"n": "30", "l": str(NOW_MS), "v1m": "e5"},
    "i:192.0.2.32": {"n": "30", "l": str(NOW_MS), "v1m": "1e16"},  # integral, >= 1e16
    "i:192.0.2.33": {"n": "30", "l": str(NOW_MS), "v1m": "-12345678901234"},
    "i:192.0.2.24": {"n": "30", "l": str(NOW_MS)},  # no bucket at all: score 0
    "i:192.0.2.25": {"n": "30", **{f"v{i:02d}bucket_name": "1.234567" for i in range(20)}},
    "i:192.0.2.99": {"n": "30", "l": str(NOW_MS), "v1m": "3"},  # never listed (bl)
    "i:198.51.100.7": {"n": "30", "l": str(NOW_MS), "v1m": "3"},  # excluded network
    "i:010.0.0.1": {"n": "30", "l": str(NOW_MS), "v1m": "3"},  # not canonical IPv4
    "i:2001:db8:1:2::": {"n": "30", "l": str(NOW_MS), "v1m": "5.5"},  # an IPv6 /64
    "i:2001:db8:1:2::5": {"n": "30", "l": str(NOW_MS), "v1m": "5.5"},  # host bits set
    "i:not-an-ip": {"n": "30", "l": str(NOW_MS), "v1m": "3"},  # bad token
    "a:15169": {"n": "30", "l": str(NOW_MS), "v1m": "3"},  # another selector's
    "c:DE": {"n": "30", "l": str(NOW_MS), "v1m": "3"},
    "example.com.a": {"n": "40", "l": str(NOW_MS), "v1m": "-9"},  # dkim
    "example.org.r": {"n": "40", "l": str(NOW_MS), "v1m": "9"},  # dkim, never listed (dom)
    "bad_label" + "x" * 70 + ".example.a": {"n": "40", "v1m": "1"},  # label too long
    # Junk anyone writing to Redis can make: bad tokens and bad fields on both paths.
    "i:192.0.2.40\x00": {"n": "30", "l": str(NOW_MS), "v1m": "3"},  # inet_pton: ValueError
    "i:0.0.0.0/0": {"n": "30", "l": str(NOW_MS), "v1m": "3"},  # a network: never a token
    "i:::/0": {"n": "30", "l": str(NOW_MS), "v1m": "3"},
    "i:198.19.0.0/16": {"n": "30", "l": str(NOW_MS), "v1m": "3"},
    "i:fe80::1%eth0": {"n": "30", "l": str(NOW_MS), "v1m": "3"},
    "i:192.0.2.41": {"n": "30", "l": str(NOW_MS), "v1m": "3", "\x00": "1"},  # a NUL name
    "i:192.0.2.42": {"n": "30\x00", "l": str(NOW_MS), "v1m": "3"},
    "dkim\x00x.example.a": {"n": "40", "v1m": "1"},
}
WRONG_TYPE = ("i:192.0.2.50", "example.net.u")


def fill(client: redis.Redis, count: int = 400) -> None:
    rng = random.Random(5782)
    client.flushall()
    with client.pipeline(transaction=False) as pipe:
        for key, fields in EDGES.items():
            pipe.hset(f"RR:{key}", mapping=fields)
        for key in WRONG_TYPE:
            pipe.set(f"RR:{key}", "not a hash")
        for _ in range(count):
            address = ".".join(str(rng.randrange(1, 255)) for _ in range(4))
            value = rng.choice([rng.uniform(-20, 20), round(rng.uniform(-20, 20), 2),
                                float(rng.randrange(-20, 21))])
            fields = {"n": str(rng.randrange(0, 3000)), "v1m": repr(value)}
            if rng.random() < 0.9:
                fields["l"] = str(NOW_MS - rng.randrange(0, 10**10))
            pipe.hset(f"RR:i:{address}", mapping=fields)
            if rng.random() < 0.25:  # a DKIM token for the dom zone
                pipe.hset(f"RR:d{rng.randrange(10**6)}.example.{rng.choice('aru')}",
                          mapping=fields)
        pipe.execute()


def full_pass(config: ZoneConfig, settings: SourceSettings, how: str
              ) -> tuple[dict[bytes, bytes], set[bytes], Stats]:
    """What a full pass would diff: on the general path, the fast path, or in workers."""
    sync = ZoneSync(config, settings, batch=37)
    try:
        assert sync.fast is not None
        if how == "general":
            sync.fast = None
        full = FullPass(sync, None)
        if how == "workers":
            full.in_workers(2)
        else:
            while not full.step():
                pass
        return full.desired, full.keep, full.stats
    finally:
        sync.close()


@pytest.fixture
def zones(tmp_path: Path) -> Path:
    return copy_zones(tmp_path)


@pytest.mark.parametrize(("zone", "protocol", "screens"), [
    ("bl.example.net", 3, False),
    ("bl.example.net", 2, True),
    ("hash.example.net", 3, False),
    ("dom.example.net", 3, False),
])
def test_fast_and_general_paths_publish_the_same_entries(
        zones: Path, tmp_path: Path, redis_url: str,  # noqa: F811
        zone: str, protocol: int, screens: bool) -> None:
    """Same entries, kept keys and counts from every path (RESP2 or RESP3, in workers)."""
    fill(redis.Redis.from_url(redis_url))
    config = load_zone_file(zones / f"{zone}.yaml")
    settings = source_settings(config, f"{redis_url}?protocol={protocol}")
    assert settings is not None
    if screens:
        excluded = tmp_path / "exclude.map"
        excluded.write_text("198.51.100.0/24\n2001:db8:1::/48\n")
        settings = dataclasses.replace(settings, exclude=(excluded,), min_count=500)
    general = full_pass(config, settings, "general")
    assert general[2].published > 50
    for how in ("fast", "workers"):
        fast = full_pass(config, settings, how)
        assert fast[0] == general[0]
        assert fast[1] == general[1]
        assert vars(fast[2]) == vars(general[2])


def test_common_hashes_stay_on_the_fast_path(zones: Path, redis_url: str  # noqa: F811
                                             ) -> None:
    """Rspamd's usual hash (n, l, one bucket) never falls back to the general path."""
    fill(redis.Redis.from_url(redis_url), count=300)
    config = load_zone_file(zones / "bl.example.net.yaml")
    settings = source_settings(config, redis_url)
    assert settings is not None
    sync = ZoneSync(config, settings)
    try:
        assert sync.fast is not None
        slow = []
        desired: dict[bytes, bytes] = {}
        for keys, values, lengths in sync.source.scan_fetch(sync.fast.fields, 100):
            common = [(k, v, n) for k, v, n in zip(keys, values, lengths, strict=True)
                      if k.startswith(b"RR:i:") and k.decode()[3:] not in EDGES
                      and k.decode()[3:] not in WRONG_TYPE]
            slow += sync.fast.judge([k for k, _, _ in common], [v for _, v, _ in common],
                                    [n for _, _, n in common], Stats(), desired)
        assert len(desired) == 300
        assert slow == []
    finally:
        sync.close()


def test_first_sync_in_workers_writes_the_store_the_general_path_writes(
        tmp_path: Path, redis_url: str) -> None:  # noqa: F811
    """A first sync (workers writing batches as they come) leaves the same store."""
    fill(redis.Redis.from_url(redis_url))
    stores = []
    for how in ("workers", "general"):
        zones = copy_zones(tmp_path / how)
        config = load_zone_file(zones / "bl.example.net.yaml")
        settings = source_settings(config, redis_url)
        assert settings is not None
        sync = ZoneSync(config, settings, batch=37)
        try:
            if how == "general":
                sync.fast = None
            result = sync.full(workers=2 if how == "workers" else 0)
            assert result.serial > 0
            with sync.store.reader() as reader:
                stores.append((list(reader.entries()), reader.plens4, reader.plens6,
                               vars(result.stats), len(result.plan.adds)))
        finally:
            sync.close()
    assert stores[0] == stores[1]
