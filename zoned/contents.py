"""The zone's contents as names: what a master file or a full zone transfer lists.

zoned answers from keys (longest-prefix match over networks, overrides over the store,
``unlisted`` blocks); a master file or an AXFR has only names, wildcards (RFC 4592)
and their records.  This module turns one snapshot of a :class:`ServedZone` into such
names, so that ``zonepub export`` and zoned's own AXFR and IXFR agree.  How networks
become wildcards, and where a name list cannot say exactly what zoned says, is written
down in :mod:`publisher.export`.

Memory stays bounded by the number of *networks*, not of names: single addresses that
no network, override or block touches (nearly all of a reputation zone) stream straight
from the store; only the rest goes through the wildcard tree.
"""

from __future__ import annotations

import bisect
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Iterator
from dataclasses import dataclass, field

import dns.name

from zoned import keys
from zoned.packed import join_rrsets
from zoned.store import StoreDamaged
from zoned.zone import ServedZone

_DECIMAL_LABELS = frozenset(str(octet) for octet in range(256))
_NIBBLE_LABELS = frozenset("0123456789abcdef")


def store_entries(zone: ServedZone) -> Iterator[tuple[bytes, bytes]]:
    """(key, packed answer) of the zone's store snapshot; nothing if there is no store yet.

    StoreDamaged for a refused store, or at a value that fails its checksum: a transfer
    or an export of a damaged zone fails rather than list it without its tokens.
    """
    if zone.snapshot.reader is not None:
        yield from zone.snapshot.reader.entries()
    elif zone.snapshot.refused:
        compiled = zone.compiled
        raise StoreDamaged(f"zone {compiled.origin}: store {compiled.config.store} is refused")


def apex_answer(zone: ServedZone) -> bytes:
    """The apex RRsets (SOA with the store's serial, NS, static apex records) as packed."""
    return join_rrsets(zone.snapshot.apex)


def key_labels(key: bytes) -> tuple[bytes, ...]:
    """Relative owner labels, leftmost first, of a name-keyed store key (zoned.keys)."""
    return tuple(reversed(key.split(b"."))) if key else ()


def name_text(labels: Iterable[bytes]) -> str:
    """Relative presentation form of labels (leftmost first); '@' is the apex."""
    labels = tuple(labels)
    return dns.name.Name(labels).to_text() if labels else "@"



Packed = bytes
Net = tuple[int, int]  # (network address as an integer, prefix length)


@dataclass
class Family:
    """One address family's networks, in the three precedence levels zoned applies."""

    width: int  # 32 or 128 bits
    step: int  # bits per label: 8 (octets) or 4 (nibbles)
    blocked: set[Net] = field(default_factory=set)
    listed: dict[Net, Packed] = field(default_factory=dict)  # overrides and test entries
    store: dict[Net, Packed] = field(default_factory=dict)
    points: list[Net] = field(default_factory=list)
    _plens: dict[str, tuple[int, ...]] = field(default_factory=dict)

    def add(self, level: str, net: Net, value: Packed) -> None:
        if level == "blocked":
            self.blocked.add(net)
        elif level == "listed":
            self.listed[net] = value
        else:
            self.store[net] = value

    def seal(self) -> None:
        """Sort the networks for range probes once everything is added."""
        self.points = sorted(self.blocked | self.listed.keys() | self.store.keys())
        for level, nets in (("blocked", self.blocked), ("listed", self.listed.keys()),
                            ("store", self.store.keys())):
            self._plens[level] = tuple(sorted({plen for _, plen in nets}, reverse=True))

    def mask(self, start: int, plen: int) -> int:
        shift = self.width - plen
        return start >> shift << shift

    def covering(self, level: str, start: int, bits: int) -> Net | None:
        """The longest network of ``level`` covering the first ``bits`` of ``start``.

        With ``bits`` a network's own prefix length, that is the longest network of
        ``level`` that contains it (or is it).
        """
        nets: Collection[Net] = (
            self.blocked if level == "blocked"
            else self.listed.keys() if level == "listed" else self.store.keys()
        )
        for plen in self._plens[level]:
            if plen <= bits:
                net = (self.mask(start, plen), plen)
                if net in nets:
                    return net
        return None

    def value(self, start: int, bits: int) -> Packed | None:
        """zoned's answer for the addresses of (start, bits) that no longer entry touches."""
        if self.covering("blocked", start, bits) is not None:
            return None
        net = self.covering("listed", start, bits)
        if net is not None:
            return self.listed[net]
        net = self.covering("store", start, bits)
        return None if net is None else self.store[net]

    def touched(self, start: int, bits: int) -> list[int]:
        """Children (label values) of (start, bits) that hold or meet a longer network."""
        child_shift = self.width - bits - self.step
        end = start + (1 << (self.width - bits))
        points = self.points
        found: list[int] = []
        i = bisect.bisect_left(points, (start, bits + 1))
        while i < len(points) and points[i][0] < end:
            net_start, plen = points[i]
            child = (net_start - start) >> child_shift
            # A network shorter than a child's prefix covers several children; the
            # first network at a child boundary is the shortest there (sorted order).
            span = 1 << (bits + self.step - plen) if plen < bits + self.step else 1
            found.extend(range(child, child + span))
            i = bisect.bisect_left(points, (start + ((child + span) << child_shift), -1), i)
        return found


