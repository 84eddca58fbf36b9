"""Reputation scores from counters, with Rspamd's semantics (docs/rspamd-layout.md).

Shared by the publisher, which puts the score into ``sc``, and by clients, which recompute
it from the TXT numbers; both must get the same float from the same numbers, so these are
pure functions of their arguments.  Every score returned is in [-1, 1].

- :func:`rspamd_score`: Rspamd 3.x's reputation plugin (``generic_reputation_calc``): 0
  below ``lower_bound`` messages, else ``tanh(mean / reject_score * 1.83178 - 0.5493)``
  over the bucket values.
- :func:`counters_score`: the older spam/ham/probable counters.
- :func:`buckets_score`: repzone's windowed counters (docs/buckets-layout.md).
- :func:`combine`: several components into one score, as Rspamd's ip selector adds
  ip, asn and country.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType

LOWER_BOUND = 10
REJECT_SCORE = 15.0  # Rspamd's stock reject action; the plugin reads the configured one
# Rspamd's constants as written in reputation.lua: atanh(0.95) and atanh(0.5), rounded.
# Exact atanh values would differ from Rspamd in the fifth decimal.
TANH_SCALE = 1.83178
TANH_SHIFT = 0.5493

# Weights of Rspamd's ip selector components (``ip_selector.config.scores``).
IP_WEIGHTS: Mapping[str, float] = MappingProxyType({"ip": 1.0, "asn": 0.4, "country": 0.01})

MULT_SPAM = 1.0
MULT_HAM = -1.0
MULT_JUNK = 0.5


def clamp(score: float) -> float:
    """``score`` limited to [-1, 1]; NaN becomes 0, as Rspamd inserts no symbol for it."""
    if math.isnan(score):
        return 0.0
    return max(-1.0, min(1.0, score))


def rspamd_score(
    n: float,
    values: Sequence[float],
    *,
    lower_bound: float = LOWER_BOUND,
    reject_score: float = REJECT_SCORE,
) -> float:
    """Rspamd's score of one token from its message count and bucket values.

    ``values`` are what Rspamd's read script returns: each ``v<bucket>`` field times its
    bucket's ``mult``.  Rspamd scores 0 when ``n < lower_bound`` (so ``n == lower_bound``
    is scored), else ``tanh(mean(values) / reject_score * 1.83178 - 0.5493)``.  With no
    values Rspamd divides by zero and inserts nothing: 0 here.  The component weight
    (Rspamd's ``mult`` argument) is applied by :func:`combine`, not here.
    """
    if not reject_score > 0:
        raise ValueError(f"reject_score must be positive, got {reject_score!r}")
    if n < lower_bound or not values:
        return 0.0
    mean = math.fsum(values) / len(values)
    return clamp(math.tanh(mean / reject_score * TANH_SCALE - TANH_SHIFT))


def counters_score(s: float, h: float, p: float, *, lower_bound: float = LOWER_BOUND) -> float:
    """``(s - h + 0.5 p) / (s + h + p)`` once ``s + h + p >= lower_bound``, else 0.

    Spam counts +1, ham -1 and probable spam +0.5 per message, so the score is the mean
    verdict of the token's messages.
    """
    _check_counts(s, h, p)
    total = s + h + p
    if total < lower_bound or total <= 0:
        return 0.0
    return clamp((s - h + 0.5 * p) / total)


@dataclass(frozen=True, slots=True)
class BucketCounts:
    """Verdict counts of one bucket's current window, and that bucket's weight ``mult``."""

    spam: float = 0
    ham: float = 0
    junk: float = 0
    mult: float = 1.0

    @property
    def total(self) -> float:
        """Messages counted in this window."""
        return self.spam + self.ham + self.junk


def buckets_score(
    buckets: Sequence[BucketCounts],
    *,
    mult_spam: float = MULT_SPAM,
    mult_ham: float = MULT_HAM,
    mult_junk: float = MULT_JUNK,
    lower_bound: float = LOWER_BOUND,
) -> float:
    """The documented bucket formula, normalised so that it reads like the counters one.

    Rspamd's documentation combines buckets as ``sum((spam * mult_spam + ham * mult_ham +
    junk * mult_junk) * bucket.mult)``, a number that grows with traffic.  Here that sum is
    divided by ``sum(bucket.total * bucket.mult)``, the same messages weighted alike: the
    result is a weighted mean verdict, in [-1, 1] whenever the three multipliers are (and
    clamped otherwise).  With one bucket and the default multipliers it equals
    :func:`counters_score` with junk as probable spam.

    One verdict is counted once in every bucket (the 1h window lies inside the 1d one),
    so ``lower_bound`` is compared with the largest single bucket total, not the sum.
    """
    for bucket in buckets:
        _check_counts(bucket.spam, bucket.ham, bucket.junk)
        if not bucket.mult >= 0 or math.isinf(bucket.mult):
            raise ValueError(f"bucket mult must be finite and >= 0, got {bucket.mult!r}")
    if not buckets or max(b.total for b in buckets) < lower_bound:
        return 0.0
    weight = math.fsum(b.total * b.mult for b in buckets)
    if weight <= 0:
        return 0.0
    raw = math.fsum(
        (b.spam * mult_spam + b.ham * mult_ham + b.junk * mult_junk) * b.mult for b in buckets
    )
    return clamp(raw / weight)


def combine(components: Sequence[tuple[float, float]], *, limit: bool = True) -> float:
    """Component scores weighted and added, as Rspamd's ip selector does.

    Rspamd (``ipstats_check``) scores ip, asn and country each with its weight as the
    multiplier (:data:`IP_WEIGHTS`) and inserts the plain sum: a weighted sum, not a
    weighted mean, so a bad ASN adds to a bad IP.  Rspamd does not clamp that sum (it can
    reach 1.41); ``limit=True`` clamps it to [-1, 1] like every other score here, and
    ``limit=False`` returns Rspamd's value.
    """
    total = math.fsum(score * weight for score, weight in components)
    return clamp(total) if limit else total


def _check_counts(*counts: float) -> None:
    for count in counts:
        if not count >= 0 or math.isinf(count):
            raise ValueError(f"counts must be finite and >= 0, got {count!r}")
