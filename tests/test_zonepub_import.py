"""``zonepub import`` and ``zonepub names``: filling a zone by hand."""

from __future__ import annotations

from pathlib import Path

import pytest

from publisher.cli import main as zonepub
from tests.conftest import copy_zones
from zoned.config import load_zones
from zoned.store import ZoneStore


def _serial(zones: Path, zone: str) -> int:
    config = next(z for z in load_zones(zones) if z.origin == zone)
    store = ZoneStore.open_readonly(config.store)
    if store is None:
        return 0
    try:
        return store.serial()
    finally:
        store.close()


def test_bad_lines_are_all_listed_and_nothing_is_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    zones = copy_zones(tmp_path)
    data = tmp_path / "in.jsonl"
    data.write_text(
        '{"token": "192.0.2.1", "n": 3}\n'
        "not json\n"
        '{"token": "192.0.2.300", "n": 1}\n'
        '{"n": 1}\n'
        '{"token": "192.0.2.5", "code": "127.0.0.1"}\n'
    )
    assert zonepub(["-c", str(zones), "import", "--zone", "bl.example.net", str(data)]) == 1
    err = capsys.readouterr().err
    for line in (2, 3, 4, 5):
        assert f"in.jsonl:{line}:" in err
    assert "in.jsonl:1:" not in err
    assert _serial(zones, "bl.example.net") == 0


def test_import_commits_one_serial_and_replace_removes_the_rest(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    zones = copy_zones(tmp_path)
    data = tmp_path / "in.jsonl"
    data.write_text('{"token": "192.0.2.1", "sc": 0.9}\n{"token": "192.0.2.2", "sc": 0.5}\n')
    assert zonepub(["-c", str(zones), "import", "--zone", "bl.example.net", str(data)]) == 0
    assert "2 added, 0 changed, 0 deleted" in capsys.readouterr().out
    first = _serial(zones, "bl.example.net")
    assert first > 0
    data.write_text('{"token": "192.0.2.1", "sc": 0.1}\n')
    assert zonepub(["-c", str(zones), "import", "--replace", "--zone", "bl.example.net",
                    str(data)]) == 0
    assert "0 added, 1 changed, 1 deleted" in capsys.readouterr().out
    assert _serial(zones, "bl.example.net") != first


def test_names_prints_dig_ready_owner_names(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    zones = copy_zones(tmp_path)
    assert zonepub(["-c", str(zones), "names", "--zone", "hash.example.net", "192.0.2.1"]) == 0
    out = capsys.readouterr().out.split()
    # blake2/base32/32 of the reversed octets, then the sha1/hex alias.
    assert out == ["9iifpgsmfr77zmpqqgzizqqgz6bkdhdj.hash.example.net",
                   "17eb549417d6eac2e0fa362812bfa562457872e8.hash.example.net"]
    assert zonepub(["-c", str(zones), "names", "--zone", "bl.example.net", "192.0.2.1"]) == 0
    assert capsys.readouterr().out.split() == ["1.2.0.192.bl.example.net"]
