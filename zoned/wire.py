"""Wire-format constants and the one name compressor the server's byte paths share.

Both answer paths must produce identical bytes, so the hand-built replies compress
names exactly as dnspython's renderer does (RFC 1035 4.1.4): every suffix of every
name written is remembered at its first offset (case-insensitively, below 0x4000),
and a later name is written as its unmatched leading labels plus a pointer to the
longest remembered suffix.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence

HEADER = struct.Struct("!HHHHHH")
RR_FIXED = struct.Struct("!HHIH")
U16 = struct.Struct("!H")

# Header flags (RFC 1035 4.1.1, RFC 4035 3.2).
QR = 0x8000
AA = 0x0400
TC = 0x0200
RD = 0x0100
CD = 0x0010
OPCODE_MASK = 0x7800
OPCODE_SHIFT = 11

# Opcodes and rcodes.
OPCODE_QUERY = 0
NOERROR = 0
FORMERR = 1
SERVFAIL = 2
NXDOMAIN = 3
NOTIMP = 4
REFUSED = 5
NOTAUTH = 9  # RFC 8945 5.3.2 (TSIG failures), RFC 5936 (a zone we do not serve)
BADVERS = 16  # extended rcode (RFC 6891 6.1.3)

# Types and classes.
T_A = 1
T_NS = 2
T_CNAME = 5
T_SOA = 6
T_MX = 15
T_TXT = 16
T_AAAA = 28
T_OPT = 41
T_IXFR = 251
T_AXFR = 252
T_MAILB = 253
T_MAILA = 254
T_ANY = 255
CLASS_IN = 1

EDNS_DO = 0x8000
OUR_PAYLOAD = 1232  # the DNS Flag Day 2020 default: no IP fragmentation on common paths
MIN_UDP = 512
MAX_TCP = 65535

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
