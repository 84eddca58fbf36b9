"""The zones the client tests look up: the examples plus one zone per component.

Shared by the library's tests (tests/test_client.py) and the command's (tests/test_repq.py).
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Any

from client.selectors import spf_token
from tests.support.publishing import copy_zones, publish, publish_samples
from zoned import keys
from zoned.config import load_zone_file
from zoned.packed import Record, pack, txt_rdata
from zoned.store import ZoneStore

SPF_RECORD = "v=spf1 ip4:192.0.2.0/24 -all"
MALFORMED_IP = "192.0.2.66"  # its TXT is crafted unparsable
NEWER_IP = "192.0.2.77"  # its TXT has a version the client does not know

EXTRA_ZONES = {
    "asn.example.net": "owner: name",
    "cc.example.net": "owner: name",
    "url.example.net": "owner: name",
    "spf.example.net": "owner: name",
    "gen.example.net": "owner: {scheme: hash, alg: blake2, encoding: base32, length: 32}",
}

RECORDS: dict[str, list[dict[str, Any]]] = {
    "bl.example.net": [
        {"token": "192.0.2.10", "n": 120, "v1m": 12, "l": 1763769600},
        {"token": "2001:db8:1:2::/64", "n": 50, "v1m": 15},
    ],
    "asn.example.net": [{"token": "64496", "n": 200, "v1m": 3}],
    "cc.example.net": [{"token": "XX", "n": 1000, "v1m": 8}],
    "dom.example.net": [
        {"token": "example.com.a", "n": 100, "v1m": 20},
        {"token": "example.net.r", "n": 100, "v1m": 0},
    ],
    "spf.example.net": [{"token": spf_token(SPF_RECORD), "n": 50, "v1m": 15}],
    "url.example.net": [
        {"token": "example.com", "n": 100, "v1m": 30},
        {"token": "example.org", "n": 30, "v1m": 0},
    ],
    "gen.example.net": [{"token": "mx.example.com", "n": 40, "v1m": 9}],
}


def craft(zones: Path, zone: str, token: str, text: bytes) -> None:
    """Write a TXT answer the publisher would refuse, straight through the store writer."""
    config = load_zone_file(zones / f"{zone}.yaml")
    store = ZoneStore.create_or_open(config.store, "ip")
    try:
        with store.transaction() as txn:
            txn.put(keys.net_key(ipaddress.ip_network(token)),
                    pack([Record(16, 300, txt_rdata(text))]))
    finally:
        store.close()


def filled_zones(base: Path) -> Path:
    """The example zones plus one zone per component, with known records published."""
    zones = copy_zones(base)
    for zone, owner in EXTRA_ZONES.items():
        (zones / f"{zone}.yaml").write_text(
            f"zone: {zone}\nsoa: {{mname: ns1.example.net, rname: hostmaster@example.net}}\n"
            f"ns: [ns1.example.net]\n{owner}\nstore: ../var/{zone}\n"
        )
    publish_samples(zones)
    for zone, records in RECORDS.items():
        publish(zones, zone, records)
    craft(zones, "bl.example.net", MALFORMED_IP, b"v=1;n=12;broken")
    craft(zones, "bl.example.net", NEWER_IP, b"v=2;n=120;v1m=12")
    return zones

