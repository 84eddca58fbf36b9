"""Wire-format constants and the one name compressor the server's byte paths share.

Both answer paths must produce identical bytes, so the hand-built replies compress
names exactly as dnspython's renderer does (RFC 1035 4.1.4): every suffix of every
name written is remembered at its first offset (case-insensitively, below 0x4000),
and a later name is written as its unmatched leading labels plus a pointer to the
longest remembered suffix.
"""

from __future__ import annotations

from collections.abc import Sequence

from listformat.wire import U16

Labels = Sequence[bytes]


class Compressor:
    """Writes names into a message under construction, mimicking dnspython's table."""

    __slots__ = ("table",)

    def __init__(self) -> None:
        self.table: dict[tuple[bytes, ...], int] = {}

    def write(self, out: bytearray, labels: Labels) -> None:
        """Append ``labels`` (leftmost first, no root label) at ``len(out)``."""
        lowered = tuple(label.lower() for label in labels)
        for i in range(len(lowered)):
            suffix = lowered[i:]
            pointer = self.table.get(suffix)
            if pointer is not None:
                out += U16.pack(0xC000 | pointer)
                return
            if len(out) <= 0x3FFF:
                self.table[suffix] = len(out)
            out.append(len(labels[i]))
            out += labels[i]
        out.append(0)


def name_labels(text: str) -> tuple[bytes, ...]:
    """Labels of a presentation-form name without escapes ('' and '.' are the root)."""
    stripped = text.rstrip(".")
    return tuple(label.encode("ascii") for label in stripped.split(".")) if stripped else ()


def name_wire(labels: Labels) -> bytes:
    """Uncompressed wire form of a name."""
    return b"".join(bytes([len(label)]) + label for label in labels) + b"\x00"
