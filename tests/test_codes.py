"""listformat.codes: score bands, graded codes and reserved error codes."""

from __future__ import annotations

from ipaddress import IPv4Address

import pytest
from hypothesis import given
from hypothesis import strategies as st

from listformat.codes import (
    DEFAULT_BANDS,
    ERROR_CODES,
    Band,
    CodeError,
    ReturnCodes,
    error_for_code,
    graded_code,
    graded_score,
    validate_code,
)

scores = st.floats(min_value=-1.0, max_value=1.0)


@pytest.mark.parametrize(
    ("score", "code"),
    [
        (1.0, "127.0.0.2"),
        (0.8, "127.0.0.2"),
        (0.79, "127.0.0.3"),
        (0.4, "127.0.0.3"),
        (0.39, "127.0.0.4"),
        (0.1, "127.0.0.4"),
        (0.0999, None),
        (0.0, None),
        (-0.0999, None),
        (-0.1, "127.0.0.6"),
        (-0.39, "127.0.0.6"),
        (-0.4, "127.0.0.7"),
        (-1.0, "127.0.0.7"),
        (5.0, "127.0.0.2"),
        (-5.0, "127.0.0.7"),
    ],
)
def test_default_bands(score: float, code: str | None) -> None:
    """The documented defaults: three bad bands, a neutral gap, two good bands."""
    expected = None if code is None else IPv4Address(code)
    assert ReturnCodes.default().code_for(score) == expected


def test_default_bands_are_the_module_constant() -> None:
    """ReturnCodes.default() uses DEFAULT_BANDS, not graded mode."""
    codes = ReturnCodes.default()
    assert codes.bands == DEFAULT_BANDS
    assert not codes.graded


def test_band_for_code() -> None:
    """A client maps an answer back to the band (and so the score range) it came from."""
    codes = ReturnCodes.default()
    band = codes.band_for_code(IPv4Address("127.0.0.6"))
    assert band == Band.at_most(-0.1, "127.0.0.6")
    assert band is not None and not band.upward and band.threshold == -0.1
    assert codes.band_for_code(IPv4Address("127.0.0.5")) is None


def test_band_positional_form_still_works() -> None:
    """Band(min_score, code) is an upward band, as before."""
    assert Band(0.5, IPv4Address("127.0.0.2")) == Band.at_least(0.5, "127.0.0.2")


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: Band(None, IPv4Address("127.0.0.2")), "exactly one"),
        (lambda: Band(0.1, IPv4Address("127.0.0.2"), 0.5), "exactly one"),
        (lambda: Band.at_least(1.5, "127.0.0.2"), r"not in \[-1, 1\]"),
        (lambda: Band.at_least(float("nan"), "127.0.0.2"), r"not in \[-1, 1\]"),
        (lambda: Band.at_least(0.5, "127.0.0.1"), "never used"),
        (lambda: Band.at_least(0.5, "10.0.0.2"), "outside 127.0.0.0/8"),
        (lambda: Band.at_least(0.5, "127.255.255.2"), "reserved for errors"),
        (lambda: Band.at_least(0.5, "127.0.1.5"), "graded"),
        (lambda: Band.at_least(0.5, "not an address"), "not an IPv4 address"),
    ],
)
def test_band_rejects(make: object, message: str) -> None:
    """Bands with unusable thresholds or codes raise CodeError."""
    with pytest.raises(CodeError, match=message):
        make()  # type: ignore[operator]


@pytest.mark.parametrize(
    ("bands", "message"),
    [
        ((Band.at_least(0.5, "127.0.0.2"), Band.at_least(0.2, "127.0.0.2")), "two bands answer"),
        ((Band.at_least(0.5, "127.0.0.2"), Band.at_least(0.5, "127.0.0.3")), "share a threshold"),
        ((Band.at_most(-0.5, "127.0.0.2"), Band.at_most(-0.5, "127.0.0.3")), "share a threshold"),
        ((Band.at_least(0.0, "127.0.0.2"), Band.at_most(0.0, "127.0.0.3")), "overlap"),
        ((Band.at_least(-0.5, "127.0.0.2"), Band.at_most(0.5, "127.0.0.3")), "overlap"),
    ],
)
def test_return_codes_reject_overlaps(bands: tuple[Band, ...], message: str) -> None:
    """Bands that a score could match ambiguously are refused on construction."""
    with pytest.raises(CodeError, match=message):
        ReturnCodes(bands)


