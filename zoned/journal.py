"""The zone journal: change-sets between serials, and their binary encoding.

The store (zoned.store) keeps one entry per serial and an index that orders them; IXFR
reads them back as :class:`JournalEntry` values.  The bytes::

    entry    the change-set that made serial ``to``, columnar:
             u32 previous serial, u32 count n, n u8 flags (1: has old, 2: has new),
             n u16 key lengths, n u32 old lengths, n u32 new lengths, then the keys,
             the old values and the new values, each concatenated
    index    (u32 from, u32 to, u64 entry bytes)* oldest first

Columnar, so a million changes encode in C loops rather than per-change Python.

Exceptions::

    JournalError        an entry does not decode (truncated, or the wrong length)
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from dataclasses import dataclass
from typing import NamedTuple

from zoned.errors import ZonedError

_INDEX = struct.Struct("!IIQ")
_HEADER = struct.Struct("!II")
_OLD = 1
_NEW = 2

HEADER_SIZE = _HEADER.size  # bytes of an entry before its changes
PER_CHANGE = 1 + 2 + 4 + 4  # bytes of one change besides its key and values

# A change-set being built: key -> (value before it, value now).
Changes = dict[bytes, tuple[bytes | None, bytes | None]]

# One index item: (from serial, to serial, entry bytes).
IndexItem = tuple[int, int, int]


class JournalError(ZonedError, ValueError):
    """A journal entry does not decode."""


class Change(NamedTuple):
    """One key's change in a serial: ``old`` None for an addition, ``new`` None for a removal.

    A named tuple: IXFR decodes millions of these, and tuples build several times faster.
    """

    key: bytes
    old: bytes | None
    new: bytes | None


@dataclass(frozen=True, slots=True)
class JournalEntry:
    """The changes that turned ``from_serial`` into ``to_serial``: one IXFR difference sequence."""

    from_serial: int
    to_serial: int
    changes: tuple[Change, ...]


def change_size(key: bytes, old: bytes | None, new: bytes | None) -> int:
    """Bytes one change takes in an encoded entry."""
    return PER_CHANGE + len(key) + (len(old) if old else 0) + (len(new) if new else 0)


def encode_entry(from_serial: int, changes: Changes) -> bytes:
    """The entry for ``changes`` made on top of ``from_serial``."""
    count = len(changes)
    keys = list(changes)
    olds = [old for old, _ in changes.values()]
    news = [new for _, new in changes.values()]
    flags = bytes(
        [(old is not None) * _OLD | (new is not None) * _NEW for old, new in changes.values()]
    )
    return b"".join(
        (
            _HEADER.pack(from_serial, count),
            flags,
            struct.pack(f"!{count}H", *map(len, keys)),
            struct.pack(f"!{count}I", *[len(v) if v else 0 for v in olds]),
            struct.pack(f"!{count}I", *[len(v) if v else 0 for v in news]),
            b"".join(keys),
            b"".join(v for v in olds if v),
            b"".join(v for v in news if v),
        )
    )


def decode_entry(to_serial: int, raw: bytes) -> JournalEntry:
    """The entry stored for ``to_serial``; JournalError if ``raw`` is not one."""
    try:
        from_serial, count = _HEADER.unpack_from(raw, 0)
        pos = _HEADER.size
        flags = raw[pos : pos + count]
        pos += count
        klens = struct.unpack_from(f"!{count}H", raw, pos)
        pos += 2 * count
        olens = struct.unpack_from(f"!{count}I", raw, pos)
        pos += 4 * count
        nlens = struct.unpack_from(f"!{count}I", raw, pos)
        pos += 4 * count
    except struct.error as exc:
        raise JournalError(f"journal entry for serial {to_serial} is truncated") from exc
    kpos = pos
    opos = kpos + sum(klens)
    npos = opos + sum(olens)
    if len(flags) != count or npos + sum(nlens) != len(raw):
        raise JournalError(f"journal entry for serial {to_serial} has the wrong length")
    changes = []
    for flag, klen, olen, nlen in zip(flags, klens, olens, nlens, strict=True):
        key = raw[kpos : kpos + klen]
        kpos += klen
        old = new = None
        if flag & _OLD:
            old = raw[opos : opos + olen]
            opos += olen
        if flag & _NEW:
            new = raw[npos : npos + nlen]
            npos += nlen
        changes.append(Change(key, old, new))
    return JournalEntry(from_serial, to_serial, tuple(changes))


def encode_index(index: Iterable[IndexItem]) -> bytes:
    return b"".join(_INDEX.pack(*item) for item in index)


def decode_index(raw: bytes | None) -> list[IndexItem]:
    """The index, oldest first; empty for an absent one."""
    return list(_INDEX.iter_unpack(raw)) if raw else []
