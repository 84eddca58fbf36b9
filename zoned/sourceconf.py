"""The ``source:`` section of a zone file: where zonepub reads a zone's counters.

One reader for both commands: :func:`zoned.config.load_zones` runs it on every file, so
``zoned -t`` refuses exactly what ``zonepub`` refuses, each mistake as
``file:line:column: field: message``; the publisher takes the validated
:class:`SourceSettings` from :attr:`zoned.config.ZoneConfig.source`.  A command line's
``--redis`` replaces the URLs afterwards (:meth:`SourceSettings.with_redis`), so the
file's own value is always checked.  zoned itself never reads Redis::

    source:
      redis: redis://127.0.0.1:6379/0   # one URL, or a list of servers to merge
      cluster: false                    # the URL names a node of a Redis Cluster
      layout: rspamd                    # rspamd | counters | buckets
      prefix: "RR:"                     # key prefix (default RR:, Rspamd's; RB: for buckets)
      selector: ip                      # which tokens: ip asn country dkim url spf generic
      lower_bound: 10                   # scoring: fewer messages score 0 (Rspamd's default)
      reject_score: 15                  # scoring: Rspamd's reject threshold (rspamd layout)
      buckets:                          # buckets layout: windows and their weights
        - {name: 1h, window: 3600, mult: 1.5}
      min_count: 0                      # publish only tokens seen this often
      exclude: [exclude-ips.txt]        # exclusion maps, one entry a line (paths: this dir)
      max_delete: 0.3                   # share of the zone one sync may delete without --force
      max_delete_min: 10                # zones smaller than this may lose any number
      reconcile: 300                    # seconds between full SCANs in continuous mode

Exclude files are read here too (they must exist, be UTF-8, and for the ``ip`` selector
hold addresses and networks within the zone's widest prefix); a problem in one names the
zone file's line that refers to it and the exclude file's own line.
"""

from __future__ import annotations

import dataclasses
import errno
import os
import re
import stat
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final
from urllib.parse import urlsplit, urlunsplit

import yaml

from listformat.names import IPNetwork, OwnerNameError, parse_network
from listformat.tokens import IP_SELECTORS, RSPAMD_PREFIX, SELECTORS
from zoned.prefixes import WidestPrefix
from zoned.yamlconf import Report, Section, read_float, read_items, read_section, read_text

LAYOUTS: Final = ("rspamd", "counters", "buckets")
URL_SCHEMES: Final = ("redis", "rediss", "unix")
BUCKET_NAME: Final = re.compile(r"[a-z0-9_]{1,16}")
BUCKETS_PREFIX: Final = "RB:"  # the buckets layout's default
DEFAULT_MAX_DELETE_SHARE: Final = 0.3  # of a zone, that one write may delete without --force
DEFAULT_MAX_DELETE_MIN: Final = 10  # zones smaller than this are exempt from the share
MAX_EXCLUDE_PROBLEMS: Final = 10  # per exclude file: a wrong file is not listed line by line
_KEYS: Final = ("redis", "cluster", "layout", "prefix", "selector", "lower_bound",
                "reject_score", "buckets", "min_count", "exclude", "max_delete", "max_delete_min",
                "reconcile")


@dataclass(frozen=True, slots=True)
class Bucket:
    """A window of the ``buckets`` layout (or Rspamd's buckets): name, seconds, weight."""

    name: str
    window: int  # seconds; windows are aligned to the unix epoch
    mult: float = 1.0


DEFAULT_BUCKETS: Final = (Bucket("1h", 3600, 1.5), Bucket("1d", 86400, 1.0))


@dataclass(frozen=True)
class SourceSettings:
    """A zone's source, validated; paths are absolute."""

    urls: tuple[str, ...]
    cluster: bool = False
    layout: str = "rspamd"
    prefix: str = RSPAMD_PREFIX
    selector: str = "ip"
    lower_bound: int = 10
    reject_score: float = 15.0
    buckets: tuple[Bucket, ...] = field(default=())
    min_count: int = 0
    exclude: tuple[Path, ...] = field(default=())
    max_delete: float = DEFAULT_MAX_DELETE_SHARE
    max_delete_min: int = DEFAULT_MAX_DELETE_MIN
    reconcile: float = 300.0

    def with_redis(self, url: str) -> SourceSettings:
        """These settings reading ``url`` instead (``--redis``); ValueError if not a URL."""
        problem = url_problem(url)
        if problem is not None:
            raise ValueError(f"--redis: {problem}")
        return dataclasses.replace(self, urls=(url,))


