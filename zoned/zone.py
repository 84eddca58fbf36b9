"""A served zone: its configuration compiled for lookups, over a store snapshot.

The two halves are values of their own: :class:`CompiledZone` (the zone file, compiled
once) and :class:`Snapshot` (a store reader, its serial and the apex at that serial);
:class:`ServedZone` pairs them.

Everything that comes from the zone file (apex records, static names, overrides,
RFC 5782 test entries) is compiled once into dictionaries keyed exactly like the
store, so one lookup routine serves memory and store alike: memory first (an override
or static record wins over published data), then the store snapshot.

A zone's store is in one of three states (:class:`StoreState` and a reader):

- *served*: a :class:`~zoned.store.Reader` on it.  A value that fails its checksum, or
  a lookup that fails inside LMDB, is :attr:`Found.BROKEN` for that name (SERVFAIL),
  counted and logged through the rate limiter (kind ``store-damage``); never served.
- *absent* (``StoreState.ABSENT``): not created yet.  The zone serves its static data
  only, and tokens are NXDOMAIN, as for a store with nothing published.
- *refused* (``StoreState.REFUSED``): damaged, of an older layout, or unopenable.
  Every name whose answer depends on the store is :attr:`Found.BROKEN` (SERVFAIL, so
  resolvers try elsewhere and Rspamd's monitoring, which probes ``1.0.0.127`` and
  random labels, sees the list is unusable); what the zone file alone decides still
  answers: the apex (SOA, NS, static apex records), static records and their empty
  non-terminals, ``listed``/``unlisted`` overrides and the RFC 5782 test entry.

:class:`ReaderPool` follows each store path: a data file replaced by another (a new
inode: the directory deleted and published again) is opened and served from the next
refresh; one that vanishes without a replacement keeps its last good snapshot (the
unlinked file stays mapped and whole), logged once; a damaged one is refused.
"""

from __future__ import annotations

import logging
import time
import zlib
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

from listformat import names, testentries
from listformat.wire import T_NS, T_SOA
from zoned import keys
from zoned.answers import static_answers, token_answer
from zoned.config import ZoneConfig
from zoned.packed import Record, pack, rrsets
from zoned.ratelog import limited
from zoned.store import (
    SEAL_RESIDUE,
    SEAL_SEED,
    SEAL_SIZE,
    Reader,
    ReadFailure,
    StoreDamaged,
    StoreError,
    ZoneStore,
    data_ident,
)
from zoned.wire import name_labels, name_wire

log = logging.getLogger(__name__)
_crc32 = zlib.crc32


class Found(Enum):
    """How a name below the apex exists when it has no answer of its own."""

    NOTHING = 0  # NXDOMAIN
    EMPTY = 1  # an empty non-terminal: NODATA (RFC 8020)
    BLOCKED = 2  # an ``unlisted`` override: NXDOMAIN even if the store lists it
    BROKEN = 3  # the store cannot say (damaged value, refused store): SERVFAIL


class StoreState(Enum):
    """Why a zone has no store reader."""

    ABSENT = 0  # not created yet: static data only, tokens NXDOMAIN
    REFUSED = 1  # damaged, outdated or unopenable: tokens SERVFAIL


@dataclass(frozen=True)
class NetTable:
    """In-memory networks for longest-prefix match, keyed like the store."""

    answers: dict[bytes, bytes]
    plens4: tuple[int, ...]
    plens6: tuple[int, ...]
    # First address bytes of every entry (None when a prefix shorter than 8 bits makes
    # the filter useless): most queries are decided by one set lookup.
    heads: frozenset[int] | None

    @classmethod
    def build(cls, entries: Iterable[tuple[keys.IPNetwork, bytes]]) -> NetTable:
        answers = {keys.net_key(net): value for net, value in entries}
        lengths = {4: set(), 6: set()}  # type: dict[int, set[int]]
        for key in answers:
            lengths[4 if key[:1] == keys.V4 else 6].add(key[-1])
        short = any(key[-1] < 8 for key in answers)
        heads = None if short else frozenset(key[1] for key in answers)
        return cls(
            answers,
            tuple(sorted(lengths[4], reverse=True)),
            tuple(sorted(lengths[6], reverse=True)),
            heads,
        )

    def match(self, address: bytes) -> bytes | None:
        if self.heads is not None and address[0] not in self.heads:
            return None
        plens = self.plens4 if len(address) == 4 else self.plens6
        for plen in plens:
            value = self.answers.get(keys.net_key_from(address, plen))
            if value is not None:
                return value
        return None

    def covers(self, address: bytes, known_bits: int) -> bool:
        """Whether an entry lies inside, or covers, the first ``known_bits`` of ``address``."""
        family = keys.V4 if len(address) == 4 else keys.V6
        lo, hi = prefix_range(family, address, known_bits)
        plens = self.plens4 if len(address) == 4 else self.plens6
        if any(plen <= known_bits and keys.net_key_from(address, plen) in self.answers
               for plen in plens):
            return True
        return any(lo <= key < hi for key in self.answers)


