"""The widest network a zone takes: one stray ``0.0.0.0/0`` must not list the Internet.

A zone file bounds the networks it takes (overrides, exclude files, imported lists) by
the shortest prefix length per address family; /0 never passes because the minimum is 1.
"""

from __future__ import annotations

from dataclasses import dataclass

from listformat.names import IPNetwork
from zoned.errors import ZonedError

DEFAULT_WIDEST_V4 = 8
DEFAULT_WIDEST_V6 = 16


class NetworkTooWide(ZonedError, ValueError):
    """A network shorter than the zone's widest prefix: it would list too much at once."""


@dataclass(frozen=True, slots=True)
class WidestPrefix:
    """The shortest prefix length a listed, unlisted or excluded network may have."""

    v4: int = DEFAULT_WIDEST_V4
    v6: int = DEFAULT_WIDEST_V6

    def allows(self, network: IPNetwork) -> bool:
        return network.prefixlen >= (self.v4 if network.version == 4 else self.v6)

    def check(self, network: IPNetwork) -> None:
        """Raise :class:`NetworkTooWide` (a ValueError) unless ``network`` is allowed."""
        if not self.allows(network):
            key, bound = ("v4", self.v4) if network.version == 4 else ("v6", self.v6)
            raise NetworkTooWide(
                f"network {network} is wider than the zone allows (widest_prefix.{key}: /{bound})"
            )
