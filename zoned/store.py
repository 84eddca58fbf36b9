"""The zone store: one LMDB environment per zone, written by the publisher, read by zoned.

LMDB because every process that opens a store (zoned, zonepub) maps the same pages (no
per-process copy, instant start), readers never block the writer, and a commit is atomic
and survives a killed process.  One environment directory per zone holds three named databases::

    names    store key (zoned.keys)  -> packed answer (zoned.packed)
    meta     b"version"              -> b"2" (the layout below)
             b"kind"                 -> b"ip" | b"name", fixed when the store is created
             b"serial"               -> u32 BE; 0 until the first commit (RFC 1982: zoned.serial)
             b"updated"              -> u64 BE unix time of the last commit
             b"plen4", b"plen6"      -> (u8 prefix length, u32 networks)* ascending; ip stores
             b"jindex"               -> the journal's index (zoned.journal), oldest first
             b"jtimes"               -> u64 BE commit time per journal index item
    journal  u32 BE serial           -> the change-set that made that serial (zoned.journal)

Every value in every database is *sealed*: the payload above, then 4 bytes of CRC-32
(little-endian) over the key and the payload, from a seed of this layout's own.  A
reader verifies the seal before it uses a value (one C call: the CRC of a sealed value
is a constant), so a flipped byte, a zeroed page or a value under the wrong key is
never served: zoned answers SERVFAIL for that name and logs it (rate-limited).

The journal is ordered by ``jindex``, not by key, because serials wrap.  It is a gapless
chain ending at the current serial, or empty: IXFR either has every step or falls back
to AXFR.

Every commit is ONE LMDB write transaction over the three databases, so a reader sees a
serial together with exactly its data, and a writer killed mid-commit leaves the previous
serial intact (LMDB is copy-on-write; a commit becomes visible with its meta page).  Both
sync and metasync stay on: a secondary that transferred serial N must never see a
different serial N after a power loss, which costs one fsync per commit, not per name.
A commit that fails (a full disk: ENOSPC) raises StoreError and leaves the previous
serial in place; the next commit works once there is room.

Damage.  LMDB maps ``data.mdb``: a page that is no longer in the file (the file was
truncated) kills the process with SIGBUS when touched, and LMDB trusts its meta pages.
So before mapping a store, and again on every :meth:`Reader.refresh` (zoned: four times
a second), the two meta pages are read with ``pread`` and checked (LMDB's magic and
data version, page numbers, page size, roots within the last page) and the file must
be at least as long as the newest meta page's last page says.  A store that fails is
refused with :class:`StoreDamaged` naming the file.  What is left is a race: a file
truncated between two checks costs the process that touches it first a SIGBUS.

Layout versions.  Version 1 stores (no seals) are upgraded in place, in one write
transaction, by the next :meth:`ZoneStore.create_or_open` (any zonepub command that
writes the zone, or ``zonepub check --upgrade``); readers refuse them with
:class:`StoreOutdated`, which tells the operator to run zonepub once.

Processes: the publisher opens a store with :meth:`ZoneStore.create_or_open`; zoned opens
it with :meth:`ZoneStore.open_readonly` (a process that forks must open its stores *after*
forking: an environment open before fork() is unusable in the child, and py-lmdb will not
reopen it) and keeps one
:class:`Reader` (one long-lived read transaction: a consistent snapshot) per zone, calling
:meth:`Reader.refresh` to move to the newest commit.  LMDB forbids opening an environment
twice in one process, so a second open in the same process shares the first one's
environment.  Readers need write access to ``lock.mdb`` (LMDB's reader table).

Exceptions::

    StoreError          every failure; lmdb errors are wrapped with the store path
    +-- StoreDamaged    the data file or a value fails its check: never served
    +-- StoreOutdated   an older layout that zonepub upgrades when it next writes
"""

from __future__ import annotations

import logging
import os
import struct
import time
import zlib
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from operator import itemgetter
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Literal, Self

import lmdb

from zoned.errors import ZonedError
from zoned.journal import (
    HEADER_SIZE,
    PER_CHANGE,
    Changes,
    JournalError,
    change_size,
    decode_entry,
    decode_index,
    encode_entry,
    encode_index,
)
from zoned.journal import Change as Change  # re-exported: Reader.journal_since's values
from zoned.journal import JournalEntry as JournalEntry  # re-exported
from zoned.keys import V4, V6
from zoned.serial import next_serial

if TYPE_CHECKING:
    from zoned.config import ZoneConfig

log = logging.getLogger(__name__)

Kind = Literal["ip", "name"]
SerialPolicy = Literal["unixtime", "increment"]

GiB = 1 << 30
MiB = 1 << 20
DEFAULT_MAP_SIZE = 8 * GiB
DEFAULT_MAX_SERIALS = 100
DEFAULT_MAX_JOURNAL_BYTES = 64 * MiB
DEFAULT_MAX_JOURNAL_AGE = 7 * 86400  # seconds; a secondary further behind takes an AXFR
# Slots in LMDB's reader table: one per open read transaction in any process (py-lmdb
# uses MDB_NOTLS).  Fixed by whoever creates lock.mdb, so writer and readers agree on it.
MAX_READERS = 1024
_MAX_DBS = 4
_VERSION = b"2"
_VERSION_1 = b"1"  # before values were sealed

_K_VERSION = b"version"
_K_KIND = b"kind"
_K_SERIAL = b"serial"
_K_UPDATED = b"updated"
_K_PLEN = {4: b"plen4", 6: b"plen6"}
_K_JINDEX = b"jindex"
_K_JTIMES = b"jtimes"  # u64 commit time per journal index item (stores from before: absent)
_V4 = V4[0]
_V6 = V6[0]

_U32 = struct.Struct("!I")
_U64 = struct.Struct("!Q")
_PLEN = struct.Struct("!BI")


class StoreError(ZonedError):
    """The zone store cannot be opened, read or written."""


class StoreDamaged(StoreError):
    """The store's data file or one of its values is damaged: it is refused, never served."""


class StoreOutdated(StoreError):
    """The store has an older layout; the next zonepub run that writes it upgrades it."""


# -- seals: every stored value carries a CRC-32 of its key and payload -----------------------

SEAL_SEED = _SEED = zlib.crc32(b"repzone store layout 2")
_SEAL = struct.Struct("<I")
SEAL_SIZE = _SEAL.size
# The CRC-32 of any payload followed by its own CRC (little-endian) is this constant, so
# checking a sealed value is one crc32() over it, with no slice.
SEAL_RESIDUE = _RESIDUE = 0x2144DF1C
_crc32 = zlib.crc32