def prefix_range(family: bytes, address: bytes, known_bits: int) -> tuple[bytes, bytes]:
    """Key range holding every network whose address starts with ``known_bits`` of ``address``."""
    width = len(address) * 8
    value = int.from_bytes(address, "big") >> (width - known_bits) << (width - known_bits)
    top = value + (1 << (width - known_bits))
    lo = family + value.to_bytes(len(address), "big")
    hi = family + top.to_bytes(len(address), "big") if top < (1 << width) else family + b"\xff" * (
        len(address) + 2
    )
    return lo, hi


class CompiledZone:
    """What the zone file decides, compiled once for lookups; never changed afterwards.

    Apex records other than the SOA's serial, static names, overrides and RFC 5782
    test entries, keyed exactly like the store.  A new configuration is a new
    CompiledZone; a new store serial is a new :class:`Snapshot` (:meth:`snapshot`).
    """

    def __init__(self, config: ZoneConfig) -> None:
        self.config = config
        self.origin = config.origin
        self.labels = tuple(label.lower() for label in name_labels(config.origin))
        self.wire_length = sum(len(label) + 1 for label in self.labels)  # without the root
        self.is_ip = config.scheme.kind == "ip"
        statics: dict[bytes, bytes] = {}
        heads: set[bytes] = set()  # leftmost labels of static names
        ents: set[bytes] = set()
        blocked_names: set[bytes] = set()
        nets: list[tuple[keys.IPNetwork, bytes]] = []
        blocked: list[tuple[keys.IPNetwork, bytes]] = []

        def add_static(name: str, packed: bytes) -> None:
            labels = tuple(label.lower() for label in name_labels(name))
            key = keys.name_key(labels)
            statics[key] = statics.get(key, b"") + packed
            heads.add(labels[0])
            for i in range(1, len(labels)):
                ents.add(keys.name_key(labels[i:]))

        answers = static_answers(config.records)
        self.apex_static = answers.get("", b"")  # joined to SOA and NS at each new serial
        for name, packed in answers.items():
            if name:
                add_static(name, packed)
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
                    add_static(owner, answer)
        for token in config.unlisted:
            if self.is_ip:
                blocked.append((names.parse_network(token), b""))
            else:
                for owner in names.owner_names(config.scheme, token):
                    blocked_names.add(keys.name_key(name_labels(owner)))
        self.statics = statics
        self.static_heads = frozenset(heads)
        self.static_ents = frozenset(ents)
        self.blocked_names = frozenset(blocked_names)
        self.nets = NetTable.build(nets)
        self.blocked_nets = NetTable.build(blocked)
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

    def snapshot(self, reader: Reader | None, refused: bool, serial: int) -> Snapshot:
        """The zone over ``reader`` (None: no store, ``refused`` or not yet created) at
        ``serial``: the apex rebuilt with that serial in its SOA."""
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
        record = Record(T_SOA, soa.ttl, rdata)
        apex = [record]
        apex += [Record(T_NS, config.ns_ttl, name_wire(name_labels(ns))) for ns in config.ns]
        # The SOA for negative answers: TTL is min(SOA TTL, MINIMUM) (RFC 2308 section 3).
        negative = Record(T_SOA, min(soa.ttl, soa.minimum), rdata)
        return Snapshot(reader, refused, serial, record, negative,
                        rrsets(pack(apex) + self.apex_static))


@dataclass(frozen=True)
class Snapshot:
    """A zone's store as one lookup or transfer sees it, and the apex at its serial."""

    reader: Reader | None  # None: no store (``refused`` says whether it is damaged)
    refused: bool  # the store exists but is not served (StoreState.REFUSED)
    serial: int
    soa: Record
    negative_soa: Record
    apex: dict[int, tuple[int, bytes]]


