"""The snippet reader the peer tests use to run the docs' own configuration."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests import docsnippets
from tests.docsnippets import SnippetError, snippet

PAGE = """# A page

<!-- snippet: a.conf -->
```conf
server: 192.0.2.53
port: 53
```

<!-- snippet: empty -->
no block here
"""


@pytest.fixture
def page(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    (tmp_path / "page.md").write_text(PAGE)
    monkeypatch.setattr(docsnippets, "DOCS", tmp_path)
    return "page.md"


def test_snippet_is_the_block_after_its_marker_with_values_swapped(page: str) -> None:
    text = snippet(page, "a.conf", {"192.0.2.53": "127.0.0.1", "53\n": "5353\n"})
    assert text == "server: 127.0.0.1\nport: 5353\n"


def test_a_swapped_value_the_docs_no_longer_hold_is_an_error(page: str) -> None:
    with pytest.raises(SnippetError, match="no longer contains '198.51.100.1'"):
        snippet(page, "a.conf", {"198.51.100.1": "127.0.0.1"})


def test_missing_marker_or_block_is_an_error(page: str) -> None:
    with pytest.raises(SnippetError, match="no snippet 'b.conf'"):
        snippet(page, "b.conf")
    with pytest.raises(SnippetError, match="no code block"):
        snippet(page, "empty")
