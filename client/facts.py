"""Facts about a message: what the reputation selectors read, taken from the message itself.

:func:`facts_from_message` parses an RFC 5322 message with the standard library and
returns :class:`Facts`; any fact the caller already knows (``ip=``, ``helo=``,
``dkim=``...) is passed as a keyword and wins over the message.  Nothing here does I/O:
checking signatures and SPF needs DNS and is a step of its own (below).

**The sending IP** is the ``from`` address of the first Received header, from the top,
whose address is not trusted: the ones in ``trusted`` (addresses or networks) and, while
``trust_private`` is true (the default), loopback, RFC 1918, RFC 6598 (CGNAT),
link-local and IPv6 unique-local addresses, since no Internet sender has one and no
public list can score one.  Headers without an address (local submission, ``by``-only
lines) are skipped.  When every hop is trusted the message has no outside sender and
``ip`` is None.  HELO and reverse-DNS name come from the same header
(:func:`parse_received` reads the Postfix, Sendmail, Exim, Microsoft, qmail and Courier
forms).  Rspamd itself takes the top Received header unless its MTA passes the IP;
trusting our own relays is what lets a scanner behind them find the real sender.

**DKIM, SPF and the authenticated user** come from ``Authentication-Results`` (RFC 8601;
several headers, comments, quoted values): ``dkim=`` results with ``header.d`` (or the
domain of ``header.i``), the first ``spf=`` result with the domain of ``smtp.mailfrom``
(or ``smtp.helo``), ``auth=pass`` with ``smtp.auth``.  Anyone can write these headers,
so pass ``authserv_id`` (yours, as your MTA writes it) to read only the ones your own
border added; without it every header counts.  ``ARC-Authentication-Results`` is not
read.  Checking the signatures and SPF instead needs DNS, so it is a step of its own
(:func:`client.verify.verify_message`, which the faces take with ``verify=True``):
verified results replace the Authentication-Results ones (verified SPF also gives
``spf_record``, the text the spf selector hashes), and facts passed as keywords win
over both.

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
import functools
import ipaddress
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from datetime import UTC
from email.message import Message
from email.parser import BytesParser
from types import MappingProxyType
from typing import Any, NamedTuple

from client.urls import Url, UrlSet

__all__ = [
    "AuthResult",
    "DkimResult",
    "Facts",
    "MessageError",
    "Received",
    "Url",
    "facts_from_message",
    "parse_authentication_results",
    "parse_received",
]


class MessageError(ValueError):
    """The input is not an RFC 5322 message."""


@dataclass(frozen=True)
class DkimResult:
    """One DKIM signature's outcome: the signing domain and the RFC 8601 result word."""

    domain: str
    result: str  # pass | fail | neutral | none | permerror | temperror | policy | ...


@dataclass(frozen=True)
class Received:
    """One parsed Received header, with Rspamd's field names.

    ``from_hostname`` is the name the client announced (HELO/EHLO), ``real_hostname``
    its reverse-DNS name as the receiving MTA recorded it, ``real_ip`` its address.
    """

    raw: str
    from_hostname: str | None = None
    real_hostname: str | None = None
    real_ip: str | None = None
    by_hostname: str | None = None
    proto: str | None = None  # the "with" word, lowercased: smtp, esmtps, esmtpsa, lmtp...
    for_addr: str | None = None
    timestamp: float | None = None  # the date after ";", unix seconds

    @property
    def from_ip(self) -> str | None:
        """Rspamd's other name for ``real_ip``."""
        return self.real_ip

    @property
    def helo(self) -> str | None:
        """The announced name, as the ``helo`` fact calls it."""
        return self.from_hostname


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

_FOLD = re.compile(r"\r?\n(?=[ \t])")


def _header_text(value: Any) -> str:
    """A raw header value as text: 8-bit bytes read as UTF-8, folding removed."""
    text = str(value)
    try:
        text = text.encode("ascii", "surrogateescape").decode("utf-8", "replace")
    except UnicodeEncodeError:
        pass  # already real text (the parser only leaves surrogates for 8-bit bytes)
    return _FOLD.sub("", text).strip()


def _decoded(raw: str) -> str:
    """RFC 2047 encoded words decoded; the raw text when they are too broken to decode."""
    try:
        return str(email.header.make_header(email.header.decode_header(raw)))
    except (ValueError, LookupError, UnicodeError, email.errors.HeaderParseError):
        return raw


def _address(addr: str) -> str | None:
    """``local@domain`` with the domain lowercased; None for what is not an address."""
    addr = addr.strip().strip("<>").strip()
    local, at, domain = addr.rpartition("@")
    if not at or not local or not domain or any(c.isspace() for c in addr):
        return None
    return f"{local}@{domain.lower().rstrip('.')}"


def _addresses(values: Iterable[str]) -> list[str]:
    found: list[str] = []
    for value in values:
        try:
            pairs = email.utils.getaddresses([value])
        except (ValueError, IndexError, TypeError):
            continue
        for _, addr in pairs:
            normal = _address(addr)
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
    return _address(text)


