"""``zonepub learn``: record verdicts into Redis in the ``buckets`` layout.

The write path for scanners other than Rspamd (docs/buckets-layout.md).  A verdict is a
token kind (a selector: ip, asn, country, dkim, url, spf, generic), a value, and spam,
ham, junk or a message score (at least ``--spam-score``, default 15, Rspamd's reject, is
spam; at least ``--junk-score``, default 6, Rspamd's add-header, is junk; below is ham)::

    zonepub learn --redis redis://127.0.0.1:6379/0 ip 192.0.2.1 spam
    zonepub learn --redis URL --file verdicts.jsonl   # {"kind": "ip", "value": ..., "verdict": ...}
    zonepub -c zones learn --zone bl.example.net --file verdicts.csv    # kind,value,verdict

With ``--zone`` the Redis URL, prefix and buckets come from the zone's ``source``
section (its layout must be ``buckets``); ``--redis`` and ``--prefix`` override them.
Every input line is checked before anything is written, and every bad line is
reported (bytes that are not UTF-8 included).  Verdicts are then written in batches,
each one MULTI/EXEC transaction.  A token whose bucket key holds something other than
a hash (anyone who can write to the Redis can put one there) is skipped, counted and
named, its key left as it is; the other verdicts are written, and the exit status is 1.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import math
import sys
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Final

import redis

from listformat import tokens
from publisher.errors import PublisherError
from publisher.layouts import bucket_key
from zoned.config import ConfigError, ZoneConfig, find_zone
from zoned.sourceconf import BUCKETS_PREFIX, DEFAULT_BUCKETS, Bucket, SourceSettings, redact

VERDICTS: Final = ("spam", "ham", "junk")
SPAM_SCORE: Final = 15.0
JUNK_SCORE: Final = 6.0
DEFAULT_BATCH: Final = 1000
_FIELD: Final = {"spam": "s", "ham": "h", "junk": "j"}
_CSV_HEADER: Final = ["kind", "value", "verdict"]


class LearnError(PublisherError, ValueError):
    """Verdicts or settings that ``learn`` cannot use; the message lists every problem."""


@dataclass(frozen=True, slots=True)
class Verdict:
    """One verdict, checked: its token's Redis key (without prefix) and its class."""

    key: str
    verdict: str  # spam | ham | junk


@dataclass(frozen=True, slots=True)
class Thresholds:
    """How a numeric message score becomes a class."""

    spam: float = SPAM_SCORE
    junk: float = JUNK_SCORE

    def classify(self, score: float) -> str:
        if score >= self.spam:
            return "spam"
        return "junk" if score >= self.junk else "ham"


@dataclass(frozen=True, slots=True)
class Target:
    """Where verdicts go: one Redis server, a key prefix and the buckets to count in."""

    url: str
    prefix: str = BUCKETS_PREFIX
    buckets: tuple[Bucket, ...] = DEFAULT_BUCKETS


# ------------------------------------------------------------------ reading verdicts


def make_verdict(kind: object, value: object, verdict: object,
                 thresholds: Thresholds = Thresholds()) -> Verdict:
    """Check one verdict's three parts; raises LearnError saying which part is wrong."""
    if not isinstance(kind, str) or kind not in tokens.SELECTORS:
        raise LearnError(f"kind: expected one of {', '.join(tokens.SELECTORS)}, "
                         f"got {kind!r:.100}")
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)  # an AS number written as a JSON number
    if not isinstance(value, str) or not value:
        raise LearnError(f"value: expected a non-empty string, got {value!r:.100}")
    try:
        key = tokens.redis_key(kind, value)
    except ValueError as exc:
        raise LearnError(f"value: {exc}") from None
    return Verdict(key, _classify(verdict, thresholds))


def _classify(verdict: object, thresholds: Thresholds) -> str:
    score: float | None = None
    if isinstance(verdict, str):
        if verdict.strip().lower() in VERDICTS:
            return verdict.strip().lower()
        try:
            score = float(verdict)
        except ValueError:
            score = None
    elif isinstance(verdict, int | float) and not isinstance(verdict, bool):
        score = float(verdict)
    if score is None or not math.isfinite(score):
        raise LearnError(f"verdict: expected spam, ham, junk or a score, got {verdict!r}")
    return thresholds.classify(score)


def _lines(stream: IO[str]) -> Iterator[tuple[int, str]]:
    for lineno, line in enumerate(stream, 1):
        if line.strip() and not line.lstrip().startswith("#"):
            yield lineno, line


def read_jsonl(stream: IO[str], name: str, thresholds: Thresholds,
               problems: list[str]) -> list[Verdict]:
    """``{"kind": ..., "value": ..., "verdict": ...}`` per line; bad lines go to problems."""
    verdicts: list[Verdict] = []
    for lineno, line in _lines(stream):
        try:
            obj = json.loads(line)
            if not isinstance(obj, dict):
                raise LearnError("expected a JSON object")
            unknown = sorted(set(obj) - set(_CSV_HEADER))
            if unknown:
                raise LearnError(f"unknown key {unknown[0]!r}")
            verdicts.append(make_verdict(obj.get("kind"), obj.get("value"),
                                         obj.get("verdict"), thresholds))
        except (ValueError, LearnError) as exc:  # json.JSONDecodeError is a ValueError
            problems.append(f"{name}:{lineno}: {exc}")
    return verdicts


