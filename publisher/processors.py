"""Processors between the source and the plan: what gets published, and how.

Each step may drop a token with a reason the sync counts: an exclusion map (Rspamd's
``exclusion_map`` idea: excluded tokens are neither published nor kept), a ``never
listed`` override, a minimum message count.  :class:`Chain` is those steps in that
order, the one copy both of the judge's paths ask (:mod:`publisher.judge`,
:mod:`publisher.fastpath`).  What survives is scored and encoded into store entries
through the shared formats, exactly as ``zonepub import`` does.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from listformat import names, tokens
from publisher.errors import PublisherError
from zoned.config import NetworkTooWide, WidestPrefix, ZoneConfig
from zoned.sourceconf import SourceSettings

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


Dropped = Literal["excluded", "below_min"]  # the reasons, named as the sync's counts


@dataclass(frozen=True)
class Chain:
    """The processors of one zone, in the order they apply: the exclusion maps, the
    ``never listed`` overrides (both: ``excluded``), then ``min_count`` (``below_min``)."""

    exclusions: Exclusions
    never: Exclusions
    min_count: int = 0
    # Whether a screen has anything to exclude: most zones have none, and asking an
    # empty one costs a parse of the token.
    screens: bool = field(init=False)
    # Whether the chain drops nothing at all (no screens, no minimum): a hot loop need
    # not ask it.
    drops_nothing: bool = field(init=False)

    def __post_init__(self) -> None:
        screens = bool(self.exclusions) or bool(self.never)
        object.__setattr__(self, "screens", screens)
        object.__setattr__(self, "drops_nothing", not screens and self.min_count <= 0)

    @classmethod
    def for_zone(cls, config: ZoneConfig, settings: SourceSettings) -> Chain:
        """The zone's chain: its ``source:`` exclusion maps and minimum, its ``unlisted``."""
        ip = settings.selector in tokens.IP_SELECTORS
        exclusions = Exclusions.load(settings.exclude, ip=ip, widest=config.widest_prefix)
        return cls(exclusions, never_listed(config), settings.min_count)

    def drops(self, token: str, messages: float) -> Dropped | None:
        """Why the chain drops ``token``, seen in ``messages`` messages; None: it passes."""
        if self.screens and (self.exclusions.excludes(token) or self.never.excludes(token)):
            return "excluded"
        if messages < self.min_count:
            return "below_min"
        return None
