"""Queries and answers: what the plan asks, and what the list said to each question.

An :class:`Answer` carries a status (:data:`STATUSES`); the :data:`FAILURES` among them
mean the list could not be read, and :func:`answer_from_reply` turns a parsed DNS
:class:`~client.dnswire.Reply` into an answer (RFC 2308 TTLs for negative answers; the
first TXT record of a format this reader understands).  Nothing here raises for a bad
answer.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

import dns.rcode

from client.cache import negative_ttl
from client.dnswire import RCODE_STATUS, Reply
from client.selectors import Token
from listformat import txt

STATUSES: Final = (
    "hit",
    "nxdomain",
    "nodata",
    "timeout",
    "servfail",
    "refused",
    "error",
    "malformed",
    "newer_version",
)
#: Statuses that mean the list could not be read: the token scores 0 and the result
#: lists them in ``errors``.  nxdomain and nodata are answers ("not listed"), not errors.
FAILURES: Final = frozenset(
    {"timeout", "servfail", "refused", "error", "malformed", "newer_version"}
)


@dataclass(frozen=True)
class Query:
    """One DNS question the plan needs answered, and the token it is for."""

    token: Token
    qname: str  # absolute name without the trailing dot, lowercase
    rdtype: str = "TXT"


@dataclass(frozen=True)
class Answer:
    """What the list said to one query (or why it said nothing).

    ``text`` is the raw TXT data (joined strings) that was decoded, ``ttl`` how long the
    answer may be cached (None: not at all), ``detail`` a human explanation of a failure.
    """

    query: Query
    status: str
    record: txt.TxtRecord | None = None
    detail: str = ""
    text: str | None = None
    ttl: int | None = None
    cached: bool = False

    @property
    def failed(self) -> bool:
        """True when the list could not be read (see :data:`FAILURES`)."""
        return self.status in FAILURES


def failure(query: Query, status: str, detail: str = "") -> Answer:
    """An answer for a query that got no usable reply (timeout, network error...)."""
    if status not in FAILURES:
        raise ValueError(f"{status!r} is not a failure status")
    return Answer(query, status, detail=detail)



def answer_from_reply(query: Query, reply: Reply) -> Answer:
    """The status, record and cache TTL of one reply (RFC 2308 for negative answers)."""
    if reply.rcode == 0 and reply.texts:
        return _decode_texts(query, reply.texts, reply.ttl)
    negative = negative_ttl(*reply.soa) if reply.soa is not None else None
    if reply.rcode == 0:
        if reply.truncated:
            return failure(query, "error", "truncated reply and no TCP answer")
        return Answer(query, "nodata", ttl=negative)
    if reply.rcode == 3:
        return Answer(query, "nxdomain", ttl=negative)
    status = RCODE_STATUS.get(reply.rcode)
    if status is not None:
        return failure(query, status, f"rcode {status.upper()}")
    return failure(query, "error", f"rcode {_rcode_text(reply.rcode)}")


def _rcode_text(rcode: int) -> str:
    try:
        return dns.rcode.to_text(dns.rcode.Rcode(rcode))
    except ValueError:
        return str(rcode)


def _decode_texts(query: Query, texts: Sequence[bytes], ttl: int | None) -> Answer:
    """The record of a TXT RRset: the first ``v=`` record this reader understands.

    A list changing format may publish a v=2 record beside its v=1 one; only when no
    record is readable is the answer ``newer_version`` (or ``malformed``).
    """
    newer: tuple[str, str] | None = None
    bad: tuple[str, str] | None = None
    for raw in texts:
        shown = raw.decode("ascii", "backslashreplace")
        if not raw.startswith(b"v="):
            bad = bad or (shown, "not a v= record")
            continue
        try:
            record = txt.decode(raw)
        except txt.UnsupportedVersion as exc:
            newer = newer or (shown, str(exc))
        except txt.TxtError as exc:
            bad = bad or (shown, str(exc))
        else:
            return Answer(query, "hit", record, text=shown, ttl=ttl)
    if newer is not None:
        return Answer(query, "newer_version", detail=newer[1], text=newer[0], ttl=ttl)
    assert bad is not None
    return Answer(query, "malformed", detail=bad[1], text=bad[0], ttl=ttl)