def seal(key: bytes, payload: bytes) -> bytes:
    """``payload`` as stored under ``key``: followed by the CRC-32 of key and payload."""
    return payload + _SEAL.pack(_crc32(payload, _crc32(key, _SEED)))


def sound(key: bytes, stored: bytes) -> bool:
    """Whether a stored value is the sealed value of some payload under ``key``."""
    return _crc32(stored, _crc32(key, _SEED)) == _RESIDUE


# What LMDB raises when it meets pages that are not what they must be.
_DAMAGE_ERRORS = (lmdb.CorruptedError, lmdb.PageNotFoundError, lmdb.InvalidError,
                  lmdb.VersionMismatchError, lmdb.BadTxnError)
# Lookups on the hot path call LMDB directly; zoned.zone catches this around them.
ReadFailure = lmdb.Error


# -- LMDB's meta pages, read before anything is mapped ---------------------------------------
# data.mdb starts with two meta pages; the one with the higher txnid is current.  Each is a
# page header (u64 page number, u16 pad, u16 flags, u32) and MDB_meta: u32 magic, u32 data
# version, u64 address, u64 map size, two MDB_db (free pages, main: u32 pad -- the page
# size in the first --, u16 flags, u16 depth, u64 branch, leaf and overflow pages, u64
# entries, u64 root), u64 last page number, u64 txnid.  Native byte order, 64-bit LMDB.

_META = struct.Struct("=QHHI" "IIQQ" "IHHQQQQQ" "IHHQQQQQ" "QQ")
_P_META = 0x08
_MDB_MAGIC = 0xBEEFC0DE
_MDB_DATA_VERSION = 1
_NO_PAGE = (1 << 64) - 1  # the root of an empty database


@dataclass(frozen=True)
class MetaPage:
    """The current LMDB meta page of a data file, as checked."""

    txnid: int
    last_page: int
    page_size: int
    map_size: int

    @property
    def data_bytes(self) -> int:
        """How long the data file must at least be."""
        return (self.last_page + 1) * self.page_size


def _parse_meta(file: Path, number: int, raw: bytes, page_size: int | None) -> MetaPage:
    def damaged(what: str) -> StoreDamaged:
        return StoreDamaged(f"{file}: damaged: meta page {number} {what}")

    if len(raw) < _META.size:
        raise damaged("is cut off")
    (pgno, _, flags, _, magic, version, _, map_size,
     psize, _, _, _, _, _, _, free_root,
     _, _, _, _, _, _, _, main_root, last_page, txnid) = _META.unpack_from(raw)
    if magic != _MDB_MAGIC:
        raise damaged(f"has magic {magic:#010x}, not LMDB's {_MDB_MAGIC:#010x}")
    if version != _MDB_DATA_VERSION:
        raise damaged(f"has LMDB data version {version}, not {_MDB_DATA_VERSION}")
    if pgno != number or not flags & _P_META:
        raise damaged(f"says it is page {pgno} with flags {flags:#x}")
    if page_size is not None and psize != page_size:
        raise damaged(f"has page size {psize}, not {page_size}")
    if psize < 512 or psize > 65536 or psize & (psize - 1):
        raise damaged(f"has page size {psize}")
    if not 1 <= last_page or (last_page + 1) * psize > map_size:
        raise damaged(f"has last page {last_page} in a map of {map_size} bytes")
    for name, root in (("free-page", free_root), ("main", main_root)):
        if root != _NO_PAGE and not 2 <= root <= last_page:
            raise damaged(f"has the {name} root at page {root}, past its last page {last_page}")
    return MetaPage(txnid, last_page, psize, map_size)


def check_data_file(fd: int, file: Path) -> MetaPage:
    """The current meta page of the open data file ``fd``; StoreDamaged unless both meta
    pages are sane and the file holds every page up to the last one they name."""
    try:
        size = os.fstat(fd).st_size
        first = os.pread(fd, _META.size, 0)
        if len(first) < _META.size:
            raise StoreDamaged(f"{file}: damaged: {size} bytes, too short for LMDB's meta pages")
        meta0 = _parse_meta(file, 0, first, None)
        if size < 2 * meta0.page_size:
            raise StoreDamaged(f"{file}: damaged: {size} bytes, too short for LMDB's meta pages")
        meta1 = _parse_meta(file, 1, os.pread(fd, _META.size, meta0.page_size), meta0.page_size)
    except OSError as exc:
        raise StoreError(f"{file}: cannot read: {exc}") from exc
    current = meta0 if meta0.txnid >= meta1.txnid else meta1
    if size < current.data_bytes:
        raise StoreDamaged(
            f"{file}: damaged: {size} bytes, but its last page {current.last_page} needs "
            f"{current.data_bytes} (truncated)"
        )
    return current


