"""Which Redis keys belong to which Rspamd selector, and the token a zone publishes for each.

Rspamd's rules share the ``RR:`` prefix by default, so a zone fed from it tells its keys
apart by their shape (docs/rspamd-layout.md "Tokens per selector"):

=========  ====================  ==========================================
selector   key after the prefix   published token
=========  ====================  ==========================================
ip         ``i:<address>``       the address; a masked network as ``addr/len``
asn        ``a:<number>``        the number
country    ``c:<code>``          the code
dkim       ``<eTLD+1>.a|r|u``    the whole key
url        ``<eTLD+1>``          the key
spf        32 base32 characters  the key
generic    anything              the key
=========  ====================  ==========================================

Rspamd stores an IPv6 sender under its /64 *network address* (``i:2001:db8:1:2::``), so
that key is published as the network ``2001:db8:1:2::/64``: an IP zone then answers for
every sender in the /64, as Rspamd counts them.  The same holds for IPv4 when the rule's
``ipv4_mask`` is below 32.

Generic values can be anything, so ``generic`` claims every key: give a generic rule its
own Redis prefix.  repzone's ``buckets`` layout uses these same token keys.

Keys come from whoever can write to the scanners' Redis, so :func:`token_of` trusts
none of them: a key of a selector's shape whose token is malformed raises
:class:`TokenError` (and nothing else), which the judge counts as ``bad_token``.  An
``i:`` key is one address, never a network: Rspamd writes none (``i:0.0.0.0/0`` would
list every IPv4 address), so networks only ever come from the masks above.  Keys are
decoded with ``surrogateescape`` by the callers; text that is not UTF-8 is malformed.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from typing import Final

from listformat.hashing import ZBASE32, HashScheme

#: The selectors a zone file's ``source: selector`` names, one per token shape below.
SELECTORS: Final = ("ip", "asn", "country", "dkim", "url", "spf", "generic")
IP_SELECTORS: Final = ("ip",)  # selectors whose tokens (and exclude entries) are addresses
RSPAMD_PREFIX: Final = "RR:"  # the prefix Rspamd's reputation rules share by default
IP_PREFIX: Final = "i:"
ASN_PREFIX: Final = "a:"
COUNTRY_PREFIX: Final = "c:"
IPV4_MASK: Final = 32
IPV6_MASK: Final = 64

_ASN = re.compile(r"[0-9]{1,10}")
_COUNTRY = re.compile(r"[A-Za-z0-9_-]{1,16}")
# eTLD+1 then '.' and the DKIM result: a (valid), r (rejected), u (unknown/temporary).
# No ':' in either pattern: keys with a selector prefix (i:, a:, c:) are never these.
_DKIM = re.compile(r"[^\s:]+\.[aru]")
_URL = re.compile(r"[^\s:]+")
#: An spf token: the first 32 characters of Rspamd's base32 of the record's BLAKE2b.
SPF_HASH: Final = HashScheme(alg="blake2", encoding="base32", length=32)
_SPF = re.compile(f"[{ZBASE32}]{{{SPF_HASH.length}}}")


def is_dkim_token(text: str) -> bool:
    """Whether ``text`` has the shape of a dkim token, ``<eTLD+1>.a|r|u``."""
    return _DKIM.fullmatch(text) is not None


def is_spf_token(text: str) -> bool:
    """Whether ``text`` has the shape of an spf token (see :data:`SPF_HASH`)."""
    return _SPF.fullmatch(text) is not None


class TokenError(ValueError):
    """A key has a selector's shape, but its token is malformed; the message says why."""


def _is_plain_ipv4(text: str) -> bool:
    """Canonical dotted-quad IPv4 (no leading zeros), as ipaddress would accept it."""
    if ":" in text or "/" in text:
        return False
    try:
        return socket.inet_ntop(socket.AF_INET, socket.inet_pton(socket.AF_INET, text)) == text
    except (OSError, ValueError):  # ValueError: an embedded NUL
        return False


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    """The single address an ``i:`` key names; raises TokenError for anything else."""
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        raise TokenError(f"{_shown(text)} is not an IP address") from None
    if isinstance(address, ipaddress.IPv6Address) and address.scope_id is not None:
        raise TokenError(f"{_shown(text)}: a scoped IPv6 address is not a sender")
    return address


def _shown(text: str, limit: int = 80) -> str:
    """``text`` for a message: quoted, and cut when a key is long."""
    if len(text) <= limit:
        return repr(text)
    return f"{text[:limit]!r}... ({len(text):,} characters)"


def _check_text(key: str) -> None:
    if not key.isascii():
        try:
            key.encode("utf-8")
        except UnicodeEncodeError:
            raise TokenError(f"{_shown(key)} is not UTF-8") from None


def _masked(
    address: ipaddress.IPv4Address | ipaddress.IPv6Address, ipv4_mask: int, ipv6_mask: int
) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    mask = ipv4_mask if address.version == 4 else ipv6_mask
    return ipaddress.ip_network(f"{address}/{mask}", strict=False)


