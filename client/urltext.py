"""One URL, and the URLs of running text: the lower layer of :mod:`client.urls`.

The URL flags, :class:`Url`, host normalisation, the parser of one URL
(:func:`parse_url`) and the scanner of text (:func:`find_urls`, Rspamd's
``rspamd_url_find_multiple``), with the behaviour :mod:`client.urls` documents.
Normalised hosts are kept (an LRU cache): a message names its hosts several times,
and the next messages name them again.
"""

from __future__ import annotations

import functools
import ipaddress
import re
from dataclasses import dataclass, field
from encodings.idna import nameprep
from urllib.parse import unquote, unquote_plus

from client.tld import has_known_suffix

__all__ = ["MAX_URL_LENGTH", "WEB_SCHEMES", "Url", "find_urls", "parse_url"]

# Flag names: Rspamd's (``url_flag_names`` in url.c) plus ``html`` for tag attributes.
TEXT = "text"
HTML = "html"
HTML_DISPLAYED = "html_displayed"
URL_DISPLAYED = "url_displayed"
PHISHED = "phished"
QUERY = "query"
SUBJECT = "subject"
IMAGE = "image"
REDIRECTED = "redirected"
SCHEMALESS = "schemaless"
NUMERIC = "numeric"
OBSCURED = "obscured"
IDN = "idn"
HAS_USER = "has_user"
HAS_PORT = "has_port"
HOST_ENCODED = "host_encoded"
NO_TLD = "no_tld"

# Flags that a later sighting of the same URL adds to the first (Rspamd replaces the
# stored URL by a suspicious one; we keep the first and add the suspicion).
_SUSPICIOUS = frozenset({PHISHED, OBSCURED})

WEB_SCHEMES = frozenset({"http", "https", "ftp"})
MAX_URLS = 10_000  # per message: a bound on work for hostile input
MAX_URL_LENGTH = 8192


@dataclass(frozen=True)
class Url:
    """One distinct URL of a message.

    ``host`` is normalised (lowercase, decoded; an address for numeric hosts, IPv6
    without brackets; the domain for ``mailto:``), ``url`` is the URL with that host,
    ``flags`` say where and how it was found (module docstring).  ``redirected_to`` is
    the target of a ``redirected`` URL when the caller resolved it (Rspamd's
    ``url:get_redirected()``); parsing never sets it.
    """

    host: str
    url: str
    flags: frozenset[str] = frozenset()
    redirected_to: str | None = None


@dataclass
class _Parsed:
    """A URL taken apart; ``rest`` is path, query and fragment as written."""

    scheme: str
    host: str
    flags: set[str] = field(default_factory=set)
    user: str = ""
    port: int | None = None
    rest: str = ""

    @property
    def query(self) -> str:
        """The query as Rspamd searches it: percent- and ``+``-decoded."""
        before_fragment = self.rest.partition("#")[0]
        _, mark, query = before_fragment.partition("?")
        return unquote_plus(query, errors="replace") if mark else ""

    def text(self) -> str:
        if self.scheme == "mailto":
            return f"mailto:{self.user}@{self.host}"
        host = f"[{self.host}]" if ":" in self.host else self.host
        port = f":{self.port}" if self.port is not None else ""
        return f"{self.scheme}://{host}{port}{self.rest}"

    def key(self) -> str:
        # Rspamd compares e-mail addresses case-insensitively, other URLs byte for byte.
        return self.text().lower() if self.scheme == "mailto" else self.text()


# -- hosts ---------------------------------------------------------------------------

_IDNA_DOTS = str.maketrans({"\u3002": ".", "\uff0e": ".", "\uff61": "."})
_HOST_CHARS = re.compile(r"[\w.-]+")
_AT_NUMBER = re.compile(r"0[xX][0-9a-fA-F]*|0[0-7]*|[1-9][0-9]*")


def _inet_aton(text: str) -> ipaddress.IPv4Address | None:
    """``text`` read as the C library's ``inet_aton`` reads it (1 to 4 parts, 0x and 0)."""
    parts = text.split(".")
    if not 1 <= len(parts) <= 4 or not all(_AT_NUMBER.fullmatch(p) for p in parts):
        return None
    values = [int(p[2:] or "0", 16) if p[:2] in ("0x", "0X") else int(p, 8 if p[0] == "0"
              else 10) for p in parts]
    *head, last = values
    if any(v > 0xFF for v in head) or last >= 1 << (8 * (5 - len(parts))):
        return None
    number = last
    for i, value in enumerate(head):
        number |= value << (8 * (3 - i))
    return ipaddress.IPv4Address(number)