# ------------------------------------------------------------------ URLs


def url_problem(text: str) -> str | None:
    """Why ``text`` is not a Redis URL redis-py can open, or None when it is one."""
    expected = "expected a redis://, rediss:// or unix:// URL"
    try:
        parts = urlsplit(text)
        port = parts.port  # ValueError when not a number from 0 to 65535
    except ValueError as exc:
        return f"{expected}: {exc}, got {redact(text)!r}"
    if parts.scheme not in URL_SCHEMES or not text.startswith(f"{parts.scheme}://"):
        return f"{expected}, got {redact(text)!r}"
    if parts.scheme == "unix":
        return None if parts.path else f"a unix:// URL needs a socket path, got {redact(text)!r}"
    if not parts.hostname and port is None:
        return f"the URL names no host, got {redact(text)!r}"
    db = parts.path.lstrip("/")
    if db and not db.isdigit():  # redis-py reads the path as the database number
        return f"the path is the database number, got {redact(text)!r}"
    return None


def redact(url: str) -> str:
    """The URL without its password, for messages and logs (the user name is kept)."""
    try:
        parts = urlsplit(url)
        password, port = parts.password, parts.port
    except ValueError:  # unparseable: hide whatever precedes an '@'
        return url if "@" not in url else "***@" + url.rsplit("@", 1)[1]
    if password is None:
        return url
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    if port is not None:
        host = f"{host}:{port}"
    user = f"{parts.username}:***@" if parts.username else ":***@"
    return urlunsplit(parts._replace(netloc=user + host))


# ------------------------------------------------------------------ exclude files


@dataclass(frozen=True, slots=True)
class ExcludeList:
    """An exclude file's entries: networks for IP selectors, text otherwise."""

    networks: tuple[IPNetwork, ...]
    strings: tuple[str, ...]
    problems: tuple[tuple[int, str], ...]  # (line, message) of entries that do not parse


def exclude_entries(text: str) -> Iterator[tuple[int, str]]:
    """``(line number, entry)``: one entry a line, ``#`` comments, a value may follow."""
    for number, line in enumerate(text.splitlines(), 1):
        entry = line.split("#", 1)[0].strip()
        if entry:
            yield number, entry.split()[0]  # Rspamd maps allow a value after the key


def parse_exclude(text: str, ip: bool, widest: WidestPrefix) -> ExcludeList:
    """The entries of an exclude file's text; IP entries are bounded by ``widest``."""
    networks: list[IPNetwork] = []
    strings: list[str] = []
    problems: list[tuple[int, str]] = []
    for number, entry in exclude_entries(text):
        if not ip:
            strings.append(entry)
            continue
        try:
            network = parse_network(entry)
            widest.check(network)
        except (OwnerNameError, ValueError) as exc:
            problems.append((number, str(exc)))
            continue
        networks.append(network)
    return ExcludeList(tuple(networks), tuple(strings), tuple(problems))


def read_exclude(path: Path, ip: bool, widest: WidestPrefix) -> ExcludeList:
    """An exclude file; OSError if it cannot be read, a problem at its line if not UTF-8."""
    with path.open("rb") as file:
        if not stat.S_ISREG(os.fstat(file.fileno()).st_mode):  # /dev/zero would never end
            raise OSError(errno.EINVAL, "not a regular file")
        data = file.read()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        return ExcludeList((), (), ((line, "not valid UTF-8"),))
    return parse_exclude(text, ip, widest)


# ------------------------------------------------------------------ the section


def read_source(
    report: Report, node: yaml.Node, base: Path, widest: WidestPrefix
) -> SourceSettings | None:
    """The ``source`` section at ``node``; None when it has problems (all reported)."""
    sec = read_section(report, node, "source")
    if sec is None:
        return None
    before = len(report.problems)
    urls = _urls(report, sec)
    layout = _choice(report, sec, "layout", LAYOUTS, "rspamd")
    selector = _choice(report, sec, "selector", SELECTORS, "ip")
    buckets = _buckets(report, sec) if "buckets" in sec else DEFAULT_BUCKETS
    exclude = _exclude(report, sec, base, selector in IP_SELECTORS, widest)
    settings = SourceSettings(
        urls=urls,
        cluster=sec.boolean("cluster", False),
        layout=layout,
        prefix=sec.text("prefix", BUCKETS_PREFIX if layout == "buckets" else RSPAMD_PREFIX),
        selector=selector,
        lower_bound=sec.integer("lower_bound", 10),
        reject_score=_float(report, sec, "reject_score", 15.0, 0.001, 1e9),
        buckets=buckets,
        min_count=sec.integer("min_count", 0),
        exclude=exclude,
        max_delete=_float(report, sec, "max_delete", DEFAULT_MAX_DELETE_SHARE, 0.0, 1.0),
        max_delete_min=sec.integer("max_delete_min", DEFAULT_MAX_DELETE_MIN),
        reconcile=_float(report, sec, "reconcile", 300.0, 1.0, 86400.0 * 7),
    )
    sec.done(_KEYS)
    if settings.cluster and len(settings.urls) > 1:
        report.add(sec.key_node("redis"), sec.field("redis"),
                   "a cluster source takes one URL (any node of the cluster)")
    return None if len(report.problems) > before else settings


