"""Facts about a message: what the reputation selectors read, taken from the message itself.

:func:`facts_from_message` parses an RFC 5322 message with the standard library and
returns :class:`Facts`; any fact the caller already knows (``ip=``, ``helo=``,
``dkim=``...) is passed as a keyword and wins over the message.  Nothing here does I/O:
checking signatures and SPF needs DNS and is a step of its own (below).

**The sending IP** is the ``from`` address of the first Received header, from the top,
whose address is not trusted: the ones in ``trusted`` (addresses or networks) and,
while ``trust_private`` is true (the default), loopback, RFC 1918, RFC 6598 (CGNAT),
link-local and IPv6 unique-local addresses, since no Internet sender has one and no
public list can score one.  Headers without an address (local submission, ``by``-only
lines) are skipped.  When every hop is trusted the message has no outside sender and
``ip`` is None.  HELO and reverse-DNS name come from the same header
(:func:`client.received.parse_received` reads the Postfix, Sendmail, Exim, Microsoft,
qmail and Courier forms).  Rspamd itself takes the top Received header unless its MTA
passes the IP; trusting our own relays is what lets a scanner behind them find the real
sender.

**DKIM, SPF and the authenticated user** come from ``Authentication-Results`` (RFC
8601; several headers, comments, quoted values: :mod:`client.authresults`): ``dkim=``
results with ``header.d`` (or the domain of ``header.i``), the first ``spf=`` result
with the domain of ``smtp.mailfrom`` (or ``smtp.helo``), ``auth=pass`` with
``smtp.auth``.  Anyone can write these headers, so pass ``authserv_id`` (yours, as your
MTA writes it) to read only the ones your own border added; without it every header
counts.  ``ARC-Authentication-Results`` is not read.  Checking the signatures and SPF
instead needs DNS, so it is a step of its own (:func:`client.verify.verify_message`,
which the faces take with ``verify=True``): verified results replace the
Authentication-Results ones (verified SPF also gives ``spf_record``, the text the spf
selector hashes), and facts passed as keywords win over both.

**Addresses**: ``Return-Path`` gives ``from_smtp`` (``""`` for the null sender ``<>``),
``From`` gives ``from_mime``, ``To`` and ``Cc`` give ``rcpts`` unless the caller passes
the envelope recipients; domains are lowercased, local parts kept.

**URLs and e-mail addresses** of the Subject and of every text/plain and text/html part
that is not an attachment, transfer encodings and charsets decoded, are found as
Rspamd finds them (:mod:`client.urls`).

A bad header never raises: what cannot be read is left out.  :class:`MessageError` is
raised only when the input is not a message at all.
"""

from __future__ import annotations

import email.errors
import email.header
import email.policy
import email.utils
import ipaddress
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from email.message import Message
from email.parser import BytesParser
from types import MappingProxyType
from typing import Any

from client.authresults import parse_authentication_results
from client.errors import ClientError
from client.mailheaders import header_text, mailbox
from client.received import Received, parse_ip, parse_received
from client.urls import Url, UrlSet

__all__ = ["DkimResult", "Facts", "MessageError", "Url", "facts_from_message"]


class MessageError(ClientError, ValueError):
    """The input is not an RFC 5322 message."""


@dataclass(frozen=True)
class DkimResult:
    """One DKIM signature's outcome: the signing domain and the RFC 8601 result word."""

    domain: str
    result: str  # pass | fail | neutral | none | permerror | temperror | policy | ...


def _no_headers() -> Mapping[str, tuple[str, ...]]:
    return MappingProxyType({})


@dataclass(frozen=True)
class Facts:
    """What the selectors know about one message; every field may be passed directly."""

    ip: str | None = None  # the sending IP (first untrusted hop, or given)
    helo: str | None = None
    hostname: str | None = None  # the sender's reverse-DNS name, when known
    from_smtp: str | None = None  # envelope sender (Return-Path / given); "" for <>
    from_mime: str | None = None  # header From address
    rcpts: tuple[str, ...] = ()  # envelope recipients (given) or To/Cc addresses
    user: str | None = None  # authenticated user
    subject: str | None = None
    asn: str | None = None
    country: str | None = None
    dkim: tuple[DkimResult, ...] = ()
    spf_result: str | None = None  # pass | fail | softfail | neutral | none | ...
    spf_domain: str | None = None
    spf_record: str | None = None  # the SPF TXT record text, when known
    urls: tuple[Url, ...] = ()
    emails: tuple[str, ...] = ()  # addresses found in the body
    headers: Mapping[str, tuple[str, ...]] = field(default_factory=_no_headers)
    received: tuple[Received, ...] = ()  # parsed Received headers, top first


