"""The sans-IO server core: bytes in, bytes out.

The Twisted protocols hand every datagram or TCP message to :meth:`Responder.respond`
and send back whatever it returns; nothing here imports Twisted or touches a socket,
so the whole answering logic runs in memory in the tests.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

from listformat.wire import SERVFAIL
from zoned.authority import Authority
from zoned.fastpath import FastPath
from zoned.fullpath import FullPath, header_only
from zoned.kinds import DROP, OTHER, Kind, Query, Transfer, classify, drops
from zoned.ratelog import limited
from zoned.transfer import Transfers

log = logging.getLogger(__name__)


class Responder:
    """Routes each message by its kind (:func:`~zoned.kinds.classify`, once): transfers to
    :class:`~zoned.transfer.Transfers`, queries of the common shape to the fast path,
    the rest (and what the fast path declines) to the full path; never raises."""

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
            kind = classify(data)
            if isinstance(kind, Transfer):
                return next(self.transfers.answer(data, kind, peer, tcp), None)
            return self._answer(data, kind, tcp, peer)
        except Exception:  # noqa: BLE001 - a bug must cost one answer, not the server
            return self._failed(data)

    def _answer(
        self, data: bytes, kind: Query | Kind, tcp: bool, peer: str | None
    ) -> bytes | None:
        """The one reply to a message that is no transfer."""
        if kind is DROP:
            return None
        if isinstance(kind, Query) and self.fast is not None:
            reply = self.fast.answer(kind, data, tcp, peer)
            if reply is DROP:
                self.fast_answers += 1
                return None
            if reply is not OTHER:
                self.fast_answers += 1
                return reply
        reply = self.full.answer(data, tcp, peer)
        self.full_answers += 1
        return None if reply is DROP else reply

    def _failed(self, data: bytes) -> bytes | None:
        """SERVFAIL for a message that hit a bug of ours, counted and logged.

        Ours, not the client's (the parsers' rejections are FORMERR before this); the
        traceback is rate-limited since the same bug is hit by every query reaching it.
        """
        self.errors += 1
        limited(log, "internal-error", logging.ERROR,
                "internal error answering a %d-byte message", len(data), exc_info=True)
        if drops(data):
            return None
        return header_only(data, SERVFAIL)

    def respond_stream(self, data: bytes, peer: str | None = None) -> Iterator[bytes]:
        """The replies to one TCP message: a zone transfer's stream, else one or none.

        The stream is lazy (a transfer reads the store as the client reads us, and a
        query is answered when its turn to be written comes); an exception while a
        transfer runs ends it, and the adapter closes the connection.
        """
        try:
            kind = classify(data)
        except Exception:  # noqa: BLE001 - as in respond
            reply = self._failed(data)
            return iter(() if reply is None else (reply,))
        if isinstance(kind, Transfer):
            return self.transfers.answer(data, kind, peer, True)
        return self._one(data, kind, peer)

    def _one(self, data: bytes, kind: Query | Kind, peer: str | None) -> Iterator[bytes]:
        try:
            reply = self._answer(data, kind, True, peer)
        except Exception:  # noqa: BLE001 - as in respond
            reply = self._failed(data)
        if reply is not None:
            yield reply
