"""zonepub learn: verdicts into the buckets layout of a real redis-server."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import redis

from publisher import layouts
from publisher.cli import build_parser
from publisher.layouts import ScoringParams
from publisher.learn import (
    LearnError,
    Target,
    Thresholds,
    make_verdict,
    write,
)
from tests.support.redis_server import redis_url  # noqa: F401  (fixture: a real redis-server)
from zoned.sourceconf import DEFAULT_BUCKETS, redact

ZONE = """\
zone: rb.example.net
soa: {mname: ns1.example.net, rname: hostmaster@example.net}
ns: [ns1.example.net]
owner: ip
store: ../var/rb.example.net
source:
  redis: [{url}, redis://127.0.0.1:1/0]
  layout: buckets
  prefix: "T:"
  selector: ip
  buckets:
    - {name: 5m, window: 300, mult: 2}
    - {name: 1d, window: 86400, mult: 1.0}
"""


def learn(argv: list[str], config: Path | None = None) -> int:
    """Parse argv as ``zonepub [-c config] learn ...`` would, then run it."""
    top = ["-c", str(config)] if config else []
    args = build_parser().parse_args([*top, "learn", *argv])
    return int(args.func(args))


def client(url: str) -> redis.Redis:
    return redis.Redis.from_url(url)


def record(url: str, token_key: str, prefix: str = "RB:",
           buckets: tuple[str, ...] = ("1h", "1d")) -> layouts.Counters:
    """The token's record as the publisher reads it: all bucket hashes, joined."""
    c = client(url)
    fields: dict[bytes, bytes] = {}
    for key in layouts.record_keys("buckets", layouts.bucket_key(token_key, buckets[0]), buckets):
        fields.update(c.hgetall(prefix + key))
    c.close()
    return layouts.parse("buckets", fields)


def test_one_verdict_on_the_command_line(
        redis_url: str, capsys: pytest.CaptureFixture[str]) -> None:  # noqa: F811
    assert learn(["--redis", redis_url, "ip", "192.0.2.1", "spam"]) == 0
    assert "learned 1 verdicts" in capsys.readouterr().out
    c = client(redis_url)
    hour = c.hgetall("RB:{i:192.0.2.1}:1h")
    assert hour[b"1h:s"] == b"1" and hour[b"1h:h"] == b"0" and hour[b"1h:j"] == b"0"
    now = int(c.time()[0])
    assert int(hour[b"1h:w"]) == now // 3600 * 3600
    assert abs(int(hour[b"last"]) - now) <= 1
    assert c.hgetall("RB:{i:192.0.2.1}:1d")[b"1d:s"] == b"1"
    c.close()


def test_keys_expire_at_the_end_of_their_window(redis_url: str) -> None:  # noqa: F811
    """The previous window's counts vanish with its key: EXPIREAT at the window's end."""
    assert learn(["--redis", redis_url, "asn", "64496", "ham"]) == 0
    c = client(redis_url)
    now = c.time()[0]
    assert c.expiretime("RB:{a:64496}:1h") == now // 3600 * 3600 + 3600
    assert c.expiretime("RB:{a:64496}:1d") == now // 86400 * 86400 + 86400
    c.close()


def test_counts_accumulate_and_shape_is_the_same(redis_url: str) -> None:  # noqa: F811
    for verdict in ("spam", "spam", "junk", "ham", "20", "7", "-3"):
        assert learn(["--redis", redis_url, "dkim", "example.com.a", verdict]) == 0
    counts = record(redis_url, "example.com.a")
    assert counts.buckets["1h"].spam == 3
    assert counts.buckets["1h"].junk == 2
    assert counts.buckets["1h"].ham == 2
    assert counts.buckets["1d"] == counts.buckets["1h"]
    fields = client(redis_url).hgetall("RB:{example.com.a}:1h")
    assert sorted(fields) == [b"1h:h", b"1h:j", b"1h:s", b"1h:w", b"last"]


def test_ipv6_sender_counts_for_its_64(redis_url: str) -> None:  # noqa: F811
    """Like Rspamd, a sender address is counted under its /64 network."""
    assert learn(["--redis", redis_url, "ip", "2001:db8:1:2::5", "spam"]) == 0
    assert learn(["--redis", redis_url, "ip", "2001:db8:1:2:ffff::1", "spam"]) == 0
    assert record(redis_url, "i:2001:db8:1:2::").buckets["1h"].spam == 2


def test_jsonl_file(redis_url: str, tmp_path: Path) -> None:  # noqa: F811
    lines = [{"kind": "ip", "value": "192.0.2.7", "verdict": "spam"}] * 12
    lines += [{"kind": "asn", "value": 64496, "verdict": 3.5},
              {"kind": "generic", "value": "user@example.com", "verdict": "junk"}]
    path = tmp_path / "verdicts.jsonl"
    path.write_text("# comment\n\n" + "".join(json.dumps(line) + "\n" for line in lines))
    assert learn(["--redis", redis_url, "--file", str(path), "--batch", "5"]) == 0
    counts = record(redis_url, "i:192.0.2.7")
    assert counts.buckets["1h"].spam == 12
    assert layouts.score("buckets", counts, ScoringParams()) == 1.0
    assert record(redis_url, "a:64496").buckets["1d"].ham == 1
    assert record(redis_url, "user@example.com").buckets["1d"].junk == 1


def test_csv_file_with_header(redis_url: str, tmp_path: Path) -> None:  # noqa: F811
    path = tmp_path / "verdicts.csv"
    path.write_text('kind,value,verdict\nurl,example.org,ham\n"generic","a,b",spam\n'
                    "country,US,junk\n")
    assert learn(["--redis", redis_url, "--file", str(path)]) == 0
    assert record(redis_url, "example.org").buckets["1h"].ham == 1
    assert record(redis_url, "a,b").buckets["1h"].spam == 1
    assert record(redis_url, "c:US").buckets["1h"].junk == 1


def test_bad_lines_are_all_reported_and_nothing_written(
        redis_url: str, tmp_path: Path,  # noqa: F811
        capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "verdicts.jsonl"
    path.write_text('{"kind": "ip", "value": "192.0.2.1", "verdict": "spam"}\n'
                    '{"kind": "ipv9", "value": "x", "verdict": "spam"}\n'
                    '{"kind": "ip", "value": "999.1.1.1", "verdict": "spam"}\n'
                    '{"kind": "ip", "value": "192.0.2.1", "verdict": "maybe"}\n'
                    '{"kind": "ip", "value": "192.0.2.1", "verdict": "spam", "x": 1}\n'
                    "not json\n")
    assert learn(["--redis", redis_url, "--file", str(path)]) == 1
    err = capsys.readouterr().err
    for lineno in (2, 3, 4, 5, 6):
        assert f"verdicts.jsonl:{lineno}:" in err
    assert "verdicts.jsonl:1:" not in err
    assert client(redis_url).dbsize() == 0


def test_zone_file_settings(redis_url: str, tmp_path: Path) -> None:  # noqa: F811
    """--zone takes the first server, the prefix and the buckets of the zone's source."""
    zones = tmp_path / "zones"
    zones.mkdir()
    (zones / "rb.example.net.yaml").write_text(ZONE.replace("{url}", redis_url))
    assert learn(["--zone", "rb.example.net", "ip", "192.0.2.9", "spam"], config=zones) == 0
    c = client(redis_url)
    assert sorted(c.keys()) == [b"T:{i:192.0.2.9}:1d", b"T:{i:192.0.2.9}:5m"]
    now = c.time()[0]
    assert c.expiretime("T:{i:192.0.2.9}:5m") == now // 300 * 300 + 300
    c.close()
    # --prefix overrides the zone's; -c may also follow "learn".
    argv = ["-c", str(zones), "--zone", "rb.example.net", "--prefix", "U:", "ip", "192.0.2.9",
            "ham"]
    assert learn(argv) == 0
    assert record(redis_url, "i:192.0.2.9", "U:", ("5m", "1d")).buckets["5m"].ham == 1


def test_zone_with_another_layout_is_refused(tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    zones = tmp_path / "zones"
    zones.mkdir()
    text = ZONE.replace("{url}", "redis://127.0.0.1:1/0")
    text = text.replace("layout: buckets", "layout: rspamd")
    (zones / "rb.example.net.yaml").write_text(text)
    assert learn(["--zone", "rb.example.net", "ip", "192.0.2.9", "spam"], config=zones) == 1
    assert "learn writes 'buckets'" in capsys.readouterr().err


def test_usage_errors(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert learn(["ip", "192.0.2.1", "spam"]) == 1
    assert "no Redis server" in capsys.readouterr().err
    assert learn(["--redis", "redis://127.0.0.1:1/0", "ip", "192.0.2.1"]) == 1
    assert "KIND VALUE VERDICT" in capsys.readouterr().err
    assert learn(["--redis", "redis://127.0.0.1:1/0", "ip", "192.0.2.1", "spam",
                  "--file", str(tmp_path / "f")]) == 1
    assert "either" in capsys.readouterr().err
    assert learn(["--redis", "redis://127.0.0.1:1/0", "--spam-score", "1", "ip", "192.0.2.1",
                  "spam"]) == 1
    assert "--spam-score" in capsys.readouterr().err


def test_redis_down_is_reported(capsys: pytest.CaptureFixture[str]) -> None:
    assert learn(["--redis", "redis://:secret@127.0.0.1:1/0", "ip", "192.0.2.1", "spam"]) == 1
    err = capsys.readouterr().err
    assert "Redis" in err and "secret" not in err


def test_make_verdict_and_thresholds() -> None:
    assert make_verdict("ip", "192.0.2.1", "SPAM").verdict == "spam"
    assert make_verdict("asn", 64496, 15).verdict == "spam"
    assert make_verdict("asn", "64496", "6").verdict == "junk"
    assert make_verdict("asn", "64496", 5.9).verdict == "ham"
    assert make_verdict("asn", "64496", 2, Thresholds(spam=2, junk=1)).verdict == "spam"
    for bad in [("ip", "192.0.2.1", True), ("ip", "192.0.2.1", "nan"), ("ip", "", "spam"),
                ("ip", None, "spam"), (None, "x", "spam"), ("spf", "short", "spam")]:
        with pytest.raises(LearnError):
            make_verdict(*bad)


def test_write_is_one_transaction_per_batch(redis_url: str) -> None:  # noqa: F811
    """Batches add up; a token whose key holds another type is skipped and named, its key
    untouched, and the rest of its batch is written."""
    c = client(redis_url)
    target = Target(redis_url, "RB:", DEFAULT_BUCKETS)
    verdicts = [make_verdict("ip", f"192.0.2.{i % 3}", "spam") for i in range(10)]
    assert write(c, target, verdicts, batch=4).verdicts == 10
    assert record(redis_url, "i:192.0.2.0").buckets["1h"].spam == 4
    assert c.dbsize() == 6
    c.set("RB:{i:192.0.2.9}:1h", "not a hash")
    written = write(c, target, [make_verdict("ip", "192.0.2.9", "ham"),
                                make_verdict("ip", "192.0.2.0", "ham")])
    assert (written.verdicts, written.skipped_verdicts) == (1, 1)
    assert "holds a string" in written.skipped["i:192.0.2.9"]
    assert c.get("RB:{i:192.0.2.9}:1h") == b"not a hash" and c.ttl("RB:{i:192.0.2.9}:1h") == -1
    assert not c.exists("RB:{i:192.0.2.9}:1d")  # nothing of a skipped token is written
    assert record(redis_url, "i:192.0.2.0").buckets["1h"].ham == 1
    c.close()


def test_redact() -> None:
    assert redact("redis://:pw@host:6379/0") == "redis://:***@host:6379/0"
    assert redact("redis://user:pw@host/0") == "redis://user:***@host/0"
    assert redact("redis://host:6379/0") == "redis://host:6379/0"


def test_learned_then_scored_like_the_publisher(redis_url: str) -> None:  # noqa: F811
    """A token learned as mostly spam scores high through parse and score."""
    c = client(redis_url)
    target = Target(redis_url)
    verdicts = ([make_verdict("ip", "198.51.100.1", "spam")] * 9
                + [make_verdict("ip", "198.51.100.1", "ham")])
    write(c, target, verdicts)
    c.close()
    counts = record(redis_url, "i:198.51.100.1")
    assert layouts.score("buckets", counts, ScoringParams()) == pytest.approx(0.8)
    fields = layouts.txt_fields(counts, 0.8)
    assert fields["n"] == 10 and fields["b1h.s"] == 9 and fields["b1h.m"] == 1.5
    assert abs(int(fields["l"]) - time.time()) < 60
