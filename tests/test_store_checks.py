"""The store's own checks, in process: seals on every value, the data file checked before
it is mapped, layout upgrades, and what zoned's lookups make of a damaged or refused store.

The real-process reproductions (a running zoned, truncate, a full disk) are in
tests/test_store_damage.py.
"""

from __future__ import annotations

import os
import shutil
from ipaddress import ip_network
from pathlib import Path

import dns.flags
import dns.message
import dns.rcode
import lmdb
import pytest

from tests.support.publishing import copy_zones, publish_samples
from tests.support.queries import generated_queries
from zoned.authority import Authority
from zoned.core import Responder
from zoned.keys import net_key
from zoned.ratelog import LIMITER
from zoned.service import build_authority
from zoned.store import (
    StoreDamaged,
    StoreOutdated,
    ZoneStore,
    check_file,
    inspect,
    seal,
    sound,
)
from zoned.zone import ReaderPool, StoreState

IP = "bl.example.net"
TOKEN_KEY = net_key(ip_network("192.0.2.1/32"))  # listed in the shipped samples


def flip(path: Path, needle: bytes, offset: int = 0) -> None:
    """Flip one byte of every copy of ``needle`` in the store's data file (copy-on-write
    leaves old copies in free pages), in place: every reader's mapped pages see it."""
    file = path / "data.mdb"
    data = file.read_bytes()
    at = data.find(needle)
    assert at >= 0, needle
    fd = os.open(file, os.O_RDWR)
    try:
        while at >= 0:
            os.pwrite(fd, bytes([data[at + offset] ^ 0x40]), at + offset)
            at = data.find(needle, at + 1)
    finally:
        os.close(fd)


def ask(responder: Responder, qname: str, rdtype: str = "A") -> dns.message.Message:
    wire = responder.respond(dns.message.make_query(qname, rdtype).to_wire())
    assert wire is not None
    return dns.message.from_wire(wire)


def rcode(responder: Responder, qname: str, rdtype: str = "A") -> str:
    return dns.rcode.to_text(ask(responder, qname, rdtype).rcode())


# -- seals ------------------------------------------------------------------------------------


def test_a_sealed_value_is_sound_only_under_its_own_key() -> None:
    """The seal covers key and payload: a flipped bit, a value moved under another key and
    an all-zero value all fail."""
    stored = seal(b"key-1", b"payload")
    assert sound(b"key-1", stored)
    assert not sound(b"key-2", stored)
    assert not sound(b"key-1", bytes([stored[0] ^ 1]) + stored[1:])
    assert not sound(b"key-1", bytes(len(stored)))
    assert not sound(b"", bytes(4))  # the CRC-32 of nothing is 0: the seed rules it out


def test_a_flipped_value_is_never_returned(tmp_path: Path) -> None:
    """Reader.get, entries and the writer's get raise StoreDamaged naming the key."""
    with ZoneStore.create_or_open(tmp_path / "z", "name") as store:
        with store.transaction() as txn:
            txn.put(b"com.example", b"the-answer-payload")
            txn.put(b"com.other", b"other-payload")
    flip(tmp_path / "z", b"the-answer-payload", 4)
    with ZoneStore.create_or_open(tmp_path / "z", "name") as store, store.reader() as reader:
        assert reader.get(b"com.other") == b"other-payload"
        with pytest.raises(StoreDamaged, match=r"data\.mdb.*b'com\.example'.*checksum"):
            reader.get(b"com.example")
        with pytest.raises(StoreDamaged):
            list(reader.entries())
        with store.transaction() as txn, pytest.raises(StoreDamaged):
            txn.get(b"com.example")


def test_the_writer_overwrites_a_damaged_value_and_drops_the_journal(tmp_path: Path) -> None:
    """A publish repairs a damaged value; IXFR cannot know what secondaries hold for it."""
    with ZoneStore.create_or_open(tmp_path / "z", "name") as store:
        with store.transaction() as txn:
            txn.put(b"a", b"first-payload")
        with store.transaction() as txn:
            txn.put(b"b", b"x")
        before = store.serial()
    flip(tmp_path / "z", b"first-payload", 2)
    with ZoneStore.create_or_open(tmp_path / "z", "name") as store:
        with store.transaction() as txn:
            txn.put(b"a", b"second-payload")
        with store.reader() as reader:
            assert reader.get(b"a") == b"second-payload"
            assert reader.journal_since(before) is None  # cleared: a full transfer


