"""The LMDB zone store: atomic serials, the IXFR journal, reader snapshots, crash safety."""

from __future__ import annotations

import ipaddress
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.publishing import copy_zones, publish
from zoned.keys import net_key
from zoned.store import Change, StoreError, ZoneStore

ROOT = Path(__file__).resolve().parents[1]
T0 = 1_700_000_000
HASH = "hash.example.net"


class Clock:
    """A settable unix clock for serials."""

    def __init__(self) -> None:
        self.now = float(T0)

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(tmp_path: Path, clock: Clock) -> Iterator[ZoneStore]:
    zone = ZoneStore.create_or_open(tmp_path / "zone", "name", map_size=1 << 28, clock=clock)
    yield zone
    zone.close()


@pytest.fixture
def ipstore(tmp_path: Path, clock: Clock) -> Iterator[ZoneStore]:
    zone = ZoneStore.create_or_open(tmp_path / "ipzone", "ip", map_size=1 << 28, clock=clock)
    yield zone
    zone.close()


def commit(store: ZoneStore, puts: dict[bytes, bytes], deletes: tuple[bytes, ...] = ()) -> int:
    with store.transaction() as txn:
        for key, value in puts.items():
            txn.put(key, value)
        for key in deletes:
            txn.delete(key)
    return txn.serial_after


def net(text: str) -> bytes:
    return net_key(ipaddress.ip_network(text))


def child(code: str, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )


# -- basics -------------------------------------------------------------------------------


def test_new_store_is_empty_at_serial_zero(store: ZoneStore) -> None:
    """A store nobody has committed to is empty with serial 0, like a never-published zone."""
    assert store.serial() == 0
    assert store.count() == 0
    assert list(store.entries()) == []


def test_put_get_delete(store: ZoneStore) -> None:
    """A transaction reads its own writes; delete reports whether the key existed."""
    with store.transaction() as txn:
        assert txn.serial_before == 0
        txn.put(b"a", b"1")
        assert txn.get(b"a") == b"1"
        assert txn.delete(b"a")
        assert not txn.delete(b"a")
        assert txn.get(b"a") is None
        txn.put(b"b", b"2")
    with store.reader() as snap:
        assert snap.get(b"a") is None
        assert snap.get(b"b") == b"2"


def test_commit_takes_unix_time_as_serial(store: ZoneStore, clock: Clock) -> None:
    """The first commit's serial is the commit time; a second in the same second is +1."""
    assert commit(store, {b"a": b"1"}) == T0
    assert commit(store, {b"a": b"2"}) == T0 + 1
    clock.now += 100
    assert commit(store, {b"a": b"3"}) == T0 + 100
    with store.reader() as snap:
        assert snap.updated == T0 + 100


def test_increment_policy_adds_one(store: ZoneStore) -> None:
    """The ``increment`` policy ignores the clock."""
    with store.transaction(serial_policy="increment") as txn:
        txn.put(b"a", b"1")
    assert txn.serial_after == 1
    with store.transaction(serial_policy="increment") as txn:
        txn.put(b"a", b"2")
    assert txn.serial_after == 2


def test_identical_put_is_no_change(store: ZoneStore, clock: Clock) -> None:
    """Rewriting a value, or changing and restoring it, commits nothing and keeps the serial."""
    serial = commit(store, {b"a": b"1", b"b": b"2"})
    clock.now += 10
    with store.transaction() as txn:
        txn.put(b"a", b"1")
        txn.put(b"b", b"3")
        txn.put(b"b", b"2")
        txn.delete(b"c")
        assert not txn.changed
    assert txn.serial_after == serial
    assert store.serial() == serial
    with store.reader() as snap:
        assert snap.updated == T0


def test_exception_aborts_everything(store: ZoneStore) -> None:
    """An exception inside the with-block writes nothing and propagates."""
    serial = commit(store, {b"a": b"1"})
    with pytest.raises(RuntimeError), store.transaction() as txn:
        txn.put(b"a", b"2")
        txn.put(b"b", b"2")
        raise RuntimeError("publisher failed")
    assert store.serial() == serial
    assert dict(store.entries()) == {b"a": b"1"}
    assert commit(store, {b"c": b"3"}) == serial + 1


def test_bad_keys_raise_store_error(store: ZoneStore) -> None:
    """LMDB's key limits surface as StoreError naming the store (the apex is never stored)."""
    with pytest.raises(StoreError, match=re.escape(str(store.path))), store.transaction() as txn:
        txn.put(b"", b"x")
    with pytest.raises(StoreError), store.transaction() as txn:
        txn.put(b"x" * 600, b"x")
    assert store.serial() == 0


