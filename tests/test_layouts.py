"""publisher.layouts and listformat.tokens: Redis hashes (from a real server) to records."""

from __future__ import annotations

from collections.abc import Mapping

import pytest
import redis
from hypothesis import given
from hypothesis import strategies as st

from listformat import tokens, txt
from listformat.scoring import BucketCounts, buckets_score, rspamd_score
from publisher import layouts
from publisher.layouts import Counters, LayoutError, ScoringParams
from tests.support.redis_server import redis_url  # noqa: F401  (fixture: a real redis-server)
from zoned.sourceconf import LAYOUTS


def stored(url: str, key: str, fields: Mapping[str, str | int | float]) -> dict[bytes, bytes]:
    """Write ``fields`` with HSET and read them back with HGETALL, as the publisher does."""
    client = redis.Redis.from_url(url)
    try:
        client.hset(key, mapping=dict(fields))
        return client.hgetall(key)
    finally:
        client.close()


# ------------------------------------------------------------------ parse


def test_parse_rspamd(redis_url: str) -> None:  # noqa: F811
    """n, l in milliseconds and one v field per bucket, as Rspamd's script writes them."""
    fields = stored(redis_url, "RR:i:192.0.2.1",
                    {"n": 25, "l": "1763769600000", "v1m": "12.5", "v1h": "-3"})
    record = layouts.parse("rspamd", fields)
    assert record.n == 25
    assert record.last == 1763769600.0
    assert dict(record.values) == {"1m": 12.5, "1h": -3.0}
    assert record.s is record.h is record.p is None


def test_parse_rspamd_score_matches_formula(redis_url: str) -> None:  # noqa: F811
    fields = stored(redis_url, "RR:a:64496", {"n": 12, "l": 1, "v1m": "12"})
    record = layouts.parse("rspamd", fields)
    assert layouts.score("rspamd", record, ScoringParams()) == rspamd_score(12, [12.0])
    few = layouts.parse("rspamd", {b"n": b"9", b"v1m": b"12"})
    assert layouts.score("rspamd", few, ScoringParams()) == 0.0


def test_rspamd_read_mult_applies() -> None:
    """Rspamd's read script multiplies each v by its bucket's mult; so does score()."""
    record = layouts.parse("rspamd", {b"n": b"20", b"v1m": b"6"})
    doubled = ScoringParams(rspamd_buckets={"1m": 2.0})
    assert layouts.score("rspamd", record, doubled) == rspamd_score(20, [12.0])
    assert layouts.txt_fields(record, 0.5, scoring=doubled)["v1m"] == 12


def test_parse_counters(redis_url: str) -> None:  # noqa: F811
    fields = stored(redis_url, "old:192.0.2.1", {"s": 110, "h": 4, "p": 6, "last": 1763769600})
    record = layouts.parse("counters", fields)
    assert (record.n, record.s, record.h, record.p) == (120, 110, 4, 6)
    assert record.last == 1763769600
    assert layouts.score("counters", record, ScoringParams()) == pytest.approx(109 / 120)


def test_parse_counters_absent_counter_is_zero(redis_url: str) -> None:  # noqa: F811
    """A counter never incremented (HINCRBY creates fields lazily) counts 0."""
    record = layouts.parse("counters", stored(redis_url, "old:x", {"s": 12}))
    assert (record.s, record.h, record.p, record.n) == (12, 0, 0, 12)


def test_parse_counters_last_in_milliseconds() -> None:
    record = layouts.parse("counters", {b"s": b"1", b"last": b"1763769600123"})
    assert record.last == pytest.approx(1763769600.123)


def test_parse_buckets(redis_url: str) -> None:  # noqa: F811
    """The fields of a token's bucket hashes, joined, are one record."""
    hour = stored(redis_url, "RB:{i:192.0.2.1}:1h",
                  {"1h:s": 8, "1h:h": 0, "1h:j": 2, "1h:w": 1763766000, "last": 1763767000})
    day = stored(redis_url, "RB:{i:192.0.2.1}:1d",
                 {"1d:s": 10, "1d:h": 20, "1d:j": 4, "1d:w": 1763683200, "last": 1763767000})
    record = layouts.parse("buckets", {**hour, **day})
    assert dict(record.buckets) == {"1d": BucketCounts(10, 20, 4), "1h": BucketCounts(8, 0, 2)}
    assert record.n == 34
    assert record.last == 1763767000
    expected = ((8 + 1) * 1.5 + (10 - 20 + 2)) / (10 * 1.5 + 34)
    assert layouts.score("buckets", record, ScoringParams()) == pytest.approx(expected)


