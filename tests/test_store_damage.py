"""A damaged store never answers wrong: the audit's reproductions against a real zoned.

Each test damages the store of bl.example.net the way the audit (issue 15, item 1) and
issue 9's adversarial list did -- truncated under a running zoned or before it starts,
zeroed, 200 flipped bytes, unopenable, deleted and published again, a full disk during
a commit -- and checks that zoned stays up, answers SERVFAIL (never NXDOMAIN, never a
damaged answer with AA) for the tokens it cannot vouch for, and says so in its log once,
not once per query.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import dns.flags
import dns.message
import dns.rcode
import pytest

from tests.support.polling import until
from tests.support.publishing import copy_zones, publish, publish_samples
from tests.support.repo import REPO
from tests.support.zoned_process import Zoned, start_zoned

pytestmark = [pytest.mark.e2e, pytest.mark.adversarial]

IP = "bl.example.net"
LISTED = f"1.2.0.192.{IP}"  # 192.0.2.1, in the shipped samples
TEST_ENTRY = f"2.0.0.127.{IP}"  # RFC 5782: from the zone file, not the store
DEADLINE = 10.0


def logged(server: Zoned, text: str) -> int:
    return server.log.read_text().count(text)


def rcode(server: Zoned, qname: str, rdtype: str = "A") -> str:
    return dns.rcode.to_text(server.ask(qname, rdtype).rcode())


def data_file(zones: Path, zone: str = IP) -> Path:
    return zones.parent / "var" / zone / "data.mdb"


def zonepub(zones: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "publisher.cli", "-c", str(zones), *argv],
                          cwd=REPO, capture_output=True, text=True, timeout=120)


def assert_alive_without_tracebacks(server: Zoned) -> None:
    assert server.process.poll() is None, server.log.read_text()
    assert rcode(server, TEST_ENTRY) == "NOERROR"
    assert "Traceback" not in server.log.read_text()


@pytest.fixture
def zones(tmp_path: Path) -> Path:
    directory = copy_zones(tmp_path)
    publish_samples(directory)
    return directory


@pytest.fixture
def running(zones: Path) -> Iterator[Zoned]:
    server = start_zoned(zones, zones.parent / "zoned.log")
    assert rcode(server, LISTED) == "NOERROR"
    yield server
    assert server.stop() == 0, server.log.read_text()


def servfail_not_nxdomain(server: Zoned) -> None:
    """The store's tokens SERVFAIL without AA; what the zone file says still answers."""
    for qname in (LISTED, f"9.9.9.9.{IP}", f"1.0.0.127.{IP}"):
        reply = server.ask(qname, "TXT")
        assert reply.rcode() == dns.rcode.SERVFAIL, (qname, reply)
        assert not reply.flags & dns.flags.AA and not reply.answer
    assert rcode(server, TEST_ENTRY) == "NOERROR"
    assert rcode(server, IP, "SOA") == "NOERROR"
    assert rcode(server, f"www.{IP}") == "NOERROR"


# -- truncation ------------------------------------------------------------------------------


@pytest.mark.parametrize("keep", [0.5, 0.0])
def test_truncated_under_a_running_zoned(running: Zoned, zones: Path, keep: float) -> None:
    """The audit's SIGBUS: zoned finds the short file at its next refresh (before any page
    is touched), refuses the store with one line naming the file, and answers SERVFAIL."""
    file = data_file(zones)
    os.truncate(file, int(file.stat().st_size * keep))
    until(lambda: logged(running, "store refused") > 0, "the refusal", DEADLINE)
    servfail_not_nxdomain(running)
    text = running.log.read_text()
    assert f"{file}: damaged" in text
    for _ in range(50):
        assert rcode(running, LISTED) == "SERVFAIL"
    assert logged(running, "store refused") == 1
    assert_alive_without_tracebacks(running)


