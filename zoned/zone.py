"""A served zone: its configuration compiled for lookups, over a store snapshot.

Everything that comes from the zone file (apex records, static names, overrides,
RFC 5782 test entries) is compiled once into dictionaries keyed exactly like the
store, so one lookup routine serves memory and store alike: memory first (an override
or static record wins over published data), then the store snapshot.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

from client import names, testentries
from zoned import keys
from zoned.answers import static_answers, token_answer
from zoned.config import ZoneConfig
from zoned.packed import Record, pack, rrsets
from zoned.store import Reader, StoreError, ZoneStore
from zoned.wire import T_NS, T_SOA, name_labels, name_wire

log = logging.getLogger(__name__)


class Found(Enum):
    """How a name below the apex exists when it has no answer of its own."""

    NOTHING = 0  # NXDOMAIN
    EMPTY = 1  # an empty non-terminal: NODATA (RFC 8020)
    BLOCKED = 2  # an ``unlisted`` override: NXDOMAIN even if the store lists it


@dataclass(frozen=True)
class NetTable:
    """In-memory networks for longest-prefix match, keyed like the store."""

    answers: dict[bytes, bytes]
    plens4: tuple[int, ...]
    plens6: tuple[int, ...]

    @classmethod
    def build(cls, entries: Iterable[tuple[keys.IPNetwork, bytes]]) -> NetTable:
        answers = {keys.net_key(net): value for net, value in entries}
        lengths = {4: set(), 6: set()}  # type: dict[int, set[int]]
        for key in answers:
            lengths[4 if key[:1] == keys.V4 else 6].add(key[-1])
        return cls(
            answers,
            tuple(sorted(lengths[4], reverse=True)),
            tuple(sorted(lengths[6], reverse=True)),
        )

    def match(self, address: bytes) -> bytes | None:
        plens = self.plens4 if len(address) == 4 else self.plens6
        for plen in plens:
            value = self.answers.get(keys.net_key_from(address, plen))
            if value is not None:
                return value
        return None

    def covers(self, address: bytes, known_bits: int) -> bool:
        """Whether an entry lies inside, or covers, the first ``known_bits`` of ``address``."""
        family = keys.V4 if len(address) == 4 else keys.V6
        lo, hi = _prefix_range(family, address, known_bits)
        plens = self.plens4 if len(address) == 4 else self.plens6
        if any(plen <= known_bits and keys.net_key_from(address, plen) in self.answers
               for plen in plens):
            return True
        return any(lo <= key < hi for key in self.answers)


def _prefix_range(family: bytes, address: bytes, known_bits: int) -> tuple[bytes, bytes]:
    """Key range holding every network whose address starts with ``known_bits`` of ``address``."""
    width = len(address) * 8
    value = int.from_bytes(address, "big") >> (width - known_bits) << (width - known_bits)
    top = value + (1 << (width - known_bits))
    lo = family + value.to_bytes(len(address), "big")
    hi = family + top.to_bytes(len(address), "big") if top < (1 << width) else family + b"\xff" * (
        len(address) + 2
    )
    return lo, hi


class ServedZone:
    """One zone as the server sees it: compiled config plus a refreshable store snapshot."""

    def __init__(self, config: ZoneConfig, pool: ReaderPool) -> None:
        self.config = config
        self.origin = config.origin
        self.labels = tuple(label.lower() for label in name_labels(config.origin))
        self.is_ip = config.scheme.kind == "ip"
        self.pool = pool
        self.reader = pool.get(config)
        self.statics: dict[bytes, bytes] = {}
        self.static_ents: set[bytes] = set()
        self.blocked_names: set[bytes] = set()
        self._compile()
        self.soa_names = (
            name_labels(config.soa.mname),
            name_labels(config.soa.rname),
        )
        # SOA names inside the zone can compress against a question's own labels, so
        # their compressed form is not a function of the apex offset alone.
        self.soa_names_in_zone = any(
            tuple(label.lower() for label in n[-len(self.labels) :]) == self.labels
            for n in self.soa_names
        )
        self.serial = -1
        self.apex: dict[int, tuple[int, bytes]] = {}
        self.soa = Record(T_SOA, 0, b"")
        self.update_serial()

    # -- compilation -------------------------------------------------------------
    def _compile(self) -> None:
        config = self.config
        nets: list[tuple[keys.IPNetwork, bytes]] = []
        blocked: list[tuple[keys.IPNetwork, bytes]] = []
        for name, packed in static_answers(config.records).items():
            if name:
                self._add_static(name, packed)
        test_answer = token_answer(config, testentries.TEST_TXT, testentries.TEST_CODE)
        listed = [(token, test_answer) for token in testentries.listed_tokens(config.scheme.kind)]
        for override in config.listed:
            # "Always listed" needs an A record even when the override names no code.
            code = override.code or testentries.TEST_CODE
            listed.append((override.token, token_answer(config, override.txt, code)))
        for token, answer in listed:
            if answer is None:
                continue
            if self.is_ip:
                nets.append((names.parse_network(token), answer))
            else:
                for owner in names.owner_names(config.scheme, token):
                    self._add_static(owner, answer)
        for token in config.unlisted:
            if self.is_ip:
                blocked.append((names.parse_network(token), b""))
            else:
                for owner in names.owner_names(config.scheme, token):
                    self.blocked_names.add(keys.name_key(name_labels(owner)))
        self.nets = NetTable.build(nets)
        self.blocked_nets = NetTable.build(blocked)

    def _add_static(self, name: str, packed: bytes) -> None:
        labels = tuple(label.lower() for label in name_labels(name))
        key = keys.name_key(labels)
        self.statics[key] = self.statics.get(key, b"") + packed
        for i in range(1, len(labels)):
            self.static_ents.add(keys.name_key(labels[i:]))

    def update_serial(self) -> bool:
        """Refresh the store snapshot; rebuild the apex when the serial moved."""
        if self.reader is None:
            self.reader = self.pool.get(self.config)
        if self.reader is not None:
            try:
                self.reader.refresh()
            except StoreError:
                log.exception("zone=%s store refresh failed; serving the last snapshot",
                              self.origin)
        serial = self.reader.serial if self.reader is not None else 0
        if serial == self.serial:
            return False
        self.serial = serial
        config = self.config
        soa = config.soa
        rdata = (
            name_wire(name_labels(soa.mname))
            + name_wire(name_labels(soa.rname))
            + b"".join(
                v.to_bytes(4, "big")
                for v in (serial, soa.refresh, soa.retry, soa.expire, soa.minimum)
            )
        )
        self.soa = Record(T_SOA, soa.ttl, rdata)
        apex = [self.soa]
        apex += [Record(T_NS, config.ns_ttl, name_wire(name_labels(ns))) for ns in config.ns]
        self.apex = rrsets(pack(apex) + static_answers(config.records).get("", b""))
        return True

    @property
    def negative_soa(self) -> Record:
        """The SOA for negative answers: TTL is min(SOA TTL, MINIMUM) (RFC 2308 section 3)."""
        return Record(T_SOA, min(self.soa.ttl, self.config.soa.minimum), self.soa.rdata)

    # -- lookup ------------------------------------------------------------------
    def find(self, rel: tuple[bytes, ...]) -> bytes | Found:
        """The packed answer at ``rel`` (labels below the apex, lowercase), or how it is absent."""
        key = keys.name_key(rel)
        static = self.statics.get(key)
        if static is not None:
            return static
        if self.is_ip:
            parsed = _parse_reversed(rel)
            if parsed is not None:
                return self._find_ip(*parsed)
        elif key in self.blocked_names:
            return Found.BLOCKED
        elif self.reader is not None:
            value = self.reader.get(key)
            if value is not None:
                return value
            if self.reader.has_prefix(key + b"."):
                return Found.EMPTY
        if key in self.static_ents:
            return Found.EMPTY
        return Found.NOTHING

    def _find_ip(self, address: bytes, known_bits: int) -> bytes | Found:
        full = known_bits == len(address) * 8
        if full:
            if self.blocked_nets.answers and self.blocked_nets.match(address) is not None:
                return Found.BLOCKED
            value = self.nets.match(address)
            if value is not None:
                return value
            if self.reader is not None:
                plens = self.reader.plens4 if len(address) == 4 else self.reader.plens6
                get = self.reader.get
                for plen in plens:
                    value = get(keys.net_key_from(address, plen))
                    if value is not None:
                        return value
            return Found.NOTHING
        if self.nets.covers(address, known_bits):
            return Found.EMPTY
        if self.reader is not None:
            family = keys.V4 if len(address) == 4 else keys.V6
            lo, hi = _prefix_range(family, address, known_bits)
            if self.reader.has_range(lo, hi):
                return Found.EMPTY
            plens = self.reader.plens4 if len(address) == 4 else self.reader.plens6
            for plen in plens:
                if plen <= known_bits and self.reader.get(keys.net_key_from(address, plen)):
                    return Found.EMPTY
        return Found.NOTHING


_DECIMAL = {str(i).encode(): i for i in range(256)}
_NIBBLE = {c.encode(): int(c, 16) for c in "0123456789abcdef"}


def _parse_reversed(rel: tuple[bytes, ...]) -> tuple[bytes, int] | None:
    """(address padded with zeros, known bits) from RFC 5782 labels, or None if not an IP form.

    Up to four canonical decimal labels are IPv4; up to 32 single hex digits are IPv6.
    A name that reads both ways (``1.2.zone``) is taken as IPv4: RFC 5782 zones are
    mostly IPv4, and a full IPv6 name has 32 labels, which no IPv4 name has.
    """
    n = len(rel)
    if 0 < n <= 4:
        octets = [_DECIMAL.get(label) for label in reversed(rel)]
        if None not in octets:
            return bytes(octets) + bytes(4 - n), 8 * n  # type: ignore[arg-type]
    if 0 < n <= 32:
        nibbles = [_NIBBLE.get(label) for label in reversed(rel)]
        if None not in nibbles:
            value = 0
            for nib in nibbles:
                value = value << 4 | nib  # type: ignore[operator]
            value <<= 4 * (32 - n)
            return value.to_bytes(16, "big"), 4 * n
    return None


class ReaderPool:
    """One store reader per store path for the whole process.

    LMDB forbids opening one environment twice in a process, so zones rebuilt by a
    reload share the readers of the zones they replace.  A store that does not exist
    yet (nothing published) is looked for again at most once a second.
    """

    RETRY_SECONDS = 1.0

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._readers: dict[Path, Reader] = {}
        self._missing: dict[Path, float] = {}

    def get(self, config: ZoneConfig) -> Reader | None:
        """The reader for the zone's store, or None while it does not exist."""
        path = config.store
        reader = self._readers.get(path)
        if reader is not None:
            return reader
        now = self.clock()
        last = self._missing.get(path)
        if last is not None and now - last < self.RETRY_SECONDS:
            return None
        try:
            store = ZoneStore.open_readonly(path)
        except StoreError as exc:
            if last is None:
                log.error("zone=%s cannot open store %s: %s", config.origin, path, exc)
            self._missing[path] = now
            return None
        if store is None:
            if last is None:
                log.warning("zone=%s store %s does not exist yet; serving static data only",
                            config.origin, path)
            self._missing[path] = now
            return None
        self._missing.pop(path, None)
        reader = self._readers[path] = store.reader()
        return reader

    def retain(self, paths: Iterable[Path]) -> None:
        """Close the readers of stores no zone uses any more."""
        keep = set(paths)
        for path in list(self._readers):
            if path not in keep:
                self._readers.pop(path).close()
