"""The TCP framer under arbitrary chunking, pipelining and bad frames."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from zoned.framing import Framer, FramingError, frame

messages = st.lists(st.binary(min_size=1, max_size=600), min_size=1, max_size=8)


@given(messages=messages, cuts=st.lists(st.integers(min_value=0, max_value=6000), max_size=20))
def test_messages_survive_any_split_of_the_stream(messages: list[bytes], cuts: list[int]) -> None:
    stream = b"".join(frame(m) for m in messages)
    points = sorted({c % (len(stream) + 1) for c in cuts} | {0, len(stream)})
    framer = Framer()
    received: list[bytes] = []
    for start, end in zip(points, points[1:], strict=False):
        received += framer.feed(stream[start:end])
    assert received == messages
    assert framer.pending == 0


def test_a_split_length_prefix_waits_for_its_second_byte() -> None:
    framer = Framer()
    assert framer.feed(b"\x00") == []
    assert framer.feed(b"\x03ab") == []
    assert framer.feed(b"c\x00\x01z") == [b"abc", b"z"]


def test_zero_length_frame_is_an_error() -> None:
    with pytest.raises(FramingError):
        Framer().feed(b"\x00\x00")


def test_oversized_message_cannot_be_framed() -> None:
    with pytest.raises(FramingError):
        frame(b"x" * 65536)