def test_started_on_a_truncated_store(zones: Path) -> None:
    """zoned starts, refuses the store with a clear line, and never crashes."""
    file = data_file(zones)
    os.truncate(file, file.stat().st_size // 2)
    server = start_zoned(zones, zones.parent / "zoned.log")
    try:
        servfail_not_nxdomain(server)
        assert f"store refused, its tokens answer SERVFAIL: {file}: damaged" in \
            server.log.read_text()
        assert_alive_without_tracebacks(server)
    finally:
        assert server.stop() == 0, server.log.read_text()


def test_zeroed_data_file_gives_servfail_and_one_line(running: Zoned, zones: Path) -> None:
    """The audit's traceback per query: now one refusal, rate-limited, no traceback."""
    file = data_file(zones)
    with open(file, "r+b") as out:
        out.write(bytes(file.stat().st_size))
    until(lambda: logged(running, "store refused") > 0, "the refusal", DEADLINE)
    for _ in range(200):
        assert rcode(running, LISTED) == "SERVFAIL"
    assert logged(running, "store refused") == 1
    assert "magic" in running.log.read_text()
    assert_alive_without_tracebacks(running)


# -- flipped bytes -----------------------------------------------------------------------------


def test_flipped_bytes_are_never_served(zones: Path) -> None:
    """200 bytes flipped inside stored TXT values, under a running zoned: every token
    answers exactly as before or SERVFAIL without AA; the damaged ones are logged
    (rate-limited) and zonepub check names them."""
    rng = random.Random(15)
    tokens = [f"198.18.{i // 250}.{i % 250 + 1}" for i in range(300)]
    publish(zones, IP, [{"token": t, "n": 100 + i, "sc": 0.9, "l": 1763769600}
                        for i, t in enumerate(tokens)])
    server = start_zoned(zones, zones.parent / "zoned.log")
    try:
        names = [".".join(reversed(t.split("."))) + f".{IP}" for t in tokens]
        before = {name: server.ask(name, "TXT").to_text() for name in names}
        data = bytearray(data_file(zones).read_bytes())
        starts = [i for i in range(len(data)) if data.startswith(b"v=1;n=", i)]
        assert len(starts) >= 300
        fd = os.open(data_file(zones), os.O_RDWR)
        try:
            for at in rng.sample([s + k for s in starts for k in range(4, 16)], 200):
                os.pwrite(fd, bytes([data[at] ^ (1 << rng.randrange(8))]), at)
        finally:
            os.close(fd)
        servfails = 0
        for name in names:
            reply = server.ask(name, "TXT")
            if reply.rcode() == dns.rcode.SERVFAIL:
                assert not reply.flags & dns.flags.AA and not reply.answer
                servfails += 1
            else:  # untouched: byte for byte what it was (ids differ: compare the rest)
                assert reply.to_text().split("\n", 1)[1] == before[name].split("\n", 1)[1]
        assert servfails > 50
        assert 0 < logged(server, "fails its checksum") <= 5  # the rate limiter's burst
        assert_alive_without_tracebacks(server)
        check = zonepub(zones, "check", "--zone", IP)
        assert check.returncode == 4, check
        assert "DAMAGED" in check.stdout and "fails its checksum" in check.stdout
    finally:
        assert server.stop() == 0, server.log.read_text()


# -- unopenable, replaced, vanished --------------------------------------------------------------


def test_unopenable_store_at_start_is_servfail_not_empty(zones: Path) -> None:
    """The audit's fail-open: a store that exists but cannot be opened was served empty."""
    lock = data_file(zones).with_name("lock.mdb")
    lock.unlink()
    lock.mkdir()  # LMDB cannot open its lock file: the store cannot be read
    server = start_zoned(zones, zones.parent / "zoned.log")
    try:
        servfail_not_nxdomain(server)
        assert "store refused" in server.log.read_text()
        assert_alive_without_tracebacks(server)
    finally:
        assert server.stop() == 0, server.log.read_text()


def test_store_deleted_and_published_again_is_served(running: Zoned, zones: Path) -> None:
    """The audit's stale reader: the new store is served within a second of its commit
    (four refreshes), old data is gone, and SIGHUP keeps the new one."""
    shutil.rmtree(data_file(zones).parent)
    until(lambda: logged(running, "vanished") == 1, "the vanished line", DEADLINE)
    assert rcode(running, LISTED) == "NOERROR"  # the last good snapshot
    publish(zones, IP, [{"token": "192.0.2.77", "n": 50, "sc": 0.9}])
    until(lambda: rcode(running, f"77.2.0.192.{IP}") == "NOERROR", "the new store", 1.0)
    assert rcode(running, LISTED) == "NXDOMAIN"  # the deleted store's data
    running.process.send_signal(signal.SIGHUP)
    until(lambda: logged(running, "reloaded") == 1, "the reload", DEADLINE)
    assert rcode(running, f"77.2.0.192.{IP}") == "NOERROR"
    assert rcode(running, LISTED) == "NXDOMAIN"
    assert logged(running, "vanished") == 1
    assert_alive_without_tracebacks(running)


# -- the checkers ---------------------------------------------------------------------------------


def test_zonepub_check_exit_codes(zones: Path) -> None:
    """0 for sound stores and stores not created yet, 4 for damage, naming the file."""
    ok = zonepub(zones, "check")
    assert ok.returncode == 0, ok
    assert ok.stdout.count(" sound;") == 3
    shutil.rmtree(data_file(zones, "dom.example.net").parent)
    ok = zonepub(zones, "check")
    assert ok.returncode == 0 and "not created yet" in ok.stdout, ok
    file = data_file(zones)
    os.truncate(file, file.stat().st_size // 2)
    bad = zonepub(zones, "check")
    assert bad.returncode == 4, bad
    assert f"{file}: damaged" in bad.stdout and "Traceback" not in bad.stderr


def test_zoned_t_fails_on_a_damaged_store(zones: Path) -> None:
    good = subprocess.run([sys.executable, "-m", "zoned.cli", "-t", "-c", str(zones)],
                          cwd=REPO, capture_output=True, text=True, timeout=60)
    assert good.returncode == 0, good
    file = data_file(zones)
    with open(file, "r+b") as out:
        out.write(bytes(4096))  # meta page 0 zeroed
    bad = subprocess.run([sys.executable, "-m", "zoned.cli", "-t", "-c", str(zones)],
                         cwd=REPO, capture_output=True, text=True, timeout=60)
    assert bad.returncode == 1, bad
    assert f"{file}: damaged: meta page 0" in bad.stderr and "Traceback" not in bad.stderr


# -- a full disk ------------------------------------------------------------------------------


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 2 MiB tmpfs for the stores (the test runs as root in CI, which mounts it)."""
    mount = tmp_path / "var"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        pytest.fail(f"cannot mount a small tmpfs for the disk-full test: {done.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_disk_full_during_a_commit(tmp_path: Path, small_disk: Path) -> None:
    """The commit fails with a clear error, the previous serial keeps serving, and the
    next run succeeds once there is room again."""
    zones = copy_zones(tmp_path)
    publish_samples(zones)
    server = start_zoned(zones, tmp_path / "zoned.log")
    try:
        serial = server.ask(IP, "SOA").answer[0][0].serial
        filler = small_disk / "filler"
        with open(filler, "wb") as out:
            try:
                while True:
                    out.write(bytes(64 << 10))
                    out.flush()
            except OSError:
                pass
        batch = tmp_path / "batch.jsonl"
        batch.write_text("".join(json.dumps({"token": f"198.18.{i // 250}.{i % 250 + 1}",
                                             "n": 10 + i, "sc": 0.9, "l": 1763769600}) + "\n"
                                 for i in range(2000)))
        full = zonepub(zones, "import", "--zone", IP, str(batch))
        assert full.returncode == 1, full
        assert "No space left on device" in full.stderr and "Traceback" not in full.stderr
        assert f"serial {serial} stays in place" in full.stderr
        assert server.ask(IP, "SOA").answer[0][0].serial == serial
        assert rcode(server, LISTED) == "NOERROR"
        assert rcode(server, f"1.0.18.198.{IP}") == "NXDOMAIN"
        filler.unlink()
        again = zonepub(zones, "import", "--zone", IP, str(batch))
        assert again.returncode == 0, again
        until(lambda: rcode(server, f"1.0.18.198.{IP}") == "NOERROR", "the next serial", DEADLINE)
        assert server.ask(IP, "SOA").answer[0][0].serial != serial
        assert rcode(server, LISTED) == "NOERROR"
        assert_alive_without_tracebacks(server)
    finally:
        assert server.stop() == 0, server.log.read_text()