def _urls(report: Report, sec: Section) -> tuple[str, ...]:
    node = sec.require("redis")
    if node is None:
        return ()
    urls = []
    if isinstance(node, yaml.MappingNode):
        report.add(node, sec.field("redis"), "expected a Redis URL or a list of them")
        return ()
    items = read_items(report, node, sec.field("redis"), single=True)
    if isinstance(node, yaml.SequenceNode) and not items:
        report.add(node, sec.field("redis"), "at least one Redis URL is required")
    for item, path in items:
        text = read_text(report, item, path, "a Redis URL")
        if text is None:
            continue
        problem = url_problem(text)
        if problem is not None:
            report.add(item, path, problem)
            continue
        urls.append(text)
    return tuple(urls)


def _choice(report: Report, sec: Section, key: str, choices: tuple[str, ...], default: str
            ) -> str:
    node = sec.take(key)
    if node is None:
        return default
    text = read_text(report, node, sec.field(key))
    if text is None:
        return default
    if text not in choices:
        report.add(node, sec.field(key), f"expected one of {', '.join(choices)}, got {text!r}")
        return default
    return text


def _float(report: Report, sec: Section, key: str, default: float, low: float, high: float
           ) -> float:
    node = sec.take(key)
    if node is None:
        return default
    value = read_float(report, node, sec.field(key), low, high)
    return default if value is None else value


def _buckets(report: Report, sec: Section) -> tuple[Bucket, ...]:
    node = sec.take("buckets")
    assert node is not None
    items = read_items(report, node, sec.field("buckets"))
    if isinstance(node, yaml.SequenceNode) and not items:
        report.add(node, sec.field("buckets"), "at least one bucket is required")
    buckets: list[Bucket] = []
    for item, path in items:
        entry = read_section(report, item, path)
        if entry is None:
            continue
        name_node, window_node = entry.require("name"), entry.require("window")
        name = None if name_node is None else read_text(report, name_node, entry.field("name"))
        if name is not None and not BUCKET_NAME.fullmatch(name):
            report.add(name_node, entry.field("name"), "bucket names are 1 to 16 of [a-z0-9_]")
            name = None
        if name is not None and any(b.name == name for b in buckets):
            report.add(name_node, entry.field("name"), f"bucket {name!r} is listed twice")
            name = None
        window = entry.integer("window", 0, minimum=1) if window_node is not None else 0
        mult = _float(report, entry, "mult", 1.0, 0.0, 1e6)
        entry.done(("name", "window", "mult"))
        if name and window:
            buckets.append(Bucket(name, window, mult))
    return tuple(buckets)


def _exclude(report: Report, sec: Section, base: Path, ip: bool, widest: WidestPrefix
             ) -> tuple[Path, ...]:
    node = sec.take("exclude")
    if node is None:
        return ()
    paths: list[Path] = []
    for item, path in read_items(report, node, sec.field("exclude"), single=True):
        name = read_text(report, item, path, "a file name")
        if name is None:
            continue
        if not name:
            report.add(item, path, "expected a file name, got ''")
            continue
        try:
            file = (base / Path(name).expanduser()).resolve()
        except (OSError, RuntimeError, ValueError) as exc:  # ~nobody, a NUL byte
            report.add(item, path, f"expected a file name, got {name!r}: {exc}")
            continue
        try:
            entries = read_exclude(file, ip, widest)
        except OSError as exc:
            report.add(item, path, f"cannot read exclude file {file}: {exc.strerror or exc}")
            continue
        for line, message in entries.problems[:MAX_EXCLUDE_PROBLEMS]:
            report.add(item, path, f"exclude file {file}:{line}: {message}")
        more = len(entries.problems) - MAX_EXCLUDE_PROBLEMS
        if more > 0:
            report.add(item, path, f"exclude file {file}: {more} more bad lines")
        paths.append(file)
    return tuple(paths)
