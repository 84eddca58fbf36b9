"""A transfer request dnspython rejects gets a FORMERR a client can parse.

Found by the adversarial UDP fuzz: the reply copied the rejected question (a 272-octet
name, or an UPDATE opcode), so it was as unparsable as the request.
"""

from __future__ import annotations

import dns.message
import pytest

from listformat.wire import FORMERR
from zoned.core import Responder

LONG = "".join("3f" + "61" * 63 for _ in range(4)) + "02626c076578616d706c65036e657400"


@pytest.mark.parametrize("packet", [
    "abcd00000001000000000000" + LONG + "00fc0001",  # AXFR, name over 255 octets
    "abcd00000001000000000000" + LONG + "00fb0001",  # IXFR, the same
    "abcd2800000100000000000002626c076578616d706c65036e65740000fc0001",  # AXFR as UPDATE
])
@pytest.mark.parametrize("tcp", [False, True])
def test_rejected_transfer_requests_get_a_parsable_formerr(
    responder: Responder, packet: str, tcp: bool
) -> None:
    data = bytes.fromhex(packet)
    replies = (list(responder.respond_stream(data, "127.0.0.1")) if tcp
               else [responder.respond(data, False, "127.0.0.1")])
    assert len(replies) == 1 and replies[0] is not None
    reply = dns.message.from_wire(replies[0], keyring=False)
    assert reply.id == 0xABCD
    assert reply.rcode() == FORMERR
    assert not reply.question