def read_csv(stream: IO[str], name: str, thresholds: Thresholds,
             problems: list[str]) -> list[Verdict]:
    """``kind,value,verdict`` rows (an optional header row of those names is skipped)."""
    verdicts: list[Verdict] = []
    rows = csv.reader(stream)
    while True:
        try:
            row = next(rows)
        except StopIteration:
            break
        except csv.Error as exc:  # a field over csv's size limit: that line is bad
            problems.append(f"{name}:{rows.line_num}: {exc}")
            continue
        lineno = rows.line_num
        if not row or not "".join(row).strip() or row[0].lstrip().startswith("#"):
            continue
        if lineno == 1 and [cell.strip().lower() for cell in row] == _CSV_HEADER:
            continue
        try:
            if len(row) != 3:
                raise LearnError(f"expected 3 columns (kind,value,verdict), got {len(row)}")
            kind, value, verdict = (cell.strip() for cell in row)
            verdicts.append(make_verdict(kind, value, verdict, thresholds))
        except LearnError as exc:
            problems.append(f"{name}:{lineno}: {exc}")
    return verdicts


def read_file(path: Path, fmt: str | None, thresholds: Thresholds) -> list[Verdict]:
    """Every verdict of a file (``-`` is standard input); LearnError lists every bad line."""
    fmt = fmt or ("csv" if path.suffix.lower() == ".csv" else "jsonl")
    reader = read_csv if fmt == "csv" else read_jsonl
    problems: list[str] = []
    # Bytes that are not UTF-8 become surrogates, which no token accepts: a bad line.
    if str(path) == "-":
        stdin = io.TextIOWrapper(sys.stdin.buffer, encoding="utf-8",
                                 errors="surrogateescape", newline="")
        verdicts = reader(stdin, "<stdin>", thresholds, problems)
    else:
        with path.open(encoding="utf-8", errors="surrogateescape", newline="") as stream:
            verdicts = reader(stream, str(path), thresholds, problems)
    if problems:
        raise LearnError("\n".join(problems))
    return verdicts


# ------------------------------------------------------------------ writing


