"""The ``source:`` section of a zone file: where zonepub reads a zone's counters.

zoned keeps the section as it was written (with its YAML node), and the publisher
validates it here with the same positioned errors as the rest of the file::

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
      reconcile: 300                    # seconds between full SCANs in continuous mode
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from publisher.layouts import BUCKET_NAME
from zoned.config import ZoneConfig
from zoned.yamlconf import Report, Section, read_float, read_items, read_section, read_text

LAYOUTS = ("rspamd", "counters", "buckets")
SELECTORS = ("ip", "asn", "country", "dkim", "url", "spf", "generic")


@dataclass(frozen=True)
class Bucket:
    """A window of the ``buckets`` layout: verdicts counted per ``window`` seconds."""

    name: str
    window: int
    mult: float


@dataclass(frozen=True)
class SourceSettings:
    """A zone's source, validated; paths are absolute."""

    urls: tuple[str, ...]
    cluster: bool = False
    layout: str = "rspamd"
    prefix: str = "RR:"
    selector: str = "ip"
    lower_bound: int = 10
    reject_score: float = 15.0
    buckets: tuple[Bucket, ...] = field(default=())
    min_count: int = 0
    exclude: tuple[Path, ...] = field(default=())
    max_delete: float = 0.3
    reconcile: float = 300.0


DEFAULT_BUCKETS = (Bucket("1h", 3600, 1.5), Bucket("1d", 86400, 1.0))


def source_settings(config: ZoneConfig, redis_override: str | None = None) -> SourceSettings | None:
    """The zone's source settings, or None when the zone has no ``source``; raises ConfigError."""
    node = config.source_node
    if node is None:
        return None
    report = Report(config.file)
    section = read_section(report, node, "source")
    if section is None:
        report.raise_if_any()
        raise AssertionError("unreachable: read_section reported")
    settings = _read(report, section, config.file.parent, redis_override)
    report.raise_if_any()
    assert settings is not None
    return settings


def _read(report: Report, sec: Section, base: Path, redis_override: str | None
          ) -> SourceSettings | None:
    urls = _urls(report, sec) if redis_override is None else (redis_override,)
    if redis_override is not None:
        sec.take("redis")
    layout = _choice(report, sec, "layout", LAYOUTS, "rspamd")
    selector = _choice(report, sec, "selector", SELECTORS, "ip")
    buckets = _buckets(report, sec) if "buckets" in sec else DEFAULT_BUCKETS
    exclude = tuple(
        (base / text).resolve()
        for item, path in _list(report, sec, "exclude")
        if (text := read_text(report, item, path, "a file name")) is not None
    )
    settings = SourceSettings(
        urls=urls,
        cluster=sec.boolean("cluster", False),
        layout=layout,
        prefix=sec.text("prefix", "RB:" if layout == "buckets" else "RR:"),
        selector=selector,
        lower_bound=sec.integer("lower_bound", 10),
        reject_score=_float(report, sec, "reject_score", 15.0, 0.001, 1e9),
        buckets=buckets,
        min_count=sec.integer("min_count", 0),
        exclude=exclude,
        max_delete=_float(report, sec, "max_delete", 0.3, 0.0, 1.0),
        reconcile=_float(report, sec, "reconcile", 300.0, 1.0, 86400.0 * 7),
    )
    sec.done()
    if settings.cluster and len(settings.urls) != 1:
        report.add(sec.key_node("redis"), sec.field("redis"),
                   "a cluster source takes one URL (any node of the cluster)")
    return settings


def _urls(report: Report, sec: Section) -> tuple[str, ...]:
    node = sec.require("redis")
    if node is None:
        return ()
    urls = []
    for item, path in read_items(report, node, sec.field("redis"), single=True):
        text = read_text(report, item, path, "a Redis URL")
        if text is None:
            continue
        if not text.startswith(("redis://", "rediss://", "unix://")):
            report.add(item, path, "expected a redis://, rediss:// or unix:// URL")
            continue
        urls.append(text)
    return tuple(urls)


def _choice(report: Report, sec: Section, key: str, choices: Sequence[str], default: str) -> str:
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


def _list(report: Report, sec: Section, key: str) -> list[tuple[yaml.Node, str]]:
    node = sec.take(key)
    return [] if node is None else read_items(report, node, sec.field(key), single=True)


def _buckets(report: Report, sec: Section) -> tuple[Bucket, ...]:
    buckets = []
    for item, path in _list(report, sec, "buckets"):
        entry = read_section(report, item, path)
        if entry is None:
            continue
        for required in ("name", "window"):
            if required not in entry:
                report.add(item, entry.field(required), "required field is missing")
        name = entry.text("name", "")
        if name and not BUCKET_NAME.fullmatch(name):
            report.add(entry.take("name"), entry.field("name"),
                       "bucket names are 1 to 16 of [a-z0-9_]")
            name = ""
        window = entry.integer("window", 0, 1)
        mult = _float(report, entry, "mult", 1.0, 0.0, 1e6)
        entry.done()
        if name and window:
            buckets.append(Bucket(name, window, mult))
    return tuple(buckets)
