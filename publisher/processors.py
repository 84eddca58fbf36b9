"""Processors between the source and the plan: what gets published, and how.

Each step may drop a token with a reason the sync counts: an exclusion map (Rspamd's
``exclusion_map`` idea: excluded tokens are neither published nor kept), a minimum
message count, a ``never listed`` override.  What survives is scored and encoded into
store entries through the shared formats, exactly as ``zonepub import`` does.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from pathlib import Path

from listformat import names
from publisher.errors import PublisherError
from zoned.config import NetworkTooWide, WidestPrefix, ZoneConfig

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class MapError(PublisherError, ValueError):
    """An exclusion map cannot be read; the message names the file and line."""


class Exclusions:
    """Tokens never to publish: networks for IP kinds (any address inside), strings otherwise.

    Map files hold one entry a line; ``#`` starts a comment, as in Rspamd's maps.  Networks
    are bounded by the zone's ``widest_prefix`` like every network a zone takes: an
    exclusion of ``0.0.0.0/0`` would unpublish everything, a typo rather than a policy.
    """

    def __init__(self, networks: Iterable[IPNetwork] = (), strings: Iterable[str] = ()) -> None:
        self.strings = frozenset(s.lower() for s in strings)
        self._by_length: dict[tuple[int, int], set[int]] = {}
        for net in networks:
            self._by_length.setdefault((net.version, net.prefixlen), set()).add(
                int(net.network_address))

    @classmethod
    def load(cls, paths: Iterable[Path], ip: bool,
             widest: WidestPrefix | None = None) -> Exclusions:
        """The maps' entries; MapError lists every bad line as file:line."""
        networks: list[IPNetwork] = []
        strings: list[str] = []
        problems: list[str] = []
        for path in paths:
            try:
                lines = path.read_text(encoding="utf-8").splitlines()
            except OSError as exc:
                raise MapError(f"{path}: {exc.strerror}") from exc
            for lineno, line in enumerate(lines, 1):
                entry = line.split("#", 1)[0].strip()
                if not entry:
                    continue
                entry = entry.split()[0]  # Rspamd maps allow a value after the key
                if ip:
                    try:
                        network = names.parse_network(entry)
                        (widest or WidestPrefix()).check(network)
                        networks.append(network)
                    except (names.OwnerNameError, NetworkTooWide) as exc:
                        problems.append(f"{path}:{lineno}: {exc}")
                else:
                    strings.append(entry)
        if problems:
            raise MapError("\n".join(problems))
        return cls(networks, strings)

    def __bool__(self) -> bool:
        return bool(self.strings or self._by_length)

    def excludes(self, token: str) -> bool:
        if token.lower() in self.strings:
            return True
        if not self._by_length:
            return False
        try:
            net = names.parse_network(token)
        except names.OwnerNameError:
            return False
        value = int(net.network_address)
        width = net.max_prefixlen
        for (version, length), addresses in self._by_length.items():
            if version == net.version and length <= net.prefixlen:
                if value >> (width - length) << (width - length) in addresses:
                    return True
        return False


def never_listed(config: ZoneConfig) -> Exclusions:
    """The zone's ``unlisted`` overrides as exclusions (the server hides them as well)."""
    if config.scheme.kind == "ip":
        return Exclusions(networks=[names.parse_network(t) for t in config.unlisted])
    return Exclusions(strings=config.unlisted)
