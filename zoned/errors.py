"""The root of zoned's exceptions, as dnspython's ``DNSException`` is of its own.

Catch :class:`ZonedError` to catch every error zoned raises on purpose; each subclass
lives beside the code that raises it, and those that reject a value are also
:class:`ValueError`, as they always were::

    ZonedError
    |-- ConfigError     (zoned.yamlconf) a configuration is invalid, every problem listed
    |-- LimitsError     (zoned.connections, ValueError) an option's value cannot be used
    |-- StoreError      (zoned.store) the zone store cannot be opened, read or written
    |   |-- StoreDamaged
    |   `-- StoreOutdated
    |-- PackedError     (zoned.packed, ValueError) a packed answer is malformed
    |-- JournalError    (zoned.journal, ValueError) a journal entry does not decode
    |-- NetworkTooWide  (zoned.prefixes, ValueError) a network wider than the zone allows
    |-- FramingError    (zoned.framing) not a sequence of DNS-over-TCP frames
    `-- TsigRejected    (zoned.tsig) a signed request failed verification
"""

from __future__ import annotations


class ZonedError(Exception):
    """Something zoned was asked to do, or was sent, cannot be used."""
