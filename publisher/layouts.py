"""The three Redis layouts of reputation counters, read into one record.

- ``rspamd``: what Rspamd's reputation plugin writes (docs/rspamd-layout.md): ``n``
  (messages), ``l`` (last update, unix milliseconds), ``v<bucket>`` (a decayed mean score
  per bucket).  ``n`` is required.
- ``counters``: the older spam/ham/probable counters: ``s``, ``h``, ``p``, ``last`` (unix
  seconds; a value above 1e11 can only be milliseconds and is read as such).  A counter
  that was never incremented may be absent and counts 0; at least one must be present.
- ``buckets``: repzone's windowed counters, written by ``zonepub learn``
  (docs/buckets-layout.md): fields ``<bucket>:s|h|j|w`` and ``last``.  One Redis hash per
  token and bucket; the fields of a token's hashes together are one record.

Everything downstream (merging servers, scoring, TXT data) works on :class:`Counters`,
so it does not care which layout a zone reads.  A field that is present but not a plain
finite number, a negative count, or a missing required field raises :class:`LayoutError`
naming the field; unknown fields are ignored, so writers may add some.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Final

from listformat import txt
from listformat.scoring import (
    LOWER_BOUND,
    MULT_HAM,
    MULT_JUNK,
    MULT_SPAM,
    REJECT_SCORE,
    BucketCounts,
    buckets_score,
    counters_score,
    rspamd_score,
)
from publisher.errors import PublisherError
from zoned.sourceconf import BUCKET_NAME, DEFAULT_BUCKETS, LAYOUTS, Bucket

# Above this a "seconds" timestamp would be in the year 5138: it is milliseconds.
_MS_THRESHOLD = 1e11
# Plain decimal numbers only: float() would also take "nan", "inf", "1_0" and " 1".
_NUMBER = re.compile(rb"-?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?")
_COUNT_SUFFIX = {"s": "spam", "h": "ham", "j": "junk"}


class LayoutError(PublisherError, ValueError):
    """A Redis hash does not hold a record of its layout; ``field`` names the culprit."""

    def __init__(self, field: str, message: str) -> None:
        shown = repr(field) if len(field) <= 40 else f"{field[:40]!r}... ({len(field):,} chars)"
        super().__init__(f"field {shown}: {message}")
        self.field = field


RSPAMD_BUCKETS: Final = (Bucket("1m", 30 * 86400, 1.0),)  # Rspamd's default


def bucket_key(token_key: str, bucket: str) -> str:
    """The ``buckets`` layout's key (without prefix) of one token's bucket.

    ``{token}`` is a Redis Cluster hash tag: all buckets of a token share a slot, so one
    MULTI can update them.
    """
    return f"{{{token_key}}}:{bucket}"


def split_bucket_key(key: str) -> tuple[str, str] | None:
    """``(token key, bucket)`` of a ``buckets`` key without prefix, or None if not one."""
    if not key.startswith("{"):
        return None
    token_key, sep, bucket = key[1:].rpartition("}:")
    if not sep or not token_key or not BUCKET_NAME.fullmatch(bucket):
        return None
    return token_key, bucket


def token_key(layout: str, key: str) -> str | None:
    """The token part of a Redis key without prefix (listformat.tokens maps it on), or None.

    In the ``rspamd`` and ``counters`` layouts that is the key itself; a ``buckets`` key
    ``{<token key>}:<bucket>`` gives ``<token key>``, and any other key None.
    """
    if layout == "buckets":
        split = split_bucket_key(key)
        return None if split is None else split[0]
    if layout in LAYOUTS:
        return key
    raise ValueError(f"unknown layout {layout!r}; expected one of {', '.join(LAYOUTS)}")


def record_keys(layout: str, key: str, buckets: Iterable[str]) -> list[str]:
    """Every key (without prefix) whose fields together are the record ``key`` belongs to.

    One key per token in the ``rspamd`` and ``counters`` layouts; in ``buckets`` one per
    configured bucket, so a change to any bucket re-reads the token's whole record.  Read
    them all (HGETALL each), join their fields and :func:`parse` them as one hash; the
    token is gone when all are.
    """
    if layout != "buckets":
        token_key(layout, key)  # checks the layout
        return [key]
    found = token_key(layout, key)
    if found is None:
        return []
    return [bucket_key(found, name) for name in buckets]


def _no_values() -> Mapping[str, float]:
    return MappingProxyType({})


def _no_buckets() -> Mapping[str, BucketCounts]:
    return MappingProxyType({})


@dataclass(frozen=True, slots=True)
class Counters:
    """What one token's Redis hash (or several servers' hashes, merged) says.

    ``values`` are Rspamd's stored ``v<bucket>`` numbers by bucket name; ``buckets`` are
    the ``buckets`` layout's counts of the current windows (their ``mult`` is 1 here: the
    weights are configuration, applied by :func:`score`).  For the ``buckets`` layout
    ``n`` is the largest bucket total, the messages of the widest window.
    """

    n: float | None = None
    s: float | None = None
    h: float | None = None
    p: float | None = None
    last: float | None = None  # unix seconds
    values: Mapping[str, float] = field(default_factory=_no_values)
    buckets: Mapping[str, BucketCounts] = field(default_factory=_no_buckets)


def _mults(specs: Sequence[Bucket]) -> Mapping[str, float]:
    return MappingProxyType({spec.name: spec.mult for spec in specs})


def _default_buckets() -> Mapping[str, float]:
    return _mults(DEFAULT_BUCKETS)


def _rspamd_buckets() -> Mapping[str, float]:
    return _mults(RSPAMD_BUCKETS)


@dataclass(frozen=True, slots=True)
class ScoringParams:
    """How a zone scores; the defaults are Rspamd's.

    ``rspamd_buckets`` map Rspamd's bucket names to the ``mult`` its read script applies
    to each ``v`` field; ``buckets`` map the ``buckets`` layout's names to their weights.
    A bucket found in Redis but not named here weighs 1.
    """

    lower_bound: float = LOWER_BOUND
    reject_score: float = REJECT_SCORE
    rspamd_buckets: Mapping[str, float] = field(default_factory=_rspamd_buckets)
    buckets: Mapping[str, float] = field(default_factory=_default_buckets)
    mult_spam: float = MULT_SPAM
    mult_ham: float = MULT_HAM
    mult_junk: float = MULT_JUNK

    def rspamd_mult(self, name: str) -> float:
        return self.rspamd_buckets.get(name, 1.0)

    def bucket_mult(self, name: str) -> float:
        return self.buckets.get(name, 1.0)


# ------------------------------------------------------------------ parsing


def _name(raw: bytes) -> str:
    """A field's name; bytes that are not UTF-8 become surrogates, never printable."""
    return raw.decode("utf-8", "surrogateescape")


