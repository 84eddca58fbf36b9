"""URLs of a message's text, HTML and Subject, found and flagged as Rspamd finds them.

Rspamd's url reputation selector counts ``task:get_urls(true)`` per eTLD+1, leaving out
URLs flagged ``html_displayed``; ``get_urls`` itself leaves out ``image`` (and ``content``)
URLs and anything but http, https, ftp, file and mailto.  To derive the same tokens we
must find the same URLs with the same flags.  Facts read from Rspamd's sources
(src/libserver/url.c, src/libserver/html/html.cxx, html_url.cxx), not copied:

- **Text parts** (:meth:`UrlSet.add_text`): ``http:``/``https:`` (slashes optional),
  ``ftp://`` and ``mailto:`` URLs; ``www.`` and ``ftp.`` hosts after a space, a line start
  or one of ``( [ { < '``; bare host names whose suffix is in the Public Suffix List
  (``example.com/path``, never ``example.com,`` nor ``"example.com"``); e-mail
  addresses (``user@example.com`` becomes ``mailto:``).  Flag ``text``; a URL without
  a scheme also ``schemaless``.
- **HTML parts** (:meth:`UrlSet.add_html`): the ``href``/``src``/``action`` of ``a``,
  ``area``, ``form``, ``frame``, ``iframe``, ``link``, ``map`` outside ``<head>`` (flag
  ``html``); ``img`` ``src`` and ``link rel=icon`` (flags ``html``, ``image``, which
  ``get_urls`` leaves out); relative references against the first ``<base href>``;
  ``cid:``, ``data:``, ``javascript:`` and other schemes are not URLs.  Then the
  visible text, where only URLs with a scheme count (Rspamd's "strict" mode).
- **Displayed URLs**: when the text of an ``<a>`` starts with a URL, that URL is added
  with flag ``html_displayed``, and the ``href`` gets ``url_displayed``; it also gets
  ``phished`` when the two hosts have different eTLD+1s (neither a subdomain of the
  other).  A displayed URL that was first seen in plain text loses ``text`` and takes
  ``html_displayed``, as Rspamd does.
- **Subject** (:meth:`UrlSet.add_subject`): URLs flagged ``subject`` and
  ``html_displayed``, so the url selector ignores them, as Rspamd's does.
- **URLs inside a query string**: the decoded query of every text URL, and of every new
  HTML URL, is searched like text; what it finds is flagged ``query`` (Rspamd's
  ``RSPAMD_URL_FLAG_QUERY``) and counts as a URL of its own:
  ``https://redirector.example.net/?u=https%3A%2F%2Fevil.example.org%2F`` gives both
  hosts.
  For the Subject, Rspamd takes the first such URL without a flag; we flag it ``query``
  too (the url selector does not look at it).  The search does not recurse.
- **Redirects**: Rspamd's ``redirected`` flag comes from its ``url_redirector`` module,
  which follows known redirectors (``redirector_hosts_map``) over HTTP and links the
  redirector to its target.  We do no network I/O, so parsing never sets it; a query
  URL is not evidence of a redirect (share links carry URLs too).  A caller that
  resolves redirects itself passes ``Url(..., flags={"redirected", ...},
  redirected_to=target)`` as a fact, and the url selector applies Rspamd's rule.

Hosts are percent-decoded, IDNA dots (U+3002, U+FF0E, U+FF61) become dots (flag
``obscured``), non-ASCII labels go through nameprep (flag ``idn``), everything is
lowercased, one trailing dot is dropped; U-labels stay U-labels and A-labels stay
A-labels, as in Rspamd.  Userinfo is dropped (flag ``has_user``), a port is kept
(``has_port``).  Numeric hosts, also in the ``inet_aton`` forms (``0x7f.1``), become
the address (flag ``numeric``; ``obscured`` for the odd forms).  A host without a
known suffix that is not an address is no URL, except in an HTML attribute with a
scheme (flag ``no_tld``), as in Rspamd.

Each distinct URL appears once (Rspamd keeps a set keyed by the URL string, ``mailto:``
addresses case-insensitively), with the flags of its first sighting plus the merges
above; the url selector counts distinct URLs per eTLD+1, as Rspamd's does.

Simplifications (the host, which is what reputation looks at, comes out the same):
paths and queries are kept as written rather than percent-decoded, a URL in text ends
at white space or one of ``< > " ' ) ] }`` (and after 8192 characters), ``<base>``
resolution follows RFC 3986 (Rspamd concatenates strings), CSS visibility is not
computed (only ``<head>``, ``<script>``, ``<style>`` and ``<title>`` text is
invisible), ``file:`` URLs are not collected (``tel:`` and the rest ``get_urls(true)``
never returns).  One deliberate difference: with several ``@`` in the authority
(``http://user@paypal.com@evil.example.org/``) the host is what follows the last one,
the site a browser opens; Rspamd's text scanner stops at the second ``@``.

The work is layered: :mod:`client.urltext` finds and normalises URLs in text and
parses one URL, :mod:`client.urlhtml` reads HTML, and this module keeps the set of a
message's URLs (merging flags across sightings as Rspamd does) and the public API.
"""

