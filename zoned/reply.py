"""The reply policy both answer paths apply: header flags, size limit, OPT echo, TC.

The fast path renders replies by hand and the full path with dnspython; what goes in
the header, how large the reply may be and what OPT it carries is decided here once,
so the two cannot drift apart.  A reply over the limit is sent with TC set and no
records in any section but our OPT (RFC 2181 9: no partial RRsets); the client retries
over TCP.  Each path writes that truncated form in its own medium.
"""

from __future__ import annotations

from listformat.wire import CD, EDNS_DO, MAX_TCP, MIN_UDP, OPCODE_MASK, OUR_PAYLOAD, QR, RD


def policy(
    flags: int, tcp: bool, payload: int | None, ednsflags: int
) -> tuple[int, int, int | None]:
    """(response flags, size limit, our OPT's flags) for a query with header ``flags``.

    ``payload`` is the query's OPT UDP payload size (None without an OPT) and
    ``ednsflags`` its OPT TTL field.  The response flags copy the opcode, RD and CD
    (RFC 1035 4.1.1, RFC 4035 3.2.2); AA and the rcode are the answer's to add.  Our OPT
    (None: the reply has none) echoes only DO (RFC 3225 3) and advertises OUR_PAYLOAD;
    the limit is the client's payload within [512, OUR_PAYLOAD] (RFC 6891 6.2.5), 512
    without EDNS (RFC 1035 4.2.1), and a TCP message's maximum over TCP.
    """
    rflags = QR | (flags & (OPCODE_MASK | RD | CD))
    if payload is None:
        return rflags, MAX_TCP if tcp else MIN_UDP, None
    limit = MAX_TCP if tcp else max(MIN_UDP, min(payload, OUR_PAYLOAD))
    return rflags, limit, ednsflags & EDNS_DO
