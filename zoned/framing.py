"""DNS over TCP framing (RFC 1035 4.2.2, RFC 7766 8): a two-byte length, then the message.

Our own framer rather than Twisted's: bytes may arrive split anywhere, including inside
the length prefix, and several messages may arrive in one segment (pipelining).  A
zero-length frame, or a length over the framer's ``max_message``, is a protocol error
the caller answers by closing the connection: the length is checked as soon as its two
bytes are in, so an announced 64 KiB message is refused before it is buffered.

Messages are taken one at a time (:meth:`Framer.pop`) so the connection can stop
taking them, and stop reading, while its replies are not being read.
"""

from __future__ import annotations

from zoned.errors import ZonedError

MAX_FRAME = 0xFFFF


class FramingError(ZonedError):
    """The peer sent something that is not a sequence of DNS-over-TCP frames."""


class Framer:
    """Accumulates a TCP byte stream and yields complete messages."""

    __slots__ = ("_buffer", "_pos", "max_message")

    def __init__(self, max_message: int = MAX_FRAME) -> None:
        self._buffer = bytearray()
        self._pos = 0
        self.max_message = max_message

    def push(self, data: bytes) -> None:
        """Add received bytes (no message is taken yet)."""
        if self._pos:
            del self._buffer[: self._pos]
            self._pos = 0
        self._buffer += data

    def pop(self) -> bytes | None:
        """The next complete message, or None; FramingError for a frame we refuse."""
        buffer, pos = self._buffer, self._pos
        if len(buffer) - pos < 2:
            return None
        length = buffer[pos] << 8 | buffer[pos + 1]
        if length == 0:
            raise FramingError("zero-length DNS message")
        if length > self.max_message:
            raise FramingError(f"a {length}-byte message (the limit is {self.max_message})")
        if len(buffer) - pos - 2 < length:
            return None
        self._pos = pos + 2 + length
        return bytes(buffer[pos + 2 : self._pos])

    def feed(self, data: bytes) -> list[bytes]:
        """Add received bytes; return every message now complete, in order."""
        self.push(data)
        messages = []
        while (message := self.pop()) is not None:
            messages.append(message)
        return messages

    @property
    def pending(self) -> int:
        """Bytes received and not yet taken as messages."""
        return len(self._buffer) - self._pos


def frame(message: bytes) -> bytes:
    """Prefix a message with its length for sending over TCP."""
    if len(message) > MAX_FRAME:
        raise FramingError(f"message of {len(message)} bytes does not fit a TCP frame")
    return len(message).to_bytes(2, "big") + message
