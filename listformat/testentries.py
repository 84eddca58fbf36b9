"""RFC 5782 section 5 test entries, per owner-name scheme.

Every list answers for a known "listed" token and never for a known "unlisted" one,
so operators and scanners can check a list works without knowing any real entry.
Rspamd's monitoring goes further: it probes ``1.0.0.127.<list>`` and random labels and
disables a list that does not answer NXDOMAIN, so the unlisted tokens must stay
unlisted whatever the data says.

Hashed zones list the same tokens as the other kinds, hashed like any other token:
``test`` and ``127.0.0.2`` (whose hash input is ``2.0.0.127``); ``invalid`` and
``127.0.0.1`` are never listed.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from types import MappingProxyType

from listformat.names import OwnerScheme, SchemeKind, owner_names

TEST_CODE = ipaddress.IPv4Address("127.0.0.2")
#: TXT fields of every test entry; listformat.txt writes them as ``v=1;test=1``.
TEST_TXT: Mapping[str, int] = MappingProxyType({"test": 1})

_LISTED: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        # RFC 5782 section 5: 127.0.0.2 and ::FFFF:7F00:2 are listed.
        "ip": ("127.0.0.2", "::ffff:127.0.0.2"),
        "name": ("test",),
        "hash": ("test", "127.0.0.2"),
    }
)
_UNLISTED: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        # ... and 127.0.0.1 and ::FFFF:7F00:1 never are.
        "ip": ("127.0.0.1", "::ffff:127.0.0.1"),
        "name": ("invalid",),
        "hash": ("invalid", "127.0.0.1"),
    }
)


def _lookup(table: Mapping[str, tuple[str, ...]], kind: SchemeKind) -> tuple[str, ...]:
    try:
        return table[kind]
    except KeyError:
        raise ValueError(f"unknown owner-name scheme {kind!r}") from None


def listed_tokens(kind: SchemeKind) -> tuple[str, ...]:
    """Tokens a zone of ``kind`` must list, with :data:`TEST_CODE` and :data:`TEST_TXT`."""
    return _lookup(_LISTED, kind)


def unlisted_tokens(kind: SchemeKind) -> tuple[str, ...]:
    """Tokens a zone of ``kind`` must never list, whatever its data says."""
    return _lookup(_UNLISTED, kind)


def listed_names(scheme: OwnerScheme) -> tuple[str, ...]:
    """Relative owner names of the listed test entries (aliases included)."""
    return _names(scheme, listed_tokens(scheme.kind))


def unlisted_names(scheme: OwnerScheme) -> tuple[str, ...]:
    """Relative owner names that must answer NXDOMAIN (aliases included)."""
    return _names(scheme, unlisted_tokens(scheme.kind))


def _names(scheme: OwnerScheme, tokens: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(name for token in tokens for name in owner_names(scheme, token))
