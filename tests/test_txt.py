"""listformat.txt: the v=1 key=value TXT format."""

from __future__ import annotations

from collections.abc import Mapping

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from listformat.txt import (
    MAX_LENGTH,
    VERSION,
    TxtError,
    TxtRecord,
    UnsupportedVersion,
    decode,
    encode,
    format_number,
    template,
)

Value = int | float | str

keys = st.from_regex(r"[a-z][a-z0-9_.-]{0,7}", fullmatch=True).filter(lambda key: key != "v")
strings = st.text(
    alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E, exclude_characters=";="),
    max_size=12,
).filter(lambda text: isinstance(decode(f"v=1;k={text}").fields["k"], str))
values: st.SearchStrategy[Value] = st.one_of(
    st.integers(min_value=-(10**15), max_value=10**15),
    st.floats(allow_nan=False, allow_infinity=False),
    strings,
)


@given(st.dictionaries(keys, values, max_size=6))
def test_round_trip(fields: dict[str, Value]) -> None:
    """decode(encode(fields)) gives the same fields back, floats exactly."""
    try:
        data = encode(fields)
    except TxtError as exc:
        assume("bytes, over" not in str(exc))
        raise
    assert len(data) <= MAX_LENGTH
    record = decode(data)
    assert record.version == VERSION
    assert record.fields == fields
    for key, value in fields.items():
        assert type(record.fields[key]) is type(value) or (
            isinstance(value, float) and value.is_integer()
        )


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_floats_are_exact(number: float) -> None:
    """Every finite float reads back as exactly the same number."""
    assert decode(encode({"x": number})).fields["x"] == number


def test_order() -> None:
    """v first, then n s h p sc l, then the other keys sorted."""
    fields: Mapping[str, Value] = {
        "zz": 1,
        "l": 5,
        "b3": 2,
        "sc": 0.5,
        "p": 3,
        "h": 4,
        "s": 6,
        "n": 7,
        "a": "x",
    }
    assert encode(fields) == b"v=1;n=7;s=6;h=4;p=3;sc=0.5;l=5;a=x;b3=2;zz=1"
    assert encode({}) == b"v=1"


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (0.1, "0.1"),
        (1e-7, "1e-07"),
        (3.0, "3"),
        (-2.0, "-2"),
        (-0.0, "0"),
        (0.30000000000000004, "0.30000000000000004"),
        (1e16, "1e+16"),
        (12345, "12345"),
        (-1, "-1"),
        (1700000000, "1700000000"),
    ],
)
def test_shortest_numbers(value: float, text: str) -> None:
    """Numbers are written in their shortest round-trip form."""
    data = encode({"x": value})
    assert data == f"v=1;x={text}".encode()
    assert decode(data).fields["x"] == value


def test_one_string_limit() -> None:
    """A record over 255 bytes is refused, saying how long it would be."""
    fits = {"x": "a" * (MAX_LENGTH - len("v=1;x="))}
    assert len(encode(fits)) == MAX_LENGTH
    with pytest.raises(TxtError, match="256 bytes, over the 255"):
        encode({"x": "a" * (MAX_LENGTH - len("v=1;x=") + 1)})


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"v": 1}, "'v' is the format version"),
        ({"N": 1}, "does not match"),
        ({"1a": 1}, "does not match"),
        ({"": 1}, "does not match"),
        ({"a b": 1}, "does not match"),
        ({"x": float("nan")}, "not a finite number"),
        ({"x": float("inf")}, "not a finite number"),
        ({"x": True}, "booleans"),
        ({"x": "a;b"}, "printable ASCII"),
        ({"x": "a=b"}, "printable ASCII"),
        ({"x": "caf\u00e9"}, "printable ASCII"),
        ({"x": "a\tb"}, "printable ASCII"),
        ({"x": "12"}, "read back as a number"),
        ({"x": "-1.5e3"}, "read back as a number"),
        ({"x": None}, "unsupported value type"),
    ],
)
def test_encode_rejects(fields: dict[str, object], message: str) -> None:
    """Fields that cannot be written, or would not read back the same, raise TxtError."""
    with pytest.raises(TxtError, match=message):
        encode(fields)  # type: ignore[arg-type]


