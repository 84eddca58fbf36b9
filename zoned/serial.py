"""SOA serial arithmetic (RFC 1982, SERIAL_BITS = 32).

Serials wrap, so "newer" is not integer ``>``: a secondary compares them in this
arithmetic, and so must the store that picks them and the transfers that chain them.
Serial 0 is reserved by repzone to mean "nothing published yet": a store starts there
and :func:`next_serial` never returns it.
"""

from __future__ import annotations

SERIAL_BITS = 32
MODULUS = 1 << SERIAL_BITS
HALF = 1 << (SERIAL_BITS - 1)
MAX_ADD = HALF - 1  # RFC 1982 3.1: the largest n that may be added


def _check(s: int) -> None:
    if not 0 <= s < MODULUS:
        raise ValueError(f"serial {s} out of range 0..{MODULUS - 1}")


def serial_gt(a: int, b: int) -> bool:
    """Whether serial ``a`` is newer than ``b`` (RFC 1982 3.2).

    Pairs exactly 2**31 apart are undefined by the RFC; this says False both ways,
    so neither counts as newer and callers fall back to a full transfer.
    """
    _check(a)
    _check(b)
    return (a < b and b - a > HALF) or (a > b and a - b < HALF)


def serial_add(s: int, n: int) -> int:
    """``s + n`` in serial arithmetic (RFC 1982 3.1): ``n`` must be in 0 .. 2**31 - 1."""
    _check(s)
    if not 0 <= n <= MAX_ADD:
        raise ValueError(f"cannot add {n} to a serial (0..{MAX_ADD})")
    return (s + n) % MODULUS


def next_serial(old: int, now: int) -> int:
    """The serial for a commit after ``old``: unix time ``now`` when that is newer, else old + 1.

    Unix time keeps serials meaningful to operators and newer than anything a store that
    was deleted and recreated handed out before.  Many commits within one second, or a
    clock that went backwards, fall back to ``old + 1``, which is always newer.  0 is
    skipped on wrap (it means "never published"); ``old + 2`` is still newer than ``old``.
    Nothing was published at serial 0, so any non-zero serial may follow it.
    """
    _check(old)
    candidate = now % MODULUS
    if old == 0:
        return candidate or 1
    for serial in (candidate, serial_add(old, 1), serial_add(old, 2)):
        if serial != 0 and serial_gt(serial, old):
            return serial
    raise AssertionError("unreachable: old + 1 or old + 2 is always newer")  # pragma: no cover
