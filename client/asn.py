"""The sender's ASN and country from a zone in the Team Cymru TXT format, as Rspamd finds them.

Rspamd's reputation plugin counts the ip selector's asn and country components under
the values its ``asn`` module put into the task (``provider_type = "rspamd"``): a TXT
query for the sender's reversed octets (IPv4) or nibbles (IPv6) under the module's
``ip4``/``ip6`` zone, answered in the form Team Cymru's origin zones use::

    "15169 | 8.8.8.0/24 | US | arin | 2023-12-28"

Rspamd splits that text at every ``|`` and white space, dropping empty parts, and takes
the first three parts as AS number, network and country (an AS number that is not a
number is dropped; the country is kept as written).  A client that does not know the
sender's ASN and country does the same through :func:`lookup_query` and
:func:`apply`; nothing here does I/O.  Off unless an :class:`AsnZones` is configured.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass

from client.answers import Answer, Query
from client.errors import ClientError
from client.facts import Facts
from client.selectorfuncs import sender_address
from client.selectors import Token, is_local_ip
from listformat.names import reverse_ip

_SPLIT = re.compile(r"[|\s]")
_ASN = re.compile(r"[0-9]{1,10}")
_ZONE = re.compile(r"[a-z0-9_-]{1,63}(?:\.[a-z0-9_-]{1,63})*")


class AsnZoneError(ClientError, ValueError):
    """An asn zone that is not a domain name."""


@dataclass(frozen=True)
class AsnZones:
    """The zones asked for IPv4 and IPv6 senders (Rspamd's ``provider_info``)."""

    ip4: str
    ip6: str | None = None

    def __post_init__(self) -> None:
        for name in ("ip4", "ip6"):
            value = getattr(self, name)
            if value is None:
                continue
            apex = value.strip().rstrip(".").lower()
            if not _ZONE.fullmatch(apex) or len(apex) > 190:
                raise AsnZoneError(f"asn zone {name}: {value!r} is not a domain name")
            object.__setattr__(self, name, apex)


@dataclass(frozen=True)
class AsnInfo:
    """What one answer says of a sender."""

    asn: str | None
    network: str | None
    country: str | None


def parse_cymru(text: str) -> AsnInfo | None:
    """The parts of one Team Cymru TXT string as Rspamd's asn module takes them.

    None when the text has no parts at all.
    """
    parts = [part for part in _SPLIT.split(text) if part]
    if not parts:
        return None
    asn = parts[0] if _ASN.fullmatch(parts[0]) else None
    network = parts[1] if len(parts) > 1 else None
    country = parts[2] if len(parts) > 2 else None
    return AsnInfo(asn, network, country)


def query_name(zones: AsnZones, ip: str) -> str | None:
    """The name the asn module asks for ``ip``; None for local or invalid senders."""
    address = sender_address(ip)
    if address is None or is_local_ip(str(address)):
        return None  # Rspamd's asn module skips local senders (check_local = false)
    zone = zones.ip4 if address.version == 4 else zones.ip6
    if zone is None:
        return None
    return f"{reverse_ip(address)}.{zone}"


def lookup_query(zones: AsnZones | None, facts: Facts) -> Query | None:
    """The query that finds what the caller did not give (asn or country), if any."""
    if zones is None or facts.ip is None or (facts.asn is not None and facts.country is not None):
        return None
    name = query_name(zones, facts.ip)
    if name is None:
        return None
    return Query(Token("ip", "asn-lookup", facts.ip, 0.0), name)


def apply(facts: Facts, answer: Answer) -> Facts:
    """``facts`` with the asn and country the answer gives, where the caller gave none.

    Answers of our own TXT format are not Cymru data; a failed lookup leaves the facts
    as they were (the components are then not looked up, as in Rspamd).
    """
    if answer.text is None or answer.text.startswith("v="):
        return facts
    info = parse_cymru(answer.text)
    if info is None:
        return facts
    return dataclasses.replace(
        facts,
        asn=facts.asn if facts.asn is not None else info.asn,
        country=facts.country if facts.country is not None else info.country,
    )