def test_one_write_transaction_at_a_time(store: ZoneStore) -> None:
    """A nested transaction in one process is refused instead of deadlocking on LMDB's lock."""
    with store.transaction() as txn:
        txn.put(b"a", b"1")
        with pytest.raises(StoreError, match="already open"), store.transaction():
            pass
    assert store.serial() == T0


def test_kind_is_fixed_at_creation(tmp_path: Path) -> None:
    """Opening a store as the other kind fails: its keys would mean something else."""
    path = tmp_path / "zone"
    ZoneStore.create_or_open(path, "ip").close()
    with pytest.raises(StoreError, match="kind"):
        ZoneStore.create_or_open(path, "name")
    with pytest.raises(StoreError, match="kind"):
        ZoneStore.open_readonly(path, kind="name")
    readonly = ZoneStore.open_readonly(path, kind="ip")
    assert readonly is not None and readonly.kind == "ip"
    readonly.close()


def test_open_readonly_of_missing_store_creates_nothing(tmp_path: Path) -> None:
    """A zone that was never published opens as None, and the reader leaves no files behind."""
    assert ZoneStore.open_readonly(tmp_path / "absent") is None
    assert not (tmp_path / "absent").exists()
    (tmp_path / "empty").mkdir()
    assert ZoneStore.open_readonly(tmp_path / "empty") is None
    assert list((tmp_path / "empty").iterdir()) == []


def test_readonly_in_the_writers_process_shares_its_environment(store: ZoneStore) -> None:
    """LMDB forbids a second open in one process, so a read-only open shares the writer's."""
    commit(store, {b"a": b"1"})
    readonly = ZoneStore.open_readonly(store.path)
    assert readonly is not None
    with pytest.raises(StoreError, match="read-only"):
        readonly.transaction()
    reader = readonly.reader()
    readonly.close()
    assert reader.get(b"a") == b"1"
    commit(store, {b"a": b"2"})
    assert reader.refresh()
    assert reader.get(b"a") == b"2"
    reader.close()
    with pytest.raises(StoreError, match="already open"):
        ZoneStore.create_or_open(store.path, "name")


def test_reopen_after_close(tmp_path: Path) -> None:
    """Closing the last handle closes the environment, so the store can be opened again."""
    path = tmp_path / "zone"
    with ZoneStore.create_or_open(path, "name") as writer:
        commit(writer, {b"a": b"1"})
    with ZoneStore.create_or_open(path, "name") as writer:
        assert dict(writer.entries()) == {b"a": b"1"}


def test_full_store_fails_cleanly(tmp_path: Path) -> None:
    """Outgrowing map_size aborts the transaction with a StoreError; the old serial stays."""
    with ZoneStore.create_or_open(tmp_path / "zone", "name", map_size=1 << 20) as store:
        serial = commit(store, {b"a": b"1"})
        with pytest.raises(StoreError, match="MAP_FULL"), store.transaction() as txn:
            for i in range(20_000):
                txn.put(b"key%06d" % i, b"v" * 100)
        assert store.serial() == serial
        assert dict(store.entries()) == {b"a": b"1"}


def test_reader_follows_a_store_whose_map_grew(tmp_path: Path) -> None:
    """A writer reopened with a larger map_size does not strand readers on the old mapping."""
    path = tmp_path / "zone"
    with ZoneStore.create_or_open(path, "name", map_size=1 << 20) as store:
        commit(store, {b"a": b"1"})
    readonly = ZoneStore.open_readonly(path)
    assert readonly is not None
    reader = readonly.reader()
    readonly.close()
    grow = """
        import sys
        from pathlib import Path
        from zoned.store import ZoneStore
        with ZoneStore.create_or_open(Path(sys.argv[1]), "name", map_size=1 << 26) as store:
            with store.transaction() as txn:
                for i in range(40_000):
                    txn.put(b"key%06d" % i, b"v" * 100)
        """
    with child(grow, str(path)) as proc:
        assert proc.wait(timeout=30) == 0
    assert reader.refresh()
    assert reader.count() == 40_001
    assert reader.get(b"key039999") == b"v" * 100
    reader.close()


# -- journal ---------------------------------------------------------------------------------