# -- IP addresses --------------------------------------------------------------------

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
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


_IP_TEXT = re.compile(r"[0-9A-Fa-f:.]+")  # what an address can be made of, to skip words


@functools.lru_cache(maxsize=1024)
def _ip(text: str) -> IPAddress | None:
    """An address in a Received header: zone dropped, IPv4-mapped IPv6 as IPv4.

    Kept: every hop's address is read twice (the header, then the trusted-relay walk),
    and a relay's own addresses recur in every message it passes on.
    """
    text = text.partition("%")[0]
    if not _IP_TEXT.fullmatch(text):
        return None
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


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


# -- Received ------------------------------------------------------------------------

_KEYWORDS = frozenset({"from", "by", "via", "with", "id", "for"})
_BRACKET_IP = re.compile(r"\[(?:ipv6:)?([0-9a-f:.]+(?:%[\w.-]+)?)\](:\d+)?", re.IGNORECASE)
_EXIM_HELO = re.compile(r"\bhelo=([^\s()]+)", re.IGNORECASE)
_QMAIL_HELO = re.compile(r"\bHELO\s+([^\s()]+)")
_EXIM_MARK = re.compile(r"\]:\d+|\bport=\d+|\bhelo=", re.IGNORECASE)  # Exim's comment style
_HOSTNAME = re.compile(r"[A-Za-z0-9_](?:[A-Za-z0-9_.-]*[A-Za-z0-9_])?\.?")


_WORD = re.compile(r"[^\s();]+")
_SKIP = re.compile(r"[\s)]+")  # a stray ")" closes nothing
_COMMENT_MARK = re.compile(r"[()\\]")


def _received_tokens(text: str) -> tuple[list[tuple[str, str]], str]:
    """Words and comments (``("w", ...)``/``("c", ...)``) up to the date, and the date."""
    tokens: list[tuple[str, str]] = []
    i, n = 0, len(text)
    while i < n:
        char = text[i]
        if char.isspace() or char == ")":
            i = _SKIP.match(text, i).end()  # type: ignore[union-attr]
        elif char == "(":
            depth, j = 1, i + 1
            while depth:
                mark = _COMMENT_MARK.search(text, j)
                if mark is None:
                    j = n
                    break
                j = mark.end()
                if mark[0] == "\\":
                    j += 1  # the escaped character, whatever it is
                elif mark[0] == "(":
                    depth += 1
                else:
                    depth -= 1
            tokens.append(("c", text[i + 1:j - 1 if depth == 0 else j].strip()))
            i = j
        elif char == ";":
            return tokens, text[i + 1:].strip()
        else:
            word = _WORD.match(text, i)
            assert word is not None  # char is none of the characters it stops at
            tokens.append(("w", word[0]))
            i = word.end()
    return tokens, ""


def _is_hostname(word: str | None) -> bool:
    return (
        word is not None
        and word.lower() != "unknown"
        and _HOSTNAME.fullmatch(word) is not None
        and _ip(word) is None
    )


def _comment_ip(comment: str) -> tuple[IPAddress | None, str | None, bool]:
    """The client address in a from-clause comment, the word before it, and whether
    the comment starts with the address (Exim's and Sendmail's ``([ip])`` form)."""
    match = _BRACKET_IP.search(comment)
    if match is not None:
        address = _ip(match[1])
        if address is not None:
            before = comment[:match.start()].split()
            return address, (before[-1] if before else None), not before
    for word in comment.replace(",", " ").split():
        # Microsoft "(10.1.2.3)", qmail "(1.2.3.4)" and "(user@1.2.3.4)".
        address = _ip(word.rpartition("@")[2])
        if address is not None:
            return address, None, False
    return None, None, False