from __future__ import annotations

from dataclasses import dataclass

from client.tld import etld1
from client.urlhtml import HtmlScanner
from client.urltext import (
    _SUSPICIOUS,
    HAS_PORT,
    HAS_USER,
    HOST_ENCODED,
    HTML,
    HTML_DISPLAYED,
    IDN,
    IMAGE,
    MAX_URL_LENGTH,
    MAX_URLS,
    NO_TLD,
    NUMERIC,
    OBSCURED,
    PHISHED,
    QUERY,
    REDIRECTED,
    SCHEMALESS,
    SUBJECT,
    TEXT,
    URL_DISPLAYED,
    WEB_SCHEMES,
    Url,
    _Parsed,
    _Scanner,
    find_urls,
    parse_url,
)

__all__ = [
    "HAS_PORT",
    "HAS_USER",
    "HOST_ENCODED",
    "HTML",
    "HTML_DISPLAYED",
    "IDN",
    "IMAGE",
    "MAX_URLS",
    "MAX_URL_LENGTH",
    "NO_TLD",
    "NUMERIC",
    "OBSCURED",
    "PHISHED",
    "QUERY",
    "REDIRECTED",
    "SCHEMALESS",
    "SUBJECT",
    "TEXT",
    "URL_DISPLAYED",
    "WEB_SCHEMES",
    "Url",
    "UrlSet",
    "extract_html_urls",
    "extract_subject_urls",
    "extract_text_urls",
    "parse_url",
]


# -- the set of a message's URLs -----------------------------------------------------


@dataclass
class _Entry:
    parsed: _Parsed
    flags: set[str]