def _number(name: str, raw: bytes) -> float:
    if not _NUMBER.fullmatch(raw):
        raise LayoutError(name, f"not a number: {raw[:40]!r}")
    value = float(raw)
    if not math.isfinite(value):
        raise LayoutError(name, f"not a finite number: {raw[:40]!r}")
    return value


def _count(name: str, raw: bytes) -> float:
    value = _number(name, raw)
    if value < 0:
        raise LayoutError(name, f"a count cannot be negative: {raw[:40]!r}")
    return value


def _seconds(value: float) -> float:
    return value / 1000 if value > _MS_THRESHOLD else value


def _parse_rspamd(fields: Mapping[str, bytes]) -> Counters:
    if "n" not in fields:
        raise LayoutError("n", "missing: Rspamd writes the message count with every update")
    n = _count("n", fields["n"])
    last = _number("l", fields["l"]) / 1000 if "l" in fields else None
    values = {
        _bucket(name): _number(name, raw)
        for name, raw in fields.items()
        if name.startswith("v") and len(name) > 1
    }
    return Counters(n=n, last=last, values=MappingProxyType(values))


def _bucket(name: str) -> str:
    """The bucket of a ``v<bucket>`` field; binary junk is no bucket a scanner names."""
    if not name.isprintable():
        raise LayoutError(name, "a bucket name must be printable text")
    return name[1:]


