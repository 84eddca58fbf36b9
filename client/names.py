"""Owner-name schemes: how a token becomes a name under a zone.

Three schemes (ARCHITECTURE "Data formats" 1):

- ``ip``: RFC 5782 reversed IPv4 octets, IPv6 as 32 reversed nibbles.  Entries may be
  CIDR networks; the server answers for every address inside (longest prefix wins).
- ``name``: the token as a domain name (RHSBL): lowercase, IDNA (UTS 46) encoded.
- ``hash``: a digest of the token (of the reversed-octet string when the token is an
  IP address, as Rspamd's rbl module does) encoded and cut to ``length``; ``aliases``
  are further hash schemes under which the same token is also published.

Owner names here are *relative* to the zone apex, as text without a trailing dot.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Literal

SchemeKind = Literal["ip", "name", "hash"]
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class OwnerNameError(ValueError):
    """The token cannot become a valid owner name under this scheme."""


@dataclass(frozen=True)
class HashScheme:
    """One way of hashing tokens into a single label (Rspamd rbl ``hash*`` options)."""

    alg: str = "blake2"  # blake2 | sha1 | sha256 | sha384 | sha512 | md5
    encoding: str = "base32"  # hex | base32 (Rspamd's) | rbase32 (RFC 4648, lowercase)
    length: int | None = None  # cut the encoded string to this many characters (<= 63)


@dataclass(frozen=True)
class OwnerScheme:
    """A zone's owner-name scheme; ``hash`` is set exactly when ``kind == 'hash'``."""

    kind: SchemeKind
    hash: HashScheme | None = None
    aliases: tuple[HashScheme, ...] = field(default=())