def test_damaged_meta_value_refuses_the_snapshot(tmp_path: Path) -> None:
    """Meta values are sealed too: a damaged serial or prefix-length table is never used
    (a lost prefix length would turn listed networks into NXDOMAIN)."""
    with ZoneStore.create_or_open(tmp_path / "z", "ip") as store:
        with store.transaction() as txn:
            txn.put(net_key(ip_network("1.2.3.0/24")), b"net-payload")  # 1.2.3.0/24
    flip(tmp_path / "z", b"plen4", 2)  # the key of the meta value: its seal no longer fits
    ro = ZoneStore.open_readonly(tmp_path / "z")
    assert ro is not None
    with ro, pytest.raises(StoreDamaged, match="meta value"):
        ro.reader()


# -- the data file, before it is mapped -------------------------------------------------------


@pytest.fixture
def small_store(tmp_path: Path) -> Path:
    path = tmp_path / "z"
    with ZoneStore.create_or_open(path, "name") as store:
        for batch in range(3):
            with store.transaction() as txn:
                for i in range(300):
                    txn.put(b"key%d.%d" % (batch, i), b"v" * 200)
    return path


def test_a_truncated_data_file_is_refused_before_mapping(small_store: Path) -> None:
    """Half the file, or none of it: StoreDamaged naming data.mdb, and no SIGBUS (this
    test process would die of one)."""
    file = small_store / "data.mdb"
    size = file.stat().st_size
    os.truncate(file, size // 2)
    with pytest.raises(StoreDamaged, match=r"data\.mdb: damaged: \d+ bytes.*truncated"):
        ZoneStore.open_readonly(small_store)
    with pytest.raises(StoreDamaged, match="refusing to write"):
        ZoneStore.create_or_open(small_store, "name")
    os.truncate(file, 0)
    with pytest.raises(StoreDamaged, match="too short"):
        ZoneStore.open_readonly(small_store)
    with pytest.raises(StoreDamaged):  # not re-initialised as an empty store
        ZoneStore.create_or_open(small_store, "name")


def test_damaged_meta_pages_are_refused(small_store: Path) -> None:
    """LMDB's magic, page number and roots are checked in both meta pages."""
    file = small_store / "data.mdb"
    meta = check_file(small_store)
    assert meta is not None and meta.page_size >= 512
    original = file.read_bytes()[: 2 * meta.page_size]
    for offset, what in ((16, "magic"), (meta.page_size + 16, "magic"), (0, "says it is page"),
                         (128 + 7, "root")):
        fd = os.open(file, os.O_RDWR)
        os.pwrite(fd, bytes([original[offset] ^ 0x55]), offset)
        os.close(fd)
        with pytest.raises(StoreDamaged, match=what):
            ZoneStore.open_readonly(small_store)
        fd = os.open(file, os.O_RDWR)
        os.pwrite(fd, original, 0)
        os.close(fd)
    assert ZoneStore.open_readonly(small_store) is not None


def test_refresh_checks_the_file_before_touching_pages(small_store: Path) -> None:
    """A reader whose file shrinks or is zeroed under it raises StoreDamaged on refresh."""
    store = ZoneStore.open_readonly(small_store)
    assert store is not None
    with store, store.reader() as reader:
        assert reader.get(b"key0.1") == b"v" * 200
        assert not reader.refresh()
        file = small_store / "data.mdb"
        size = file.stat().st_size
        os.truncate(file, size // 2)
        with pytest.raises(StoreDamaged, match="truncated"):
            reader.refresh()
        with open(file, "r+b") as out:
            out.write(bytes(size))
        with pytest.raises(StoreDamaged, match="magic"):
            reader.refresh()


# -- layout versions ----------------------------------------------------------------------------


def _as_layout_1(path: Path) -> None:
    """Rewrite a store as layout 1 wrote it: no seals, version b"1"."""
    env = lmdb.open(str(path), max_dbs=4, subdir=True)
    with env.begin(write=True) as txn:
        for name in (b"names", b"meta", b"journal"):
            db = env.open_db(name, txn=txn)
            for key, value in list(txn.cursor(db=db)):
                txn.put(key, value[:-4], db=db)
        txn.put(b"version", b"1", db=env.open_db(b"meta", txn=txn))
    env.close()


def test_layout_1_is_refused_by_readers_and_upgraded_by_the_writer(tmp_path: Path) -> None:
    path = tmp_path / "z"
    with ZoneStore.create_or_open(path, "ip") as store:
        with store.transaction() as txn:
            txn.put(TOKEN_KEY, b"answer-1")
        serial = store.serial()
    _as_layout_1(path)
    with pytest.raises(StoreOutdated, match="run zonepub once"):
        ZoneStore.open_readonly(path)
    assert not inspect(path).sound
    with ZoneStore.create_or_open(path, "ip") as store:  # upgrades in place
        assert store.serial() == serial
        assert dict(store.entries()) == {TOKEN_KEY: b"answer-1"}
    ro = ZoneStore.open_readonly(path)
    assert ro is not None
    with ro, ro.reader() as reader:
        assert reader.get(TOKEN_KEY) == b"answer-1"
        assert reader.plens4 == (32,)
    assert inspect(path).sound


# -- inspection --------------------------------------------------------------------------------


def test_inspect_counts_every_value_and_names_the_damaged_ones(small_store: Path) -> None:
    result = inspect(small_store)
    assert result.sound and result.values["names"] == 900 and result.values["journal"] == 2
    with ZoneStore.create_or_open(small_store, "name") as store:
        with store.transaction() as txn:
            txn.put(b"marked", b"a-payload-to-damage")
    flip(small_store, b"a-payload-to-damage", 3)
    result = inspect(small_store)
    assert not result.sound
    assert result.damaged["names"] == 1
    assert any("b'marked'" in problem for problem in result.problems)
    assert not inspect(small_store.parent / "absent").exists


# -- zoned's lookups -----------------------------------------------------------------------------


@pytest.fixture
def zones(tmp_path: Path) -> Path:
    directory = copy_zones(tmp_path)
    publish_samples(directory)
    return directory


def store_of(zones: Path, zone: str = IP) -> Path:
    return zones.parent / "var" / zone


def both(authority: Authority) -> tuple[Responder, Responder]:
    return Responder(authority, fast=True), Responder(authority, fast=False)


def test_a_damaged_value_is_servfail_without_aa_counted_and_logged(
        zones: Path, caplog: pytest.LogCaptureFixture) -> None:
    """The flipped token answers SERVFAIL (no AA, no data) on both paths; the others stay."""
    pool = ReaderPool()
    authority = build_authority(zones, pool)
    flip(store_of(zones), b"n=120;s=110", 3)  # 192.0.2.1's TXT
    seen = LIMITER.kinds.get("store-damage")
    before = seen.seen if seen is not None else 0
    for responder in both(authority):
        for rdtype in ("A", "TXT", "ANY"):
            reply = ask(responder, f"1.2.0.192.{IP}", rdtype)
            assert reply.rcode() == dns.rcode.SERVFAIL
            assert not reply.flags & dns.flags.AA and not reply.answer
        assert rcode(responder, f"2.2.0.192.{IP}", "TXT") == "NOERROR"
        assert rcode(responder, f"9.9.9.9.{IP}") == "NXDOMAIN"
    assert pool.damaged[IP] == 6
    assert LIMITER.kinds["store-damage"].seen - before == 6
    assert "fails its checksum" in caplog.text


def test_a_refused_store_answers_servfail_for_tokens_only(zones: Path) -> None:
    """What the zone file decides still answers; whatever the store would decide is
    SERVFAIL -- never NXDOMAIN, which would unlist every token."""
    os.truncate(store_of(zones) / "data.mdb", 4096)
    pool = ReaderPool()
    authority = build_authority(zones, pool)
    zone = authority.zones[tuple(IP.encode().split(b"."))]
    assert zone.snapshot.reader is None and zone.snapshot.refused
    for responder in both(authority):
        assert rcode(responder, f"1.2.0.192.{IP}") == "SERVFAIL"  # listed in the store
        assert rcode(responder, f"9.9.9.9.{IP}") == "SERVFAIL"  # maybe listed: unknown
        assert rcode(responder, f"1.0.0.127.{IP}") == "SERVFAIL"  # Rspamd's probe notices
        assert rcode(responder, f"0.2.192.{IP}") == "SERVFAIL"  # a prefix: unknown
        assert rcode(responder, f"2.0.0.127.{IP}") == "NOERROR"  # RFC 5782 test entry
        assert rcode(responder, f"7.100.51.198.{IP}") == "NOERROR"  # listed override
        assert rcode(responder, f"99.2.0.192.{IP}") == "NXDOMAIN"  # unlisted override
        assert rcode(responder, f"www.{IP}") == "NOERROR"  # static record
        assert rcode(responder, IP, "SOA") == "NOERROR"
        assert rcode(responder, IP, "NS") == "NOERROR"
        # The other zones are not affected.
        assert rcode(responder, "example.com.dom.example.net") == "NOERROR"


def test_a_missing_store_still_serves_static_data_and_nxdomain(zones: Path) -> None:
    """The documented "not created yet" case is unchanged."""
    shutil.rmtree(store_of(zones))
    authority = build_authority(zones, ReaderPool())
    for responder in both(authority):
        assert rcode(responder, f"1.2.0.192.{IP}") == "NXDOMAIN"
        assert rcode(responder, f"2.0.0.127.{IP}") == "NOERROR"


def test_an_unopenable_store_is_refused_not_empty(zones: Path) -> None:
    """lock.mdb that cannot be opened: the zone is refused (SERVFAIL), not served empty."""
    lock = store_of(zones) / "lock.mdb"
    lock.unlink()
    lock.mkdir()
    authority = build_authority(zones, ReaderPool())
    for responder in both(authority):
        assert rcode(responder, f"1.2.0.192.{IP}") == "SERVFAIL"
        assert rcode(responder, f"9.9.9.9.{IP}") == "SERVFAIL"


def test_damaged_zones_give_identical_replies_on_both_paths(zones: Path) -> None:
    """test_paths' generated queries over one zone with a damaged value and one refused."""
    flip(store_of(zones), b"n=120;s=110", 3)
    os.truncate(store_of(zones, "hash.example.net") / "data.mdb", 100)
    fast, full = both(build_authority(zones, ReaderPool()))
    for i, (wire, tcp) in enumerate(generated_queries(3_000, seed=15)):
        assert fast.respond(wire, tcp) == full.respond(wire, tcp), (i, wire.hex(), tcp)
    assert fast.errors == full.errors == 0
    assert fast.fast_answers > 1_500


def test_the_pool_follows_a_replaced_a_vanished_and_a_damaged_store(zones: Path) -> None:
    clock = [0.0]
    pool = ReaderPool(clock=lambda: clock[0])
    config = next(z.compiled.config for z in build_authority(zones, pool).zones.values()
                  if z.compiled.origin == IP)
    first = pool.refresh(config)
    assert not isinstance(first, StoreState)
    old_serial = first.serial
    path = store_of(zones)
    moved = path.with_name("moved")
    path.rename(moved)  # vanished: the last snapshot keeps serving
    assert pool.refresh(config) is first
    assert first.get(TOKEN_KEY) is not None
    path.mkdir()
    with ZoneStore.create_or_open(path, "ip") as store:  # replaced: a new data file
        with store.transaction(serial_policy="increment") as txn:
            txn.put(net_key(ip_network("192.0.2.77/32")), b"new-answer")
    second = pool.refresh(config)
    assert not isinstance(second, StoreState) and second is not first
    assert second.serial != old_serial and second.get(TOKEN_KEY) is None
    os.truncate(path / "data.mdb", 0)  # damaged under the reader: refused
    assert pool.refresh(config) is StoreState.REFUSED
    shutil.rmtree(path)
    clock[0] += 2
    assert pool.refresh(config) is StoreState.ABSENT
    pool.retain(())