# -- header text ---------------------------------------------------------------------

def _decoded(raw: str) -> str:
    """RFC 2047 encoded words decoded; the raw text when they are too broken to decode."""
    try:
        return str(email.header.make_header(email.header.decode_header(raw)))
    except (ValueError, LookupError, UnicodeError, email.errors.HeaderParseError):
        return raw


def _addresses(values: Iterable[str]) -> list[str]:
    found: list[str] = []
    for value in values:
        try:
            pairs = email.utils.getaddresses([value])
        except (ValueError, IndexError, TypeError):
            continue
        for _, addr in pairs:
            normal = mailbox(addr)
            if normal is not None and normal not in found:
                found.append(normal)
    return found


def _return_path(value: str) -> str | None:
    text = value.strip()
    if text.startswith("<"):
        inner = text[1:].partition(">")[0].strip()
        if not inner:
            return ""
        # A source route (<@relay:user@domain>) ends at its colon.
        text = inner.rpartition(":")[2] if inner.startswith("@") else inner
    return mailbox(text)


# -- the sending hop -----------------------------------------------------------------

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# Addresses no Internet sender has: trusted by default (trust_private).  Documentation
# ranges (192.0.2.0/24, 2001:db8::/32...) are not here, although Python's is_private
# counts them: they are what test messages use for outside senders.
PRIVATE_NETWORKS: tuple[IPNetwork, ...] = tuple(
    ipaddress.ip_network(n)
    for n in (
        "0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16",
        "172.16.0.0/12", "192.168.0.0/16", "::1/128", "::/128", "fc00::/7", "fe80::/10",
    )
)  # fmt: skip


def _networks(trusted: Sequence[str]) -> list[IPNetwork]:
    if isinstance(trusted, str):
        trusted = [trusted]
    networks = []
    for entry in trusted:
        try:
            networks.append(ipaddress.ip_network(entry.strip(), strict=False))
        except ValueError:
            raise ValueError(f"trusted: {entry!r} is not an IP address or network") from None
    return networks


def _sender_hop(
    received: Sequence[Received], networks: Sequence[IPNetwork], trust_private: bool
) -> Received | None:
    """The first hop from the top whose client address is not trusted."""
    for hop in received:
        address = None if hop.real_ip is None else parse_ip(hop.real_ip)
        if address is None:
            continue
        if any(address in net for net in networks if net.version == address.version):
            continue
        if trust_private and any(
            address in net for net in PRIVATE_NETWORKS if net.version == address.version
        ):
            continue
        return hop
    return None


# -- Authentication-Results ----------------------------------------------------------


def _domain_of(value: str | None) -> str | None:
    if not value:
        return None
    domain = value.strip().strip("<>").rpartition("@")[2].strip().lower().rstrip(".")
    return domain or None


@dataclass
class _Authentication:
    dkim: list[DkimResult] = field(default_factory=list)
    spf_result: str | None = None
    spf_domain: str | None = None
    user: str | None = None


def _authentication(values: Sequence[str], authserv_ids: frozenset[str] | None
                    ) -> _Authentication:
    found = _Authentication()
    for value in values:
        try:
            authserv_id, results = parse_authentication_results(value)
        except (ValueError, IndexError):
            continue
        if authserv_ids is not None and authserv_id not in authserv_ids:
            continue
        for res in results:
            props = res.properties
            if res.method == "dkim":
                domain = _domain_of(props.get("header.d")) or _domain_of(props.get("header.i"))
                if domain is not None and DkimResult(domain, res.result) not in found.dkim:
                    found.dkim.append(DkimResult(domain, res.result))
            elif res.method == "spf" and found.spf_result is None:
                found.spf_result = res.result
                found.spf_domain = _domain_of(props.get("smtp.mailfrom")) or _domain_of(
                    props.get("smtp.helo")
                )
            elif res.method == "auth" and res.result == "pass" and found.user is None:
                found.user = props.get("smtp.auth") or None
    return found


# -- parts ---------------------------------------------------------------------------


def _part_text(part: Message) -> str | None:
    """A text part's content: transfer encoding undone, charset decoded leniently."""
    payload = part.get_payload(decode=True)
    if not isinstance(payload, bytes):
        return None
    declared = part.get_content_charset() or "utf-8"
    for charset in (declared, "utf-8"):
        try:
            return payload.decode(charset)
        except (LookupError, UnicodeDecodeError):
            continue
    try:
        return payload.decode(declared, errors="replace")
    except LookupError:
        return payload.decode("utf-8", errors="replace")


