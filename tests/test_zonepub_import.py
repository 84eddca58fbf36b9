"""``zonepub import`` and ``zonepub names``: filling a zone by hand."""

from __future__ import annotations

from pathlib import Path

import pytest

from publisher.cli import main as zonepub
from tests.support.publishing import copy_zones
from zoned.config import load_zones
from zoned.store import ZoneStore

pytestmark = pytest.mark.adversarial


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


# --------------------------------------------------------------------------- the delete guard

IP = "bl.example.net"


def _count(zones: Path, zone: str = IP) -> int:
    config = next(z for z in load_zones(zones) if z.origin == zone)
    store = ZoneStore.open_readonly(config.store)
    if store is None:
        return 0
    with store:
        return store.count()


def _records(path: Path, hosts: range) -> Path:
    path.write_text("".join(f'{{"token": "192.0.2.{i}", "n": {i}, "sc": 0.5}}\n'
                            for i in hosts))
    return path


def _import(zones: Path, *args: str | Path) -> int:
    return zonepub(["-c", str(zones), "import", "--zone", IP, *map(str, args)])


def test_replace_with_an_empty_file_is_refused_in_a_zone_above_the_minimum_size(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An empty file given to --replace must not wipe a list: exit 3, nothing written."""
    zones = copy_zones(tmp_path)
    assert _import(zones, _records(tmp_path / "all.jsonl", range(1, 21))) == 0
    before = _serial(zones, IP)
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    capsys.readouterr()
    assert _import(zones, "--replace", empty) == 3
    err = capsys.readouterr().err
    assert f"zonepub: zone {IP}: refused: the plan deletes 20 of 20 entries" in err
    assert "--force" in err
    assert (_serial(zones, IP), _count(zones)) == (before, 20)
    # A dry run is refused the same way; with --force it shows the plan and writes nothing.
    assert _import(zones, "--replace", "--dry-run", empty) == 3
    assert _import(zones, "--replace", "--dry-run", "--force", empty) == 0
    out = capsys.readouterr().out
    assert f"zone {IP} (dry run): 0 to add, 0 to change, 20 to delete" in out
    assert f"delete 1.2.0.192.{IP} (192.0.2.1/32)" in out
    assert (_serial(zones, IP), _count(zones)) == (before, 20)
    # Within the share (6 of 20 = 30%) a replace goes through, as one serial.
    assert _import(zones, "--replace", _records(tmp_path / "most.jsonl", range(1, 15))) == 0
    assert "0 added, 0 changed, 6 deleted" in capsys.readouterr().out
    assert _count(zones) == 14 and _serial(zones, IP) != before
    # 10 of 14 is past it; an operator's --force applies it.
    few = _records(tmp_path / "few.jsonl", range(1, 5))
    assert _import(zones, "--replace", few) == 3
    assert _count(zones) == 14
    assert _import(zones, "--replace", "--force", few) == 0
    assert _count(zones) == 4


def test_a_small_zone_stays_editable(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Below the minimum zone size (10 entries) any share may go: 7 of 7 here."""
    zones = copy_zones(tmp_path)
    sample = Path(__file__).resolve().parent.parent / "zones" / "samples" / f"{IP}.jsonl"
    assert _import(zones, sample) == 0
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    assert _import(zones, "--replace", empty) == 0
    assert "0 added, 0 changed, 7 deleted" in capsys.readouterr().out
    assert _count(zones) == 0


def test_a_zone_sets_its_own_minimum_size(tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    """``source.max_delete_min: 0`` guards every zone, 7 entries too; a bad value is named."""
    zones = copy_zones(tmp_path)
    config = zones / f"{IP}.yaml"
    text = config.read_text()
    assert "  selector: ip\n" in text
    config.write_text(text.replace("  selector: ip\n", "  selector: ip\n  max_delete_min: 0\n"))
    sample = Path(__file__).resolve().parent.parent / "zones" / "samples" / f"{IP}.jsonl"
    assert _import(zones, sample) == 0
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    capsys.readouterr()
    assert _import(zones, "--replace", empty) == 3
    assert "the plan deletes 7 of 7 entries" in capsys.readouterr().err
    assert _count(zones) == 7
    config.write_text(text.replace("  selector: ip\n", "  selector: ip\n  max_delete_min: -1\n"))
    assert _import(zones, "--replace", empty) != 0
    err = capsys.readouterr().err
    line = text[:text.index("  selector: ip\n")].count("\n") + 2  # the line after selector
    assert f"{config}:{line}:" in err and "source.max_delete_min" in err
    config.write_text(text)
    assert _count(zones) == 7


def test_a_dry_run_writes_nothing_and_creates_no_store(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    zones = copy_zones(tmp_path)
    assert _import(zones, "--dry-run", _records(tmp_path / "in.jsonl", range(1, 4))) == 0
    assert f"zone {IP} (dry run): 3 to add, 0 to change, 0 to delete" in capsys.readouterr().out
    assert not (zones.parent / "var" / IP).exists()


def test_rbldnsd_imports_go_through_the_same_guard(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    zones = copy_zones(tmp_path)
    dataset = tmp_path / "list.ip4trie"
    dataset.write_text("".join(f"10.0.{i}.0/24\n" for i in range(20)))
    assert _import(zones, "--format", "rbldnsd", "--dataset-type", "ip4trie", dataset) == 0
    assert _count(zones) == 20
    dataset.write_text("10.0.0.0/24\n")
    capsys.readouterr()
    assert _import(zones, "--format", "rbldnsd", "--dataset-type", "ip4trie", "--replace",
                   dataset) == 3
    assert "refused: the plan deletes 19 of 20 entries" in capsys.readouterr().err
    assert _count(zones) == 20
    assert _import(zones, "--format", "rbldnsd", "--dataset-type", "ip4trie", "--replace",
                   "--dry-run", "--force", dataset) == 0
    assert "19 to delete" in capsys.readouterr().out and _count(zones) == 20
    assert _import(zones, "--format", "rbldnsd", "--dataset-type", "ip4trie", "--replace",
                   "--force", dataset) == 0
    assert _count(zones) == 1


# --------------------------------------------------------------------------- token hygiene


def test_bad_tokens_and_too_wide_networks_are_listed_bad_lines(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A NUL in an address is a bad line like any other, never a traceback; networks
    wider than the zone's widest_prefix (default /8, /16) and /0 are refused."""
    zones = copy_zones(tmp_path)
    data = tmp_path / "in.jsonl"
    data.write_text(
        '{"token": "1.2.3.4\\u0000", "n": 5}\n'
        '{"token": "0.0.0.0/0", "n": 5}\n'
        '{"token": "::/0", "n": 5}\n'
        '{"token": "10.0.0.0/7", "n": 5}\n'
        '{"token": "2001:d00::/15", "n": 5}\n'
        '{"token": "\\ud800", "n": 5}\n'
        '{"token": "10.0.0.0/8", "n": 5}\n'
        '{"token": "2001::/16", "n": 5}\n'
    )
    assert _import(zones, data) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err
    for line in range(1, 7):
        assert f"in.jsonl:{line}:" in err, line
    assert "in.jsonl:7:" not in err and "in.jsonl:8:" not in err
    assert "widest_prefix.v4: /8" in err and "widest_prefix.v6: /16" in err
    assert _serial(zones, IP) == 0
    data.write_text('{"token": "10.0.0.0/8", "n": 5}\n{"token": "2001::/16", "n": 5}\n')
    assert _import(zones, data) == 0


def test_a_zone_sets_its_own_widest_prefix(tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    zones = copy_zones(tmp_path)
    config = zones / f"{IP}.yaml"
    text = config.read_text()
    assert "widest_prefix:\n  v4: 8\n  v6: 16\n" in text
    config.write_text(text.replace("widest_prefix:\n  v4: 8\n  v6: 16\n",
                                   "widest_prefix: {v4: 24, v6: 48}\n"))
    data = tmp_path / "in.jsonl"
    data.write_text('{"token": "10.0.0.0/23", "n": 5}\n{"token": "10.0.0.0/24", "n": 5}\n')
    assert _import(zones, data) == 1
    err = capsys.readouterr().err
    assert "in.jsonl:1:" in err and "in.jsonl:2:" not in err
    dataset = tmp_path / "set"
    dataset.write_text("10.0.0.0/24\n10.1.0.0-10.1.1.255\n!10.2.0.0/16\n2001:db8::/47\n")
    assert _import(zones, "--format", "rbldnsd", "--dataset-type", "ip4set", dataset) == 1
    err = capsys.readouterr().err
    assert f"{dataset}:2:" in err and f"{dataset}:3:" in err and f"{dataset}:1:" not in err
    dataset.write_text("2001:db8::/47\n2001:db8:1::/48\n")
    assert _import(zones, "--format", "rbldnsd", "--dataset-type", "ip6trie", dataset) == 1
    err = capsys.readouterr().err
    assert f"{dataset}:1:" in err and f"{dataset}:2:" not in err