def _parse_counters(fields: Mapping[str, bytes]) -> Counters:
    counts = {name: _count(name, fields[name]) for name in ("s", "h", "p") if name in fields}
    if not counts:
        raise LayoutError("s", "missing: none of the counters s, h, p is present")
    last = _seconds(_number("last", fields["last"])) if "last" in fields else None
    s, h, p = (counts.get(name, 0.0) for name in ("s", "h", "p"))
    return Counters(n=s + h + p, s=s, h=h, p=p, last=last)


def _parse_buckets(fields: Mapping[str, bytes]) -> Counters:
    counts: dict[str, dict[str, float]] = {}
    for name, raw in fields.items():
        bucket, colon, suffix = name.rpartition(":")
        if not colon:
            continue
        if not BUCKET_NAME.fullmatch(bucket):
            raise LayoutError(name, f"bucket name {bucket!r} does not match [a-z0-9_]{{1,16}}")
        if suffix in _COUNT_SUFFIX:
            counts.setdefault(bucket, {})[_COUNT_SUFFIX[suffix]] = _count(name, raw)
        elif suffix == "w":
            _number(name, raw)  # the window start: checked, but the key's expiry governs
    if not counts:
        raise LayoutError("<bucket>:s", "missing: no bucket counts (<bucket>:s|h|j)")
    last = _seconds(_number("last", fields["last"])) if "last" in fields else None
    buckets = {name: BucketCounts(**kinds) for name, kinds in sorted(counts.items())}
    n = max(b.total for b in buckets.values())
    return Counters(n=n, last=last, buckets=MappingProxyType(buckets))


def parse(layout: str, fields: Mapping[bytes, bytes]) -> Counters:
    """One token's hash (``HGETALL``) as a record; raises LayoutError naming the field.

    For the ``buckets`` layout pass the fields of all of the token's bucket hashes
    together: their names carry the bucket, so they never collide.  Fields a layout does
    not know are ignored; a bucket's field whose name is not printable text (binary
    junk, NUL) is a LayoutError, as it would be scored.
    """
    by_name = {_name(key): value for key, value in fields.items()}
    if layout == "rspamd":
        return _parse_rspamd(by_name)
    if layout == "counters":
        return _parse_counters(by_name)
    if layout == "buckets":
        return _parse_buckets(by_name)
    raise ValueError(f"unknown layout {layout!r}; expected one of {', '.join(LAYOUTS)}")


# ------------------------------------------------------------------ several servers


