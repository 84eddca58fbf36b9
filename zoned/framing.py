"""DNS over TCP framing (RFC 1035 4.2.2, RFC 7766 8): a two-byte length, then the message.

Our own framer rather than Twisted's: bytes may arrive split anywhere, including inside
the length prefix, and several messages may arrive in one segment (pipelining).  A
zero-length frame is a protocol error the caller answers by closing the connection.
"""

from __future__ import annotations


class FramingError(Exception):
    """The peer sent something that is not a sequence of DNS-over-TCP frames."""


class Framer:
    """Accumulates a TCP byte stream and yields complete messages."""

    __slots__ = ("_buffer",)

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[bytes]:
        """Add received bytes; return every message now complete, in order."""
        buffer = self._buffer
        buffer += data
        messages = []
        pos = 0
        while len(buffer) - pos >= 2:
            length = buffer[pos] << 8 | buffer[pos + 1]
            if length == 0:
                raise FramingError("zero-length DNS message")
            if len(buffer) - pos - 2 < length:
                break
            messages.append(bytes(buffer[pos + 2 : pos + 2 + length]))
            pos += 2 + length
        del buffer[:pos]
        return messages

    @property
    def pending(self) -> int:
        """Bytes received that do not yet form a complete message."""
        return len(self._buffer)


def frame(message: bytes) -> bytes:
    """Prefix a message with its length for sending over TCP."""
    if len(message) > 0xFFFF:
        raise FramingError(f"message of {len(message)} bytes does not fit a TCP frame")
    return len(message).to_bytes(2, "big") + message