def test_journal_records_each_serials_net_changes(store: ZoneStore) -> None:
    """Each commit journals (key, old, new) per changed key; journal_since chains them."""
    s1 = commit(store, {b"a": b"1", b"b": b"2", b"c": b"3"})
    s2 = commit(store, {b"a": b"10", b"d": b""}, deletes=(b"b",))
    with store.transaction() as txn:
        txn.put(b"c", b"30")
        txn.put(b"c", b"31")  # net: 3 -> 31
        txn.put(b"e", b"5")
        txn.delete(b"e")  # net: nothing
    s3 = txn.serial_after
    entries = store.journal_since(s1)
    assert entries is not None
    assert [(e.from_serial, e.to_serial) for e in entries] == [(s1, s2), (s2, s3)]
    assert sorted(entries[0].changes) == [
        Change(b"a", b"1", b"10"),
        Change(b"b", b"2", None),
        Change(b"d", None, b""),
    ]
    assert entries[1].changes == (Change(b"c", b"3", b"31"),)
    assert store.journal_since(s2) == entries[1:]
    assert store.journal_since(s3) == []


def test_journal_since_unknown_serial_is_none(store: ZoneStore) -> None:
    """A serial the journal never had, or the first import (not journaled), needs AXFR."""
    s1 = commit(store, {b"a": b"1"})
    commit(store, {b"a": b"2"})
    assert store.journal_since(0) is None
    assert store.journal_since(s1 - 5) is None
    assert store.journal_since(s1) is not None


def test_journal_trims_to_max_serials(tmp_path: Path, clock: Clock) -> None:
    """Only the newest max_serials change-sets are kept; older serials fall back to AXFR."""
    store = ZoneStore.create_or_open(tmp_path / "z", "name", max_serials=3, clock=clock)
    serials = [commit(store, {b"k": b"%d" % i}) for i in range(6)]
    assert store.journal_since(serials[1]) is None
    entries = store.journal_since(serials[2])
    assert entries is not None and len(entries) == 3
    assert entries[-1].to_serial == serials[-1]
    store.close()


def test_the_zone_files_journal_bounds_govern_what_zonepub_keeps(tmp_path: Path) -> None:
    """journal.max_serials: 2 keeps two change-sets; an older serial takes the full zone.

    The four imports may share a second: a commit whose unix time is not newer takes the
    old serial + 1 (zoned.serial.next_serial), so each still gets a serial of its own.
    """
    zones = copy_zones(tmp_path)
    path = zones / f"{HASH}.yaml"
    path.write_text(path.read_text() + "\ntransfer:\n  allow: [127.0.0.1]\n"
                    "journal:\n  max_serials: 2\n")
    serials = []
    for i in range(4):
        publish(zones, HASH, [{"token": f"bound-{i}@example.com", "n": i + 1}])
        store = ZoneStore.open_readonly(zones.parent / "var" / HASH)
        assert store is not None
        serials.append(store.serial())
        store.close()
    reader_store = ZoneStore.open_readonly(zones.parent / "var" / HASH)
    assert reader_store is not None
    try:
        assert reader_store.journal_since(serials[0]) is None
        kept = reader_store.journal_since(serials[1])
        assert kept is not None and [e.to_serial for e in kept] == serials[2:]
    finally:
        reader_store.close()


def test_journal_trims_to_max_bytes(tmp_path: Path, clock: Clock) -> None:
    """The oldest change-sets go first when the journal outgrows its byte bound."""
    store = ZoneStore.create_or_open(tmp_path / "z", "name", max_journal_bytes=250, clock=clock)
    serials = [commit(store, {b"k": b"x" * 40 + b"%d" % i}) for i in range(5)]
    # the first import is not journaled; each later change-set is 8 + 11 + 1 + 41 + 41 = 102
    # bytes, so the newest two fit
    assert store.journal_since(serials[1]) is None
    entries = store.journal_since(serials[2])
    assert entries is not None and [e.to_serial for e in entries] == serials[3:]
    store.close()


def test_journal_trims_change_sets_older_than_max_age(tmp_path: Path, clock: Clock) -> None:
    """A change-set older than max_journal_age goes at the next commit."""
    store = ZoneStore.create_or_open(tmp_path / "z", "name", max_journal_age=3600, clock=clock)
    s1 = commit(store, {b"a": b"1"})
    s2 = commit(store, {b"a": b"2"})
    clock.now += 1800
    s3 = commit(store, {b"a": b"3"})
    assert store.journal_since(s1) is not None
    clock.now += 2000  # s1 -> s2 is now 3800 s old; s2 -> s3 was committed 2000 s ago
    s4 = commit(store, {b"a": b"4"})
    assert store.journal_since(s1) is None
    entries = store.journal_since(s2)
    assert entries is not None and [e.to_serial for e in entries] == [s3, s4]
    store.close()


