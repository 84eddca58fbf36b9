"""The TXT record format, version 1: ``v=1;key=value;key=value``.

A token's TXT answer carries what the list knows of it (ARCHITECTURE "Data formats"
2) for clients that score it themselves.  The format is chosen so that:

- one string of at most 255 bytes holds it, so no reader has to join strings;
- ``v=1`` comes first, so a reader can refuse a newer format before misreading it;
- readers ignore keys they do not know, so new keys need no new version;
- numbers are in shortest round-trip form, so a client reads back exactly the float
  the publisher had.

Known keys, written first in this order: ``n`` (messages), ``s``, ``h``, ``p`` (spam,
ham, probable-spam counts), ``sc`` (score in [-1, 1]), ``l`` (last seen, unix
seconds).  Any other keys (per-bucket values, ...) follow in sorted order.

Value types are implied by the text: ``-?[0-9]+`` is an int, a finite decimal float
is a float, anything else a string.  So a string that reads as a number cannot be
written: it would come back as a number.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

VERSION = 1
MAX_LENGTH = 255
KNOWN_KEYS = ("n", "s", "h", "p", "sc", "l")

Value = int | float | str

_KEY = re.compile(r"[a-z][a-z0-9_.-]*")
_INT = re.compile(r"-?[0-9]+")
# Only plain decimal notation: Python's float() would also take "1_0", " 1", "inf".
_FLOAT = re.compile(r"-?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?")
# Printable ASCII without the two separators.
_STR = re.compile(r"[ -:<>-~]*")
# Integral floats below this print as ints; above, repr's exponent form is shorter.
_INTEGRAL_LIMIT = 1e16


class TxtError(ValueError):
    """The fields cannot be written as, or the text is not, a version-1 TXT record."""


class UnsupportedVersion(TxtError):
    """The record is in a newer format than this reader understands."""

    def __init__(self, version: int) -> None:
        super().__init__(f"TXT format version {version} is newer than {VERSION}")
        self.version = version


def _empty_fields() -> Mapping[str, Value]:
    return MappingProxyType({})


@dataclass(frozen=True)
class TxtRecord:
    """A decoded TXT record: its format version and its fields (``v`` excluded)."""

    version: int
    fields: Mapping[str, Value] = field(default_factory=_empty_fields)

    def number(self, key: str) -> float | None:
        """``key`` as a float, or None when absent or not a number (never raises)."""
        value = self.fields.get(key)
        if isinstance(value, int | float):
            return float(value)
        return None


def _parse_value(text: str) -> Value:
    if text.isdigit() and text.isascii():  # the common case, without a regex
        return int(text)
    if _INT.fullmatch(text):
        return int(text)
    if _FLOAT.fullmatch(text):
        number = float(text)
        if math.isfinite(number):
            return number
    return text


def is_key(key: str) -> bool:
    """Whether ``key`` is a name a record can carry (``v`` included: encode writes it)."""
    return _KEY.fullmatch(key) is not None


def format_number(value: float) -> str:
    """A finite float as a record writes it: integral ones below 1e16 as ints, the others
    in shortest round-trip form (``repr``), which reads back as the same float."""
    if value.is_integer() and -_INTEGRAL_LIMIT < value < _INTEGRAL_LIMIT:
        return str(int(value))
    return repr(value)


def _format_value(key: str, value: Value) -> str:
    # bool is an int to Python but would print as "True": refuse rather than guess.
    if isinstance(value, bool):
        raise TxtError(f"{key}: booleans are not a TXT value type; pass 0 or 1")
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise TxtError(f"{key}: {value!r} is not a finite number")
        return format_number(value)
    if isinstance(value, str):
        if not _STR.fullmatch(value):
            raise TxtError(f"{key}: {value!r} must be printable ASCII without ';' or '='")
        if not isinstance(_parse_value(value), str):
            raise TxtError(f"{key}: string {value!r} would read back as a number")
        return value
    raise TxtError(f"{key}: unsupported value type {type(value).__name__}")


def _ordered_keys(fields: Mapping[str, Value]) -> list[str]:
    known = [key for key in KNOWN_KEYS if key in fields]
    return known + sorted(key for key in fields if key not in KNOWN_KEYS)


# Keys already checked: a publisher encodes millions of records with a handful of keys.
_GOOD_KEYS: set[str] = set(KNOWN_KEYS)


def encode(fields: Mapping[str, Value]) -> bytes:
    """One TXT string for ``fields``: ``v=1``, the known keys in order, then the rest sorted."""
    parts = [f"v={VERSION}"]
    for key in _ordered_keys(fields):
        if key not in _GOOD_KEYS:
            if key == "v":
                raise TxtError("'v' is the format version and is written by encode()")
            if not _KEY.fullmatch(key):
                raise TxtError(f"key {key!r} does not match [a-z][a-z0-9_.-]*")
            if len(_GOOD_KEYS) < 4096:
                _GOOD_KEYS.add(key)
        value = fields[key]
        if type(value) is int:  # not bool
            parts.append(f"{key}={value}")
        elif isinstance(value, float) and not value.is_integer() and math.isfinite(value):
            parts.append(f"{key}={value!r}")
        else:
            parts.append(f"{key}={_format_value(key, value)}")
    data = ";".join(parts).encode("ascii")
    if len(data) > MAX_LENGTH:
        raise TxtError(f"TXT record is {len(data)} bytes, over the {MAX_LENGTH} of one string")
    return data


def template(places: Mapping[str, int]) -> str:
    """A ``str.format`` text of the records that hold exactly the keys of ``places``:
    ``v=1``, then each key in :func:`encode`'s order with its value at the position
    ``places`` gives (``{"n": 0, "sc": 1}``: ``"v=1;n={0};sc={1}"``).

    For a writer that formats many records of the same keys (the publisher's fast
    path); it passes each value already written (``str`` of an int, a float through
    :func:`format_number`) and checks the length itself.  A key encode would refuse
    raises TxtError.
    """
    for key in places:
        if key == "v" or not is_key(key):
            raise TxtError(f"key {key!r} cannot be written; names match [a-z][a-z0-9_.-]*")
    parts = [f"v={VERSION}"] + [f"{key}={{{places[key]}}}" for key in _ordered_keys(places)]
    return ";".join(parts)


def decode(data: bytes | str) -> TxtRecord:
    """Parse a TXT record, its strings already joined; raise TxtError when malformed.

    A record of a newer version raises :class:`UnsupportedVersion` before anything
    else is read, because its syntax may differ.
    """
    if isinstance(data, bytes):
        try:
            text = data.decode("ascii")
        except UnicodeDecodeError:
            raise TxtError("TXT record is not ASCII") from None
    else:
        text = data
        if not text.isascii():
            raise TxtError("TXT record is not ASCII")
    segments = text.split(";")
    name, eq, raw_version = segments[0].partition("=")
    if name != "v" or not eq:
        raise TxtError(f"TXT record does not start with 'v=': {text[:40]!r}")
    if not raw_version.isdigit():  # the text is ASCII: isdigit() is [0-9]+
        raise TxtError(f"TXT version {raw_version!r} is not a number")
    version = int(raw_version)
    if version > VERSION:
        raise UnsupportedVersion(version)
    if version < 1:
        raise TxtError(f"TXT version {version} does not exist")
    fields: dict[str, Value] = {}
    for segment in segments[1:]:
        if not segment:
            continue  # tolerate ";;" and a trailing ";"
        key, eq, raw = segment.partition("=")
        if not eq:
            raise TxtError(f"TXT segment {segment!r} has no '='")
        if key not in _GOOD_KEYS:
            if not _KEY.fullmatch(key):
                raise TxtError(f"TXT key {key!r} does not match [a-z][a-z0-9_.-]*")
            if key != "v" and len(_GOOD_KEYS) < 4096:
                _GOOD_KEYS.add(key)
        if key == "v" or key in fields:
            raise TxtError(f"TXT key {key!r} appears twice")
        fields[key] = _parse_value(raw)
    return TxtRecord(version, MappingProxyType(fields))