def parse_received(value: str) -> Received:
    """One Received header value read into its fields; unknown parts stay None.

    Forms read: ``from HELO (RDNS [IP])`` (Postfix, Sendmail, Courier, Microsoft;
    ``unknown`` for no rDNS, ``[IPv6:...]``), ``from RDNS ([IP]:PORT helo=HELO)`` and
    ``from [IP] (port=N helo=HELO)`` (Exim), ``from HELO (IP)`` (Microsoft),
    ``from RDNS (HELO name) (IP)`` (qmail), plus ``by``, ``with``, ``for`` and the date.
    """
    raw = _header_text(value)
    tokens, date = _received_tokens(raw)
    clauses: dict[str, tuple[list[str], list[str]]] = {}
    current: tuple[list[str], list[str]] | None = None
    for kind, text in tokens:
        if kind == "w" and text.lower() in _KEYWORDS and text.lower() not in clauses:
            current = clauses[text.lower()] = ([], [])
        elif current is not None:
            (current[0] if kind == "w" else current[1]).append(text)

    timestamp = None
    if date:
        try:
            when = email.utils.parsedate_to_datetime(date)
            # "-0000" (no zone known) parses naive: read it as UTC, not as local time.
            timestamp = (when if when.tzinfo else when.replace(tzinfo=UTC)).timestamp()
        except (ValueError, TypeError, IndexError, OverflowError):
            timestamp = None
    words, _ = clauses.get("by", ([], []))
    by_hostname = words[0] if words else None
    words, _ = clauses.get("with", ([], []))
    proto = words[0].lower() if words else None
    words, _ = clauses.get("for", ([], []))
    for_addr = _address(words[0]) if words else None

    words, comments = clauses.get("from", ([], []))
    name = words[0] if words else None
    address: IPAddress | None = None
    rdns: str | None = None
    leading = False
    explicit_helo: str | None = None
    for comment in comments:
        helo_match = _EXIM_HELO.search(comment) or _QMAIL_HELO.search(comment)
        if helo_match is not None and explicit_helo is None:
            explicit_helo = helo_match[1]
        if address is None:
            address, before, leading = _comment_ip(comment)
            if _is_hostname(before):
                rdns = before
    exim = any(_EXIM_MARK.search(c) for c in comments)
    if address is None:
        # Exim without rDNS, or an address literal in place of a name: "from [IP]".
        for word in words:
            match = _BRACKET_IP.fullmatch(word)
            if match is not None:
                address = _ip(match[1])
                break
    helo = explicit_helo or name
    if rdns is None and _is_hostname(name) and (explicit_helo is not None or (leading and exim)):
        # Exim and qmail name the verified host first; the HELO goes in the comment.
        rdns = name
    return Received(
        raw=raw,
        from_hostname=helo,
        real_hostname=rdns,
        real_ip=None if address is None else str(address),
        by_hostname=by_hostname,
        proto=proto,
        for_addr=for_addr,
        timestamp=timestamp,
    )


def _sender_hop(
    received: Sequence[Received], networks: Sequence[IPNetwork], trust_private: bool
) -> Received | None:
    """The first hop from the top whose client address is not trusted."""
    for hop in received:
        address = None if hop.real_ip is None else _ip(hop.real_ip)
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


class AuthResult(NamedTuple):
    """One ``method=result`` of an Authentication-Results header with its properties."""

    method: str  # lowercased, version dropped: dkim, spf, dmarc, auth, arc, ...
    result: str  # lowercased
    properties: Mapping[str, str]  # "header.d" -> "example.com", "reason" -> "...", ...


_PAIR = re.compile(r'([A-Za-z0-9_.\-/]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^\s";=]+)')


def _without_comments(text: str) -> str:
    """``text`` with RFC 5322 comments removed, quoted strings left alone."""
    out: list[str] = []
    depth = 0
    quoted = False
    i = 0
    while i < len(text):
        char = text[i]
        if char == "\\" and (quoted or depth):
            if not depth:
                out.append(text[i:i + 2])
            i += 2
            continue
        if quoted:
            quoted = char != '"'
            out.append(char)
        elif char == "(":
            depth += 1
        elif char == ")" and depth:
            depth -= 1
            if not depth:
                out.append(" ")
        elif not depth:
            quoted = char == '"'
            out.append(char)
        i += 1
    return "".join(out)


def _split_semicolons(text: str) -> list[str]:
    parts: list[str] = []
    start, quoted, i = 0, False, 0
    while i < len(text):
        char = text[i]
        if char == "\\" and quoted:
            i += 2
            continue
        if char == '"':
            quoted = not quoted
        elif char == ";" and not quoted:
            parts.append(text[start:i])
            start = i + 1
        i += 1
    parts.append(text[start:])
    return parts


_QUOTED_PAIR = re.compile(r"\\(.)")


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] == '"':
        return _QUOTED_PAIR.sub(r"\1", value[1:-1])
    return value


def parse_authentication_results(value: str) -> tuple[str | None, list[AuthResult]]:
    """The authserv-id of one Authentication-Results header (RFC 8601) and its results.

    The authserv-id is None when the header has none (a producer that starts with a
    result); ``none`` gives no results.
    """
    chunks = _split_semicolons(_without_comments(_header_text(value)))
    head = chunks[0].strip()
    authserv_id: str | None = None
    first_word = head.split()[0] if head else ""
    if "=" in first_word:
        chunks.insert(1, head)  # no authserv-id: the first chunk is already a result
    elif first_word:
        authserv_id = _unquote(first_word).lower()
    results: list[AuthResult] = []
    for chunk in chunks[1:]:
        pairs = _PAIR.findall(chunk)
        if not pairs:
            continue
        (method, result), *props = pairs
        properties = {key.lower(): _unquote(val) for key, val in props}
        results.append(
            AuthResult(method.partition("/")[0].lower(), _unquote(result).lower(),
                       MappingProxyType(properties))
        )
    return authserv_id, results


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
        headers.setdefault(name.lower(), []).append(_header_text(value))

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

