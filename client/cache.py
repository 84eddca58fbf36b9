"""A bounded TTL cache for DNS answers, with RFC 2308 negative caching.

A scanner looks the same senders, domains and URLs up again and again, and the list's
TTLs say how long an answer stays true: caching by them saves most queries without ever
serving data older than the list allows.

- Positive answers live for their RRset's TTL.
- NXDOMAIN and NODATA live for the negative TTL, ``min(SOA TTL, SOA MINIMUM)`` of the
  SOA in the authority section (RFC 2308 section 5); a negative answer without an SOA
  is not cached (RFC 2308 section 5: "SHOULD NOT be cached").
- Failures (timeouts, SERVFAIL, REFUSED) are never cached: the next check asks again.

Which answers are cacheable, and for how long, is decided by the caller
(:func:`client.answers.answer_from_reply` computes ``Answer.ttl``); this module only
stores values with an expiry.  The cache is bounded (least recently used entries are
dropped first), takes its clock as an argument so tests can move time, and is safe to
share between threads.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

DEFAULT_MAX_ENTRIES = 100_000
# A zone may publish TTLs of weeks; a scanner should still notice a changed list daily.
DEFAULT_MAX_TTL = 86_400.0


def negative_ttl(soa_ttl: int, soa_minimum: int) -> int:
    """TTL of an NXDOMAIN or NODATA answer: the smaller of the SOA's TTL and MINIMUM.

    RFC 2308 section 5: the negative answer is cached for that time, as the SOA record
    that proves it would be.
    """
    return max(0, min(soa_ttl, soa_minimum))


class TTLCache(Generic[K, V]):
    """Values that expire after their own TTL; at most ``max_entries`` of them (LRU).

    ``clock`` returns seconds on a monotonic scale (``time.monotonic`` by default); tests
    pass a fake one.  ``max_ttl`` caps every TTL, so a misconfigured zone cannot pin an
    answer for months.
    """

    def __init__(
        self,
        max_entries: int = DEFAULT_MAX_ENTRIES,
        *,
        clock: Callable[[], float] = time.monotonic,
        max_ttl: float = DEFAULT_MAX_TTL,
    ) -> None:
        if max_entries < 1:
            raise ValueError(f"max_entries must be at least 1, got {max_entries}")
        self.max_entries = max_entries
        self.max_ttl = max_ttl
        self._clock = clock
        self._entries: OrderedDict[K, tuple[float, V]] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, key: K) -> V | None:
        """The live value for ``key``, or None when absent or expired (and then dropped)."""
        now = self._clock()
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                self.misses += 1
                return None
            expires, value = entry
            if now >= expires:
                del self._entries[key]
                self.misses += 1
                return None
            self._entries.move_to_end(key)
            self.hits += 1
            return value

    def remaining(self, key: K) -> float | None:
        """Seconds ``key`` still lives, or None; for showing a cached answer's TTL."""
        now = self._clock()
        with self._lock:
            entry = self._entries.get(key)
            if entry is None or now >= entry[0]:
                return None
            return entry[0] - now

    def put(self, key: K, value: V, ttl: float | None) -> None:
        """Keep ``value`` for ``ttl`` seconds; a TTL of None or <= 0 stores nothing."""
        if ttl is None or ttl <= 0:
            return
        expires = self._clock() + min(ttl, self.max_ttl)
        with self._lock:
            self._entries[key] = (expires, value)
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)

    def clear(self) -> None:
        """Forget everything (e.g. after the list operator announced a correction)."""
        with self._lock:
            self._entries.clear()

    def __len__(self) -> int:
        """Entries held, expired ones included until they are next looked at or evicted."""
        return len(self._entries)
