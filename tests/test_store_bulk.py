"""Transaction.put_many: the bulk write of a first sync leaves the store as put() would."""

from __future__ import annotations

import ipaddress
import random
from pathlib import Path

from zoned.keys import net_key
from zoned.store import ZoneStore

T0 = 1_700_000_000


def net(text: str) -> bytes:
    return net_key(ipaddress.ip_network(text))


def sample() -> dict[bytes, bytes]:
    rng = random.Random(1035)
    entries = {net(f"10.{rng.randrange(256)}.{rng.randrange(256)}.0/24"): b"a"
               for _ in range(50)}
    entries.update({net(f"192.0.2.{i}/32"): b"b%d" % i for i in range(40)})
    entries.update({net("2001:db8::/48"): b"c", net("2001:db8:1:2::/64"): b"d",
                    net("10.0.0.0/8"): b"e", b"\x01": b"short", b"x" * 18: b"not a network"})
    return entries


def state(store: ZoneStore) -> tuple[list[tuple[bytes, bytes]], tuple[int, ...],
                                     tuple[int, ...], int]:
    with store.reader() as snap:
        return list(snap.entries()), snap.plens4, snap.plens6, snap.count()


def write(path: Path, entries: dict[bytes, bytes], bulk: bool, first: dict[bytes, bytes]
          ) -> tuple[object, ...]:
    """The store's state after ``first`` (put by put) then ``entries``; with the journal."""
    store = ZoneStore.create_or_open(path, "ip", map_size=1 << 26, clock=lambda: T0)
    try:
        before = 0
        if first:
            with store.transaction() as txn:
                for key, value in first.items():
                    txn.put(key, value)
            before = txn.serial_after
        with store.transaction() as txn:
            if bulk:
                txn.put_many(list(entries.items()))
            else:
                for key, value in entries.items():
                    txn.put(key, value)
        journal = store.journal_since(before) if before else None
        return (*state(store), txn.serial_after, journal)
    finally:
        store.close()


def test_put_many_into_an_empty_store_equals_puts(tmp_path: Path) -> None:
    """Same entries, network prefix-length counts and serial as one put() per entry."""
    entries = sample()
    assert write(tmp_path / "bulk", entries, True, {}) == write(
        tmp_path / "puts", entries, False, {})


def test_put_many_into_a_store_with_data_equals_puts(tmp_path: Path) -> None:
    """On a store that holds entries (journaled), put_many is put() for each entry."""
    entries = sample()
    first = {net("10.0.0.0/8"): b"old", net("198.51.100.0/24"): b"kept"}
    bulk = write(tmp_path / "bulk", entries, True, first)
    assert bulk == write(tmp_path / "puts", entries, False, first)
    assert bulk[-1]  # the change is journaled


def test_put_many_with_a_key_given_twice_counts_it_once(tmp_path: Path) -> None:
    """The later value wins and the network is counted once, as with two puts."""
    pairs = [(net("192.0.2.0/24"), b"a"), (net("192.0.2.0/24"), b"b"), (net("10.0.0.0/8"), b"c")]
    store = ZoneStore.create_or_open(tmp_path / "z", "ip", map_size=1 << 26, clock=lambda: T0)
    try:
        with store.transaction() as txn:
            txn.put_many(pairs)
        entries, plens4, _, count = state(store)
        assert dict(entries)[net("192.0.2.0/24")] == b"b"
        assert plens4 == (24, 8) and count == 2
        with store.transaction() as txn:
            txn.delete(net("192.0.2.0/24"))
        assert state(store)[1] == (8,)
    finally:
        store.close()


def test_several_put_many_calls_equal_puts(tmp_path: Path) -> None:
    """Batches written one after another, a key repeated across them, equal put() each."""
    entries = list(sample().items())
    batches = [entries[:30], entries[30:60] + [(entries[0][0], b"again")], entries[60:]]
    results = []
    for bulk in (True, False):
        store = ZoneStore.create_or_open(tmp_path / f"z{bulk}", "ip", map_size=1 << 26,
                                         clock=lambda: T0)
        try:
            with store.transaction() as txn:
                for batch in batches:
                    if bulk:
                        txn.put_many(batch)
                    else:
                        for key, value in batch:
                            txn.put(key, value)
            results.append(state(store))
        finally:
            store.close()
    assert results[0] == results[1]
    assert dict(results[0][0])[entries[0][0]] == b"again"