@pytest.mark.parametrize(("layout", "fields", "culprit"), [
    ("rspamd", {b"l": b"1", b"v1m": b"3"}, "n"),
    ("rspamd", {b"n": b"ten"}, "n"),
    ("rspamd", {b"n": b"10", b"v1m": b"nan"}, "v1m"),
    ("rspamd", {b"n": b"10", b"l": b"-inf"}, "l"),
    ("rspamd", {b"n": b"-1"}, "n"),
    ("counters", {b"last": b"1"}, "s"),
    ("counters", {b"s": b"1", b"h": b" 2"}, "h"),
    ("counters", {b"s": b"1_0"}, "s"),
    ("buckets", {b"last": b"1"}, "<bucket>:s"),
    ("buckets", {b"1h:s": b"x"}, "1h:s"),
    ("buckets", {b"1H:s": b"1"}, "1H:s"),
    ("buckets", {b"1h:w": b"soon", b"1h:s": b"1"}, "1h:w"),
])
def test_parse_errors_name_the_field(layout: str, fields: dict[bytes, bytes],
                                     culprit: str) -> None:
    with pytest.raises(LayoutError) as info:
        layouts.parse(layout, fields)
    assert info.value.field == culprit
    assert repr(culprit) in str(info.value)


def test_parse_ignores_unknown_fields() -> None:
    record = layouts.parse("rspamd", {b"n": b"3", b"x": b"junk", b"\xff": b"?"})
    assert record.n == 3


def test_parse_unknown_layout() -> None:
    with pytest.raises(ValueError):
        layouts.parse("nope", {b"n": b"1"})


@given(st.dictionaries(st.binary(max_size=6), st.binary(max_size=8), max_size=6),
       st.sampled_from(LAYOUTS))
def test_parse_never_fails_otherwise(fields: dict[bytes, bytes], layout: str) -> None:
    """Whatever a hash holds, parse returns a record or raises LayoutError."""
    try:
        record = layouts.parse(layout, fields)
    except LayoutError:
        return
    assert -1.0 <= layouts.score(layout, record, ScoringParams()) <= 1.0


# ------------------------------------------------------------------ merge


def test_merge_sums_counts_and_weights_values_by_n() -> None:
    a = Counters(n=30, last=100.0, values={"1m": 10.0})
    b = Counters(n=10, last=200.0, values={"1m": 2.0, "1h": 5.0})
    merged = layouts.merge([a, b])
    assert merged.n == 40
    assert merged.last == 200.0
    assert merged.values["1m"] == pytest.approx((30 * 10 + 10 * 2) / 40)
    assert merged.values["1h"] == 5.0


def test_merge_counters_and_buckets() -> None:
    a = layouts.parse("counters", {b"s": b"5", b"h": b"1"})
    b = layouts.parse("counters", {b"s": b"2", b"p": b"3", b"last": b"7"})
    merged = layouts.merge([a, b])
    assert (merged.n, merged.s, merged.h, merged.p, merged.last) == (11, 7, 1, 3, 7)
    x = layouts.parse("buckets", {b"1h:s": b"2", b"1d:s": b"5"})
    y = layouts.parse("buckets", {b"1h:h": b"1", b"1d:h": b"7"})
    both = layouts.merge([x, y])
    assert both.buckets["1h"] == BucketCounts(2, 1, 0)
    assert both.buckets["1d"] == BucketCounts(5, 7, 0)
    assert both.n == 12  # the widest bucket, not the sum of the buckets


def test_merge_values_without_counts_average() -> None:
    merged = layouts.merge([Counters(values={"1m": 1.0}), Counters(values={"1m": 3.0})])
    assert merged.values["1m"] == 2.0
    assert merged.n is None


def test_merge_one_and_none() -> None:
    only = Counters(n=1)
    assert layouts.merge([only]) is only
    with pytest.raises(ValueError):
        layouts.merge([])


# ------------------------------------------------------------------ TXT data


def test_txt_fields_rspamd() -> None:
    record = layouts.parse("rspamd", {b"n": b"25", b"l": b"1763769600999", b"v1m": b"12.5"})
    fields = layouts.txt_fields(record, 0.777777)
    assert fields == {"n": 25, "sc": 0.7778, "l": 1763769600, "v1m": 12.5}
    assert txt.decode(txt.encode(fields)).fields == fields