def _numeric_host(host: str) -> tuple[str, set[str]] | None:
    text = host.rstrip(".")
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
        if text[:5].lower() == "ipv6:":
            text = text[5:]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        v4 = _inet_aton(text)
        if v4 is None:
            return None
        return str(v4), {NUMERIC, OBSCURED}
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return str(address.ipv4_mapped), {NUMERIC}
    return address.compressed, {NUMERIC}


def _normalize_host(raw: str, *, href: bool, schemaless: bool) -> tuple[str, set[str]] | None:
    """Rspamd's host normalisation; None when Rspamd would not take it as a URL."""
    found = _normalized(raw, href, schemaless)
    return None if found is None else (found[0], set(found[1]))


@functools.lru_cache(maxsize=4096)
def _normalized(raw: str, href: bool, schemaless: bool) -> tuple[str, frozenset[str]] | None:
    """_normalize_host, kept for the hosts a message (and the next ones) names again."""
    found = _normalize_host_uncached(raw, href=href, schemaless=schemaless)
    return None if found is None else (found[0], frozenset(found[1]))


def _normalize_host_uncached(raw: str, *, href: bool, schemaless: bool
                             ) -> tuple[str, set[str]] | None:
    if raw.startswith("["):
        return _numeric_host(raw)
    flags: set[str] = set()
    host = unquote(raw, errors="replace")
    if host != raw:
        flags.add(HOST_ENCODED)
    dotted = host.translate(_IDNA_DOTS)
    if dotted != host:
        flags.add(OBSCURED)
        host = dotted
    if not host or not (host[0].isalnum() or host[0] == "_" or not host[0].isascii()):
        return None
    if not _HOST_CHARS.fullmatch(host):
        return None
    labels = []
    for label in host.split("."):
        if label.isascii():
            labels.append(label.lower())
            continue
        try:
            labels.append(nameprep(label).lower())
        except UnicodeError:
            return None
        flags.add(IDN)
    host = ".".join(labels)
    if has_known_suffix(host):
        return (host[:-1] if host.endswith(".") else host), flags
    numeric = _numeric_host(host)
    if numeric is not None:
        return numeric[0], flags | numeric[1]
    if href and not schemaless:
        return host, flags | {NO_TLD}
    return None


# -- one URL -------------------------------------------------------------------------

_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*):")
_MAILTO = re.compile(
    r"[/\\]*(?:\?to=)?(?P<user>[^@\s<>()\[\]\\,;:\"'/?]{1,64})@"
    r"(?P<domain>[\w.-]{1,253})(?P<query>\?[^\s<>\"')\]}]*)?"
)
_AUTHORITY_END = re.compile(r"[/\\?#]")


def _parse_mailto(text: str, pos: int, end: int, flags: set[str], *, href: bool
                  ) -> tuple[_Parsed, int] | None:
    """The ``mailto:`` URL whose scheme ends at ``pos``, and where it ends in ``text``."""
    match = _MAILTO.match(text, pos, end)
    if match is None:
        return None
    domain = match["domain"].rstrip("._-")
    stop = match.end() if match["query"] else match.start("domain") + len(domain)
    normalized = _normalize_host(domain, href=href, schemaless=SCHEMALESS in flags)
    if not domain or normalized is None or NO_TLD in normalized[1]:
        return None
    host, host_flags = normalized
    return _Parsed("mailto", host, flags | host_flags, user=match["user"]), stop


def parse_url(text: str, *, href: bool = False, flags: frozenset[str] = frozenset()
              ) -> Url | None:
    """``text`` (a whole URL with its scheme) parsed and normalised, or None.

    ``href`` selects Rspamd's leniency for HTML attributes: a host without a known
    suffix is kept (flag ``no_tld``).  Only http, https, ftp and mailto URLs are URLs.
    """
    parsed = _parse(text, 0, len(text), href=href, flags=set(flags))
    return None if parsed is None else Url(parsed.host, parsed.text(), frozenset(parsed.flags))