def _network_text(network: ipaddress.IPv4Network | ipaddress.IPv6Network) -> str:
    if network.prefixlen == network.max_prefixlen:
        return str(network.network_address)
    return str(network)


def _check_masks(ipv4_mask: int, ipv6_mask: int) -> None:
    if not 1 <= ipv4_mask <= 32 or not 1 <= ipv6_mask <= 128:
        raise ValueError(f"masks out of range: ipv4 {ipv4_mask}, ipv6 {ipv6_mask}")


def token_of(
    selector: str,
    key: str,
    *,
    ipv4_mask: int = IPV4_MASK,
    ipv6_mask: int = IPV6_MASK,
) -> str | None:
    """The token a zone publishes for ``key`` (a Redis key without its prefix), or None.

    None means the key is not ``selector``'s: another selector's shape.  A key with the
    selector's own prefix is always its, even when what follows is malformed: for
    ``i:not-an-ip``, ``i:0.0.0.0/0`` (an ``i:`` key names one address) and text that is
    not UTF-8 it raises :class:`TokenError`, so the key is counted as a bad token
    rather than silently ignored.  An ``i:`` address with host bits set under the
    rule's mask (``ipv4_mask``, ``ipv6_mask``) was written by a rule with a longer mask
    and is returned as the single address it names.
    """
    _check_masks(ipv4_mask, ipv6_mask)
    if selector == "ip":
        if not key.startswith(IP_PREFIX) or key == IP_PREFIX:
            return None
        rest = key[len(IP_PREFIX) :]
        if ipv4_mask == 32 and _is_plain_ipv4(rest):
            return rest  # the common case, decided without ipaddress objects
        address = _address(rest)
        network = _masked(address, ipv4_mask, ipv6_mask)
        if network.network_address != address:
            return str(address)
        return _network_text(network)
    token = _other_token(selector, key)
    if token is not None:
        _check_text(token)
    return token


def _other_token(selector: str, key: str) -> str | None:
    """token_of for the selectors whose tokens are the key's text."""
    if selector in ("asn", "country"):
        prefix = ASN_PREFIX if selector == "asn" else COUNTRY_PREFIX
        rest = key.removeprefix(prefix)
        return rest if rest != key and rest else None
    if selector == "dkim":
        return key if _DKIM.fullmatch(key) else None
    if selector == "url":
        if not _URL.fullmatch(key) or _DKIM.fullmatch(key) or _SPF.fullmatch(key):
            return None
        return key
    if selector == "spf":
        return key if _SPF.fullmatch(key) else None
    if selector == "generic":
        return key or None
    raise ValueError(f"unknown selector {selector!r}; expected one of {', '.join(SELECTORS)}")


def redis_key(
    selector: str,
    token: str,
    *,
    ipv4_mask: int = IPV4_MASK,
    ipv6_mask: int = IPV6_MASK,
) -> str:
    """The Redis key (without prefix) Rspamd uses for ``token``: the inverse of token_of.

    An ip token may be a single address, which gets the rule's mask as Rspamd applies it
    to a sender (``2001:db8:1:2::5`` -> ``i:2001:db8:1:2::``), or the network token_of
    returns; a network of another length raises ValueError, as do malformed tokens
    (an address that is not one, an AS number that is not decimal) and tokens of
    another selector's shape.
    """
    _check_masks(ipv4_mask, ipv6_mask)
    key: str
    if selector == "ip":
        try:
            if "/" in token:
                given = ipaddress.ip_network(token, strict=True)
                network = _masked(given.network_address, ipv4_mask, ipv6_mask)
                if network != given:
                    raise ValueError(
                        f"{_shown(token)}: the rule counts /{network.prefixlen} networks")
            else:
                network = _masked(ipaddress.ip_address(token), ipv4_mask, ipv6_mask)
        except ValueError as exc:
            why = str(exc) if len(str(exc)) <= 120 else "not an address or network"
            raise ValueError(f"ip token {_shown(token)}: {why}") from None
        key = IP_PREFIX + str(network.network_address)
    elif selector == "asn":
        if not _ASN.fullmatch(token):
            raise ValueError(f"asn token {_shown(token)}: expected a decimal AS number")
        key = ASN_PREFIX + token
    elif selector == "country":
        if not _COUNTRY.fullmatch(token):
            raise ValueError(f"country token {_shown(token)}: expected a country code")
        key = COUNTRY_PREFIX + token
    elif selector in SELECTORS:
        key = token
    else:
        raise ValueError(f"unknown selector {selector!r}; expected one of {', '.join(SELECTORS)}")
    if token_of(selector, key, ipv4_mask=ipv4_mask, ipv6_mask=ipv6_mask) is None:
        raise ValueError(f"{_shown(token)} is not a valid {selector} token")
    return key
