"""A-record return codes: score bands mapped to 127.0.X.Y.

Scanners that only look at A records (Rspamd's rbl module, Postfix postscreen,
SpamAssassin check_rbl) read the reputation from the returned address, so the mapping
is part of the list format.  127.0.0.1 is never returned (RFC 5782 section 5) and
127.255.255.0/24 is reserved for error signals.

Bands are thresholds pointing away from a neutral middle: an *upward* band
(``min_score``) takes scores ``>= min_score``, a *downward* band (``max_score``)
scores ``<= max_score``; the most extreme band that matches wins, and a score that no
band takes is unlisted (no A record).  This keeps negative bands as natural to write
as positive ones and makes overlaps easy to rule out.  The defaults (README):

======================  ==============  ==========
score                   code            meaning
======================  ==============  ==========
>= 0.8                  127.0.0.2       very bad
>= 0.4                  127.0.0.3       bad
>= 0.1                  127.0.0.4       suspicious
> -0.1 and < 0.1        (no A record)   neutral
<= -0.1                 127.0.0.6       good
<= -0.4                 127.0.0.7       very good
======================  ==============  ==========

Graded mode answers ``127.0.1.N`` with ``N = round((score + 1) * 100)`` (0..200, the
score clamped to [-1, 1]), for clients that want the score from the A record alone;
127.0.1.0/24 is therefore never a band's code.
"""

from __future__ import annotations

import ipaddress
import math
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

IPv4 = ipaddress.IPv4Address

LOOPBACK = ipaddress.IPv4Network("127.0.0.0/8")
ERROR_NETWORK = ipaddress.IPv4Network("127.255.255.0/24")
GRADED_NETWORK = ipaddress.IPv4Network("127.0.1.0/24")
NEVER = IPv4("127.0.0.1")
GRADED_MAX = 200

#: Reserved error signals in 127.255.255.0/24, in the spirit of Spamhaus's codes, so
#: that a client can tell "the list refused to answer" from "listed".  The server
#: answers these instead of data; clients must not treat them as listings.
ERROR_CODES: Mapping[str, IPv4] = MappingProxyType(
    {
        # The query name is not something this list serves (wrong zone or scheme).
        "misconfigured": IPv4("127.255.255.252"),
        # The list has no current data for the zone (e.g. stale source), try later.
        "unavailable": IPv4("127.255.255.253"),
        # The query is not allowed from here, e.g. it came through a public resolver.
        "refused": IPv4("127.255.255.254"),
        # The querier exceeded its rate limit.
        "limited": IPv4("127.255.255.255"),
    }
)


class CodeError(ValueError):
    """The address cannot be used as a return code."""


def validate_code(addr: IPv4) -> None:
    """Raise CodeError unless ``addr`` may be returned as a listing's A record."""
    if not isinstance(addr, IPv4):
        raise CodeError(f"return code {addr!r} is not an IPv4 address")
    if addr not in LOOPBACK:
        raise CodeError(f"return code {addr} is outside 127.0.0.0/8")
    if addr == NEVER:
        raise CodeError("return code 127.0.0.1 is never used (RFC 5782 section 5)")
    if addr in ERROR_NETWORK:
        raise CodeError(f"return code {addr} is in 127.255.255.0/24, reserved for errors")


def error_for_code(addr: IPv4) -> str | None:
    """The name of the error signal ``addr`` stands for, or None if it is not one."""
    for name, code in ERROR_CODES.items():
        if code == addr:
            return name
    return None


def _check_score(score: float) -> float:
    if math.isnan(score):
        raise ValueError("score is NaN")
    return score


def graded_code(score: float) -> IPv4:
    """Graded-mode code of ``score``: 127.0.1.N, N = round((score + 1) * 100)."""
    clamped = min(1.0, max(-1.0, _check_score(score)))
    return GRADED_NETWORK[round((clamped + 1.0) * 100)]


def graded_score(addr: IPv4) -> float | None:
    """Inverse of :func:`graded_code` (to 0.01), or None when ``addr`` is not graded."""
    if addr not in GRADED_NETWORK:
        return None
    step = int(addr) - int(GRADED_NETWORK.network_address)
    if step > GRADED_MAX:
        return None
    return (step - 100) / 100


def _as_ipv4(code: IPv4 | str) -> IPv4:
    try:
        return IPv4(code)
    except ValueError:
        raise CodeError(f"return code {code!r} is not an IPv4 address") from None