def families(
    zone: ServedZone, store: Iterable[tuple[bytes, bytes]] | None = None
) -> dict[int, Family]:
    """The zone's networks by family, with ``store`` entries (default: the whole store)."""
    families = {4: Family(32, 8), 6: Family(128, 4)}

    def add(level: str, key: bytes, value: bytes) -> None:
        network = keys.key_network(key)
        families[network.version].add(
            level, (int(network.network_address), network.prefixlen), value
        )

    for key in zone.compiled.blocked_nets.answers:
        add("blocked", key, b"")
    for key, value in zone.compiled.nets.answers.items():
        add("listed", key, value)
    for key, value in store_entries(zone) if store is None else store:
        add("store", key, value)
    for family in families.values():
        family.seal()
    return families


# --------------------------------------------------------------------------- streaming

Path = tuple[str, ...]  # labels from the apex down

_OCTETS = tuple(str(octet) for octet in range(256))
_HEX = "0123456789abcdef"


def key_path(key: bytes) -> Path:
    """The node of a network key: its whole labels, from the apex down.

    A network that does not end on a label boundary (/20, /50) lies at the node of its
    whole labels, which it shares with its neighbours.
    """
    plen = key[-1]
    if key[:1] == keys.V4:
        return tuple(_OCTETS[octet] for octet in key[1 : 1 + plen // 8])
    nibbles = key[1:-1].hex()
    return tuple(nibbles[: plen // 4])


def is_full(key: bytes) -> bool:
    """Whether a network key is a single address (/32, /128)."""
    return key[-1] == (32 if key[:1] == keys.V4 else 128)


def is_aligned(key: bytes) -> bool:
    return key[-1] % (8 if key[:1] == keys.V4 else 4) == 0


class Shadows:
    """Nodes where the wildcard tree is needed: every entry that is not a store address.

    Networks become wildcards, overrides win over the store and ``unlisted`` blocks
    it; an address below or at any of their nodes interacts with them, and the tree
    must place it.  An address elsewhere is just its own name.
    """

    def __init__(self, zone: ServedZone, store_networks: Iterable[bytes]) -> None:
        # Paths as dotted strings: a zone may hold a million /64s, and 16-tuples of labels
        # cost several times the memory.
        self.nodes: Counter[str] = Counter()
        compiled = zone.compiled
        for key in (*compiled.blocked_nets.answers, *compiled.nets.answers, *store_networks):
            self.nodes[".".join(key_path(key))] += 1
        self.heads = frozenset(node.split(".", 1)[0] for node in self.nodes)
        self._above: Counter[str] | None = None

    def touches(self, path: Path) -> bool:
        """Whether an entry lies at or above ``path``."""
        nodes = self.nodes
        if "" in nodes:
            return True  # a /0, or a network shorter than one label
        if not path or path[0] not in self.heads:
            return False
        return any(".".join(path[:i]) in nodes for i in range(1, len(path) + 1))

    def related_to_other(self, path: Path) -> bool:
        """Whether an entry besides the one at ``path`` lies at, above or below it."""
        if self._above is None:
            self._above = Counter(
                ".".join(labels[:i])
                for node in self.nodes
                for labels in (node.split(".") if node else [],)
                for i in range(len(labels))
            )
        nodes = self.nodes
        dotted = ".".join(path)
        return (
            nodes[dotted] > 1
            or self._above[dotted] > 0
            or any(".".join(path[:i]) in nodes for i in range(len(path)))
        )


def store_networks(zone: ServedZone) -> list[bytes]:
    """Keys of the store's networks (not single addresses): one pass over the store.

    Skipped, and empty, when the snapshot's prefix lengths say there are none.
    """
    reader = zone.snapshot.reader
    if reader is None or not (
        any(plen < 32 for plen in reader.plens4) or any(plen < 128 for plen in reader.plens6)
    ):
        return []
    return [key for key, _ in reader.entries() if not is_full(key)]


def address_name(key: bytes) -> str:
    """The relative owner name of a single-address key."""
    if key[:1] == keys.V4:
        return f"{key[4]}.{key[3]}.{key[2]}.{key[1]}"
    return ".".join(reversed(key[1:-1].hex()))


def names(zone: ServedZone, notes: list[str] | None = None) -> Iterator[tuple[str, bytes]]:
    """Every name of the zone with its packed answer (relative names, '@' first).

    A wildcard's name starts with ``*.``; the apex answer holds the SOA first.
    ``notes`` receives what a list of names cannot say exactly as zoned does.
    """
    yield "@", apex_answer(zone)
    for key in sorted(zone.compiled.statics, key=key_labels):
        yield name_text(key_labels(key)), zone.compiled.statics[key]
    if zone.compiled.is_ip:
        yield from _address_names(zone)
    else:
        yield from _store_names(zone, [] if notes is None else notes)


def _address_names(zone: ServedZone) -> Iterator[tuple[str, bytes]]:
    networks = store_networks(zone)
    shadows = Shadows(zone, networks)
    statics = zone.compiled.statics
    tree: list[tuple[bytes, bytes]] = []
    for key, value in store_entries(zone):
        if not is_full(key):
            tree.append((key, value))
            continue
        path = key_path(key)
        if shadows.touches(path):
            tree.append((key, value))
            continue
        if not statics or static_key(path) not in statics:
            yield address_name(key), value
    if tree or zone.compiled.blocked_nets.answers or zone.compiled.nets.answers:
        placed: list[tuple[str, bytes]] = []
        AddressTree(families(zone, tree), lambda n, v: placed.append((n, v)), statics).run()
        yield from placed


def static_key(path: Path) -> bytes:
    """The key under which a static record at node ``path`` is held (see zoned.keys)."""
    return ".".join(path).encode("ascii")


def _store_names(zone: ServedZone, notes: list[str]) -> Iterator[tuple[str, bytes]]:
    """Store names of a name or hash zone, minus those a static or a block hides."""
    blocked_parents: set[bytes] = set()
    for key, value in store_entries(zone):
        if key in zone.compiled.statics or key in zone.compiled.blocked_names:
            continue
        if zone.compiled.blocked_names:
            labels = key.split(b".")
            for i in range(1, len(labels)):
                parent = b".".join(labels[:i])
                if parent in zone.compiled.blocked_names:
                    blocked_parents.add(parent)
        yield name_text(key_labels(key)), value
    for parent in sorted(blocked_parents):
        name = name_text(key_labels(parent))
        notes.append(f"{name}: unlisted, but names below it exist: NODATA instead of NXDOMAIN")


@dataclass(frozen=True)
class Node:
    """A name under the apex that may be an IPv4 prefix, an IPv6 prefix, or both."""

    path: tuple[str, ...]  # labels from the apex down (the reverse of the name's order)
    v4: Net | None  # (address, bits known) when the labels read as an IPv4 prefix
    v6: Net | None

    def child(self, label: str) -> Node:
        v4 = v6 = None
        if self.v4 is not None and self.v4[1] < 32 and label in _DECIMAL_LABELS:
            start, bits = self.v4
            v4 = (start | int(label) << (24 - bits), bits + 8)
        if self.v6 is not None and self.v6[1] < 128 and label in _NIBBLE_LABELS:
            start, bits = self.v6
            v6 = (start | int(label, 16) << (124 - bits), bits + 4)
        return Node((*self.path, label), v4, v6)

    @property
    def name(self) -> str:
        return ".".join(reversed(self.path)) if self.path else "@"

    @property
    def key(self) -> bytes:
        return ".".join(self.path).encode("ascii")


_V4_ONLY = tuple(str(octet) for octet in range(10, 256))
_DIGITS = tuple(str(digit) for digit in range(10))
_HEX_ONLY = tuple("abcdef")
_ALL_V4 = _DIGITS + _V4_ONLY
_ALL_V6 = _DIGITS + _HEX_ONLY
_V4_ONLY_SET = frozenset(_V4_ONLY)
_DIGITS_SET = frozenset(_DIGITS)
_HEX_ONLY_SET = frozenset(_HEX_ONLY)
_MIXED = object()  # a class of children whose IPv4 and IPv6 answers differ


class AddressTree:
    """Writes the names and wildcards that answer every address as zoned does."""

    def __init__(
        self,
        families: dict[int, Family],
        write: Callable[[str, Packed], None],
        statics: Iterable[bytes],
    ) -> None:
        self.v4 = families[4]
        self.v6 = families[6]
        self.write = write
        self.statics = frozenset(statics)

    def run(self) -> None:
        self.emit(Node((), (0, 0), (0, 0)))

    def own(self, node: Node) -> Packed | None:
        if node.v4 is not None and node.v4[1] == 32:
            return self.v4.value(*node.v4)
        if node.v6 is not None and node.v6[1] == 128:
            return self.v6.value(*node.v6)
        return None

    def emit(self, node: Node) -> bool:
        """Write the subtree of ``node``; False if it answers NXDOMAIN throughout."""
        v4 = node.v4 if node.v4 is not None and node.v4[1] < 32 else None
        v6 = node.v6 if node.v6 is not None and node.v6[1] < 128 else None
        touched: set[str] = set()
        if v4 is not None:
            touched.update(str(octet) for octet in self.v4.touched(*v4))
        if v6 is not None:
            touched.update(f"{nibble:x}" for nibble in self.v6.touched(*v6))
        wrote = False
        hole = False  # some touched child answers NXDOMAIN throughout
        for label in sorted(touched, key=_label_order):
            if self.emit(node.child(label)):
                wrote = True
            else:
                hole = True
        i4 = self.v4.value(*v4) if v4 is not None else None
        i6 = self.v6.value(*v6) if v6 is not None else None
        # Children no longer network touches, by what answers below them.
        classes: list[tuple[tuple[str, ...], frozenset[str], object]] = []
        if v4 is not None and v6 is not None:
            classes += [(_V4_ONLY, _V4_ONLY_SET, i4),
                        (_DIGITS, _DIGITS_SET, i4 if i4 == i6 else _MIXED),
                        (_HEX_ONLY, _HEX_ONLY_SET, i6)]
        elif v4 is not None:
            classes.append((_ALL_V4, _DECIMAL_LABELS, i4))
        elif v6 is not None:
            classes.append((_ALL_V6, _NIBBLE_LABELS, i6))
        # How many children of each class no longer network touches.
        remaining = [(labels, value, len(labels) - sum(x in members for x in touched))
                     for labels, members, value in classes]
        wildcard: Packed | None = None
        if node.path and not hole and all(value is not None for _, value, n in remaining if n):
            votes: Counter[Packed] = Counter()
            for _, value, n in remaining:
                if n and isinstance(value, bytes):
                    votes[value] += n
            if votes:
                wildcard = votes.most_common(1)[0][0]
        if wildcard is not None:
            self.write("*." + node.name, wildcard)
            wrote = True
        for labels, value, n in remaining:
            if not n or value is None or value == wildcard:
                continue  # NXDOMAIN, or answered by the wildcard
            for label in labels:
                if label in touched:
                    continue
                child = node.child(label)
                if isinstance(value, bytes):
                    self.uniform(child, value)
                    wrote = True
                else:
                    wrote |= self.emit(child)
        own = self.own(node)
        if own is not None and node.key not in self.statics:
            self.write(node.name, own)
            wrote = True
        return wrote

    def uniform(self, node: Node, value: Packed) -> None:
        """A child whose own name and whole subtree answer ``value``."""
        v4, v6 = node.v4, node.v6
        if ((v4 is not None and v4[1] == 32) or (v6 is not None and v6[1] == 128)) \
                and node.key not in self.statics:
            self.write(node.name, value)
        if (v4 is not None and v4[1] < 32) or (v6 is not None and v6[1] < 128):
            self.write("*." + node.name, value)



def _label_order(label: str) -> tuple[int, int]:
    return (0, int(label)) if label.isdigit() else (1, int(label, 16))
