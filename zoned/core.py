"""The sans-IO server core: bytes in, bytes out.

The Twisted protocols hand every datagram or TCP message to :meth:`Responder.respond`
and send back whatever it returns; nothing here imports Twisted or touches a socket,
so the whole answering logic runs in memory in the tests.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

from zoned.authority import Authority
from zoned.fastpath import FastPath
from zoned.fullpath import FullPath, header_only
from zoned.ratelog import limited
from zoned.transfer import Transfers, transfer_question
from zoned.wire import QR, SERVFAIL

log = logging.getLogger(__name__)


class Responder:
    """Routes each message to the fast path, then the full path; never raises."""

    def __init__(self, authority: Authority, *, fast: bool = True) -> None:
        self.authority = authority
        self.fast = FastPath(authority) if fast else None
        self.full = FullPath(authority)
        self.transfers = Transfers(authority)
        self.fast_answers = 0
        self.full_answers = 0
        self.errors = 0

    def refresh(self) -> bool:
        """Pick up new serials from the stores; True if any zone changed."""
        changed = self.authority.refresh()
        if changed and self.fast is not None:
            self.fast.clear()
        return changed

    def replace(self, authority: Authority) -> None:
        """Serve a new set of zones (a reloaded configuration) from the next message on."""
        self.authority = authority
        if self.fast is not None:
            self.fast = FastPath(authority)
        self.full = FullPath(authority)
        self.transfers = Transfers(authority)

    def respond(self, data: bytes, tcp: bool = False, peer: str | None = None) -> bytes | None:
        """The reply to one message from client address ``peer``, or None to drop it.

        Over TCP use :meth:`respond_stream`: a zone transfer is several messages.
        """
        try:
            if self.fast is not None:
                reply = self.fast.answer(data, tcp, peer)
                if reply is not None:
                    self.fast_answers += 1
                    return reply or None
            if transfer_question(data) is not None:
                return next(self.transfers.answer(data, peer, tcp), None)
            reply = self.full.answer(data, tcp, peer)
            self.full_answers += 1
            return reply
        except Exception:  # noqa: BLE001 - a bug must cost one answer, not the server
            # Ours, not the client's (the parsers' rejections are FORMERR before this):
            # SERVFAIL, counted, and the traceback logged, rate-limited since the same
            # bug is hit by every query that reaches it.
            self.errors += 1
            limited(log, "internal-error", logging.ERROR,
                    "internal error answering a %d-byte message", len(data), exc_info=True)
            if len(data) < 12 or data[2] & (QR >> 8):
                return None
            return header_only(data, SERVFAIL)

    def respond_stream(self, data: bytes, peer: str | None = None) -> Iterator[bytes]:
        """The replies to one TCP message: a zone transfer's stream, else one or none.

        The stream is lazy (a transfer reads the store as the client reads us, and a
        query is answered when its turn to be written comes); an exception while a
        transfer runs ends it, and the adapter closes the connection.
        """
        if transfer_question(data) is not None:
            return self.transfers.answer(data, peer, True)
        return self._one(data, peer)

    def _one(self, data: bytes, peer: str | None) -> Iterator[bytes]:
        reply = self.respond(data, True, peer)
        if reply is not None:
            yield reply