_UNREAD = Snapshot(None, False, -1, Record(T_SOA, 0, b""), Record(T_SOA, 0, b""), {})


class ServedZone:
    """One zone as the server sees it: its :class:`CompiledZone` over a :class:`Snapshot`.

    The served zones of an :class:`~zoned.authority.Authority` move to a new snapshot at
    each :meth:`poll`; a transfer makes its own pair (:meth:`over`) on a snapshot of its
    own, so it sees one serial throughout while the served zone moves on.
    """

    def __init__(self, config: ZoneConfig, pool: ReaderPool) -> None:
        self.compiled = CompiledZone(config)
        self.pool = pool
        self.snapshot = _UNREAD
        self.poll()

    @classmethod
    def over(cls, compiled: CompiledZone, pool: ReaderPool, snapshot: Snapshot) -> ServedZone:
        """The pair of ``compiled`` and ``snapshot``, without polling the pool."""
        zone = cls.__new__(cls)
        zone.compiled = compiled
        zone.pool = pool
        zone.snapshot = snapshot
        return zone

    def poll(self) -> bool:
        """Follow the zone's store through the pool (new serials, a replaced, vanished
        or damaged store); a new snapshot when the store or its serial moved, the apex
        rebuilt when the serial did.  True if the serial moved.  Never raises."""
        state = self.pool.refresh(self.compiled.config)
        old = self.snapshot
        if isinstance(state, Reader):
            reader, refused, serial = state, False, state.serial
        else:
            # A refused store keeps the serial last served: secondaries see no change.
            refused = state is StoreState.REFUSED
            reader, serial = None, max(old.serial, 0) if refused else 0
        if serial != old.serial:
            self.snapshot = self.compiled.snapshot(reader, refused, serial)
            return True
        if reader is not old.reader or refused != old.refused:
            self.snapshot = Snapshot(reader, refused, serial, old.soa, old.negative_soa,
                                     old.apex)
        return False

    # -- lookup ------------------------------------------------------------------
    def find(self, rel: tuple[bytes, ...]) -> bytes | Found:
        """The packed answer at ``rel`` (labels below the apex, lowercase), or how it is absent."""
        zone = self.compiled
        if rel[0] in zone.static_heads:
            static = zone.statics.get(keys.name_key(rel))
            if static is not None:
                return static
        if zone.is_ip:
            # A name may read as IPv4 and as an IPv6 prefix at once (``1.2``): it exists
            # if it exists either way.
            v4 = _parse_v4(rel)
            result = self._find_ip(*v4) if v4 is not None else Found.NOTHING
            if result is Found.NOTHING:
                v6 = _parse_v6(rel)
                if v6 is not None:
                    result = self._find_ip(*v6)
            if result is not Found.NOTHING or v4 is not None:
                return result
        key = keys.name_key(rel)
        if not zone.is_ip:
            if key in zone.blocked_names:
                return Found.BLOCKED
            snapshot = self.snapshot
            reader = snapshot.reader
            if reader is not None:
                try:
                    stored = reader.probe(key)
                    if stored is not None:
                        if _crc32(stored, _crc32(key, SEAL_SEED)) == SEAL_RESIDUE:
                            return stored[:-SEAL_SIZE]
                        return self._damaged(key)
                    if reader.has_prefix(key + b"."):
                        return Found.EMPTY
                except ReadFailure as exc:
                    return self._read_failed(reader, exc)
            elif snapshot.refused and key not in zone.static_ents:
                return Found.BROKEN
        if key in zone.static_ents:
            return Found.EMPTY
        return Found.NOTHING

    def _damaged(self, key: bytes) -> Found:
        """A stored value failed its checksum: SERVFAIL, counted, logged (rate-limited)."""
        self.pool.damaged[self.compiled.origin] += 1
        limited(log, "store-damage", logging.ERROR,
                "zone=%s store %s: the value of key %r fails its checksum; answering SERVFAIL "
                "(run zonepub check)", self.compiled.origin, self.compiled.config.store, key)
        return Found.BROKEN

    def _read_failed(self, reader: Reader, exc: Exception) -> Found:
        """LMDB failed inside a lookup (a damaged page): SERVFAIL, and a fresh snapshot,
        since LMDB leaves the read transaction unusable after such an error."""
        self.pool.damaged[self.compiled.origin] += 1
        limited(log, "store-damage", logging.ERROR,
                "zone=%s store %s: lookup failed inside LMDB (%s); answering SERVFAIL "
                "(run zonepub check)", self.compiled.origin, self.compiled.config.store, exc)
        try:
            reader.renew()
        except StoreError as renew_exc:
            limited(log, "store-damage", logging.ERROR, "zone=%s store %s: %s",
                    self.compiled.origin, self.compiled.config.store, renew_exc)
        return Found.BROKEN

    def _find_ip(self, address: bytes, known_bits: int) -> bytes | Found:
        """Longest-prefix match for a full address; the empty non-terminal test for a prefix."""
        zone = self.compiled
        snapshot = self.snapshot
        if known_bits == len(address) * 8:
            if zone.blocked_nets.answers and zone.blocked_nets.match(address) is not None:
                return Found.BLOCKED
            value = zone.nets.match(address)
            if value is not None:
                return value
            reader = snapshot.reader
            if reader is not None:
                probe = reader.probe
                key_from = keys.net_key_from
                try:
                    for plen in reader.plens4 if len(address) == 4 else reader.plens6:
                        key = key_from(address, plen)
                        stored = probe(key)
                        if stored is not None:
                            if _crc32(stored, _crc32(key, SEAL_SEED)) == SEAL_RESIDUE:
                                return stored[:-SEAL_SIZE]
                            return self._damaged(key)
                except ReadFailure as exc:
                    return self._read_failed(reader, exc)
            elif snapshot.refused:
                return Found.BROKEN
            return Found.NOTHING
        if zone.nets.covers(address, known_bits):
            return Found.EMPTY
        reader = snapshot.reader
        if reader is not None:
            family = keys.V4 if len(address) == 4 else keys.V6
            lo, hi = prefix_range(family, address, known_bits)
            try:
                if reader.has_range(lo, hi):
                    return Found.EMPTY
                plens = reader.plens4 if len(address) == 4 else reader.plens6
                for plen in plens:
                    if plen <= known_bits and reader.probe(keys.net_key_from(address, plen)):
                        return Found.EMPTY
            except ReadFailure as exc:
                return self._read_failed(reader, exc)
        elif snapshot.refused:
            return Found.BROKEN
        return Found.NOTHING