@dataclass(frozen=True)
class Band:
    """Scores ``>= min_score`` (upward) or ``<= max_score`` (downward) answer ``code``.

    Exactly one of the two thresholds is set; see the module docstring.
    """

    min_score: float | None
    code: IPv4
    max_score: float | None = None

    @classmethod
    def at_least(cls, score: float, code: IPv4 | str) -> Band:
        """An upward band: scores from ``score`` up to the next band up."""
        return cls(min_score=score, code=_as_ipv4(code))

    @classmethod
    def at_most(cls, score: float, code: IPv4 | str) -> Band:
        """A downward band: scores from ``score`` down to the next band down."""
        return cls(min_score=None, code=_as_ipv4(code), max_score=score)

    def __post_init__(self) -> None:
        if (self.min_score is None) == (self.max_score is None):
            raise CodeError(f"band {self.code}: set exactly one of min_score and max_score")
        threshold = self.threshold
        if not (math.isfinite(threshold) and -1.0 <= threshold <= 1.0):
            raise CodeError(f"band {self.code}: threshold {threshold!r} is not in [-1, 1]")
        validate_code(self.code)
        if self.code in GRADED_NETWORK:
            raise CodeError(f"band {self.code}: 127.0.1.0/24 is reserved for graded codes")

    @property
    def upward(self) -> bool:
        """True for a ``>= min_score`` band, False for a ``<= max_score`` band."""
        return self.min_score is not None

    @property
    def threshold(self) -> float:
        """The band's one threshold, whichever direction it points."""
        if self.min_score is not None:
            return self.min_score
        assert self.max_score is not None  # guaranteed by __post_init__
        return self.max_score

    def matches(self, score: float) -> bool:
        """Whether ``score`` is beyond this band's threshold (ignoring other bands)."""
        if self.min_score is not None:
            return score >= self.min_score
        return self.max_score is not None and score <= self.max_score


DEFAULT_BANDS: tuple[Band, ...] = (
    Band.at_least(0.8, "127.0.0.2"),
    Band.at_least(0.4, "127.0.0.3"),
    Band.at_least(0.1, "127.0.0.4"),
    Band.at_most(-0.1, "127.0.0.6"),
    Band.at_most(-0.4, "127.0.0.7"),
)


@dataclass(frozen=True)
class ReturnCodes:
    """A zone's mapping from score to A record; ``graded`` encodes the score itself.

    Graded mode takes no bands: every score gets its 127.0.1.N code.
    """

    bands: tuple[Band, ...]
    graded: bool = False

    @classmethod
    def default(cls) -> ReturnCodes:
        """The documented default bands (module docstring)."""
        return cls(DEFAULT_BANDS)

    def __post_init__(self) -> None:
        if self.graded and self.bands:
            raise CodeError("graded mode derives codes from the score; it takes no bands")
        seen_codes: set[IPv4] = set()
        for band in self.bands:
            if band.code in seen_codes:
                raise CodeError(f"two bands answer {band.code}; a client could not tell them apart")
            seen_codes.add(band.code)
        up = [band.threshold for band in self.bands if band.upward]
        down = [band.threshold for band in self.bands if not band.upward]
        for direction, thresholds in (("upward", up), ("downward", down)):
            if len(set(thresholds)) != len(thresholds):
                raise CodeError(f"two {direction} bands share a threshold")
        if up and down and max(down) >= min(up):
            raise CodeError(
                f"bands overlap: scores in [{min(up)}, {max(down)}] match both an upward "
                "and a downward band"
            )

    def band_for(self, score: float) -> Band | None:
        """The band that takes ``score`` (the most extreme matching one), or None."""
        _check_score(score)
        # Validation rules out matches in both directions, so rank within one: the
        # highest upward threshold, or the lowest downward one.
        matching = [band for band in self.bands if band.matches(score)]
        if not matching:
            return None
        return max(matching, key=lambda band: band.threshold if band.upward else -band.threshold)

    def code_for(self, score: float) -> IPv4 | None:
        """The A record for ``score``, or None when the score is unlisted (neutral)."""
        if self.graded:
            return graded_code(score)
        band = self.band_for(score)
        return None if band is None else band.code

    def band_for_code(self, addr: IPv4) -> Band | None:
        """The band a client received ``addr`` from, or None when no band answers it."""
        for band in self.bands:
            if band.code == addr:
                return band
        return None