class UrlSet:
    """The distinct URLs of one message, merged across its parts as Rspamd merges them.

    Feed it the Subject first (:meth:`add_subject`, as Rspamd reads it before the
    parts), then each text part (:meth:`add_text`) and HTML part (:meth:`add_html`);
    :meth:`urls` and :meth:`emails` give the result in the order first seen.
    """

    def __init__(self) -> None:
        self._entries: dict[str, _Entry] = {}
        self._emails: dict[str, str] = {}

    def _add(self, parsed: _Parsed, *, body: bool = True) -> tuple[_Entry, bool]:
        """Add or merge ``parsed``; the entry and whether it is new (Rspamd's add_or_return)."""
        key = parsed.key()
        if parsed.scheme == "mailto" and body:
            self._emails.setdefault(key[len("mailto:"):], f"{parsed.user}@{parsed.host}")
        entry = self._entries.get(key)
        if entry is not None:
            if HTML_DISPLAYED in parsed.flags and TEXT in entry.flags:
                entry.flags = (entry.flags | parsed.flags) - {TEXT}
            if IMAGE in parsed.flags:
                entry.flags.add(IMAGE)
            entry.flags |= parsed.flags & _SUSPICIOUS
            return entry, False
        if len(self._entries) >= MAX_URLS:
            return _Entry(parsed, set(parsed.flags)), False
        entry = _Entry(parsed, set(parsed.flags))
        self._entries[key] = entry
        return entry, True

    def _add_query_urls(self, parsed: _Parsed, *, body: bool = True) -> None:
        query = parsed.query
        if not query:
            return
        for inner in find_urls(query, strict=False):
            inner.flags.add(QUERY)
            self._add(inner, body=body)

    def add_text(self, text: str, *, html: bool = False) -> None:
        """URLs of a plain-text part, or (``html=True``) of an HTML part's visible text."""
        for parsed in find_urls(text, strict=html):
            parsed.flags.add(TEXT)
            self._add(parsed)
            self._add_query_urls(parsed)

    def add_html(self, html: str) -> None:
        """URLs of an HTML part: tag attributes, displayed URLs, then the visible text."""
        scanner = HtmlScanner()
        scanner.feed(html)
        scanner.close()
        entries: dict[int, _Entry] = {}
        for parsed in scanner.tag_urls:
            entry, new = self._add(parsed)
            entries[id(parsed)] = entry
            if new and IMAGE not in parsed.flags:
                self._add_query_urls(parsed)
        visible = scanner.visible
        for anchor in scanner.anchors:
            self._check_displayed(entries[id(anchor.parsed)], visible[anchor.start:anchor.end])
        self.add_text(scanner.visible, html=True)

    def add_subject(self, subject: str) -> None:
        """URLs of the Subject: flagged ``subject`` and ``html_displayed``, as in Rspamd."""
        for parsed in find_urls(subject, strict=False):
            parsed.flags |= {SUBJECT, HTML_DISPLAYED}
            self._add(parsed, body=False)
            inner = find_urls(parsed.query, strict=False) if parsed.query else []
            if inner:
                inner[0].flags.add(QUERY)
                self._add(inner[0], body=False)

    def _check_displayed(self, href: _Entry, text: str) -> None:
        """Rspamd's ``html_url_is_phished``: the ``<a>`` text as a URL of its own."""
        text = text.strip()
        if len(text) <= 4:
            return
        first = _Scanner(text, strict=False).find(limit=1)
        if not first or first[0][0] != 0:
            return
        shown = first[0][1]
        shown.flags.add(HTML_DISPLAYED)
        href.flags.add(URL_DISPLAYED)
        target = href.parsed
        if (shown.scheme in WEB_SCHEMES) == (target.scheme in WEB_SCHEMES) and _differs(
            shown.host, target.host
        ):
            href.flags.add(PHISHED)
        self._add(shown)

    def urls(self) -> list[Url]:
        """The distinct URLs, first seen first."""
        return [
            Url(e.parsed.host, e.parsed.text(), frozenset(e.flags))
            for e in self._entries.values()
        ]

    def emails(self) -> list[str]:
        """Addresses found in the body (not the Subject), first seen first."""
        return list(self._emails.values())


def _ascii(host: str) -> str:
    try:
        return host.encode("idna").decode("ascii")
    except UnicodeError:
        return host


def _differs(shown: str, href: str) -> bool:
    """Whether a displayed host points elsewhere than its href (not the same site)."""
    a, b = _ascii(shown), _ascii(href)
    if a == b:
        return False
    ta, tb = _ascii(etld1(shown)), _ascii(etld1(href))
    if ta == tb:
        return False
    return not (ta.endswith("." + tb) or tb.endswith("." + ta))


# -- module-level conveniences -------------------------------------------------------


def extract_text_urls(text: str) -> list[Url]:
    """The distinct URLs of a plain-text part (flag ``text``, ``query`` for inner ones)."""
    urls = UrlSet()
    urls.add_text(text)
    return urls.urls()


def extract_html_urls(html: str) -> list[Url]:
    """The distinct URLs of an HTML part: attributes, displayed URLs, visible text."""
    urls = UrlSet()
    urls.add_html(html)
    return urls.urls()


def extract_subject_urls(subject: str) -> list[Url]:
    """The URLs of a Subject (flags ``subject``, ``html_displayed``)."""
    urls = UrlSet()
    urls.add_subject(subject)
    return urls.urls()
