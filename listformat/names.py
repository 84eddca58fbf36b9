"""Owner-name schemes: how a token becomes a name under a zone.

Three schemes (ARCHITECTURE "Data formats" 1):

- ``ip``: RFC 5782 reversed IPv4 octets, IPv6 as 32 reversed nibbles.  Entries may be
  CIDR networks; the server answers for every address inside (longest prefix wins).
- ``name``: the token as a domain name (RHSBL): lowercase, IDNA (UTS 46) encoded.
- ``hash``: a digest of the token (of the reversed-octet string when the token is an
  IP address, as Rspamd's rbl module does) encoded and cut to ``length``; ``aliases``
  are further hash schemes under which the same token is also published.

Owner names here are *relative* to the zone apex, as text without a trailing dot.
Whoever joins them to an apex must still check the 255-octet limit of the full name.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from typing import Literal

import idna

from listformat.hashing import ALGORITHMS, ENCODINGS, HashScheme, digest, encode, hash_token

SchemeKind = Literal["ip", "name", "hash"]
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

MAX_LABEL = 63
# RFC 1035 allows 255 octets on the wire, i.e. 253 characters of text without the root.
MAX_NAME = 253

# Rspamd's rbl module drops query names with characters outside [A-Za-z0-9_.-].
_NAME_LABEL = re.compile(r"[a-z0-9_-]{1,63}")
_HASH_LABEL = re.compile(r"[A-Za-z0-9_-]{1,63}")
_DECIMAL_OCTET = re.compile(r"0|[1-9][0-9]{0,2}")
_NIBBLE = re.compile(r"[0-9a-fA-F]")
_PREFIX_LEN = re.compile(r"[0-9]{1,3}")


class OwnerNameError(ValueError):
    """The token cannot become a valid owner name under this scheme."""


@dataclass(frozen=True)
class OwnerScheme:
    """A zone's owner-name scheme; ``hash`` is set exactly when ``kind == 'hash'``."""

    kind: SchemeKind
    hash: HashScheme | None = None
    aliases: tuple[HashScheme, ...] = field(default=())


def _parse_address(token: str) -> IPAddress:
    if "%" in token:
        # A scope id names an interface on one host; it has no place in a public list.
        raise OwnerNameError(f"{token!r}: scoped IPv6 addresses cannot be listed")
    try:
        return ipaddress.ip_address(token)
    except ValueError:
        raise OwnerNameError(f"{token!r} is not an IPv4 or IPv6 address") from None


def reverse_ip(address: str | IPAddress) -> str:
    """RFC 5782 owner name of an address: reversed octets, or 32 reversed nibbles.

    IPv4-mapped IPv6 addresses keep their IPv6 form, as RFC 5782 section 5 lists
    ``::FFFF:7F00:2`` separately from ``127.0.0.2``.
    """
    addr = _parse_address(address) if isinstance(address, str) else address
    if addr.version == 4:
        return ".".join(str(octet) for octet in reversed(addr.packed))
    return ".".join(reversed(addr.packed.hex()))


def ip_from_reversed(name: str) -> IPAddress:
    """Inverse of :func:`reverse_ip`, for servers and clients reading owner names back.

    Strict on purpose: only the exact forms :func:`reverse_ip` writes are accepted (no
    leading zeros, four or 32 labels), though hex nibbles may be in either case.
    """
    labels = name.removesuffix(".").split(".")
    if len(labels) == 4 and all(_DECIMAL_OCTET.fullmatch(label) for label in labels):
        octets = [int(label) for label in reversed(labels)]
        if all(octet <= 255 for octet in octets):
            return ipaddress.IPv4Address(bytes(octets))
    elif len(labels) == 32 and all(_NIBBLE.fullmatch(label) for label in labels):
        return ipaddress.IPv6Address(bytes.fromhex("".join(reversed(labels))))
    raise OwnerNameError(f"{name!r} is not a reversed IPv4 or IPv6 address")


def parse_network(token: str) -> IPNetwork:
    """An address or CIDR entry as a network; host bits are masked, as rbldnsd does.

    Only ``/prefixlen`` is accepted after the slash: netmask forms are ambiguous to
    people reading a list and no list format we import uses them.
    """
    if "%" in token:
        raise OwnerNameError(f"{token!r}: scoped IPv6 addresses cannot be listed")
    _, slash, prefix = token.partition("/")
    if slash and not _PREFIX_LEN.fullmatch(prefix):
        raise OwnerNameError(f"{token!r}: the prefix length must be a decimal number")
    try:
        return ipaddress.ip_network(token, strict=False)
    except ValueError:
        raise OwnerNameError(f"{token!r} is not an IPv4 or IPv6 address or network") from None