def _sum(values: Iterable[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return math.fsum(present) if present else None


def merge(records: Sequence[Counters]) -> Counters:
    """Several servers' records of one token as one: what one server would have counted.

    Counts add up; a ``v`` value is the mean of the servers' values weighted by their
    message counts (a server that saw more messages knows more); ``last`` is the latest.
    """
    if not records:
        raise ValueError("merge() needs at least one record")
    if len(records) == 1:
        return records[0]
    values: dict[str, float] = {}
    for name in sorted({name for r in records for name in r.values}):
        pairs = [(r.values[name], r.n or 0.0) for r in records if name in r.values]
        weight = math.fsum(w for _, w in pairs)
        if weight > 0:
            values[name] = math.fsum(v * w for v, w in pairs) / weight
        else:
            values[name] = math.fsum(v for v, _ in pairs) / len(pairs)
    buckets: dict[str, BucketCounts] = {}
    for name in sorted({name for r in records for name in r.buckets}):
        parts = [r.buckets[name] for r in records if name in r.buckets]
        buckets[name] = BucketCounts(
            spam=math.fsum(b.spam for b in parts),
            ham=math.fsum(b.ham for b in parts),
            junk=math.fsum(b.junk for b in parts),
            mult=parts[0].mult,
        )
    lasts = [r.last for r in records if r.last is not None]
    n = max(b.total for b in buckets.values()) if buckets else _sum(r.n for r in records)
    return Counters(
        n=n,
        s=_sum(r.s for r in records),
        h=_sum(r.h for r in records),
        p=_sum(r.p for r in records),
        last=max(lasts) if lasts else None,
        values=MappingProxyType(values),
        buckets=MappingProxyType(buckets),
    )


# ------------------------------------------------------------------ scores and TXT data


def message_count(counters: Counters) -> float:
    """Messages the record counts (for minimum-count rules): ``n``, else s + h + p."""
    if counters.n is not None:
        return counters.n
    return (counters.s or 0.0) + (counters.h or 0.0) + (counters.p or 0.0)


def score(layout: str, counters: Counters, scoring: ScoringParams) -> float:
    """The token's score in [-1, 1] by its layout's formula (listformat.scoring)."""
    if layout == "rspamd":
        values = [v * scoring.rspamd_mult(name) for name, v in sorted(counters.values.items())]
        return rspamd_score(
            counters.n or 0.0,
            values,
            lower_bound=scoring.lower_bound,
            reject_score=scoring.reject_score,
        )
    if layout == "counters":
        return counters_score(
            counters.s or 0.0,
            counters.h or 0.0,
            counters.p or 0.0,
            lower_bound=scoring.lower_bound,
        )
    if layout == "buckets":
        weighted = [
            replace(counts, mult=scoring.bucket_mult(name))
            for name, counts in sorted(counters.buckets.items())
        ]
        return buckets_score(
            weighted,
            mult_spam=scoring.mult_spam,
            mult_ham=scoring.mult_ham,
            mult_junk=scoring.mult_junk,
            lower_bound=scoring.lower_bound,
        )
    raise ValueError(f"unknown layout {layout!r}; expected one of {', '.join(LAYOUTS)}")


TxtFields = dict[str, int | float | str]


def _tidy(value: float) -> int | float:
    """Integral counts as ints: ``n=12`` reads better than a float that prints the same."""
    number = float(value)  # ints arrive too, and int.is_integer() is Python 3.12+
    return int(number) if number.is_integer() and abs(number) < 2**53 else number


def _bucket_groups(counters: Counters, scoring: ScoringParams) -> list[TxtFields]:
    """Per-bucket TXT keys, one group per bucket: a bucket is dropped whole or kept whole."""
    groups: list[TxtFields] = []
    for name, value in sorted(counters.values.items()):
        key = f"v{name}"
        if txt.is_key(key):  # a bucket name TXT cannot carry is left out
            groups.append({key: _tidy(value * scoring.rspamd_mult(name))})
    for name, counts in sorted(counters.buckets.items()):
        prefix = f"b{name}"
        groups.append({
            f"{prefix}.s": _tidy(counts.spam),
            f"{prefix}.h": _tidy(counts.ham),
            f"{prefix}.j": _tidy(counts.junk),
            f"{prefix}.m": _tidy(scoring.bucket_mult(name)),
        })
    return groups


def _fits(fields: TxtFields) -> bool:
    try:
        txt.encode(fields)
    except txt.TxtError:
        return False
    return True


def txt_fields(
    counters: Counters, score: float, *, scoring: ScoringParams | None = None
) -> TxtFields:
    """The TXT data of a token: every number a client needs to recompute its score.

    ``n``, ``s``, ``h``, ``p`` (what is known), ``sc`` (rounded to 4 decimals), ``l``
    (whole seconds) and per-bucket numbers: ``v<name>`` for Rspamd's buckets, as its read
    script returns them (times the bucket's mult), and ``b<name>.s|h|j|m`` (counts and
    weight) for the ``buckets`` layout.  The record must fit one 255-byte TXT string:
    when it does not, whole buckets are dropped from the last one back, then ``l``,
    ``p``, ``h``, ``s`` and ``n``; ``sc`` always stays.
    """
    scoring = scoring or ScoringParams()
    core: TxtFields = {}
    for key, number in (("n", counters.n), ("s", counters.s), ("h", counters.h),
                        ("p", counters.p)):
        if number is not None:
            core[key] = _tidy(number)
    core["sc"] = round(score, 4)
    if counters.last is not None:
        core["l"] = int(counters.last)
    groups = _bucket_groups(counters, scoring)
    while True:
        fields = dict(core)
        for group in groups:
            fields.update(group)
        if _fits(fields):
            return fields
        if groups:
            groups.pop()
            continue
        droppable = next(key for key in ("l", "p", "h", "s", "n", "sc") if key in core)
        if droppable == "sc":  # cannot happen: "v=1;sc=-0.1234" is 14 bytes
            raise txt.TxtError("the score alone does not fit a TXT string")
        del core[droppable]
