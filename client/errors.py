"""The root of the client's exceptions, as dnspython's ``DNSException`` is of its own.

Catch :class:`ClientError` to catch every error the client raises on purpose; each
subclass lives beside the code that raises it, and those that reject a value are also
:class:`ValueError`, as they always were::

    ClientError
    |-- PlanError       (client.selectorconfig, ValueError) a selector cannot be planned
    |-- SelectorError   (client.selectorlang, ValueError) an expression cannot be used
    |-- AsnZoneError    (client.asn, ValueError) an asn zone is not a domain name
    |-- MessageError    (client.facts, ValueError) the input is not a message
    |-- ReplyError      (client.dnswire, ValueError) a response cannot be parsed at all
    `-- UsageError      (client.repq) the command line or its configuration cannot be used

A lookup never raises for what the network does (timeouts, SERVFAIL, a malformed TXT):
those are answers' statuses (:mod:`client.answers`).  The list formats' own errors
(:mod:`listformat`, e.g. ``OwnerNameError``) are theirs, not the client's.
"""

from __future__ import annotations


class ClientError(Exception):
    """Something the client was asked to do cannot be done."""
