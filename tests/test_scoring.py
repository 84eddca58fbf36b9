"""listformat.scoring: Rspamd's formulas and ours, with known numbers."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from listformat.scoring import (
    IP_WEIGHTS,
    BucketCounts,
    buckets_score,
    clamp,
    combine,
    counters_score,
    rspamd_score,
)

counts = st.floats(min_value=0, max_value=1e9, allow_nan=False)
finite = st.floats(min_value=-1e9, max_value=1e9, allow_nan=False)


def test_rspamd_known_number() -> None:
    """Mean 12 with reject 15 scores tanh(12/15*1.83178-0.5493) = 0.72."""
    assert rspamd_score(20, [12.0]) == pytest.approx(0.72406, abs=1e-5)
    assert round(rspamd_score(20, [10.0, 14.0], reject_score=15.0), 2) == 0.72


def test_rspamd_uses_the_source_constants_not_exact_atanh() -> None:
    """The constants are Rspamd's rounded ones, so results match Rspamd, not math.atanh."""
    expected = math.tanh(7.0 / 15.0 * 1.83178 - 0.5493)
    assert rspamd_score(10, [7.0]) == expected


def test_rspamd_zero_mean_is_minus_half() -> None:
    """A token whose messages average 0 is mildly good: tanh(-0.5493) = -0.5."""
    assert rspamd_score(50, [0.0]) == pytest.approx(-0.5, abs=1e-4)


def test_rspamd_lower_bound() -> None:
    """Below lower_bound the score is 0; at exactly lower_bound Rspamd scores (n < lb)."""
    assert rspamd_score(9, [30.0]) == 0.0
    assert rspamd_score(10, [30.0]) > 0.9
    assert rspamd_score(4, [30.0], lower_bound=3) > 0.9


def test_rspamd_reject_score_scales() -> None:
    """The same mean is worse under a lower reject threshold."""
    assert rspamd_score(10, [8.0], reject_score=10.0) > rspamd_score(10, [8.0])


def test_rspamd_no_values_is_zero() -> None:
    """Rspamd divides by zero and inserts nothing; here that is 0."""
    assert rspamd_score(100, []) == 0.0


def test_rspamd_rejects_bad_reject_score() -> None:
    with pytest.raises(ValueError):
        rspamd_score(10, [1.0], reject_score=0)


@given(n=counts, values=st.lists(finite, min_size=1, max_size=5))
def test_rspamd_in_range(n: float, values: list[float]) -> None:
    assert -1.0 <= rspamd_score(n, values) <= 1.0


def test_counters_known_numbers() -> None:
    """(s - h + 0.5 p) / (s + h + p)."""
    assert counters_score(110, 4, 6) == pytest.approx((110 - 4 + 3) / 120)
    assert counters_score(0, 10, 0) == -1.0
    assert counters_score(0, 0, 10) == 0.5


def test_counters_lower_bound() -> None:
    assert counters_score(5, 0, 4) == 0.0
    assert counters_score(5, 0, 5) == 0.75
    assert counters_score(0, 0, 0, lower_bound=0) == 0.0


def test_counters_reject_negative() -> None:
    with pytest.raises(ValueError):
        counters_score(-1, 20, 0)


@given(s=counts, h=counts, p=counts)
def test_counters_in_range(s: float, h: float, p: float) -> None:
    assert -1.0 <= counters_score(s, h, p) <= 1.0


def test_buckets_one_bucket_equals_counters() -> None:
    """With one bucket and default multipliers the buckets formula is the counters one."""
    assert buckets_score([BucketCounts(110, 4, 6, mult=1.5)]) == pytest.approx(
        counters_score(110, 4, 6))


def test_buckets_weighted_known_number() -> None:
    """Sum((s - h + 0.5 j) * mult) / sum(total * mult) over the buckets."""
    hour = BucketCounts(spam=8, ham=0, junk=2, mult=1.5)
    day = BucketCounts(spam=10, ham=20, junk=4, mult=1.0)
    raw = (8 + 1) * 1.5 + (10 - 20 + 2) * 1.0
    assert buckets_score([hour, day]) == pytest.approx(raw / (10 * 1.5 + 34 * 1.0))


def test_buckets_lower_bound_uses_the_widest_bucket() -> None:
    """A verdict is in every bucket, so the bound is checked on the largest total."""
    assert buckets_score([BucketCounts(6, 0, 0), BucketCounts(6, 0, 0)]) == 0.0
    assert buckets_score([BucketCounts(6, 0, 0), BucketCounts(10, 0, 0)]) == 1.0


def test_buckets_clamped_with_large_multipliers() -> None:
    assert buckets_score([BucketCounts(20, 0, 0)], mult_spam=3.0) == 1.0
    assert buckets_score([BucketCounts(0, 20, 0)], mult_ham=-3.0) == -1.0


def test_buckets_zero_weight_and_empty() -> None:
    assert buckets_score([]) == 0.0
    assert buckets_score([BucketCounts(20, 0, 0, mult=0.0)]) == 0.0


def test_buckets_reject_bad_input() -> None:
    with pytest.raises(ValueError):
        buckets_score([BucketCounts(20, 0, 0, mult=-1.0)])
    with pytest.raises(ValueError):
        buckets_score([BucketCounts(20, -1, 0)])


@given(st.lists(st.tuples(counts, counts, counts, st.floats(0, 100)), max_size=4),
       st.floats(-5, 5), st.floats(-5, 5), st.floats(-5, 5))
def test_buckets_in_range(raw: list[tuple[float, float, float, float]], ms: float, mh: float,
                          mj: float) -> None:
    buckets = [BucketCounts(*item) for item in raw]
    assert -1.0 <= buckets_score(buckets, mult_spam=ms, mult_ham=mh, mult_junk=mj) <= 1.0


def test_combine_is_rspamds_weighted_sum() -> None:
    """ip, asn and country add up with their weights (a sum, not a mean)."""
    parts = [(0.5, IP_WEIGHTS["ip"]), (0.5, IP_WEIGHTS["asn"]), (1.0, IP_WEIGHTS["country"])]
    assert combine(parts) == pytest.approx(0.5 + 0.2 + 0.01)


def test_combine_clamps_unless_asked_not_to() -> None:
    parts = [(0.9, 1.0), (0.9, 0.4)]
    assert combine(parts) == 1.0
    assert combine(parts, limit=False) == pytest.approx(1.26)
    assert combine([]) == 0.0


def test_clamp() -> None:
    assert clamp(2.0) == 1.0
    assert clamp(-2.0) == -1.0
    assert clamp(float("nan")) == 0.0
    assert clamp(0.25) == 0.25