def test_decode_types_and_tolerance() -> None:
    """Values are typed by their text; unknown keys are kept; empty segments are skipped."""
    record = decode(b"v=1;n=12;sc=-0.25;future=thing;;nan=nan;big=1e999;plus=+1;e=;")
    assert record == TxtRecord(1, record.fields)
    assert dict(record.fields) == {
        "n": 12,
        "sc": -0.25,
        "future": "thing",
        "nan": "nan",
        "big": "1e999",
        "plus": "+1",
        "e": "",
    }
    assert record.number("n") == 12.0
    assert record.number("sc") == -0.25
    assert record.number("future") is None
    assert record.number("missing") is None


def test_decode_accepts_str() -> None:
    """Text works as well as bytes (strings already joined)."""
    assert decode("v=1;n=1").fields == {"n": 1}


def test_fields_are_read_only() -> None:
    """A decoded record cannot be changed behind its reader's back."""
    record = decode(b"v=1;n=1")
    with pytest.raises(TypeError):
        record.fields["n"] = 2  # type: ignore[index]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "does not start with 'v='"),
        (b"n=1;v=1", "does not start with 'v='"),
        (b"v;n=1", "does not start with 'v='"),
        (b"v=one", "not a number"),
        (b"v=1.0", "not a number"),
        (b"v=-1", "not a number"),
        (b"v=0", "does not exist"),
        (b"v=1;n", "has no '='"),
        (b"v=1;N=1", "does not match"),
        (b"v=1;n=1;n=2", "appears twice"),
        (b"v=1;v=1", "appears twice"),
        (b"v=1;x=\xff", "not ASCII"),
        ("v=1;x=caf\u00e9", "not ASCII"),
    ],
)
def test_decode_rejects(data: bytes | str, message: str) -> None:
    """Malformed records raise TxtError saying what is wrong."""
    with pytest.raises(TxtError, match=message):
        decode(data)


def test_newer_version_is_reported_not_misread() -> None:
    """A version-2 record raises UnsupportedVersion carrying the version, whatever follows."""
    with pytest.raises(UnsupportedVersion, match="version 2") as info:
        decode(b"v=2;whatever syntax comes next")
    assert info.value.version == 2
    assert isinstance(info.value, TxtError)
    assert isinstance(info.value, ValueError)


def test_test_entry_encoding() -> None:
    """The RFC 5782 test entry's TXT is v=1;test=1."""
    assert encode({"test": 1}) == b"v=1;test=1"


def test_nan_is_not_a_number_on_read() -> None:
    """number() never returns NaN: non-finite texts stay strings."""
    record = decode(b"v=1;x=nan;y=inf;z=-inf")
    assert [record.number(key) for key in "xyz"] == [None, None, None]


numbers: st.SearchStrategy[int | float] = st.one_of(
    st.integers(min_value=-(10**15), max_value=10**15),
    st.floats(allow_nan=False, allow_infinity=False),
)
known = st.sampled_from(["n", "s", "h", "p", "sc", "l"])


@given(st.dictionaries(st.one_of(known, keys), numbers, max_size=6))
def test_a_template_writes_what_encode_writes(fields: dict[str, int | float]) -> None:
    """A template filled with format_number's text is encode's record, byte for byte."""
    names = sorted(fields)  # any order of places: the template puts the keys in order
    places = {key: index for index, key in enumerate(names)}
    texts = [format_number(v) if isinstance(v, float) else str(v) for v in fields.values()]
    by_key = dict(zip(fields, texts, strict=True))
    written = template(places).format(*(by_key[key] for key in names)).encode()
    try:
        assert written == encode(fields)
    except TxtError as exc:
        assert "bytes, over" in str(exc)


@pytest.mark.parametrize("key", ["v", "A", "1m", "", "x;y"])
def test_a_template_refuses_what_encode_refuses(key: str) -> None:
    with pytest.raises(TxtError):
        template({key: 0})
