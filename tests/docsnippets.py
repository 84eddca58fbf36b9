"""Configuration snippets taken from the operator docs, so the tests run what the docs show.

A snippet is the first fenced code block after a marker line in a docs/ page::

    <!-- snippet: knot.conf -->
    ```yaml
    ...
    ```

The docs hold realistic example values (addresses, ports, paths); a test swaps them for
its own with ``replace``, and every value it swaps must occur, so the docs cannot drift
away from what is tested.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

DOCS = Path(__file__).resolve().parent.parent / "docs"

_FENCE = re.compile(r"^```[^\n]*\n(.*?)^```", re.S | re.M)


class SnippetError(LookupError):
    """A snippet is missing, or a value a test swaps does not occur in it."""


def snippet(page: str, name: str, replace: Mapping[str, str] | None = None) -> str:
    """The snippet ``name`` of ``docs/<page>``, with each key of ``replace`` swapped."""
    path = DOCS / page
    text = path.read_text()
    marker = f"<!-- snippet: {name} -->"
    at = text.find(marker)
    if at < 0:
        raise SnippetError(f"{path}: no snippet {name!r}")
    block = _FENCE.search(text, at + len(marker))
    if block is None or "<!-- snippet:" in text[at + len(marker) : block.start()]:
        raise SnippetError(f"{path}: snippet {name!r} has no code block after it")
    body = block.group(1)
    for old, new in (replace or {}).items():
        if old not in body:
            raise SnippetError(f"{path}: snippet {name!r} no longer contains {old!r}")
        body = body.replace(old, new)
    return body