def _parse(text: str, start: int, end: int, *, href: bool, flags: set[str],
           scheme: str | None = None) -> _Parsed | None:
    """The URL in ``text[start:end]``; with ``scheme`` given, that slice has none and
    starts at the host (a ``www.`` or bare-name match).  Slices only what it keeps."""
    pos = start
    if scheme is None:
        scheme_match = _SCHEME.match(text, start, end)
        if scheme_match is None:
            return None
        scheme = scheme_match[1].lower()
        pos = scheme_match.end()
        if scheme == "mailto":
            result = _parse_mailto(text, pos, end, flags, href=href)
            return None if result is None else result[0]
    if scheme not in WEB_SCHEMES:
        return None
    while pos < end and text[pos] in "/\\":
        pos += 1
    search_from = pos
    if text.startswith("[", pos, end):
        close = text.find("]", pos, end)
        if close < 0:
            return None
        search_from = close + 1
    tail = _AUTHORITY_END.search(text, search_from, end)
    authority_end = tail.start() if tail else end
    authority = text[pos:authority_end]
    if "@" in authority:
        authority = authority.rpartition("@")[2]  # userinfo is dropped
        flags.add(HAS_USER)
    port: int | None = None
    if authority.startswith("["):
        close = authority.find("]")
        host_text, port_text = authority[:close + 1], authority[close + 1:]
    else:
        colon = authority.find(":")
        host_text = authority if colon < 0 else authority[:colon]
        port_text = "" if colon < 0 else authority[colon:]
    if port_text:
        digits = port_text[1:]
        if port_text[0] != ":" or not digits.isdigit() or not 0 < int(digits) < 65536:
            return None
        port = int(digits)
        flags.add(HAS_PORT)
    normalized = _normalize_host(host_text, href=href, schemaless=SCHEMALESS in flags)
    if normalized is None:
        return None
    host, host_flags = normalized
    rest = text[authority_end:end]
    if rest.startswith("\\"):
        rest = "/" + rest[1:]
        flags.add(OBSCURED)
    return _Parsed(scheme, host, flags | host_flags, port=port, rest=rest)


# -- finding URLs in text ------------------------------------------------------------

_L = r"A-Za-z0-9_\-\u0080-\U0010FFFF"  # label characters (Rspamd's is_domain, roughly)
# Local-part characters (Rspamd's is_mailsafe).
_MAILSAFE = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
                      "!\"#$%'*+,-./\\^_{|}~")
_MAX_LOCAL = 64
_FINDER = re.compile(
    r"(?P<scheme>(?<![A-Za-z0-9])(?:https?:|ftp://|mailto:))"
    r"|(?P<www>(?<![^\s(\[{<'\u0080-\U0010FFFF])(?:www|ftp)\.)"
    rf"|(?P<host>(?<![^\s(\[{{<'])(?>[A-Za-z0-9][{_L}]*(?:\.[A-Za-z0-9][{_L}]*)+)\.?"
    r"(?=[\s/:?)\]}>']|$))",
    re.IGNORECASE,
)
_STRICT_FINDER = re.compile(r"(?<![A-Za-z0-9])(?:https?:|ftp://|mailto:)", re.IGNORECASE)
_AT = re.compile(r"(?<=[A-Za-z0-9])@(?=[A-Za-z0-9])")
_TERMINATOR = re.compile(r"[\s<>\"')\]}]")
_EMAIL_DOMAIN = re.compile(rf"[{_L}.]*")