def check_file(path: Path) -> MetaPage | None:
    """:func:`check_data_file` of the store at ``path``; None if it has no data file."""
    file = Path(path) / "data.mdb"
    try:
        fd = os.open(file, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise StoreError(f"{file}: cannot open: {exc}") from exc
    try:
        return check_data_file(fd, file)
    finally:
        os.close(fd)


class _Closing(ABC):
    """A context manager that closes on exit."""

    @abstractmethod
    def close(self) -> None: ...

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


_first = itemgetter(0)
_ends = itemgetter(0, -1)


def _network_plen(key: bytes) -> tuple[int, int] | None:
    """(family, prefix length) of a network key (zoned.keys.net_key), else None."""
    if len(key) == 6 and key[0] == _V4 and key[5] <= 32:
        return 4, key[5]
    if len(key) == 18 and key[0] == _V6 and key[17] <= 128:
        return 6, key[17]
    return None


def _decode_plens(raw: bytes | None) -> dict[int, int]:
    if not raw:
        return {}
    return {plen: count for plen, count in _PLEN.iter_unpack(raw)}


def _encode_plens(counts: dict[int, int]) -> bytes:
    return b"".join(_PLEN.pack(plen, counts[plen]) for plen in sorted(counts))


# -- environments ----------------------------------------------------------------------


@dataclass(eq=False)
class _Env:
    """One process's handle on an environment, shared by every store object and reader on it."""

    env: lmdb.Environment
    names: lmdb._Database
    meta: lmdb._Database
    journal: lmdb._Database
    path: Path
    kind: Kind
    ident: tuple[int, int]
    pid: int
    fd: int  # our own descriptor on the mapped data.mdb: its size and meta pages, by pread
    refs: int = 0
    snapshots: int = 0  # open read transactions: remapping is only safe with none
    writing: bool = False

    def error(self, what: str, exc: BaseException) -> StoreError:
        if isinstance(exc, _DAMAGE_ERRORS):
            return StoreDamaged(f"{self.path / 'data.mdb'}: damaged: {what}: {exc}")
        return StoreError(f"{self.path}: {what}: {exc}")

    def damaged(self, what: str) -> StoreDamaged:
        return StoreDamaged(f"{self.path / 'data.mdb'}: damaged: {what}")

    def check(self) -> MetaPage:
        """The mapped file's current meta page; StoreDamaged if it is damaged or truncated."""
        return check_data_file(self.fd, self.path / "data.mdb")

    def unseal(self, key: bytes, stored: bytes, what: str) -> bytes:
        """The payload of a value read under ``key``; StoreDamaged if its seal fails."""
        if _crc32(stored, _crc32(key, _SEED)) != _RESIDUE:
            raise self.damaged(f"{what} {key!r} fails its checksum")
        return stored[:-SEAL_SIZE]

    def check_process(self) -> None:
        # LMDB environments do not survive fork(): open stores in each worker after forking.
        if self.pid != os.getpid():
            raise StoreError(f"{self.path}: opened in process {self.pid} before fork()")

    def acquire(self) -> None:
        self.refs += 1

    def release(self) -> None:
        self.refs -= 1
        if self.refs <= 0 and self.pid == os.getpid():
            if _OPEN.get(self.ident) is self:
                del _OPEN[self.ident]
            self.env.close()
            os.close(self.fd)


# Environments open in this process, by (st_dev, st_ino) of data.mdb: LMDB's fcntl locks
# belong to the process, so a second Environment on the same files would break them.
_OPEN: dict[tuple[int, int], _Env] = {}


def data_ident(path: Path) -> tuple[int, int] | None:
    """(st_dev, st_ino) of the store's data file now, or None if there is none."""
    try:
        st = os.stat(Path(path) / "data.mdb")
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as exc:
        raise StoreError(f"{path}: cannot look at data.mdb: {exc}") from exc
    return st.st_dev, st.st_ino


_ident = data_ident


def _shared(ident: tuple[int, int] | None) -> _Env | None:
    if ident is None:
        return None
    handle = _OPEN.get(ident)
    if handle is not None and handle.pid != os.getpid():
        # Inherited across fork(): unusable here, closing it would free the parent's
        # reader slots, and py-lmdb refuses a second open of the same files.
        raise StoreError(
            f"{handle.path}: opened in process {handle.pid} before fork(); "
            "open stores in each worker after forking"
        )
    return handle


def _kind_of(path: Path, raw: bytes | None) -> Kind:
    if raw == b"ip":
        return "ip"
    if raw == b"name":
        return "name"
    raise StoreError(f"{path}: unknown store kind {raw!r}")


# -- the store -----------------------------------------------------------------------------


class ZoneStore(_Closing):
    """One zone's store: a writer (the publisher) or a read-only view (zoned)."""

    def __init__(
        self,
        handle: _Env,
        *,
        readonly: bool,
        max_serials: int = DEFAULT_MAX_SERIALS,
        max_journal_bytes: int = DEFAULT_MAX_JOURNAL_BYTES,
        max_journal_age: int = DEFAULT_MAX_JOURNAL_AGE,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """Use :meth:`create_or_open` or :meth:`open_readonly`."""
        handle.acquire()
        self._handle = handle
        self.readonly = readonly
        self.max_serials = max_serials
        self.max_journal_bytes = max_journal_bytes
        self.max_journal_age = max_journal_age
        self._clock = clock
        self._closed = False

    @property
    def path(self) -> Path:
        return self._handle.path

    @property
    def kind(self) -> Kind:
        return self._handle.kind

    @classmethod
    def create_or_open(
        cls,
        path: Path,
        kind: Kind,
        *,
        map_size: int = DEFAULT_MAP_SIZE,
        max_serials: int = DEFAULT_MAX_SERIALS,
        max_journal_bytes: int = DEFAULT_MAX_JOURNAL_BYTES,
        max_journal_age: int = DEFAULT_MAX_JOURNAL_AGE,
        clock: Callable[[], float] = time.time,
    ) -> ZoneStore:
        """Open the store for writing, creating it (serial 0, empty) if needed.

        ``map_size`` is address space reserved, not disk used: it caps the store's size.
        ``kind`` must match the one the store was created with (keys differ by kind).
        """
        path = Path(path)
        ident = _ident(path)
        if _shared(ident) is not None:
            raise StoreError(f"{path}: already open in this process; close it before writing")
        if ident is not None:
            # Never let LMDB map (SIGBUS) or re-initialise a damaged file: that would
            # turn a damaged list into an empty one.
            try:
                check_file(path)
            except StoreDamaged as exc:
                raise StoreDamaged(f"{exc}; refusing to write to it (see zonepub check)") from exc
        try:
            path.mkdir(parents=True, exist_ok=True)
            env = lmdb.open(
                str(path),
                map_size=map_size,
                subdir=True,
                readonly=False,
                metasync=True,
                sync=True,
                lock=True,
                max_readers=MAX_READERS,
                max_dbs=_MAX_DBS,
                max_spare_txns=1,
            )
        except (OSError, lmdb.Error) as exc:
            raise StoreError(f"{path}: cannot open for writing: {exc}") from exc
        try:
            fd = os.open(path / "data.mdb", os.O_RDONLY | os.O_CLOEXEC)
        except OSError as exc:
            env.close()
            raise StoreError(f"{path}: cannot open for writing: {exc}") from exc
        try:
            with env.begin(write=True) as txn:
                names = env.open_db(b"names", txn=txn)
                meta = env.open_db(b"meta", txn=txn)
                journal = env.open_db(b"journal", txn=txn)
                raw_version = txn.get(_K_VERSION, db=meta)
                if raw_version is None and txn.get(_K_KIND, db=meta) is None:
                    initial = [(_K_VERSION, _VERSION), (_K_KIND, kind.encode()),
                               (_K_SERIAL, _U32.pack(0))]
                    if kind == "ip":
                        initial += [(key, b"") for key in _K_PLEN.values()]
                    for key, value in initial:
                        txn.put(key, seal(key, value), db=meta)
                else:
                    if _layout(path, raw_version) == 1:
                        _upgrade(path, txn, names, meta, journal, kind)
                    raw_kind = txn.get(_K_KIND, db=meta)
                    stored = _unseal_meta(path, _K_KIND, raw_kind)
                    if stored != kind.encode():
                        shown = stored.decode(errors="replace") if stored else None
                        raise StoreError(f"{path}: store holds kind {shown!r}, not {kind!r}")
        except (StoreError, lmdb.Error) as exc:
            env.close()
            os.close(fd)
            if isinstance(exc, StoreError):
                raise
            if isinstance(exc, _DAMAGE_ERRORS):
                raise StoreDamaged(f"{path / 'data.mdb'}: damaged: {exc}") from exc
            raise StoreError(f"{path}: cannot initialise: {exc}") from exc
        ident = _ident(path)
        assert ident is not None  # LMDB just created data.mdb
        handle = _Env(env, names, meta, journal, path, kind, ident, os.getpid(), fd)
        _OPEN[ident] = handle
        return cls(
            handle,
            readonly=False,
            max_serials=max_serials,
            max_journal_bytes=max_journal_bytes,
            max_journal_age=max_journal_age,
            clock=clock,
        )

    @classmethod
    def for_zone(cls, config: ZoneConfig) -> ZoneStore:
        """The zone's store opened for writing, with the zone file's journal bounds."""
        journal = config.journal
        return cls.create_or_open(
            config.store,
            "ip" if config.scheme.kind == "ip" else "name",
            max_serials=journal.max_serials,
            max_journal_bytes=journal.max_bytes,
            max_journal_age=journal.max_age,
        )

    @classmethod
    def open_readonly(cls, path: Path, *, kind: Kind | None = None) -> ZoneStore | None:
        """Open the store for reading, or None if the publisher has not created it yet.

        Creates nothing, so it is cheap to retry until the store appears; zoned serves
        such a zone as empty with serial 0, which is also what a new store holds.
        """
        path = Path(path)
        ident = _ident(path)
        if ident is None or not (path / "lock.mdb").exists():
            return None
        handle = _shared(ident)
        fresh = handle is None
        if handle is None:
            handle = _open_reader_env(path, ident)
            if handle is None:
                return None
        else:
            handle.check()
        if kind is not None and handle.kind != kind:
            if fresh:
                handle.env.close()
                os.close(handle.fd)
            raise StoreError(f"{path}: store holds kind {handle.kind!r}, not {kind!r}")
        _OPEN[ident] = handle
        return cls(handle, readonly=True)

    def transaction(self, *, serial_policy: SerialPolicy = "unixtime") -> Transaction:
        """A write transaction: ``with store.transaction() as txn:`` commits it as one serial.

        ``unixtime`` makes the new serial the commit time when that is newer (RFC 1982),
        else old + 1; ``increment`` always uses old + 1.
        """
        if self.readonly:
            raise StoreError(f"{self.path}: opened read-only")
        return Transaction(self, serial_policy)

    def reader(self) -> Reader:
        """A snapshot of the current serial; keep one per process per zone and refresh() it."""
        self._check_open()
        return Reader(self._handle)

    def serial(self) -> int:
        """The last committed serial (0: nothing published yet)."""
        with self.reader() as snapshot:
            return snapshot.serial

    def count(self) -> int:
        """Number of keys in the store."""
        with self.reader() as snapshot:
            return snapshot.count()

    def entries(self) -> Iterator[tuple[bytes, bytes]]:
        """Every (key, packed answer) in key order, from one snapshot (export).

        AXFR needs the serial of the same snapshot: iterate a :class:`Reader` instead.
        """
        with self.reader() as snapshot:
            yield from snapshot.entries()

    def journal_since(self, serial: int) -> list[JournalEntry] | None:
        """The chain of change-sets from ``serial`` to now, or None if the journal lacks it."""
        with self.reader() as snapshot:
            return snapshot.journal_since(serial)

    def close(self) -> None:
        """Release the environment; readers made from this store stay usable until closed."""
        if not self._closed:
            self._closed = True
            self._handle.release()

    def _check_open(self) -> None:
        if self._closed:
            raise StoreError(f"{self.path}: store is closed")
        self._handle.check_process()


def _layout(path: Path, raw: bytes | None) -> int:
    """The layout version of a store from its raw ``version`` value: 1 or 2."""
    if raw == _VERSION_1:
        return 1
    if raw is None or not sound(_K_VERSION, raw):
        raise StoreDamaged(f"{path / 'data.mdb'}: damaged: layout version {raw!r}")
    if raw[:-SEAL_SIZE] != _VERSION:
        raise StoreError(f"{path}: unsupported store layout version {raw[:-SEAL_SIZE]!r}")
    return 2


def _unseal_meta(path: Path, key: bytes, raw: bytes | None,
                 required: bool = False) -> bytes | None:
    """A meta value's payload; StoreDamaged if it fails its seal, or is ``required`` and
    absent (a damaged key makes its value vanish: for the serial or an ip store's network
    counts that would silently unlist data)."""
    if raw is None:
        if required:
            raise StoreDamaged(f"{path / 'data.mdb'}: damaged: meta value {key!r} is missing")
        return None
    if not sound(key, raw):
        raise StoreDamaged(f"{path / 'data.mdb'}: damaged: meta value {key!r} fails its checksum")
    return raw[:-SEAL_SIZE]


_UPGRADE_BATCH = 4096


def _upgrade(path: Path, txn: lmdb.Transaction[bytes], names: lmdb._Database,
             meta: lmdb._Database, journal: lmdb._Database, kind: Kind) -> None:
    """Seal every value of a layout-1 store, in the caller's write transaction; the
    values layout 2 requires (an ip store's network counts) are added where absent."""
    sealed = 0
    for db in (names, meta, journal):
        cursor = txn.cursor(db=db)
        more = cursor.first()
        while more:
            batch: list[tuple[bytes, bytes]] = []
            while more and len(batch) < _UPGRADE_BATCH:
                batch.append(cursor.item())
                more = cursor.next()
            resume = cursor.key() if more else None
            for key, value in batch:
                txn.put(key, seal(key, value), db=db)
            sealed += len(batch)
            if resume is not None:
                more = cursor.set_key(resume)
    txn.put(_K_VERSION, seal(_K_VERSION, _VERSION), db=meta)
    if txn.get(_K_SERIAL, db=meta) is None:
        txn.put(_K_SERIAL, seal(_K_SERIAL, _U32.pack(0)), db=meta)
    if kind == "ip":
        for key in _K_PLEN.values():
            if txn.get(key, db=meta) is None:
                txn.put(key, seal(key, b""), db=meta)
    log.info("%s: upgraded from layout 1 to 2 (%d values sealed)", path, sealed)


def _open_reader_env(path: Path, ident: tuple[int, int]) -> _Env | None:
    """A read-only environment, or None while the writer has not finished creating it.

    The data file is checked before LMDB maps it: a truncated file would cost a SIGBUS.
    """
    file = path / "data.mdb"
    try:
        fd = os.open(file, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise StoreError(f"{path}: cannot open for reading: {exc}") from exc
    try:
        st = os.fstat(fd)
        if (st.st_dev, st.st_ino) != ident:
            os.close(fd)
            return None  # replaced since we looked: the next attempt sees the new one
        check_data_file(fd, file)
    except BaseException:
        os.close(fd)
        raise
    try:
        # map_size=0: map as much as the writer declared, so its growth needs no remap.
        env = lmdb.open(
            str(path),
            map_size=0,
            subdir=True,
            readonly=True,
            create=False,
            lock=True,
            max_readers=MAX_READERS,
            max_dbs=_MAX_DBS,
            max_spare_txns=1,
        )
    except FileNotFoundError:
        os.close(fd)
        return None
    except (OSError, lmdb.Error) as exc:
        os.close(fd)
        if isinstance(exc, _DAMAGE_ERRORS):
            raise StoreDamaged(f"{file}: damaged: {exc}") from exc
        raise StoreError(f"{path}: cannot open for reading: {exc}") from exc
    try:
        try:
            names = env.open_db(b"names", create=False)
            meta = env.open_db(b"meta", create=False)
            journal = env.open_db(b"journal", create=False)
        except lmdb.NotFoundError:
            env.close()
            os.close(fd)
            return None  # created, not yet initialised
        with env.begin() as txn:
            raw_kind = txn.get(_K_KIND, db=meta)
            raw_version = txn.get(_K_VERSION, db=meta)
        if raw_kind is None and raw_version is None:
            env.close()
            os.close(fd)
            return None
        if _layout(path, raw_version) == 1:
            raise StoreOutdated(
                f"{path}: store layout version 1 (values without checksums) is not served; "
                "run zonepub once to upgrade it (e.g. zonepub check --upgrade)"
            )
        kind = _kind_of(path, _unseal_meta(path, _K_KIND, raw_kind))
    except lmdb.Error as exc:
        env.close()
        os.close(fd)
        if isinstance(exc, _DAMAGE_ERRORS):
            raise StoreDamaged(f"{file}: damaged: {exc}") from exc
        raise StoreError(f"{path}: cannot open for reading: {exc}") from exc
    except StoreError:
        env.close()
        os.close(fd)
        raise
    return _Env(env, names, meta, journal, path, kind, ident, os.getpid(), fd)


# -- writing --------------------------------------------------------------------------------


class Transaction:
    """All changes of one publisher run, committed as one new serial or not at all.

    Puts go straight into an LMDB write transaction (so ``get`` sees them); the net
    change per key is kept for the journal until it outgrows the journal's byte bound,
    after which only the fact that something changed is tracked and the commit clears
    the journal.  A transaction on an empty store is not journaled either.
    """

    serial_before: int

    def __init__(self, store: ZoneStore, policy: SerialPolicy) -> None:
        if policy not in ("unixtime", "increment"):
            raise ValueError(f"unknown serial policy {policy!r}")
        self._store = store
        self._handle = store._handle
        self._policy = policy
        self._serial_after: int | None = None
        self._txn: lmdb.Transaction[bytes] | None = None

    def __enter__(self) -> Self:
        handle = self._handle
        self._store._check_open()
        if handle.writing:
            raise StoreError(f"{handle.path}: a write transaction is already open")
        try:
            handle.env.reader_check()  # free slots of readers that died
            txn = handle.env.begin(write=True, db=handle.names)
        except lmdb.Error as exc:
            raise handle.error("cannot begin a write transaction", exc) from exc
        handle.writing = True
        self._txn = txn
        self._get = txn.get
        self._put = txn.put
        self._delete = txn.delete
        try:
            raw_serial = self._meta(_K_SERIAL, required=True)
            self.serial_before = _U32.unpack(raw_serial)[0] if raw_serial else 0
            self._plens: dict[int, dict[int, int]] | None = (
                {fam: _decode_plens(self._meta(key, required=True))
                 for fam, key in _K_PLEN.items()}
                if handle.kind == "ip"
                else None
            )
            # Nothing to journal when the store starts empty: IXFR from an empty zone is
            # no smaller than AXFR, and skipping it keeps a first import of millions fast.
            self._changes: Changes | None = {} if txn.stat(handle.names)["entries"] else None
        except lmdb.Error as exc:
            self._end()
            raise handle.error("cannot read metadata", exc) from exc
        except StoreError:
            self._end()
            raise
        self._plens_changed = False
        self._dirty = False
        self._bytes = HEADER_SIZE
        self._max_bytes = self._store.max_journal_bytes
        return self

    def _end(self) -> None:
        if self._txn is not None:
            self._txn.abort()
            self._txn = None
        self._handle.writing = False

    def _meta(self, key: bytes, required: bool = False) -> bytes | None:
        """A meta value's payload (lmdb errors to the caller)."""
        assert self._txn is not None
        return _unseal_meta(self._handle.path, key, self._txn.get(key, db=self._handle.meta),
                            required)

    def _put_meta(self, key: bytes, value: bytes) -> None:
        assert self._txn is not None
        self._txn.put(key, seal(key, value), db=self._handle.meta)

    def _payload(self, key: bytes, stored: bytes) -> bytes:
        """The payload of the value being replaced.  A damaged one was never served; it is
        overwritten, and the journal dropped (secondaries take a full transfer) since
        what they hold for it is not known."""
        if _crc32(stored, _crc32(key, _SEED)) == _RESIDUE:
            return stored[:-SEAL_SIZE]
        log.warning("%s: replacing the damaged value of %r; the journal is cleared",
                    self._handle.path / "data.mdb", key)
        self._changes = None
        return stored[:-SEAL_SIZE]

    @property
    def serial_after(self) -> int:
        """The serial after the commit: the old one when nothing changed."""
        if self._serial_after is None:
            raise StoreError(f"{self._handle.path}: transaction not committed")
        return self._serial_after

    @property
    def changed(self) -> bool:
        """Whether the transaction so far changes the store.

        Exact while the journal tracks net changes; once it no longer does (too big, or
        an empty store), any effective put or delete counts, even one later undone.
        """
        if self._changes is not None:
            return bool(self._changes)
        return self._dirty

    def get(self, key: bytes) -> bytes | None:
        """The value of ``key`` including this transaction's own changes.

        StoreDamaged if the stored value fails its checksum.
        """
        try:
            stored = self._get(key)
        except lmdb.Error as exc:
            raise self._handle.error(f"get {key!r}", exc) from exc
        return None if stored is None else self._handle.unseal(key, stored, "value of")

    def put(self, key: bytes, value: bytes) -> None:
        """Set ``key``; an identical value is no change.  Keys must be 1-511 bytes."""
        sealed = value + _SEAL.pack(_crc32(value, _crc32(key, _SEED)))
        try:
            stored = self._get(key)
            if stored == sealed:
                return
            self._put(key, sealed)
        except lmdb.Error as exc:
            raise self._handle.error(f"put {key!r}", exc) from exc
        old = None if stored is None else self._payload(key, stored)
        self._dirty = True
        if old is None and self._plens is not None:
            self._count(key, 1)
        changes = self._changes
        if changes is not None:
            if key in changes:
                self._record(key, old, value)
            else:  # the common case, inlined: a bulk commit is millions of these
                changes[key] = (old, value)
                self._bytes += PER_CHANGE + len(key) + (len(old) if old else 0) + len(value)
                if self._bytes > self._max_bytes:
                    self._changes = None

    def put_many(self, items: Iterable[tuple[bytes, bytes]]) -> None:
        """:meth:`put` of every (key, value) pair, in one C loop where it can be.

        A first sync writes millions of entries into an empty store, which is not
        journaled: there LMDB's ``putmulti`` writes each batch and the per-length
        network counts are tallied per batch -- or recounted from the store when a key
        was there already (a batch repeating a key, or an overwrite).  A journaled
        transaction needs each old value, so there this is a loop of :meth:`put`.
        """
        if self._changes is not None:
            for key, value in items:
                self.put(key, value)
            return
        handle = self._handle
        txn = self._txn
        assert txn is not None
        pairs = [(key, seal(key, value)) for key, value in items]
        if not pairs:
            return
        try:
            before = txn.stat(handle.names)["entries"]
            txn.cursor().putmulti(pairs, dupdata=False, overwrite=True)
            inserted = txn.stat(handle.names)["entries"] - before
        except lmdb.Error as exc:
            raise handle.error(f"put of {len(pairs)} entries", exc) from exc
        self._dirty = True
        if self._plens is None:
            return
        if inserted == len(pairs):  # all new: count them
            self._tally(list(map(_first, pairs)), self._plens)
        else:
            try:
                every = list(txn.cursor().iternext(keys=True, values=False))
            except lmdb.Error as exc:
                raise handle.error("recount networks", exc) from exc
            self._plens = {family: {} for family in self._plens}
            self._tally(every, self._plens)
        self._plens_changed = True

    @staticmethod
    def _tally(keys: list[bytes], plens: dict[int, dict[int, int]]) -> None:
        """Add ``keys``' networks to the per-length counts.

        Keys of one length, first and last byte are all networks of one prefix length
        or none: count those groups in C, then classify one key of each.
        """
        groups = Counter(zip(map(len, keys), map(_ends, keys), strict=True))
        for (length, (first, last)), count in groups.items():
            if length < 2:
                continue  # not a network key
            net = _network_plen(bytes([first]) + bytes(length - 2) + bytes([last]))
            if net is not None:
                counts = plens[net[0]]
                counts[net[1]] = counts.get(net[1], 0) + count

    def delete(self, key: bytes) -> bool:
        """Remove ``key``; False if it was absent."""
        try:
            stored = self._get(key)
            if stored is None:
                return False
            self._delete(key)
        except lmdb.Error as exc:
            raise self._handle.error(f"delete {key!r}", exc) from exc
        old = self._payload(key, stored)
        self._dirty = True
        if self._plens is not None:
            self._count(key, -1)
        if self._changes is not None:
            self._record(key, old, None)
        return True

    def _count(self, key: bytes, delta: int) -> None:
        """Keep the per-prefix-length network counts that longest-prefix match probes by."""
        net = _network_plen(key)
        if net is not None:
            assert self._plens is not None
            counts = self._plens[net[0]]
            count = counts.get(net[1], 0) + delta
            if count:
                counts[net[1]] = count
            else:
                del counts[net[1]]
            self._plens_changed = True

    def _record(self, key: bytes, old: bytes | None, new: bytes | None) -> None:
        """Keep the net change of ``key`` for the journal, within its byte bound."""
        changes = self._changes
        assert changes is not None
        prev = changes.get(key)
        if prev is None:
            first = old
        else:
            first = prev[0]
            self._bytes -= change_size(key, *prev)
        if first == new:
            del changes[key]  # back to what it was before this transaction
            return
        changes[key] = (first, new)
        self._bytes += change_size(key, first, new)
        if self._bytes > self._max_bytes:
            self._changes = None  # too big to journal: drop it now, not at commit

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is not None:
            self._end()
            return
        try:
            self._commit()
        finally:
            self._end()

    def _commit(self) -> None:
        txn = self._txn
        assert txn is not None
        handle = self._handle
        before = self.serial_before
        if not self.changed:
            self._serial_after = before
            return  # _end() aborts: a no-op commit writes nothing, not even "updated"
        now = int(self._store._clock())
        after = next_serial(before, now if self._policy == "unixtime" else before)
        try:
            self._put_meta(_K_SERIAL, _U32.pack(after))
            self._put_meta(_K_UPDATED, _U64.pack(max(now, 0)))
            if self._plens is not None and self._plens_changed:
                for fam, key in _K_PLEN.items():
                    self._put_meta(key, _encode_plens(self._plens[fam]))
            self._journal(txn, before, after)
            txn.commit()
        except lmdb.MapFullError as exc:
            raise StoreError(
                f"{handle.path}: store full (map_size {handle.env.info()['map_size']} bytes); "
                "reopen with a larger map_size"
            ) from exc
        except lmdb.Error as exc:
            # A full disk (ENOSPC) lands here: LMDB writes the meta page last, so the
            # previous serial is what every reader still sees.
            raise handle.error(f"commit failed, serial {before} stays in place", exc) from exc
        self._txn = None
        self._serial_after = after

    def _journal(self, txn: lmdb.Transaction[bytes], before: int, after: int) -> None:
        """Append this change-set and trim to the bounds, or clear it all (a gap)."""
        handle = self._handle
        store = self._store
        index = decode_index(self._meta(_K_JINDEX))
        raw_times = self._meta(_K_JTIMES) or b""
        now = max(int(store._clock()), 0)
        times = [t for (t,) in _U64.iter_unpack(raw_times)] if raw_times else []
        if len(times) != len(index):
            times = [now] * len(index)  # a store from before times were kept: age from now
        entry = None
        if self._changes is not None and (not index or index[-1][1] == before):
            entry = encode_entry(before, self._changes)
        if entry is None or len(entry) > store.max_journal_bytes or store.max_serials < 1:
            txn.drop(handle.journal, delete=False)
            index, times = [], []
        else:
            txn.put(_U32.pack(after), seal(_U32.pack(after), entry), db=handle.journal)
            index.append((before, after, len(entry)))
            times.append(now)
            total = sum(size for _, _, size in index)
            oldest = now - store.max_journal_age
            while index and (len(index) > store.max_serials
                             or total > store.max_journal_bytes or times[0] < oldest):
                _, old_to, size = index.pop(0)
                times.pop(0)
                txn.delete(_U32.pack(old_to), db=handle.journal)
                total -= size
        self._put_meta(_K_JINDEX, encode_index(index))
        self._put_meta(_K_JTIMES, b"".join(_U64.pack(t) for t in times))


# -- reading --------------------------------------------------------------------------------


class Reader(_Closing):
    """A consistent snapshot of the store for the server's hot path.

    :meth:`get` returns a value's payload after checking its seal.  The hot path uses
    ``probe`` instead: the read transaction's own bound ``get`` (no Python frame per
    lookup), which returns the *stored* value; the caller checks it with :func:`sound`
    and strips the last :data:`SEAL_SIZE` bytes, and catches :data:`ReadFailure`.  Both
    are rebound by :meth:`refresh`: look them up on the reader, do not keep them across a
    refresh.  Keys must be non-empty (LMDB rejects empty keys; the apex is never stored).
    Use from one thread.  Iterating :meth:`entries` while calling :meth:`refresh` on the
    same reader is an error: give AXFR its own reader.
    """

    probe: Callable[[bytes], bytes | None]
    serial: int
    updated: int
    plens4: tuple[int, ...]
    plens6: tuple[int, ...]

    def __init__(self, handle: _Env) -> None:
        self._handle = handle
        self._txn: lmdb.Transaction[bytes] | None = None
        handle.acquire()
        try:
            handle.check()
            self._switch(self._begin())
        except BaseException:
            handle.release()
            raise

    @property
    def path(self) -> Path:
        return self._handle.path

    @property
    def ident(self) -> tuple[int, int]:
        """(st_dev, st_ino) of the data file this reader maps."""
        return self._handle.ident

    def _begin(self) -> lmdb.Transaction[bytes]:
        handle = self._handle
        try:
            try:
                txn = handle.env.begin(db=handle.names)
            except lmdb.MapResizedError:
                # The writer enlarged the map.  Remapping moves every page, so it is only
                # safe with no other snapshot open in this process.
                if handle.snapshots > (self._txn is not None):
                    raise
                if self._txn is not None:
                    self._txn.abort()
                    self._txn = None
                    handle.snapshots -= 1
                handle.env.set_mapsize(0)
                txn = handle.env.begin(db=handle.names)
        except lmdb.Error as exc:
            raise handle.error("cannot begin a read transaction", exc) from exc
        handle.snapshots += 1
        return txn

    def _switch(self, txn: lmdb.Transaction[bytes]) -> None:
        """Make ``txn`` the snapshot: read its metadata, then drop the old one."""
        handle = self._handle
        meta = handle.meta
        path = handle.path
        ip = handle.kind == "ip"
        try:
            raw_serial = _unseal_meta(path, _K_SERIAL, txn.get(_K_SERIAL, db=meta), True)
            raw_updated = _unseal_meta(path, _K_UPDATED, txn.get(_K_UPDATED, db=meta))
            plens = {fam: _decode_plens(_unseal_meta(path, key, txn.get(key, db=meta), ip))
                     for fam, key in _K_PLEN.items()}
            cursor = txn.cursor()
        except (lmdb.Error, StoreError) as exc:
            txn.abort()
            handle.snapshots -= 1
            if isinstance(exc, StoreError):
                raise
            raise handle.error("cannot read metadata", exc) from exc
        old = self._txn
        self._txn = txn
        self.probe = txn.get
        self._cursor = cursor
        self.serial = _U32.unpack(raw_serial)[0] if raw_serial else 0
        self.updated = _U64.unpack(raw_updated)[0] if raw_updated else 0
        self.plens4 = tuple(sorted(plens[4], reverse=True))
        self.plens6 = tuple(sorted(plens[6], reverse=True))
        if old is not None:
            old.abort()
            handle.snapshots -= 1

    def _live(self) -> lmdb.Transaction[bytes]:
        if self._txn is None:
            raise StoreError(f"{self._handle.path}: reader is closed")
        return self._txn

    def get(self, key: bytes) -> bytes | None:
        """The payload stored under ``key``, or None; StoreDamaged if it fails its seal."""
        self._live()
        try:
            stored = self.probe(key)
        except lmdb.Error as exc:
            raise self._handle.error(f"get {key!r}", exc) from exc
        return None if stored is None else self._handle.unseal(key, stored, "value of")

    def refresh(self) -> bool:
        """Move to the newest commit if there is one; True if the snapshot changed.

        First the data file is checked (its size and meta pages, by ``pread``: nothing
        mapped is touched), then the current txnid compared; cheap enough for a timer.
        StoreDamaged if the file is damaged or truncated: stop using this reader.  On any
        other failure the old snapshot stays in place.
        """
        txn = self._live()
        handle = self._handle
        handle.check_process()
        current = handle.check()
        if current.txnid == txn.id():
            return False
        self._switch(self._begin())
        return True

    def renew(self) -> None:
        """A fresh snapshot of the newest commit, after a lookup failed inside LMDB (which
        leaves the read transaction unusable)."""
        self._live()
        self._handle.check()
        self._switch(self._begin())

    def snapshot(self) -> Reader:
        """A second reader on this store, at the newest commit: one a transfer can iterate
        while this one keeps refreshing.  Close it when done."""
        self._live()
        return Reader(self._handle)

    def has_prefix(self, prefix: bytes) -> bool:
        """Whether any key starts with ``prefix`` (an empty non-terminal test, RFC 8020)."""
        cursor = self._cursor
        return cursor.set_range(prefix) and cursor.key().startswith(prefix)

    def has_range(self, lo: bytes, hi: bytes) -> bool:
        """Whether any key ``k`` has ``lo <= k < hi``."""
        cursor = self._cursor
        return lo < hi and cursor.set_range(lo) and cursor.key() < hi

    def count(self) -> int:
        """Number of keys in this snapshot."""
        txn = self._live()
        try:
            return txn.stat(self._handle.names)["entries"]
        except lmdb.Error as exc:
            raise self._handle.error("cannot count keys", exc) from exc

    def entries(self) -> Iterator[tuple[bytes, bytes]]:
        """Every (key, packed answer) of this snapshot in key order; StoreDamaged (after
        the sound entries before it) at the first value that fails its seal."""
        txn = self._live()
        handle = self._handle
        try:
            with txn.cursor() as cursor:
                for key, stored in cursor:
                    if _crc32(stored, _crc32(key, _SEED)) != _RESIDUE:
                        raise handle.damaged(f"value of {key!r} fails its checksum")
                    yield key, stored[:-SEAL_SIZE]
        except lmdb.Error as exc:
            raise handle.error("scan failed", exc) from exc

    def journal_since(self, serial: int) -> list[JournalEntry] | None:
        """Change-sets from ``serial`` up to this snapshot's serial, oldest first.

        ``[]`` when ``serial`` is current; None when the journal does not reach back to
        ``serial`` (or never had it): the caller sends a full transfer instead.
        """
        if serial == self.serial:
            return []
        txn = self._live()
        handle = self._handle
        try:
            index = decode_index(_unseal_meta(handle.path, _K_JINDEX,
                                              txn.get(_K_JINDEX, db=handle.meta)))
            start = next((i for i, item in enumerate(index) if item[0] == serial), None)
            if start is None or index[-1][1] != self.serial:
                return None
            chain = index[start:]
            entries = []
            expected = serial
            for from_serial, to_serial, _ in chain:
                jkey = _U32.pack(to_serial)
                raw = txn.get(jkey, db=handle.journal)
                if from_serial != expected or raw is None:
                    return None
                try:
                    entry = decode_entry(to_serial, handle.unseal(jkey, raw, "journal entry"))
                except JournalError as exc:
                    raise StoreError(str(exc)) from exc
                if entry.from_serial != from_serial:
                    raise StoreError(f"{handle.path}: journal index disagrees at {to_serial}")
                entries.append(entry)
                expected = to_serial
        except lmdb.Error as exc:
            raise handle.error("cannot read the journal", exc) from exc
        return entries

    def close(self) -> None:
        """End the snapshot and release the environment."""
        if self._txn is not None:
            self._txn.abort()
            self._txn = None
            self._handle.snapshots -= 1
            self._handle.release()


# -- inspection (zonepub check) -------------------------------------------------------------

_MAX_LISTED = 20  # damaged keys named per database; the rest are counted


@dataclass
class Inspection:
    """What a full scan of one store found; ``problems`` empty means sound."""

    path: Path
    exists: bool = False
    layout: int | None = None
    serial: int | None = None
    values: dict[str, int] = field(default_factory=dict)  # values checked, by database
    damaged: dict[str, int] = field(default_factory=dict)  # values failing, by database
    problems: list[str] = field(default_factory=list)

    @property
    def sound(self) -> bool:
        return not self.problems


def inspect(path: Path) -> Inspection:
    """Scan the whole store at ``path`` read-only: the data file and its meta pages, then
    every value's seal in every database, the journal's entries against its index and
    the network counts against the keys.  Damage is reported, never raised; a store
    that does not exist is not damaged (``exists`` False)."""
    path = Path(path)
    result = Inspection(path)
    file = path / "data.mdb"
    try:
        meta = check_file(path)
    except StoreError as exc:
        result.exists = True
        result.problems.append(str(exc))
        return result
    if meta is None:
        return result
    result.exists = True
    try:
        store = ZoneStore.open_readonly(path)
    except StoreOutdated as exc:
        result.layout = 1
        result.problems.append(str(exc))
        return result
    except StoreError as exc:
        result.problems.append(str(exc))
        return result
    if store is None:
        result.problems.append(f"{path}: not initialised (a publisher died creating it?)")
        return result
    result.layout = 2
    handle = store._handle
    counted: dict[int, dict[int, int]] = {4: {}, 6: {}}

    def tally(key: bytes) -> None:
        net = _network_plen(key)
        if net is not None:
            counts = counted[net[0]]
            counts[net[1]] = counts.get(net[1], 0) + 1

    try:
        with handle.env.begin() as txn:
            metas = _scan(result, txn, handle.meta, "meta")
            names_ok = _scan(result, txn, handle.names, "names",
                             tally if handle.kind == "ip" else None) is not None
            journal = _scan(result, txn, handle.journal, "journal") or {}
    finally:
        store.close()
    metas = metas or {}
    raw_serial = metas.get(_K_SERIAL)
    if raw_serial is None or len(raw_serial) != _U32.size:
        result.problems.append(f"{file}: meta value {_K_SERIAL!r} is missing or malformed")
    else:
        result.serial = _U32.unpack(raw_serial)[0]
    if handle.kind == "ip" and names_ok:
        for fam, key in _K_PLEN.items():
            if key in metas and _decode_plens(metas[key]) != counted[fam]:
                result.problems.append(f"{file}: meta value {key!r} disagrees with the "
                                       f"IPv{fam} networks stored")
    _check_journal(result, file, metas, journal)
    return result


def _scan(result: Inspection, txn: lmdb.Transaction[bytes], db: lmdb._Database, name: str,
          on_key: Callable[[bytes], None] | None = None) -> dict[bytes, bytes] | None:
    """Check the seal of every value of one database: the sound payloads by key, None if
    LMDB failed part way.  With ``on_key`` (the names database: millions of values) each
    sound key goes to it instead and the payloads are not kept."""
    file = result.path / "data.mdb"
    sound_values: dict[bytes, bytes] = {}
    checked = damaged = 0
    complete = True
    try:
        with txn.cursor(db=db) as cursor:
            for key, stored in cursor:
                checked += 1
                if _crc32(stored, _crc32(key, _SEED)) != _RESIDUE:
                    damaged += 1
                    if damaged <= _MAX_LISTED:
                        result.problems.append(f"{file}: {name}: the value of {key!r} fails "
                                               "its checksum")
                    continue
                if on_key is not None:
                    on_key(key)
                else:
                    sound_values[key] = stored[:-SEAL_SIZE]
    except lmdb.Error as exc:
        result.problems.append(f"{file}: {name}: damaged after {checked} values: {exc}")
        complete = False
    if damaged > _MAX_LISTED:
        result.problems.append(f"{file}: {name}: {damaged - _MAX_LISTED} more values fail "
                               "their checksum")
    result.values[name] = checked
    result.damaged[name] = damaged
    return sound_values if complete else None


def _check_journal(result: Inspection, file: Path, metas: dict[bytes, bytes],
                   journal: dict[bytes, bytes]) -> None:
    index = decode_index(metas.get(_K_JINDEX))
    listed = set()
    for from_serial, to_serial, size in index:
        key = _U32.pack(to_serial)
        listed.add(key)
        raw = journal.get(key)
        if raw is None:
            if result.damaged.get("journal", 0) == 0:
                result.problems.append(f"{file}: journal: no entry for serial {to_serial}")
            continue
        try:
            entry = decode_entry(to_serial, raw)
        except JournalError as exc:
            result.problems.append(f"{file}: journal: {exc}")
            continue
        if entry.from_serial != from_serial or len(raw) != size:
            result.problems.append(f"{file}: journal: the entry for serial {to_serial} "
                                   "disagrees with the index")
    if index and result.serial is not None and index[-1][1] != result.serial:
        result.problems.append(f"{file}: journal: ends at serial {index[-1][1]}, not at the "
                               f"store's serial {result.serial}")
