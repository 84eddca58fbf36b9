"""A-record return codes: score bands mapped to 127.0.X.Y.

Scanners that only look at A records (Rspamd's rbl module, Postfix postscreen,
SpamAssassin check_rbl) read the reputation from the returned address, so the mapping
is part of the list format.  127.0.0.1 is never returned (RFC 5782 section 5) and
127.255.255.0/24 is reserved for error signals.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

IPv4 = ipaddress.IPv4Address


class CodeError(ValueError):
    """The address cannot be used as a return code."""


@dataclass(frozen=True)
class Band:
    """Scores ``>= min_score`` (and below the next band up) answer ``code``."""

    min_score: float
    code: IPv4


@dataclass(frozen=True)
class ReturnCodes:
    """A zone's mapping from score to A record; ``graded`` encodes the score itself."""

    bands: tuple[Band, ...]
    graded: bool = False