def test_most_extreme_band_wins() -> None:
    """Band order in the config does not matter; the most extreme match wins."""
    codes = ReturnCodes(
        (
            Band.at_least(-0.5, "127.0.0.10"),
            Band.at_least(0.5, "127.0.0.11"),
            Band.at_most(-0.8, "127.0.0.12"),
        )
    )
    assert codes.code_for(0.7) == IPv4Address("127.0.0.11")
    assert codes.code_for(0.0) == IPv4Address("127.0.0.10")
    assert codes.code_for(-0.5) == IPv4Address("127.0.0.10")
    assert codes.code_for(-0.6) is None
    assert codes.code_for(-0.9) == IPv4Address("127.0.0.12")


def test_no_bands_lists_nothing() -> None:
    """A zone without bands publishes no A records (TXT only)."""
    assert ReturnCodes(()).code_for(1.0) is None


def test_nan_score_is_an_error() -> None:
    """A NaN score is a bug upstream, not a neutral score."""
    with pytest.raises(ValueError, match="NaN"):
        ReturnCodes.default().code_for(float("nan"))
    with pytest.raises(ValueError, match="NaN"):
        graded_code(float("nan"))


@pytest.mark.parametrize(
    ("score", "code"),
    [
        (-1.0, "127.0.1.0"),
        (-3.0, "127.0.1.0"),
        (0.0, "127.0.1.100"),
        (0.25, "127.0.1.125"),
        (-0.333, "127.0.1.67"),
        (1.0, "127.0.1.200"),
        (7.0, "127.0.1.200"),
    ],
)
def test_graded(score: float, code: str) -> None:
    """Graded mode answers 127.0.1.N, N = round((score + 1) * 100), clamped."""
    codes = ReturnCodes((), graded=True)
    assert codes.code_for(score) == IPv4Address(code)
    assert graded_code(score) == IPv4Address(code)


@given(scores)
def test_graded_round_trip(score: float) -> None:
    """graded_score recovers the score to the nearest hundredth, and every code is valid."""
    code = graded_code(score)
    validate_code(code)
    recovered = graded_score(code)
    assert recovered is not None
    assert abs(recovered - score) <= 0.005 + 1e-9


@given(scores)
def test_default_codes_are_valid(score: float) -> None:
    """Whatever the score, the default mapping never answers a forbidden code."""
    code = ReturnCodes.default().code_for(score)
    if code is not None:
        validate_code(code)
        assert graded_score(code) is None


def test_graded_score_outside_range() -> None:
    """Addresses outside 127.0.1.0..200 are not graded codes."""
    assert graded_score(IPv4Address("127.0.1.201")) is None
    assert graded_score(IPv4Address("127.0.0.2")) is None
    assert graded_score(IPv4Address("127.0.1.0")) == -1.0
    assert graded_score(IPv4Address("127.0.1.200")) == 1.0


def test_graded_takes_no_bands() -> None:
    """Bands in graded mode would be ignored, so they are an error."""
    with pytest.raises(CodeError, match="no bands"):
        ReturnCodes(DEFAULT_BANDS, graded=True)


@pytest.mark.parametrize(
    ("code", "message"),
    [
        ("127.0.0.1", "never used"),
        ("126.0.0.2", "outside"),
        ("128.0.0.2", "outside"),
        ("127.255.255.0", "reserved for errors"),
        ("127.255.255.254", "reserved for errors"),
    ],
)
def test_validate_code_rejects(code: str, message: str) -> None:
    """127.0.0.1, non-loopback and the error range are never listing codes."""
    with pytest.raises(CodeError, match=message):
        validate_code(IPv4Address(code))


def test_validate_code_accepts() -> None:
    """The rest of 127.0.0.0/8 is fine, including graded codes."""
    for code in ("127.0.0.2", "127.0.0.255", "127.0.1.100", "127.255.254.255"):
        validate_code(IPv4Address(code))


def test_error_codes() -> None:
    """Error signals sit in 127.255.255.0/24, are distinct, and map back to their names."""
    assert ERROR_CODES["refused"] == IPv4Address("127.255.255.254")
    assert ERROR_CODES["limited"] == IPv4Address("127.255.255.255")
    assert len(set(ERROR_CODES.values())) == len(ERROR_CODES)
    for name, code in ERROR_CODES.items():
        with pytest.raises(CodeError):
            validate_code(code)
        assert error_for_code(code) == name
    assert error_for_code(IPv4Address("127.0.0.2")) is None