def test_too_big_change_set_clears_the_journal(tmp_path: Path, clock: Clock) -> None:
    """A change-set over the byte bound is not journaled, and nothing older may chain past it."""
    store = ZoneStore.create_or_open(tmp_path / "z", "name", max_journal_bytes=1000, clock=clock)
    s1 = commit(store, {b"a": b"1"})
    s2 = commit(store, {b"a": b"2"})
    s3 = commit(store, {b"big%d" % i: b"v" * 50 for i in range(40)})
    assert store.journal_since(s1) is None
    assert store.journal_since(s2) is None
    assert store.journal_since(s3) == []
    s4 = commit(store, {b"a": b"3"})
    entries = store.journal_since(s3)
    assert entries is not None and [(e.from_serial, e.to_serial) for e in entries] == [(s3, s4)]
    assert store.journal_since(s2) is None
    store.close()


# -- prefix lengths ---------------------------------------------------------------------------


def test_prefix_lengths_are_counted(ipstore: ZoneStore) -> None:
    """Readers learn which prefix lengths hold networks, longest first, as they come and go."""
    commit(ipstore, {net("10.0.0.0/24"): b"a", net("10.0.1.0/24"): b"b", net("10.0.0.5/32"): b"c"})
    commit(ipstore, {net("2001:db8::/48"): b"d", net("10.0.0.0/8"): b"e"})
    with ipstore.reader() as snap:
        assert snap.plens4 == (32, 24, 8)
        assert snap.plens6 == (48,)
    commit(ipstore, {net("10.0.0.0/24"): b"changed"}, deletes=(net("10.0.1.0/24"),))
    with ipstore.reader() as snap:
        assert snap.plens4 == (32, 24, 8)
    commit(ipstore, {}, deletes=(net("10.0.0.0/24"), net("2001:db8::/48"), net("10.9.9.9/32")))
    with ipstore.reader() as snap:
        assert snap.plens4 == (32, 8)
        assert snap.plens6 == ()


def test_aborted_transaction_keeps_prefix_lengths(ipstore: ZoneStore) -> None:
    """Counts change with the data or not at all."""
    commit(ipstore, {net("192.0.2.0/24"): b"a"})
    with pytest.raises(RuntimeError), ipstore.transaction() as txn:
        txn.put(net("192.0.2.1/32"), b"b")
        raise RuntimeError
    with ipstore.reader() as snap:
        assert snap.plens4 == (24,)


# -- readers -----------------------------------------------------------------------------------


def test_reader_keeps_its_snapshot_until_refresh(store: ZoneStore, clock: Clock) -> None:
    """A reader sees neither part nor all of a later commit until refresh(), then all of it."""
    s1 = commit(store, {b"a": b"1", b"b": b"2"})
    reader = store.reader()
    assert not reader.refresh()
    clock.now += 5
    s2 = commit(store, {b"a": b"10", b"c": b"3"}, deletes=(b"b",))
    assert (reader.serial, reader.get(b"a"), reader.get(b"b"), reader.get(b"c")) == (
        s1,
        b"1",
        b"2",
        None,
    )
    assert reader.count() == 2
    assert reader.refresh()
    assert (reader.serial, reader.get(b"a"), reader.get(b"b"), reader.get(b"c")) == (
        s2,
        b"10",
        None,
        b"3",
    )
    assert dict(reader.entries()) == {b"a": b"10", b"c": b"3"}
    assert not reader.refresh()
    reader.close()
    with pytest.raises(StoreError, match="closed"):
        reader.refresh()


def test_reader_in_another_process_sees_a_commit_after_refresh(store: ZoneStore) -> None:
    """A zoned worker process picks up the publisher's commit on refresh(), not before."""
    s1 = commit(store, {b"k": b"old"})
    proc = child(
        """
        import sys
        from pathlib import Path
        from zoned.store import ZoneStore
        reader = ZoneStore.open_readonly(Path(sys.argv[1]), kind="name").reader()
        print(reader.serial, reader.get(b"k").decode(), flush=True)
        sys.stdin.readline()
        print(reader.get(b"k").decode(), flush=True)
        print(reader.refresh(), reader.serial, reader.get(b"k").decode(), flush=True)
        """,
        str(store.path),
    )
    with proc:
        assert proc.stdout is not None and proc.stdin is not None
        try:
            assert proc.stdout.readline().split() == [str(s1), "old"]
            s2 = commit(store, {b"k": b"new"})
            proc.stdin.write("go\n")
            proc.stdin.flush()
            assert proc.stdout.readline().split() == ["old"]
            assert proc.stdout.readline().split() == ["True", str(s2), "new"]
            assert proc.wait(timeout=10) == 0
        finally:
            proc.kill()