class _Scanner:
    """Rspamd's ``rspamd_url_find_multiple`` over one text: candidates left to right.

    Scheme, ``www.`` and bare-name candidates come from one regular expression; e-mail
    candidates from each ``@`` with an alphanumeric on both sides, whose local part is
    found by walking back, as Rspamd does (a regular expression that tries every start
    would cost quadratic time on long words).  The end of the terminator-free run a
    URL sits in is computed once per run, for the same reason.
    """

    def __init__(self, text: str, *, strict: bool) -> None:
        self.text = text
        self.strict = strict
        self._run = (0, 0)  # [from, end) of the last terminator-free run measured
        self._at_from = 0  # no "@" before this one is left to try

    def _extent(self, start: int, host: int) -> int:
        """Where a URL starting at ``start`` (host at ``host``) ends."""
        text, pos = self.text, host
        while pos < len(text) and text[pos] in "/\\":
            pos += 1
        if text.startswith("[", pos):
            close = text.find("]", pos, pos + 64)
            if close > 0 and not any(c.isspace() for c in text[pos:close]):
                pos = close + 1  # an IPv6 literal: its brackets belong to the URL
        run_from, run_end = self._run
        if not run_from <= pos < run_end:
            stop = _TERMINATOR.search(text, pos)
            self._run = (pos, stop.start() if stop else len(text))
        return max(pos, min(self._run[1], start + MAX_URL_LENGTH))

    def _next_email(self, pos: int) -> tuple[int, int] | None:
        """The next e-mail candidate at or after ``pos``: (local-part start, "@" index)."""
        text = self.text
        while True:
            at = _AT.search(text, max(pos, self._at_from))
            if at is None:
                return None
            i = at.start()
            floor = max(pos, i - _MAX_LOCAL - 1)
            while i > floor and text[i - 1] in _MAILSAFE:
                i -= 1
            if i == floor and i > pos and text[i - 1] in _MAILSAFE:
                self._at_from = at.end()  # a local part too long for Rspamd
                continue
            while i < at.start() and not (text[i].isascii() and text[i].isalnum()):
                i += 1
            return i, at.start()

    def _email(self, start: int, at: int) -> tuple[_Parsed | None, int]:
        self._at_from = at + 1
        domain = _EMAIL_DOMAIN.match(self.text, at + 1, at + 254)
        domain_text = (domain[0] if domain else "").rstrip("._-")
        normalized = _normalize_host(domain_text, href=False, schemaless=True)
        if normalized is None or not domain_text:
            return None, start
        host, flags = normalized
        user = self.text[start:at]
        return _Parsed("mailto", host, flags | {SCHEMALESS}, user=user), at + 1 + len(domain_text)

    def _candidate(self, match: re.Match[str]) -> tuple[_Parsed | None, int]:
        text, start = self.text, match.start()
        kind = match.lastgroup or "scheme"
        if kind == "scheme" and match[0].lower() == "mailto:":
            result = _parse_mailto(text, match.end(), len(text), set(), href=False)
            return (None, start) if result is None else result
        if kind == "host" and not has_known_suffix(match["host"].rstrip(".").lower()):
            return None, start
        end = self._extent(start, match.end() if kind == "scheme" else start)
        if kind == "scheme":
            return _parse(text, start, end, href=False, flags=set()), end
        scheme = "ftp" if kind == "www" and match[0][:3].lower() == "ftp" else "http"
        return _parse(text, start, end, href=False, flags={SCHEMALESS}, scheme=scheme), end

    def find(self, limit: int = MAX_URLS) -> list[tuple[int, _Parsed]]:
        """Up to ``limit`` URLs, each with the index it starts at."""
        text = self.text
        finder = _STRICT_FINDER if self.strict else _FINDER
        found: list[tuple[int, _Parsed]] = []
        pos = 0
        match: re.Match[str] | None = None
        email: tuple[int, int] | None = None
        # Once a search finds nothing, later searches cannot find anything either.
        more_matches, more_emails = True, not self.strict
        while len(found) < limit:
            if more_matches and (match is None or match.start() < pos):
                match = finder.search(text, pos)
                more_matches = match is not None
            if more_emails and (email is None or email[0] < pos or email[1] < self._at_from):
                email = self._next_email(pos)
                more_emails = email is not None
            if not more_matches:
                match = None
            if not more_emails:
                email = None
            if match is None and email is None:
                break
            # At one position Rspamd's scheme and www. patterns come before "@", "@"
            # before a bare name.
            if email is not None and (
                match is None or email[0] < match.start()
                or (email[0] == match.start() and match.lastgroup == "host")
            ):
                start = email[0]
                parsed, end = self._email(*email)
            else:
                assert match is not None
                start = match.start()
                parsed, end = self._candidate(match)
            if parsed is None:
                pos = start + 1
                continue
            found.append((start, parsed))
            pos = max(end, start + 1)
        return found


def find_urls(text: str, *, strict: bool) -> list[_Parsed]:
    """The URLs of running text, in order."""
    return [parsed for _, parsed in _Scanner(text, strict=strict).find()]

