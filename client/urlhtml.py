"""The URLs of an HTML part: the HTML layer of :mod:`client.urls`.

:class:`HtmlScanner` collects the tag attribute URLs, the text span of each ``<a>``
(for displayed URLs) and the visible text of one HTML part, with the behaviour
:mod:`client.urls` documents; :class:`client.urls.UrlSet` merges what it finds.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from html.parser import HTMLParser
from urllib.parse import urljoin

from client.urltext import (
    _SCHEME,
    HTML,
    IMAGE,
    OBSCURED,
    SCHEMALESS,
    _parse,
    _Parsed,
)

__all__ = ["Anchor", "HtmlScanner"]

_HREF_TAGS = frozenset({"a", "area", "form", "frame", "iframe", "link", "map"})
_HREF_ATTRS = ("href", "src", "action")
_HIDDEN_TAGS = frozenset({"script", "style", "title"})
_BLOCK_TAGS = frozenset({
    "address", "blockquote", "br", "center", "dd", "div", "dl", "dt", "form", "h1", "h2",
    "h3", "h4", "h5", "h6", "hr", "li", "ol", "p", "pre", "table", "td", "th", "tr", "ul",
})
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_SPACES = re.compile(r"[\t\n\v\f\r ]")
_KEPT_ESCAPES = re.compile(r"%(40|3[aA]|7[cC]|3[fF]|5[cC]|2[fF])")


def _href_candidate(value: str, base: str | None) -> tuple[str, set[str]] | None:
    """An attribute value made into an absolute URL the way Rspamd's HTML parser does."""
    flags: set[str] = set()
    text = _SPACES.sub("", value.strip())
    if _CONTROL.search(text):
        text = _CONTROL.sub(lambda m: f"%{ord(m[0]):02x}", text)
        flags.add(OBSCURED)
    text = _KEPT_ESCAPES.sub(lambda m: chr(int(m[1], 16)), text)
    if not text or text[:5].lower() == "data:":
        return None
    if "://" in text:
        return text, flags
    if base is not None and _SCHEME.match(text) is None:
        return urljoin(base, text), flags
    if text[:7].lower() == "mailto:":
        return text, flags
    for i, char in enumerate(text):
        if char.isascii() and not char.isalnum():
            if i == 0:
                return ("http:" + text, flags | {SCHEMALESS}) if text[:2] == "//" else None
            if char == "@":
                return "mailto:" + text, flags | {SCHEMALESS}
            if char == ":":
                return text, flags
            return "http://" + text, flags | {SCHEMALESS}
    return None


@dataclass
class Anchor:
    parsed: _Parsed
    start: int
    end: int = -1


class HtmlScanner(HTMLParser):
    """Collects tag URLs, ``<a>`` text spans and the visible text of one HTML part."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tag_urls: list[_Parsed] = []
        self.anchors: list[Anchor] = []
        self._text: list[str] = []
        self._length = 0
        self._in_head = False
        self._hidden = 0
        self._base: str | None = None
        self._open: Anchor | None = None

    @property
    def visible(self) -> str:
        return "".join(self._text)

    def _append(self, text: str) -> None:
        if not self._in_head and self._hidden == 0:
            self._text.append(text)
            self._length += len(text)

    def _close_anchor(self) -> None:
        if self._open is not None:
            self._open.end = self._length
            self.anchors.append(self._open)
            self._open = None

    def _url(self, attrs: list[tuple[str, str | None]], names: tuple[str, ...],
             flags: set[str]) -> _Parsed | None:
        value = next((v for k, v in attrs if k in names and v is not None), None)
        if value is None:
            return None
        candidate = _href_candidate(value, self._base)
        if candidate is None:
            return None
        text, extra = candidate
        return _parse(text, 0, len(text), href=True, flags=flags | extra)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "head":
            self._in_head = True
        elif tag == "body":
            self._in_head = False
        elif tag in _HIDDEN_TAGS:
            self._hidden += 1
        if tag in _BLOCK_TAGS:
            self._append("\n")
        if tag == "base" and self._base is None:
            base = self._url(attrs, ("href",), set())
            if base is not None:
                self._base = base.text()
        if tag in _HREF_TAGS and not self._in_head:
            parsed = self._url(attrs, _HREF_ATTRS, {HTML})
            if tag == "a":
                self._close_anchor()
            if parsed is not None:
                self.tag_urls.append(parsed)
                if tag == "a":
                    self._open = Anchor(parsed, self._length)
        if tag == "img" or (tag == "link" and dict(attrs).get("rel") == "icon"):
            self._image(attrs)
        if tag == "img":
            alt = dict(attrs).get("alt")
            if alt:
                self._append(f" {alt} ")

    def _image(self, attrs: list[tuple[str, str | None]]) -> None:
        src = next((v for k, v in attrs if k in _HREF_ATTRS and v is not None), "")
        if src.lower().startswith("cid:"):
            return
        image = self._url(attrs, _HREF_ATTRS, {HTML, IMAGE})
        if image is not None:
            self.tag_urls.append(image)

    def handle_endtag(self, tag: str) -> None:
        if tag == "head":
            self._in_head = False
        elif tag in _HIDDEN_TAGS:
            self._hidden = max(0, self._hidden - 1)
        elif tag == "a":
            self._close_anchor()
        if tag in _BLOCK_TAGS:
            self._append("\n")

    def handle_data(self, data: str) -> None:
        self._append(data)

    def close(self) -> None:
        super().close()
        self._close_anchor()
