"""Raw header values as text, and the addresses in them: what every header reader shares.

The message is parsed with the stdlib's ``compat32`` policy, which leaves header values
raw (folded, 8-bit bytes as surrogates); the readers of Received, Authentication-Results
and the address headers all start from :func:`header_text`.  Pure: no I/O.
"""

from __future__ import annotations

import re
from typing import Any

_FOLD = re.compile(r"\r?\n(?=[ \t])")


def header_text(value: Any) -> str:
    """A raw header value as text: 8-bit bytes read as UTF-8, folding removed."""
    text = str(value)
    try:
        text = text.encode("ascii", "surrogateescape").decode("utf-8", "replace")
    except UnicodeEncodeError:
        pass  # already real text (the parser only leaves surrogates for 8-bit bytes)
    return _FOLD.sub("", text).strip()


def mailbox(addr: str) -> str | None:
    """``local@domain`` with the domain lowercased; None for what is not an address."""
    addr = addr.strip().strip("<>").strip()
    local, at, domain = addr.rpartition("@")
    if not at or not local or not domain or any(c.isspace() for c in addr):
        return None
    return f"{local}@{domain.lower().rstrip('.')}"
