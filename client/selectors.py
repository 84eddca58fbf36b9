"""Facts to reputation tokens, exactly as Rspamd's reputation plugin derives them.

A zone only answers for the names Rspamd's Redis keys become (listformat.tokens), so
each function here reproduces one selector of ``src/plugins/lua/reputation.lua``
(Rspamd 3.4 as packaged by Debian 12, checked against the current source;
docs/rspamd-layout.md) and returns the tokens in the form ``listformat.tokens.token_of``
gives for those keys:

- **ip** (``ip_reputation_filter``): the sender address with ``ipv4_mask`` (32) or
  ``ipv6_mask`` (64) applied (an IPv6 sender is its /64 network, ``2001:db8:1:2::/64``),
  plus the ``asn`` and ``country`` the caller knows; weights ``scores = {ip = 1.0,
  asn = 0.4, country = 0.01}``.  No token at all without a valid address.  The rule is
  inbound-only by default: messages from an authenticated user or a local address are
  skipped (:func:`rule_applies`).
- **dkim** (``gen_dkim_queries``): one ``<eTLD+1>.<r>`` token per signing domain from
  DKIM_TRACE, ``r`` = ``a`` (``+``, pass), ``r`` (``-``, reject), ``u`` (``?``
  tempfail, ``~`` permfail); the last result for an eTLD+1 wins.  Only ``a`` tokens
  score (weight 1.0); ``r`` and ``u`` are looked up but weigh 0.
- **spf** (``spf_reputation_filter``): when SPF passed and the record is known, the
  first 32 characters of Rspamd-base32 BLAKE2b-512 of the record text.
- **url** (``gen_url_queries``): eTLD+1 of each distinct URL of ``task:get_urls(true)``
  (web, ftp, file and mailto URLs, body addresses included; not images, not the URLs
  only displayed as link text), counted, a redirector's target domain counted once
  less, the ``max_urls`` most frequent kept.
- **generic**: whatever a selector expression yields (:mod:`client.selectorlang`).

Tokens carry Rspamd's multiplier as ``weight``; the scoring side (client.plan) combines
them per selector.
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from client.facts import Facts, Url
from client.selectorlang import (
    Expression,
    SelectorError,
    compile_expression,
    is_listed_url,
    sender_address,
    url_protocol,
)
from client.tld import etld1
from listformat.hashing import hash_token
from listformat.scoring import IP_WEIGHTS
from listformat.tokens import SPF_HASH

__all__ = [
    "LOCAL_NETWORKS",
    "SelectorError",
    "Token",
    "dkim_label",
    "dkim_tokens",
    "generic_tokens",
    "ip_tokens",
    "is_local_ip",
    "rule_applies",
    "spf_record_text",
    "spf_token",
    "spf_tokens",
    "url_tokens",
]


@dataclass(frozen=True)
class Token:
    """One reputation token: what the zone publishes, and how much it counts.

    ``hits`` is the number of occurrences behind the token: for url, the distinct URLs
    of that domain (Rspamd's current formula divides it by the largest ``n`` found,
    where ``weight`` is it divided by the most frequent domain's count); 1 elsewhere.
    """

    selector: str
    component: str
    value: str
    weight: float
    hits: int = 1


# ------------------------------------------------------------------------------ ip

# Rspamd's default ``local_addrs`` (conf/options.inc); ``ip:is_local()`` also counts
# loopback, and IPv6 link-local and site-local (rspamd_inet_address_is_local).
LOCAL_NETWORKS: tuple[str, ...] = (
    "192.168.0.0/16", "10.0.0.0/8", "172.16.0.0/12", "fd00::/8", "169.254.0.0/16",
    "fe80::/10",
)  # fmt: skip
_ALWAYS_LOCAL = tuple(
    ipaddress.ip_network(n) for n in ("127.0.0.0/8", "::1/128", "fe80::/10", "fec0::/10")
)

IPNET_MASKS = (24, 48)  # network prefixes of the ipnet component when asked for with True
IPNET_WEIGHT = 1.0  # repzone's component: an ip token with a shorter mask, weighted alike

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def is_local_ip(ip: str | None, local_networks: Sequence[str] = LOCAL_NETWORKS) -> bool:
    """Rspamd's ``ip:is_local()``: loopback, IPv6 link/site-local, or in ``local_addrs``."""
    address = sender_address(ip)
    if address is None:
        return False
    networks = _networks(tuple(local_networks))[address.version == 6]
    return any(address in n for n in networks)


@functools.lru_cache(maxsize=64)
def _networks(texts: tuple[str, ...]) -> tuple[tuple[IpNetwork, ...], tuple[IpNetwork, ...]]:
    """The local networks, IPv4 then IPv6: parsed once per configuration, as this runs
    for every message."""
    networks = _ALWAYS_LOCAL + tuple(ipaddress.ip_network(n, strict=False) for n in texts)
    return (tuple(n for n in networks if n.version == 4),
            tuple(n for n in networks if n.version == 6))


def rule_applies(
    facts: Facts,
    *,
    inbound: bool = True,
    outbound: bool = True,
    local_networks: Sequence[str] = LOCAL_NETWORKS,
) -> bool:
    """Whether a rule with these ``inbound``/``outbound`` settings checks this message.

    Rspamd's ``is_rule_applicable``: a message is outbound when it comes from an
    authenticated user or a local address.  An outbound-only rule checks only those, an
    inbound-only rule (the ip selector's default) only the others; with both set, or
    (Rspamd's quirk) with neither, every message.
    """
    if inbound == outbound:
        return True
    is_outbound = bool(facts.user) or is_local_ip(facts.ip, local_networks)
    return is_outbound if outbound else not is_outbound


def _network_token(address: IpAddress, mask: int) -> str:
    """The token listformat.tokens.token_of gives for the key ``i:<masked address>``."""
    if mask == address.max_prefixlen:
        return str(address)
    network = ipaddress.ip_network(f"{address}/{mask}", strict=False)
    if network.prefixlen == network.max_prefixlen:
        return str(network.network_address)
    return str(network)


def _asn_text(asn: str | None) -> str | None:
    # The asn module stores the bare number; accept "AS15169" from callers too.
    if asn is None:
        return None
    text = asn.strip()
    if text[:2].upper() == "AS":
        text = text[2:]
    return text if text.isascii() and text.isdigit() else None


def ip_tokens(
    facts: Facts,
    *,
    ipv4_mask: int = 32,
    ipv6_mask: int = 64,
    inbound: bool = True,
    outbound: bool = False,
    asn: bool = True,
    country: bool = True,
    ipnet: bool | tuple[int, int] = False,
    local_networks: Sequence[str] = LOCAL_NETWORKS,
) -> list[Token]:
    """The ip selector's tokens: masked address, then asn and country when known.

    ``ipnet`` adds a network token (repzone's, not Rspamd's): ``True`` for the /24 or
    /48 around the sender, or ``(v4_prefix, v6_prefix)``; it is the token a rule with
    that mask would count, so a zone fed by such a rule answers for it.
    """
    if not 1 <= ipv4_mask <= 32 or not 1 <= ipv6_mask <= 128:
        raise ValueError(f"masks out of range: ipv4 {ipv4_mask}, ipv6 {ipv6_mask}")
    address = sender_address(facts.ip)
    if address is None:
        return []
    if not rule_applies(
        facts, inbound=inbound, outbound=outbound, local_networks=local_networks
    ):
        return []
    mask = ipv4_mask if address.version == 4 else ipv6_mask
    tokens = [Token("ip", "ip", _network_token(address, mask), IP_WEIGHTS["ip"])]
    if ipnet is not False:
        v4, v6 = IPNET_MASKS if ipnet is True else ipnet
        net_mask = v4 if address.version == 4 else v6
        if not 0 < net_mask <= address.max_prefixlen:
            raise ValueError(f"ipnet prefix /{net_mask} is out of range for IPv{address.version}")
        if net_mask < mask:
            tokens.append(Token("ip", "ipnet", _network_token(address, net_mask), IPNET_WEIGHT))
    asn_value = _asn_text(facts.asn) if asn else None
    if asn_value:
        tokens.append(Token("ip", "asn", asn_value, IP_WEIGHTS["asn"]))
    if country and facts.country and facts.country.strip():
        tokens.append(Token("ip", "country", facts.country.strip(), IP_WEIGHTS["country"]))
    return tokens


# ---------------------------------------------------------------------------- dkim

# Authentication-Results words for the DKIM_TRACE marks Rspamd writes (dkim_check.c:
# DKIM_CONTINUE '+', DKIM_REJECT '-', DKIM_TRYAGAIN '?', DKIM_PERM_ERROR '~') and the
# label gen_dkim_queries makes of them.  "none" means no signature: no trace, no token.
_DKIM_LABELS = {"pass": "a", "fail": "r", "reject": "r", "+": "a", "-": "r"}
_NO_SIGNATURE = frozenset({"", "none"})


def dkim_label(result: str) -> str | None:
    """``a``, ``r`` or ``u`` for one DKIM result; None when there was no signature."""
    word = result.strip().lower()
    if word in _NO_SIGNATURE:
        return None
    return _DKIM_LABELS.get(word, "u")


def dkim_tokens(facts: Facts) -> list[Token]:
    """One ``<eTLD+1>.<a|r|u>`` token per signing eTLD+1; only ``a`` weighs (1.0).

    Rspamd keeps a table keyed by eTLD+1, so the last signature of a domain decides its
    label; tokens come in the order domains first appear.
    """
    labels: dict[str, str] = {}
    for result in facts.dkim:
        label = dkim_label(result.result)
        domain = result.domain.strip()
        if label is None or not domain:
            continue
        labels[etld1(domain)] = label
    return [
        Token("dkim", "dkim", f"{domain}.{label}", 1.0 if label == "a" else 0.0)
        for domain, label in labels.items()
    ]


# ----------------------------------------------------------------------------- spf


def _unquote_txt(text: str) -> str:
    """A TXT record in zone-file form (``"v=spf1 " "-all"``) as the text DNS carries."""
    out: list[str] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch.isspace():
            i += 1
            continue
        if ch != '"':
            raise ValueError(f"not a quoted TXT record: {text[:40]!r}")
        i += 1
        while i < len(text) and text[i] != '"':
            if text[i] == "\\" and i + 1 < len(text):
                digits = text[i + 1 : i + 4]
                if len(digits) == 3 and digits.isdigit():
                    out.append(chr(int(digits)))
                    i += 4
                    continue
                out.append(text[i + 1])
                i += 2
                continue
            out.append(text[i])
            i += 1
        if i >= len(text):
            raise ValueError(f"unterminated quote in TXT record: {text[:40]!r}")
        i += 1
    return "".join(out)


def spf_record_text(record: str) -> str:
    """The exact text Rspamd hashes for an SPF record.

    Rspamd hashes the ``spf_record`` mempool variable, the top record's TXT data as its
    resolver returns it: the character-strings joined with nothing between them, no
    quotes, nothing trimmed.  A record given in zone-file form (``dig`` output, starting
    with a quote) is converted to that; any other text is taken as it is.
    """
    if record.lstrip().startswith('"'):
        try:
            return _unquote_txt(record)
        except ValueError:
            return record
    return record


def spf_token(record: str) -> str:
    """The spf token of a record: 32 characters of Rspamd-base32 BLAKE2b-512."""
    return hash_token(spf_record_text(record), SPF_HASH)


def spf_tokens(facts: Facts) -> list[Token]:
    """The spf token when SPF passed (R_SPF_ALLOW) and the record text is known."""
    if (facts.spf_result or "").strip().lower() != "pass" or not facts.spf_record:
        return []
    return [Token("spf", "spf", spf_token(facts.spf_record), 1.0)]


# ----------------------------------------------------------------------------- url

# task:get_urls(true): web, ftp and file URLs plus mailto (need_emails).
_URL_PROTOCOLS = frozenset({"http", "https", "ftp", "file", "mailto"})


def _url_identity(url: Url) -> tuple[str, str]:
    """What makes two URLs one in Rspamd's URL set: the text, scheme and host caseless."""
    return _text_identity(url.url)


@functools.lru_cache(maxsize=4096)
def _text_identity(text: str) -> tuple[str, str]:
    """_url_identity of a URL's text (all it depends on), kept for the URLs seen again."""
    protocol = url_protocol(Url("", text))
    if protocol == "mailto":
        return protocol, text.partition(":")[2].split("?", 1)[0].lower()
    try:
        parts = urlsplit(text)
    except ValueError:
        return protocol, text
    rest = text[len(parts.scheme) + 1 :] if parts.scheme else text
    netloc = parts.netloc
    if netloc and rest.startswith("//" + netloc):
        rest = "//" + netloc.lower() + rest[len(netloc) + 2 :]
    return protocol, rest


def _message_urls(facts: Facts) -> Iterable[tuple[tuple[str, str], Url]]:
    """(identity, URL) of each URL ``task:get_urls(true)`` would return."""
    for url in facts.urls:
        if url_protocol(url) in _URL_PROTOCOLS and is_listed_url(url):
            yield _url_identity(url), url
    for address in facts.emails:
        _, at, domain = address.strip().rpartition("@")
        if at:
            yield ("mailto", address.strip().lower()), Url(
                domain, f"mailto:{address.strip()}", frozenset()
            )


def _domain(host: str | None) -> str | None:
    # Rspamd lowercases the host of every URL it parses.
    host = (host or "").strip().lower()
    return etld1(host) if host else None


def _target_domain(target: str) -> str | None:
    try:
        return _domain(urlsplit(target if "//" in target else f"//{target}").hostname)
    except ValueError:
        return None


def url_tokens(facts: Facts, *, max_urls: int = 10) -> list[Token]:
    """The url selector's tokens: eTLD+1 of the message's URLs, most frequent first.

    Like Rspamd's URL set, a URL seen twice counts once (its first occurrence's flags
    stand; scheme and host are caseless, as are e-mail addresses).  URLs only displayed
    as link text (``html_displayed``) do not count.  A redirector whose target is known
    (``Url.redirected_to``) takes one from the count of the target's domain when that
    domain is counted: Rspamd does so when it meets the target first, in the order of a
    hash, so here it always does.  The ``max_urls`` most frequent domains are kept, ties
    in order of first appearance (Rspamd's order for ties is a hash's too), then those
    with a positive count; each weighs its count over the most frequent domain's, the
    2018 formula (the current one divides ``hits`` by the largest ``n`` of the answers,
    which is client.plan's business).
    """
    if max_urls < 1:
        raise ValueError(f"max_urls must be at least 1, not {max_urls}")
    seen: set[tuple[str, str]] = set()
    counts: dict[str, int] = {}
    targets: list[str] = []
    for identity, url in _message_urls(facts):
        if identity in seen:
            continue
        seen.add(identity)
        domain = _domain(url.host)
        if "html_displayed" in url.flags or domain is None:
            continue
        counts[domain] = counts.get(domain, 0) + 1
        target = _target_domain(url.redirected_to) if url.redirected_to else None
        if target is not None:
            targets.append(target)
    for target in targets:
        if target in counts:
            counts[target] -= 1
    ranked = sorted(counts.items(), key=lambda item: -item[1])[:max_urls]
    kept = [(domain, hits) for domain, hits in ranked if hits > 0]
    if not kept:
        return []
    most = kept[0][1]
    return [Token("url", "url", domain, hits / most, hits) for domain, hits in kept]


# ------------------------------------------------------------------------- generic


def generic_tokens(
    expression: str | Expression, facts: Facts, *, delimiter: str = ":"
) -> list[Token]:
    """One token per value of a selector expression (Rspamd's generic rule), weight 1.0.

    Selectors joined by ``;`` are combined with ``delimiter`` (the rule's ``delimiter``,
    ``:`` by default).  Empty values are dropped (no name can be empty) and repeated ones
    looked up once.  :class:`SelectorError` when the expression is not usable.
    """
    compiled = compile_expression(expression) if isinstance(expression, str) else expression
    values = dict.fromkeys(v for v in compiled.evaluate(facts, delimiter=delimiter) if v)
    return [Token("generic", "generic", value, 1.0) for value in values]