def test_txt_fields_counters_and_buckets() -> None:
    record = layouts.parse("counters", {b"s": b"110", b"h": b"4", b"p": b"6"})
    assert layouts.txt_fields(record, 0.9083) == {"n": 120, "s": 110, "h": 4, "p": 6,
                                                  "sc": 0.9083}
    buckets = layouts.parse("buckets", {b"1h:s": b"8", b"1h:j": b"2", b"1d:h": b"3"})
    fields = layouts.txt_fields(buckets, 0.5)
    assert fields["b1h.s"] == 8 and fields["b1h.j"] == 2 and fields["b1h.m"] == 1.5
    assert fields["b1d.h"] == 3 and fields["b1d.m"] == 1
    assert fields["n"] == 10


def test_txt_fields_client_recomputes_the_score() -> None:
    """Everything needed to recompute the score is in the TXT data."""
    record = layouts.parse("buckets", {b"1h:s": b"8", b"1h:j": b"2", b"1d:s": b"10",
                                       b"1d:h": b"20", b"1d:j": b"4"})
    sc = layouts.score("buckets", record, ScoringParams())
    data = txt.decode(txt.encode(layouts.txt_fields(record, sc))).fields
    rebuilt = [BucketCounts(float(data[f"b{b}.s"]), float(data[f"b{b}.h"]),
                            float(data[f"b{b}.j"]), float(data[f"b{b}.m"]))
               for b in ("1d", "1h")]
    assert round(buckets_score(rebuilt), 4) == data["sc"]


def test_txt_fields_skip_bucket_names_txt_cannot_carry() -> None:
    record = Counters(n=20, values={"1M": 1.0, "week": 2.0})
    assert layouts.txt_fields(record, 0.0) == {"n": 20, "sc": 0.0, "vweek": 2}


def test_txt_fields_fit_by_dropping_buckets_first() -> None:
    """Too many buckets for 255 bytes: whole buckets go, the core numbers stay."""
    values = {f"bucket_{i:02d}": 1234.5678901234 + i for i in range(12)}
    record = Counters(n=123456, last=1763769600.0, values=values)
    fields = layouts.txt_fields(record, -0.123456)
    encoded = txt.encode(fields)
    assert len(encoded) <= txt.MAX_LENGTH
    assert {"n", "sc", "l"} <= set(fields)
    kept = [key for key in fields if key.startswith("v")]
    assert kept and kept == sorted(f"v{name}" for name in values)[:len(kept)]


def test_txt_fields_drop_core_last_resort() -> None:
    huge = 1.2345678901234567e300
    record = Counters(n=huge, s=huge, h=huge, p=huge, last=1e18,
                      values={f"b{i}": huge for i in range(5)})
    fields = layouts.txt_fields(record, 1.0)
    assert len(txt.encode(fields)) <= txt.MAX_LENGTH
    assert fields["sc"] == 1.0


@given(st.dictionaries(st.from_regex(r"[a-z0-9_]{1,16}", fullmatch=True),
                       st.floats(-1e300, 1e300), max_size=20),
       st.floats(0, 1e300), st.floats(-1, 1))
def test_txt_fields_always_fit(values: dict[str, float], n: float, sc: float) -> None:
    fields = layouts.txt_fields(Counters(n=n, last=1e9, values=values), sc)
    assert len(txt.encode(fields)) <= txt.MAX_LENGTH


# ------------------------------------------------------------------ bucket keys and settings


def test_bucket_keys() -> None:
    key = layouts.bucket_key("i:192.0.2.1", "1h")
    assert key == "{i:192.0.2.1}:1h"
    assert layouts.split_bucket_key(key) == ("i:192.0.2.1", "1h")
    assert layouts.split_bucket_key("{we}:ird}:1d") == ("we}:ird", "1d")
    assert layouts.split_bucket_key("i:192.0.2.1") is None
    assert layouts.split_bucket_key("{}:1h") is None
    assert layouts.token_key("buckets", key) == "i:192.0.2.1"
    assert layouts.token_key("rspamd", "i:192.0.2.1") == "i:192.0.2.1"
    assert layouts.record_keys("buckets", key, ["1h", "1d"]) == [key, "{i:192.0.2.1}:1d"]
    assert layouts.record_keys("rspamd", "a:1", ["1h"]) == ["a:1"]
    assert layouts.record_keys("buckets", "a:1", ["1h"]) == []