_DECIMAL = {str(i).encode(): i for i in range(256)}
_NIBBLE = {c.encode(): int(c, 16) for c in "0123456789abcdef"}


def _parse_v4(rel: tuple[bytes, ...]) -> tuple[bytes, int] | None:
    """(address padded with zeros, known bits) from up to four canonical decimal labels."""
    n = len(rel)
    try:
        if n == 4:  # the common case, unrolled
            octets = (_DECIMAL[rel[3]], _DECIMAL[rel[2]], _DECIMAL[rel[1]], _DECIMAL[rel[0]])
            return bytes(octets), 32
        if 0 < n < 4:
            return bytes(_DECIMAL[label] for label in reversed(rel)) + bytes(4 - n), 8 * n
    except KeyError:
        pass
    return None


def _parse_v6(rel: tuple[bytes, ...]) -> tuple[bytes, int] | None:
    """(address padded with zeros, known bits) from up to 32 single hex-digit labels."""
    n = len(rel)
    if not 0 < n <= 32:
        return None
    value = 0
    try:
        for label in reversed(rel):
            value = value << 4 | _NIBBLE[label]
    except KeyError:
        return None
    return (value << 4 * (32 - n)).to_bytes(16, "big"), 4 * n


class ReaderPool:
    """One store reader per store path for the whole process, following each path.

    LMDB forbids opening one environment twice in a process, so zones rebuilt by a
    reload share the readers of the zones they replace.  On every :meth:`refresh` (and
    :meth:`get`) the path's data file is looked at: a new inode there is opened and
    replaces the reader; a vanished one keeps the last snapshot (logged once); damage
    found by the reader's own check closes it and refuses the store.  A store that
    cannot be served (absent or refused) is tried again at most once a second, and each
    change of state is logged once.
    """

    RETRY_SECONDS = 1.0

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._readers: dict[Path, Reader] = {}
        # Paths without a reader: when last tried, what they are, and the last message.
        self._failed: dict[Path, tuple[float, StoreState, str]] = {}
        self._vanished: set[Path] = set()
        # Paths whose reader's file was replaced by one not served yet: when, and why.
        self._replacing: dict[Path, tuple[float, str]] = {}
        self.damaged: Counter[str] = Counter()  # lookups answered SERVFAIL, by zone

    def get(self, config: ZoneConfig) -> Reader | StoreState:
        """The reader of the zone's store, or why there is none."""
        reader = self._readers.get(config.store)
        if reader is not None:
            return self._follow(config, reader)
        return self._open(config)

    def refresh(self, config: ZoneConfig) -> Reader | StoreState:
        """:meth:`get`, with the reader moved to the store's newest commit."""
        state = self.get(config)
        if not isinstance(state, Reader):
            return state
        try:
            state.refresh()
        except StoreDamaged as exc:
            return self._refuse(config, exc)
        except StoreError as exc:
            limited(log, "store-refresh", logging.ERROR,
                    "zone=%s store refresh failed; serving the last snapshot: %s",
                    config.origin, exc)
        return state

    def _refuse(self, config: ZoneConfig, exc: StoreError) -> StoreState:
        path = config.store
        reader = self._readers.pop(path, None)
        if reader is not None:
            reader.close()
        self._vanished.discard(path)
        log.error("zone=%s store refused, its tokens answer SERVFAIL: %s", config.origin, exc)
        self._failed[path] = (self.clock(), StoreState.REFUSED, str(exc))
        return StoreState.REFUSED

    def _follow(self, config: ZoneConfig, reader: Reader) -> Reader:
        """The reader, or the reader of a new data file that replaced its file."""
        path = config.store
        try:
            ident = data_ident(path)
        except StoreError:
            ident = None
        if ident == reader.ident:
            self._vanished.discard(path)
            return reader
        if ident is None:
            if path not in self._vanished:
                self._vanished.add(path)
                log.warning("zone=%s store %s vanished; serving its last snapshot (serial %d) "
                            "until a store is published there again",
                            config.origin, path, reader.serial)
            return reader
        now = self.clock()
        tried = self._replacing.get(path)
        if tried is not None and now - tried[0] < self.RETRY_SECONDS:
            return reader
        try:
            fresh = _open_reader(path)
        except StoreError as exc:
            if tried is None or tried[1] != str(exc):
                log.error("zone=%s store %s was replaced by one that cannot be served; "
                          "serving the last snapshot (serial %d): %s",
                          config.origin, path, reader.serial, exc)
            self._replacing[path] = (now, str(exc))
            return reader
        if fresh is None:  # being created: look again at the next refresh
            return reader
        self._replacing.pop(path, None)
        self._vanished.discard(path)
        reader.close()
        self._readers[path] = fresh
        log.info("zone=%s store %s was replaced; serving serial %d", config.origin, path,
                 fresh.serial)
        return fresh

    def _open(self, config: ZoneConfig) -> Reader | StoreState:
        path = config.store
        now = self.clock()
        last = self._failed.get(path)
        if last is not None and now - last[0] < self.RETRY_SECONDS:
            return last[1]
        try:
            reader = _open_reader(path)
        except StoreError as exc:
            if last is None or last[2] != str(exc):
                log.error("zone=%s store refused, its tokens answer SERVFAIL: %s",
                          config.origin, exc)
            self._failed[path] = (now, StoreState.REFUSED, str(exc))
            return StoreState.REFUSED
        if reader is None:
            if last is None or last[1] is not StoreState.ABSENT:
                log.warning("zone=%s store %s does not exist yet; serving static data only",
                            config.origin, path)
            self._failed[path] = (now, StoreState.ABSENT, "")
            return StoreState.ABSENT
        if last is not None:
            log.info("zone=%s store %s opened; serving serial %d", config.origin, path,
                     reader.serial)
        self._failed.pop(path, None)
        self._readers[path] = reader
        return reader

    def retain(self, paths: Iterable[Path]) -> None:
        """Close the readers of stores no zone uses any more."""
        keep = set(paths)
        for path in list(self._readers):
            if path not in keep:
                self._readers.pop(path).close()
        for table in (self._failed, self._replacing):
            for path in [p for p in table if p not in keep]:
                del table[path]
        self._vanished &= keep


def _open_reader(path: Path) -> Reader | None:
    """A reader on the store at ``path``, or None if it does not exist yet."""
    store = ZoneStore.open_readonly(path)
    if store is None:
        return None
    try:
        return store.reader()
    finally:
        store.close()  # the reader holds the environment
