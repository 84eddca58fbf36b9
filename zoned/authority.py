"""The authoritative answer to one question: DNS rules over the served zones.

This is where the protocol's rules for an authority are applied, each with its RFC;
the result is a value (rcode, answer RRs, whether the SOA goes in authority) that the
fast and the full reply builders both render.  Nothing here touches the wire.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal, NamedTuple

from listformat.wire import NOERROR, NXDOMAIN, REFUSED, SERVFAIL, T_ANY, T_CNAME, T_SOA
from zoned import tsig
from zoned.kinds import DROP, Kind
from zoned.packed import find_rrset, first_rrset
from zoned.zone import Found, ServedZone


class Outcome(NamedTuple):
    """What to answer: rcode, answer RRs (owned by the question name), negative SOA.

    A tuple because one is made per query on the hot path; negative outcomes are
    made once per zone (:func:`negative`) and reused.
    """

    rcode: int
    zone: ServedZone | None
    answer_type: int  # the rtype of the answer RRs; 0 when there are none
    answer_count: int
    answer: bytes
    negative: bool  # the zone's SOA goes in the authority section (RFC 2308)


REFUSED_OUTCOME = Outcome(REFUSED, None, 0, 0, b"", False)
# The store cannot answer for the name (a damaged value, a refused store): SERVFAIL,
# without AA -- we cannot vouch for an answer we do not have (RFC 1035 4.1.1).
SERVFAIL_OUTCOME = Outcome(SERVFAIL, None, 0, 0, b"", False)


def negative(zone: ServedZone, rcode: int) -> Outcome:
    """NXDOMAIN or NODATA from ``zone``: no answer, the SOA in authority."""
    return Outcome(rcode, zone, 0, 0, b"", True)


class Authority:
    """The set of served zones; routes a question to its zone and applies the rules."""

    def __init__(self, zones: Iterable[ServedZone]) -> None:
        self.zones: dict[tuple[bytes, ...], ServedZone] = {z.compiled.labels: z for z in zones}
        self.depths = tuple(sorted({len(labels) for labels in self.zones}, reverse=True))
        self._nxdomain = {z.compiled.labels: negative(z, NXDOMAIN) for z in self.zones.values()}
        self._nodata = {z.compiled.labels: negative(z, NOERROR) for z in self.zones.values()}
        # The TSIG keys of every zone's transfer section, for transfers and signed queries.
        self.keyring = tsig.keyring(
            config.transfer.key
            for config in (zone.compiled.config for zone in self.zones.values())
            if config.transfer is not None and config.transfer.key is not None
        )

    def refresh(self) -> bool:
        """Pick up new store serials (and replaced or damaged stores); True if any zone's
        serial changed."""
        changed = False
        for zone in self.zones.values():
            changed |= zone.poll()
        return changed

    def zone_for(self, labels: tuple[bytes, ...]) -> tuple[ServedZone, int] | None:
        """The zone holding ``labels`` (lowercase) and how many labels lie below its apex."""
        n = len(labels)
        for depth in self.depths:
            if depth <= n:
                zone = self.zones.get(labels[n - depth :])
                if zone is not None:
                    return zone, n - depth
        return None

    def resolve(
        self, labels: tuple[bytes, ...], qtype: int, peer: str | None = None
    ) -> Outcome | Literal[Kind.DROP]:
        """Answer ``qtype`` at ``labels`` (lowercase, leftmost first) to client ``peer``;
        :data:`~zoned.kinds.DROP` when nothing at all is to be sent."""
        found = self.zone_for(labels)
        if found is None:
            # Not authoritative and no recursion: REFUSED (RFC 1035 4.1.1, RFC 8906 3.1.5).
            return REFUSED_OUTCOME
        zone, below = found
        acl = zone.compiled.config.queries
        if acl is not None and (peer is None or peer not in acl.allow):
            # A private list: others learn nothing, not even that the zone exists here.
            return DROP if acl.denied == "drop" else REFUSED_OUTCOME
        nodata = self._nodata[zone.compiled.labels]
        if below == 0:
            if qtype == T_ANY:
                # Minimal ANY (RFC 8482 4.1): one RRset; the SOA always exists at the apex.
                qtype = T_SOA
            group = zone.snapshot.apex.get(qtype)
            if group is None:
                return nodata
            return Outcome(NOERROR, zone, qtype, group[0], group[1], False)
        result = zone.find(labels[:below])
        if type(result) is not bytes:
            if result is Found.EMPTY:
                # An empty non-terminal exists: NODATA, not NXDOMAIN (RFC 8020 2).
                return nodata
            if result is Found.BROKEN:
                # Fail closed: never NXDOMAIN (that unlists) nor damaged data.
                return SERVFAIL_OUTCOME
            return self._nxdomain[zone.compiled.labels]
        if qtype == T_ANY:
            first = first_rrset(result)
            if first is None:
                return nodata
            return Outcome(NOERROR, zone, first[0], first[1], first[2], False)
        hit = find_rrset(result, qtype)
        if hit is not None:
            return Outcome(NOERROR, zone, qtype, hit[0], hit[1], False)
        if qtype != T_CNAME:
            # An alias answers every type with its CNAME; resolvers follow it (RFC 1034 4.3.2).
            cname = find_rrset(result, T_CNAME)
            if cname is not None:
                return Outcome(NOERROR, zone, T_CNAME, cname[0], cname[1], False)
        # The name exists without this type: NODATA with the SOA (RFC 2308 2.2).
        return nodata