# ------------------------------------------------------------------ tokens


@pytest.mark.parametrize(("selector", "key", "token"), [
    ("ip", "i:192.0.2.1", "192.0.2.1"),
    ("ip", "i:2001:db8:1:2::", "2001:db8:1:2::/64"),
    ("asn", "a:64496", "64496"),
    ("country", "c:US", "US"),
    ("dkim", "example.com.a", "example.com.a"),
    ("dkim", "example.co.uk.r", "example.co.uk.r"),
    ("url", "example.com", "example.com"),
    ("spf", "ybndrfg8ejkmcpqxot1uwisza345h769", "ybndrfg8ejkmcpqxot1uwisza345h769"),
    ("generic", "user@example.com", "user@example.com"),
])
def test_token_round_trip(selector: str, key: str, token: str) -> None:
    assert tokens.token_of(selector, key) == token
    assert tokens.redis_key(selector, token) == key


@pytest.mark.parametrize(("selector", "key"), [
    ("ip", "a:64496"), ("ip", "192.0.2.1"), ("ip", "i:"), ("asn", "i:192.0.2.1"), ("asn", "a:"),
    ("country", "c:"), ("country", "a:64496"), ("dkim", "example.com"),
    ("dkim", "i:1.2.3.a"), ("url", "i:192.0.2.1"), ("url", "example.com.a"),
    ("url", "ybndrfg8ejkmcpqxot1uwisza345h769"), ("spf", "example.com"), ("generic", ""),
])
def test_token_of_other_selectors_keys(selector: str, key: str) -> None:
    assert tokens.token_of(selector, key) is None


@pytest.mark.parametrize("key", [
    "i:not-an-ip", "i:1.2.3.4\x00", "i:1.2.3.4\udcff", "i:fe80::1%eth0",
    # Rspamd writes addresses, never networks: these would list a /0 or a /16 at once.
    "i:0.0.0.0/0", "i:::/0", "i:198.19.0.0/16", "i:192.0.2.1/32",
])
def test_malformed_keys_of_a_prefixed_selector_are_still_its_own(key: str) -> None:
    """i:garbage is an ip key with a bad token: TokenError, which the sync counts."""
    with pytest.raises(tokens.TokenError):
        tokens.token_of("ip", key)
    assert tokens.token_of("asn", "a:AS1") == "AS1"
    with pytest.raises(ValueError):
        tokens.redis_key("asn", "AS1")
    with pytest.raises(ValueError):
        tokens.redis_key("ip", "not-an-ip")


def test_ip_masks() -> None:
    """A sender address gets the rule's mask, as Rspamd applies it before writing."""
    assert tokens.redis_key("ip", "2001:db8:1:2::5") == "i:2001:db8:1:2::"
    assert tokens.redis_key("ip", "192.0.2.77", ipv4_mask=24) == "i:192.0.2.0"
    assert tokens.token_of("ip", "i:192.0.2.0", ipv4_mask=24) == "192.0.2.0/24"
    assert tokens.token_of("ip", "i:2001:db8::1", ipv6_mask=128) == "2001:db8::1"
    # Host bits under the mask: a rule with a longer mask wrote it; it names one address.
    assert tokens.token_of("ip", "i:2001:db8::1") == "2001:db8::1"
    assert tokens.token_of("ip", "i:192.0.2.77", ipv4_mask=24) == "192.0.2.77"
    with pytest.raises(ValueError):
        tokens.redis_key("ip", "2001:db8::/48")
    with pytest.raises(ValueError):
        tokens.token_of("ip", "i:1.2.3.4", ipv4_mask=33)


def test_redis_key_rejects_what_token_of_would_not_return() -> None:
    for selector, token in [("asn", "AS64496"), ("country", "U S"), ("dkim", "example.com"),
                            ("spf", "short"), ("generic", ""), ("nope", "x")]:
        with pytest.raises(ValueError):
            tokens.redis_key(selector, token)


@given(st.ip_addresses())
def test_ip_round_trip_any_address(address: object) -> None:
    key = tokens.redis_key("ip", str(address))
    token = tokens.token_of("ip", key)
    assert token is not None
    assert tokens.redis_key("ip", token) == key
