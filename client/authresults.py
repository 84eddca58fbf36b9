"""The Authentication-Results header (RFC 8601) read into its authserv-id and results.

Comments, quoted values and a header without an authserv-id are read; which headers
to believe and what their results mean for the facts is :mod:`client.facts`' business.
Pure: no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from types import MappingProxyType
from typing import NamedTuple

from client.mailheaders import header_text


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
    chunks = _split_semicolons(_without_comments(header_text(value)))
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
