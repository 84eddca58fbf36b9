"""Random public-looking IPv4 tokens, drawn the same way by every benchmark.

Seeded draws must stay identical across scripts and runs, so both the bulk list and the
one-at-a-time draw consume the generator in one way.
"""

from __future__ import annotations

import random


def is_public(value: int) -> bool:
    """A unicast public-looking address: not 0/8, 10/8, 127/8, multicast or above."""
    first = value >> 24
    return 1 <= first <= 223 and first not in (10, 127)


def new_token(rng: random.Random, taken: set[int]) -> int:
    """A public address not in ``taken``, as an integer; it is added to ``taken``."""
    while True:
        value = rng.getrandbits(32)
        if is_public(value) and value not in taken:
            taken.add(value)
            return value


def make_tokens(count: int, rng: random.Random) -> list[int]:
    """``count`` distinct public addresses, as integers."""
    taken: set[int] = set()
    return [new_token(rng, taken) for _ in range(count)]