def test_forked_child_is_told_to_open_after_fork(store: ZoneStore) -> None:
    """LMDB handles do not survive fork(); the child gets a StoreError, the parent carries on."""
    commit(store, {b"a": b"1"})
    reader = store.reader()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - child
        code = 0
        for attempt in (reader.refresh, lambda: ZoneStore.open_readonly(store.path)):
            try:
                attempt()
                code |= 1
            except StoreError as exc:
                code |= 0 if "fork" in str(exc) else 2
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert not reader.refresh()
    assert reader.get(b"a") == b"1"
    reader.close()


def test_has_prefix_and_has_range(store: ZoneStore) -> None:
    """Prefix and range probes answer "is anything below / inside" in one cursor seek."""
    commit(store, {b"com.example": b"1", b"com.example.www": b"2", b"org.test": b"3"})
    with store.reader() as snap:
        assert snap.has_prefix(b"com.example.")
        assert snap.has_prefix(b"com.")
        assert snap.has_prefix(b"")
        assert not snap.has_prefix(b"com.example.www.")
        assert not snap.has_prefix(b"net.")
        assert not snap.has_prefix(b"zzz")
        assert snap.has_range(b"org", b"org.u")
        assert snap.has_range(b"com.example", b"com.example\x00")
        assert not snap.has_range(b"com.example.www\x00", b"org.test")
        assert not snap.has_range(b"org.tesu", b"\xff")
        assert not snap.has_range(b"org", b"org")


def test_entries_are_in_key_order(store: ZoneStore) -> None:
    """A full scan comes in key order (AXFR, export) with the count to match."""
    data = {b"%03d" % i: b"v%d" % i for i in range(200, 0, -7)}
    commit(store, data)
    assert list(store.entries()) == sorted(data.items())
    assert store.count() == len(data)


# -- crash safety -------------------------------------------------------------------------------

KILLED_WRITER = """
    import sys
    from pathlib import Path
    from zoned.store import ZoneStore
    n = int(sys.argv[2])
    store = ZoneStore.create_or_open(Path(sys.argv[1]), "name")
    with store.transaction() as txn:
        print("writing", flush=True)
        for i in range(n):
            txn.put(b"k%08d" % i, b"new-%d" % i)
        print("committing", flush=True)
    print("committed", txn.serial_after, flush=True)
"""


def _write_old_values(path: Path, n: int, extra: int = 0) -> int:
    """Give keys 0..n-1 their "old" values (dropping up to ``extra`` more); the serial."""
    with ZoneStore.create_or_open(path, "name") as store:
        with store.transaction() as txn:
            for i in range(n):
                txn.put(b"k%08d" % i, b"old-%d" % i)
            for i in range(n, n + extra):
                txn.delete(b"k%08d" % i)
        return txn.serial_after


def test_writer_killed_mid_commit_leaves_the_previous_serial(tmp_path: Path) -> None:
    """SIGKILL during a commit leaves the old serial and data whole; the next writer works."""
    path = tmp_path / "zone"
    n = 400_000
    before = _write_old_values(path, n)
    killed_mid_write = False
    for size, delay in ((n, 0.2), (n, 0.05), (2 * n, 0.01)):
        with child(KILLED_WRITER, str(path), str(size)) as proc:
            assert proc.stdout is not None
            try:
                assert proc.stdout.readline().strip() == "writing"
                time.sleep(delay)
                proc.send_signal(signal.SIGKILL)
                proc.wait(timeout=30)
                rest = proc.stdout.read()
            finally:
                proc.kill()
        if "committing" not in rest and proc.returncode == -signal.SIGKILL:
            killed_mid_write = True
            break
        before = _write_old_values(path, n, extra=size - n)  # too late: start over
    assert killed_mid_write, "the writer was never killed mid-commit"

    with ZoneStore.create_or_open(path, "name") as store:
        assert store.serial() == before
        assert store.count() == n
        assert all(value.startswith(b"old-") for _, value in store.entries())
        with store.transaction() as txn:
            txn.put(b"k00000000", b"after")
        assert txn.serial_after != before
    reader_store = ZoneStore.open_readonly(path)
    assert reader_store is not None
    with reader_store.reader() as snap:
        assert snap.get(b"k00000000") == b"after"
        assert snap.get(b"k00000001") == b"old-1"
    reader_store.close()
