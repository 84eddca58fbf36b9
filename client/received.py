"""The Received header (RFC 5321 section 4.4) read into Rspamd's fields.

:func:`parse_received` reads the Postfix, Sendmail, Exim, Microsoft, qmail and Courier
forms; :func:`parse_ip` reads the client address as every hop's is compared (zone
dropped, IPv4-mapped IPv6 as IPv4).  Which hop is the sender is the facts' business
(:mod:`client.facts`: trusted relays).  Pure: no I/O.
"""

from __future__ import annotations

import email.utils
import functools
import ipaddress
import re
from dataclasses import dataclass
from datetime import UTC

from client.mailheaders import header_text, mailbox

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


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


_IP_TEXT = re.compile(r"[0-9A-Fa-f:.]+")  # what an address can be made of, to skip words


@functools.lru_cache(maxsize=1024)
def parse_ip(text: str) -> IPAddress | None:
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
        and parse_ip(word) is None
    )


def _comment_ip(comment: str) -> tuple[IPAddress | None, str | None, bool]:
    """The client address in a from-clause comment, the word before it, and whether
    the comment starts with the address (Exim's and Sendmail's ``([ip])`` form)."""
    match = _BRACKET_IP.search(comment)
    if match is not None:
        address = parse_ip(match[1])
        if address is not None:
            before = comment[:match.start()].split()
            return address, (before[-1] if before else None), not before
    for word in comment.replace(",", " ").split():
        # Microsoft "(10.1.2.3)", qmail "(1.2.3.4)" and "(user@1.2.3.4)".
        address = parse_ip(word.rpartition("@")[2])
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
    raw = header_text(value)
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
    for_addr = mailbox(words[0]) if words else None

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
                address = parse_ip(match[1])
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