def _body_urls(message: Message, urls: UrlSet) -> None:
    for part in message.walk():
        if part.is_multipart():
            continue
        try:
            content_type = part.get_content_type()
            if content_type not in ("text/plain", "text/html"):
                continue
            if part.get_content_disposition() == "attachment":
                continue
            text = _part_text(part)
        except Exception:  # a broken part is skipped, never fatal
            continue
        if text is None:
            continue
        if content_type == "text/html":
            urls.add_html(text)
        else:
            urls.add_text(text)


# -- the message ---------------------------------------------------------------------

_TUPLE_FIELDS = frozenset({"rcpts", "dkim", "urls", "emails", "received"})
_FIELDS = frozenset(f.name for f in fields(Facts))


def _parse(data: object) -> Message:
    if isinstance(data, str):
        raise MessageError("expected the message as bytes, got str (encode it first)")
    if not isinstance(data, bytes | bytearray | memoryview):
        raise MessageError(f"expected the message as bytes, got {type(data).__name__}")
    raw = bytes(data)
    if not raw.strip():
        raise MessageError("empty input: a message needs at least a header section")
    try:
        message = BytesParser(policy=email.policy.compat32).parsebytes(raw)
    except Exception as exc:  # the parser is lenient: this is not a message
        raise MessageError(f"cannot parse the input as a message: {exc}") from exc
    if not message.keys():
        first = raw.lstrip().splitlines()[0][:40] if raw.strip() else b""
        raise MessageError(
            "no header section: the input does not start with 'Name: value' header "
            f"lines (it starts with {first!r})"
        )
    return message


def facts_from_message(
    data: bytes | bytearray | memoryview,
    *,
    trusted: Sequence[str] = (),
    trust_private: bool = True,
    authserv_id: str | Sequence[str] | None = None,
    **given: Any,
) -> Facts:
    """The facts of a message, with ``given`` facts overriding what the message says.

    ``trusted``: addresses and networks (``"192.0.2.25"``, ``"2001:db8::/32"``) of your
    own relays; the sending IP is the first Received hop not in them (nor, with
    ``trust_private``, in a private range).  ``authserv_id``: the authserv-id(s) of
    the Authentication-Results headers to believe (all when None).  ``given``: any
    field of :class:`Facts`; an unknown name raises TypeError.  Raises
    :class:`MessageError` when ``data`` is not a message.
    """
    unknown = set(given) - _FIELDS
    if unknown:
        raise TypeError(f"facts_from_message: unknown facts {sorted(unknown)}")
    networks = _networks(trusted)
    message = _parse(data)

    headers: dict[str, list[str]] = {}
    for name, value in message.raw_items():
        headers.setdefault(name.lower(), []).append(header_text(value))

    def first(name: str) -> str | None:
        values = headers.get(name)
        return values[0] if values else None

    received = tuple(parse_received(v) for v in headers.get("received", []))
    if isinstance(authserv_id, str):
        authserv_id = [authserv_id]
    ids = None if authserv_id is None else frozenset(a.lower() for a in authserv_id)
    auth = _authentication(headers.get("authentication-results", []), ids)

    subject_raw = first("subject")
    subject = None if subject_raw is None else _decoded(subject_raw)
    urls = UrlSet()
    if subject:
        urls.add_subject(subject)
    _body_urls(message, urls)

    return_path = first("return-path")
    from_smtp = None if return_path is None else _return_path(return_path)
    from_mime = next(iter(_addresses(headers.get("from", []))), None)
    rcpts = _addresses([*headers.get("to", []), *headers.get("cc", [])])

    ip = given.get("ip")
    if ip is not None:
        hop = next((h for h in received if h.real_ip is not None and h.real_ip == ip), None)
    else:
        hop = _sender_hop(received, networks, trust_private)
    facts: dict[str, Any] = {
        "ip": None if hop is None else hop.real_ip,
        "helo": None if hop is None else hop.from_hostname,
        "hostname": None if hop is None else hop.real_hostname,
        "from_smtp": from_smtp,
        "from_mime": from_mime,
        "rcpts": tuple(rcpts),
        "user": auth.user,
        "subject": subject,
        "dkim": tuple(auth.dkim),
        "spf_result": auth.spf_result,
        "spf_domain": auth.spf_domain,
        "urls": tuple(urls.urls()),
        "emails": tuple(urls.emails()),
        "headers": MappingProxyType({k: tuple(v) for k, v in headers.items()}),
        "received": received,
    }
    for key, fact in given.items():
        if key in _TUPLE_FIELDS and fact is not None:
            fact = tuple(fact)
        elif key == "headers" and fact is not None:
            fact = MappingProxyType({k.lower(): tuple(v) for k, v in fact.items()})
        facts[key] = fact
    return Facts(**facts)