def _chunks(items: Sequence[Verdict], size: int) -> Iterator[Sequence[Verdict]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def _tally(verdicts: Iterable[Verdict]) -> dict[str, dict[str, int]]:
    """Verdict counts per token key, in first-seen order: one set of commands per token."""
    counts: dict[str, dict[str, int]] = {}
    for verdict in verdicts:
        per_token = counts.setdefault(verdict.key, dict.fromkeys(VERDICTS, 0))
        per_token[verdict.verdict] += 1
    return counts


@dataclass(frozen=True, slots=True)
class Written:
    """What :func:`write` counted, and the tokens it left alone with the reason."""

    verdicts: int
    skipped: Mapping[str, str]  # token key -> why
    skipped_verdicts: int = 0


def write(client: redis.Redis, target: Target, verdicts: Sequence[Verdict],
          batch: int = DEFAULT_BATCH) -> Written:
    """Count ``verdicts`` into the current window of every bucket.

    Each batch is one MULTI/EXEC: for every token and bucket, HINCRBY of all three
    counters (by 0 for the classes not seen, so every hash has the same fields), HSET of
    the window start and ``last``, and EXPIREAT at the window's end.  The windows come
    from the server's clock (TIME), so writers with skewed clocks still agree.  Tokens
    whose bucket keys are not hashes (TYPE, read just before) are skipped.  A batch
    that fails leaves the earlier ones written: the count says how many were.
    """
    if batch < 1:
        raise ValueError("batch must be at least 1")
    written = dropped = 0
    skipped: dict[str, str] = {}
    for chunk in _chunks(verdicts, batch):
        seconds, micros = client.time()
        now = seconds + micros / 1e6
        tally = _tally(chunk)
        keys = {token_key: [target.prefix + bucket_key(token_key, spec.name)
                            for spec in target.buckets] for token_key in tally}
        wrong = _not_hashes(client, keys)
        skipped.update(wrong)
        pipe = client.pipeline(transaction=True)
        owners: list[str] = []  # the token of each queued command
        for token_key, counts in tally.items():
            if token_key in wrong:
                dropped += sum(counts.values())
                continue
            for spec, key in zip(target.buckets, keys[token_key], strict=True):
                start = int(now // spec.window) * spec.window
                for verdict in VERDICTS:
                    pipe.hincrby(key, f"{spec.name}:{_FIELD[verdict]}", counts[verdict])
                pipe.hset(key, mapping={f"{spec.name}:w": start, "last": seconds})
                pipe.expireat(key, start + spec.window)
                owners += [token_key] * (len(VERDICTS) + 2)
            written += sum(counts.values())
        replies = pipe.execute(raise_on_error=False) if owners else []
        for token_key, reply in zip(owners, replies, strict=True):
            if isinstance(reply, redis.ResponseError) and token_key not in skipped:
                # A field that is no integer, or a key whose type changed since TYPE: in
                # MULTI/EXEC the token's other commands still ran.
                skipped[token_key] = (f"Redis refused a command for it ({reply}); some "
                                      "of its counts may have been added")
                written -= sum(tally[token_key].values())
                dropped += sum(tally[token_key].values())
    return Written(written, skipped, dropped)


def _not_hashes(client: redis.Redis, keys: Mapping[str, Sequence[str]]) -> dict[str, str]:
    """Tokens with a bucket key holding something other than a hash, and what it holds."""
    pipe = client.pipeline(transaction=False)
    for group in keys.values():
        for key in group:
            pipe.type(key)
    types = iter(pipe.execute())
    wrong: dict[str, str] = {}
    for token_key, group in keys.items():
        for key in group:
            kind = next(types)
            kind = kind.decode() if isinstance(kind, bytes) else str(kind)
            if kind not in ("hash", "none") and token_key not in wrong:
                wrong[token_key] = f"key {_shown(key)} holds a {kind}, not a hash"
    return wrong


def _shown(text: str, limit: int = 100) -> str:
    return repr(text) if len(text) <= limit else f"{text[:limit]!r}... ({len(text):,} chars)"


# ------------------------------------------------------------------ settings


def _zone(config_dir: Path, name: str) -> ZoneConfig:
    zone = find_zone(config_dir, name)
    if zone is None:
        raise LearnError(f"no zone {name!r} in {config_dir}")
    return zone


def zone_target(source: SourceSettings, zone: str) -> tuple[str | None, str, tuple[
        Bucket, ...]]:
    """(url, prefix, buckets) from a zone's validated ``source`` settings.

    Verdicts go to the first server: the publisher sums the servers' counts, so any one
    of them counts a verdict once.
    """
    if source.layout != "buckets":
        raise LearnError(f"zone {zone}: source.layout is {source.layout!r}; "
                         "learn writes 'buckets'")
    if source.cluster:
        raise LearnError(f"zone {zone}: learn does not write to a Redis Cluster yet")
    return (source.urls[0] if source.urls else None), source.prefix, source.buckets


def target_of(args: argparse.Namespace) -> Target:
    """The target from the command line, filled in from ``--zone`` when given."""
    url: str | None = None
    prefix = BUCKETS_PREFIX
    buckets: tuple[Bucket, ...] = DEFAULT_BUCKETS
    if args.zone:
        config = _zone(Path(getattr(args, "config", "zones")), args.zone)
        if config.source is None:
            raise LearnError(f"zone {config.origin} has no source section")
        url, prefix, buckets = zone_target(config.source, config.origin)
    url = args.redis or url
    if not url:
        raise LearnError("no Redis server: give --redis URL, or --zone with a source.redis")
    return Target(url, args.prefix if args.prefix is not None else prefix, buckets)


# ------------------------------------------------------------------ the command


def run_learn(args: argparse.Namespace) -> int:
    """Run ``zonepub learn``; problems are printed, never raised (exit status 1)."""
    try:
        thresholds = Thresholds(args.spam_score, args.junk_score)
        if thresholds.spam < thresholds.junk:
            raise LearnError("--spam-score must not be below --junk-score")
        if args.file is not None:
            if args.verdict:
                raise LearnError("give verdicts either on the command line or with --file")
            verdicts = read_file(args.file, args.format, thresholds)
        elif len(args.verdict) == 3:
            try:
                kind, value, verdict = args.verdict
                verdicts = [make_verdict(kind, value, verdict, thresholds)]
            except LearnError as exc:
                raise LearnError(f"command line: {exc}") from None
        else:
            raise LearnError("expected KIND VALUE VERDICT (e.g. ip 192.0.2.1 spam) or --file")
        target = target_of(args)
        client: Any = redis.Redis.from_url(target.url)
        try:
            written = write(client, target, verdicts, args.batch)
        finally:
            client.close()
    except (LearnError, ConfigError, OSError) as exc:
        print(f"zonepub learn: {exc}", file=sys.stderr)
        return 1
    except redis.RedisError as exc:
        print(f"zonepub learn: Redis: {exc}", file=sys.stderr)
        return 1
    windows = ", ".join(f"{b.name} ({b.window} s)" for b in target.buckets)
    print(f"learned {written.verdicts} verdicts into {redact(target.url)}, prefix "
          f"{target.prefix!r}, buckets {windows}")
    if not written.skipped:
        return 0
    print(f"zonepub learn: skipped {written.skipped_verdicts} verdicts of "
          f"{len(written.skipped)} tokens:", file=sys.stderr)
    for token_key, why in list(written.skipped.items())[:20]:
        print(f"  {_shown(token_key)}: {why}", file=sys.stderr)
    if len(written.skipped) > 20:
        print(f"  ... and {len(written.skipped) - 20} more", file=sys.stderr)
    return 1
