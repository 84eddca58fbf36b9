"""What the peer tests (unbound, Rspamd, SpamAssassin, Postfix) share: the tokens they
publish and one zoned per module (waiting and stopping are in :mod:`tests.support`)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.support.publishing import copy_zones, publish
from tests.support.zoned_process import Zoned, start_zoned

IP = "bl.example.net"
HASH = "hash.example.net"

#: One sender per band of zones/bl.example.net.yaml (and the default bands of the hashed
#: zone), the code zoned answers for it, and one sender that is not listed at all.
BAND_SENDERS: dict[str, tuple[float, str]] = {
    "192.0.2.11": (0.93, "127.0.0.2"),   # very bad
    "192.0.2.12": (0.55, "127.0.0.3"),   # bad
    "192.0.2.13": (0.2, "127.0.0.4"),    # suspicious
    "192.0.2.16": (-0.2, "127.0.0.6"),   # good
    "192.0.2.17": (-0.8, "127.0.0.7"),   # very good
}
NEUTRAL_SENDER = "192.0.2.14"      # published with a neutral score: TXT only, no A
UNLISTED_SENDER = "192.0.2.50"     # never published: NXDOMAIN

#: Envelope senders published in the hashed zone (lowercase, as clients hash them).
BAD_ADDRESS = "spammer@example.com"      # very bad
GOOD_ADDRESS = "friend@example.org"      # very good
UNLISTED_ADDRESS = "nobody@example.org"

def peer_records() -> dict[str, list[dict[str, object]]]:
    """Token records per zone, in ``zonepub import`` form."""
    ip: list[dict[str, object]] = [
        {"token": addr, "n": 50, "sc": score} for addr, (score, _code) in BAND_SENDERS.items()
    ]
    ip.append({"token": NEUTRAL_SENDER, "n": 50, "sc": 0.0})
    hashed: list[dict[str, object]] = [dict(r) for r in ip]
    hashed += [{"token": BAD_ADDRESS, "n": 30, "sc": 0.95},
               {"token": GOOD_ADDRESS, "n": 30, "sc": -0.9}]
    return {IP: ip, HASH: hashed}


@contextmanager
def published_zoned(base: Path, *, edit: Callable[[Path], None] | None = None) -> Iterator[Zoned]:
    """zoned serving copies of the example zones with :func:`peer_records` published.

    ``edit`` may change the copied zone files first (e.g. a shorter negative TTL).
    """
    zones = copy_zones(base)
    if edit is not None:
        edit(zones)
    for zone, records in peer_records().items():
        publish(zones, zone, records)
    server = start_zoned(zones, base / "zoned.log")
    try:
        yield server
    finally:
        server.stop()
