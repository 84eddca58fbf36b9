"""RFC 1982 serial arithmetic."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from zoned.serial import HALF, MAX_ADD, MODULUS, next_serial, serial_add, serial_gt

serials = st.integers(0, MODULUS - 1)


def test_gt_follows_rfc1982_examples() -> None:
    """RFC 1982 5.2: with 32 bits, 0 < 1, 4294967295 < 0, and 1 < 2**31 - 1 + 1."""
    assert serial_gt(1, 0)
    assert serial_gt(0, MODULUS - 1)
    assert serial_gt(HALF, 1)
    assert not serial_gt(0, 1)
    assert not serial_gt(5, 5)


def test_gt_undefined_pair_is_neither() -> None:
    """Serials exactly 2**31 apart compare as neither newer (RFC 1982 3.2 leaves it undefined)."""
    assert not serial_gt(0, HALF)
    assert not serial_gt(HALF, 0)


def test_add_wraps_and_limits_the_increment() -> None:
    """Addition wraps modulo 2**32 and refuses increments over 2**31 - 1 (RFC 1982 3.1)."""
    assert serial_add(MODULUS - 1, 1) == 0
    assert serial_add(10, MAX_ADD) == (10 + MAX_ADD) % MODULUS
    with pytest.raises(ValueError):
        serial_add(10, HALF)
    with pytest.raises(ValueError):
        serial_add(MODULUS, 1)


def test_next_serial_prefers_unix_time() -> None:
    """The new serial is the current unix time when that is newer than the old serial."""
    assert next_serial(1_700_000_000, 1_700_000_500) == 1_700_000_500


def test_next_serial_increments_when_time_is_not_newer() -> None:
    """Two commits in one second, or a clock gone backwards, give old + 1."""
    assert next_serial(1_700_000_000, 1_700_000_000) == 1_700_000_001
    assert next_serial(1_700_000_000, 1_600_000_000) == 1_700_000_001


def test_next_serial_from_zero_takes_any_time() -> None:
    """Nothing was published at serial 0, so the first serial is simply the time."""
    assert next_serial(0, 3_000_000_000) == 3_000_000_000
    assert next_serial(0, 0) == 1


def test_next_serial_skips_zero_on_wrap() -> None:
    """Wrapping past 2**32 - 1 lands on 1: 0 stays "never published"."""
    assert next_serial(MODULUS - 1, 0) == 1
    assert next_serial(MODULUS - 1, 5) == 5


@given(serials, st.integers(0, 2 * MODULUS))
def test_next_serial_is_always_newer_and_nonzero(old: int, now: int) -> None:
    """Whatever the clock says, the next serial is newer than the old one and not 0."""
    new = next_serial(old, now)
    assert new != 0
    assert 0 <= new < MODULUS
    if old != 0:
        assert serial_gt(new, old)


@given(serials, serials)
def test_gt_is_antisymmetric(a: int, b: int) -> None:
    """At most one of a > b and b > a holds."""
    assert not (serial_gt(a, b) and serial_gt(b, a))
