"""Store keys: where an owner name's packed answer lives in the zone store.

Name-keyed zones (``name`` and ``hash`` schemes) key an owner by its labels relative
to the apex, lowercased and in *reversed* order joined by dots (``foo.bar`` under the
apex is ``bar.foo``), so every name below a node shares the node's key plus ``.`` as a
prefix: an empty non-terminal (RFC 8020) is one range probe in the sorted store.

IP zones key a network as ``b"4"`` or ``b"6"``, the packed network address, then one
byte of prefix length.  Keys sort by address, so "is anything inside this prefix" is
again one range probe, and longest-prefix match is one probe per prefix length in use.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

V4 = b"4"
V6 = b"6"


def name_key(labels: Sequence[bytes]) -> bytes:
    """Key for an owner given its relative labels, leftmost first; labels must be lowercase."""
    return b".".join(reversed(labels))


def name_subtree_prefix(labels: Sequence[bytes]) -> bytes:
    """Prefix that every key strictly below ``labels`` starts with (the apex: b"")."""
    return name_key(labels) + b"." if labels else b""


def net_key(network: IPNetwork) -> bytes:
    """Key for an IPv4 or IPv6 network (a single address is a /32 or /128)."""
    family = V4 if network.version == 4 else V6
    return family + network.network_address.packed + bytes([network.prefixlen])


_LENGTH = [bytes([n]) for n in range(129)]
_ZEROS = [bytes(n) for n in range(17)]


def net_key_from(address: bytes, prefixlen: int) -> bytes:
    """Key for packed ``address`` masked to ``prefixlen`` bits; the server's hot-path form.

    Octet-aligned prefixes (/32, /24, /64...), by far the most common, are sliced
    rather than computed.
    """
    size = len(address)
    family = V4 if size == 4 else V6
    whole, bits = divmod(prefixlen, 8)
    if not bits:
        return family + address[:whole] + _ZEROS[size - whole] + _LENGTH[prefixlen]
    value = int.from_bytes(address, "big")
    shift = size * 8 - prefixlen
    return family + ((value >> shift) << shift).to_bytes(size, "big") + _LENGTH[prefixlen]


def key_network(key: bytes) -> IPNetwork:
    """Inverse of :func:`net_key`."""
    if key[:1] == V4 and len(key) == 6:
        return ipaddress.IPv4Network((key[1:5], key[5]))
    if key[:1] == V6 and len(key) == 18:
        return ipaddress.IPv6Network((key[1:17], key[17]))
    raise ValueError(f"not a network key: {key!r}")