def _check_name_labels(name: str, original: str) -> str:
    labels = name.split(".")
    for label in labels:
        if not label:
            raise OwnerNameError(f"{original!r}: empty label")
        if len(label) > MAX_LABEL:
            raise OwnerNameError(
                f"{original!r}: label {label[:20]!r}... is {len(label)} bytes, over {MAX_LABEL}"
            )
        if not _NAME_LABEL.fullmatch(label):
            raise OwnerNameError(f"{original!r}: label {label!r} has characters outside [a-z0-9_-]")
    if len(name) > MAX_NAME:
        raise OwnerNameError(f"{original!r}: name is {len(name)} bytes, over {MAX_NAME}")
    return name


def normalize_name(token: str) -> str:
    """A domain token as an RHSBL owner name: lowercase ASCII, IDNA (UTS 46) A-labels.

    ASCII labels bypass IDNA so that names like ``_dmarc.example.org`` (valid in DNS,
    disallowed by IDNA 2008) can still be listed.
    """
    name = token.removesuffix(".")
    if name.isascii():
        return _check_name_labels(name.lower(), token)
    try:
        # UTS 46 maps case, width and the ideographic full stop before splitting.
        mapped = idna.uts46_remap(name, std3_rules=False, transitional=False)
        labels = [
            label if label.isascii() else idna.alabel(label).decode("ascii")
            for label in mapped.removesuffix(".").split(".")
        ]
    except idna.IDNAError as exc:
        raise OwnerNameError(f"{token!r} is not a valid internationalized name: {exc}") from None
    return _check_name_labels(".".join(labels).lower(), token)


def hash_input(token: str) -> bytes:
    """Bytes hashed for ``token``: the reversed-address string for IPs, else UTF-8.

    Rspamd's rbl module hashes ``1.2.0.192`` rather than ``192.0.2.1`` for IP checks.
    """
    try:
        addr = ipaddress.ip_address(token)
    except ValueError:
        return token.encode("utf-8")
    return reverse_ip(addr).encode("ascii")


def _hash_label(token: str, scheme: HashScheme) -> str:
    try:
        label = hash_token(hash_input(token), scheme)
    except ValueError as exc:
        raise OwnerNameError(str(exc)) from None
    if not _HASH_LABEL.fullmatch(label):
        if scheme.encoding == "base64":
            raise OwnerNameError("base64 is not usable as a DNS label ('+', '/', '=')")
        raise OwnerNameError(
            f"{scheme.alg}/{scheme.encoding} gives a {len(label)}-character label; "
            f"a DNS label holds 1..{MAX_LABEL}: set length"
        )
    return label


def owner_names(scheme: OwnerScheme, token: str) -> tuple[str, ...]:
    """Relative owner names under which ``token`` is published in a zone of ``scheme``.

    One name, except for hashed zones with aliases (one per distinct hash).  IP zones
    take single addresses only: networks are stored by prefix, see :func:`parse_network`.
    """
    if scheme.kind == "ip":
        if "/" in token:
            raise OwnerNameError(
                f"{token!r} is a network: networks are stored by prefix (parse_network)"
            )
        return (reverse_ip(_parse_address(token)),)
    if scheme.kind == "name":
        return (normalize_name(token),)
    if scheme.kind == "hash":
        if scheme.hash is None:
            raise OwnerNameError("hash scheme without hash settings")
        names: dict[str, None] = {}
        for hashing in (scheme.hash, *scheme.aliases):
            names.setdefault(_hash_label(token, hashing))
        return tuple(names)
    raise OwnerNameError(f"unknown owner-name scheme {scheme.kind!r}")


def check_hash_scheme(scheme: HashScheme) -> list[str]:
    """Every problem that makes ``scheme`` unusable for DNS labels, for config errors."""
    problems: list[str] = []
    if scheme.alg not in ALGORITHMS:
        problems.append(f"unknown hash algorithm {scheme.alg!r} (one of {', '.join(ALGORITHMS)})")
    if scheme.encoding not in ENCODINGS:
        problems.append(
            f"unknown hash encoding {scheme.encoding!r} (one of {', '.join(ENCODINGS)})"
        )
    elif scheme.encoding == "base64":
        problems.append("encoding base64 is not usable as a DNS label ('+', '/', '=')")
    if scheme.length is not None and not 1 <= scheme.length <= MAX_LABEL:
        problems.append(f"length {scheme.length} is not in 1..{MAX_LABEL}")
    if scheme.length is None and not problems:
        full = len(encode(scheme.encoding, digest(scheme.alg, b"")))
        if full > MAX_LABEL:
            problems.append(
                f"{scheme.alg}/{scheme.encoding} gives {full} characters, over the "
                f"{MAX_LABEL} a DNS label holds: set length"
            )
    return problems
