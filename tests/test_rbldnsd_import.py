"""``zonepub import --format rbldnsd``: rbldnsd datasets answered by zoned as rbldnsd does."""

from __future__ import annotations

import argparse
import ipaddress
from collections.abc import Iterable
from pathlib import Path

import pytest

from listformat import names
from publisher import cli
from publisher.publish import import_rbldnsd
from publisher.rbldnsd import DatasetError, ImportedEntry, read_dataset
from tests.support.answers import Answer, core_answer, server_answer, zone_config
from tests.support.publishing import copy_zones
from tests.support.servers import rbldnsd
from zoned.core import Responder
from zoned.service import build_authority
from zoned.store import ZoneStore
from zoned.zone import ReaderPool

IP = "bl.example.net"
DOM = "dom.example.net"
HASH = "hash.example.net"


def write(directory: Path, name: str, text: str) -> Path:
    path = directory / name
    path.write_text(text)
    return path


def responder(zones: Path) -> Responder:
    return Responder(build_authority(zones, ReaderPool()))


def serial(zones: Path, origin: str) -> int:
    store = ZoneStore.open_readonly(zone_config(zones, origin).store)
    if store is None:
        return 0
    try:
        return store.serial()
    finally:
        store.close()


def ip_names(addresses: Iterable[str]) -> list[str]:
    return [names.reverse_ip(address) for address in addresses]


def compare_with_rbldnsd(
    tmp_path: Path, zones: Path, origin: str, kind: str, dataset: Path,
    relative: Iterable[str], *, txt: bool = True,
) -> list[tuple[str, Answer]]:
    """Serve ``dataset`` with rbldnsd and assert zoned answers A (and TXT) the same.

    Returns zoned's answers, for further checks.
    """
    served = tmp_path / "rbldnsd"
    served.mkdir()
    (served / "data").write_bytes(dataset.read_bytes())
    core = responder(zones)
    answers = []
    with rbldnsd(served, [f"{origin}:{kind}:data"]) as port:
        for name in relative:
            qname = f"{name}.{origin}"
            for rdtype in ("A", "TXT") if txt else ("A",):
                expected = server_answer(port, qname, rdtype, tcp=False)
                got = core_answer(core, qname, rdtype)
                assert got == expected, (name, rdtype)
                answers.append((f"{name} {rdtype}", got))
    return answers


# --------------------------------------------------------------------------- ip4set

IP4SET = """\
# an ip4set as rbldnsd(8) describes it
$1 see http://bl.example/lookup?
:127.0.0.3:Listed: $1$
10.1.1.1
10.1.1.2 :5
10.1.1.3 :6:
10.1.1.4 open relay at $, pay $$5
10.1.1.5 :127.0.0.7:seven
10.1.2 ; a /24 by prefix
!10.1.2.9
10.1.3.0/24 :4:net
10.2.0.0-10.2.3.255 :4:range
10.3.0.4-10 :4:suffix range
10.16/12 :127.0.0.4:twelve
!10.17.5.5
10.1.1.5 :127.0.0.6:second value of the same address
"""


@pytest.mark.e2e
def test_ip4set_answers_as_rbldnsd_answers(tmp_path: Path) -> None:
    zones = copy_zones(tmp_path)
    data = write(tmp_path, "ip4set", IP4SET)
    result = import_rbldnsd(zone_config(zones, IP), data, "ip4set")
    assert result.entries > 0 and result.serial_after != result.serial_before
    addresses = ["10.1.1.1", "10.1.1.2", "10.1.1.3", "10.1.1.4", "10.1.1.5", "10.1.1.6",
                 "10.1.2.0", "10.1.2.8", "10.1.2.9", "10.1.2.255", "10.1.3.7", "10.2.0.0",
                 "10.2.2.200", "10.2.3.255", "10.2.4.0", "10.3.0.3", "10.3.0.4", "10.3.0.10",
                 "10.3.0.11", "10.16.0.1", "10.31.255.255", "10.32.0.0", "10.17.5.5",
                 "10.17.5.6", "10.15.255.255"]
    # '$' is the queried address in rbldnsd, the listed network in the store: compare
    # TXT where the entry is one address or has no '$'.
    compare_with_rbldnsd(tmp_path, zones, IP, "ip4set", data, ip_names(addresses), txt=False)
    core = responder(zones)

    def txt(address: str) -> Answer:
        return core_answer(core, f"{names.reverse_ip(address)}.{IP}", "TXT")

    assert txt("10.1.1.1")[1] == {'TXT 300 "Listed: see http://bl.example/lookup?10.1.1.1"'}
    assert txt("10.1.1.2")[1] == {'TXT 300 "Listed: see http://bl.example/lookup?10.1.1.2"'}
    assert txt("10.1.1.3") == ("NOERROR", frozenset())
    assert txt("10.1.1.4")[1] == {'TXT 300 "open relay at 10.1.1.4, pay $5"'}
    assert txt("10.1.1.5")[1] == {'TXT 300 "seven"', 'TXT 300 "second value of the same address"'}
    assert txt("10.1.2.8")[1] == {'TXT 300 "Listed: see http://bl.example/lookup?10.1.2.0/24"'}
    assert txt("10.2.2.200")[1] == {'TXT 300 "range"'}


# --------------------------------------------------------------------------- tries


@pytest.mark.e2e
def test_ip4trie_exclusions_split_the_covering_networks(tmp_path: Path) -> None:
    zones = copy_zones(tmp_path)
    data = write(tmp_path, "ip4trie", """\
10.0.0.0/8 :127.0.0.3:ten
!10.1.0.0/16
10.1.2.0/24 :127.0.0.5:inside the exclusion
!10.1.2.128/25
10.1.2.200/32 :127.0.0.6:deeper still
10.4.0.0/14 :127.0.0.4:fourteen
10.4.0.0/14 :127.0.0.7:repeated: the first wins
172.16.0.1 :2:one address
""")
    result = import_rbldnsd(zone_config(zones, IP), data, "ip4trie")
    assert result.notes == (f"{data}:7: 10.4.0.0/14 repeats {data}:6; the first wins, as in "
                            "rbldnsd",)
    addresses = ["10.0.0.1", "10.1.0.1", "10.1.255.255", "10.1.2.1", "10.1.2.127", "10.1.2.128",
                 "10.1.2.199", "10.1.2.200", "10.1.2.201", "10.2.0.0", "10.255.255.255",
                 "10.0.255.255", "10.4.1.1", "10.7.255.255", "172.16.0.1", "172.16.0.2",
                 "11.0.0.0"]
    compare_with_rbldnsd(tmp_path, zones, IP, "ip4trie", data, ip_names(addresses))


@pytest.mark.e2e
def test_ip6trie_forms_and_exclusions_answer_as_rbldnsd_answers(tmp_path: Path) -> None:
    zones = copy_zones(tmp_path)
    data = write(tmp_path, "ip6trie", """\
:127.0.1.2:Listed, see http://example.com/lookup
2001:21ab:c000/36
2001:21ab:def7:4242 :127.0.1.3:This one smells funny
2605:6001:42::/52
::1                   # localhost
!2605:6001:42::bead   # exclusion
3fff::/16 :4:
""")
    import_rbldnsd(zone_config(zones, IP), data, "ip6trie")
    addresses = ["2001:21ab:c000::1", "2001:21ab:cfff:ffff::", "2001:21ab:d000::",
                 "2001:21ab:def7:4242::1", "2001:21ab:def7:4243::1", "2605:6001:42::1",
                 "2605:6001:42::bead", "2605:6001:42::beae", "2605:6001:42:fff::",
                 "2605:6001:42:1000::", "::1", "::2", "3fff:1::", "4000::"]
    compare_with_rbldnsd(tmp_path, zones, IP, "ip6trie", data, ip_names(addresses))


# --------------------------------------------------------------------------- dnset


@pytest.mark.e2e
def test_dnset_into_a_name_zone_answers_exact_names_as_rbldnsd(tmp_path: Path) -> None:
    zones = copy_zones(tmp_path)
    data = write(tmp_path, "dnset", """\
:127.0.1.3:listed: $
exact.example
other.example :127.0.1.9:value for $
.both.example
*.below.example
!gone.example
gone.example
Mixed.Case.Example. :127.0.1.4
""")
    result = import_rbldnsd(zone_config(zones, DOM), data, "dnset")
    assert any(":4: listing of .both.example: the store has no wildcards; names below (the "
               "name itself is imported) not imported" in note for note in result.notes)
    assert any(":5: listing of *.below.example" in note for note in result.notes)
    compare_with_rbldnsd(tmp_path, zones, DOM, "dnset", data, [
        "exact.example", "other.example", "both.example", "gone.example",
        "mixed.case.example", "missing.example",
    ])
    core = responder(zones)
    # The limitation: names below a wildcard are not listed.
    assert core_answer(core, f"x.both.example.{DOM}", "A")[0] == "NXDOMAIN"
    assert core_answer(core, f"x.below.example.{DOM}", "A")[0] == "NXDOMAIN"


def test_dnset_into_a_hash_zone_publishes_the_hashed_names(tmp_path: Path) -> None:
    zones = copy_zones(tmp_path)
    data = write(tmp_path, "dnset", "spam.example :127.0.0.4:bad $\n")
    import_rbldnsd(zone_config(zones, HASH), data, "dnset")
    core = responder(zones)
    for owner in names.owner_names(zone_config(zones, HASH).scheme, "spam.example"):
        assert core_answer(core, f"{owner}.{HASH}", "A") == ("NOERROR", {"A 300 127.0.0.4"})
        assert core_answer(core, f"{owner}.{HASH}", "TXT") == \
            ("NOERROR", {'TXT 300 "bad spam.example"'})


def test_ip4set_into_a_hash_zone_hashes_addresses_and_skips_networks(tmp_path: Path) -> None:
    zones = copy_zones(tmp_path)
    data = write(tmp_path, "ip4set", "10.0.0.1 :3:\n10.0.1.0/24\n")
    result = import_rbldnsd(zone_config(zones, HASH), data, "ip4set")
    assert result.keys == 2  # one address under the hash and its alias
    assert result.notes == (f"{data}:2: 10.0.1.0/24: a hash zone lists single addresses; "
                            "network skipped",)
    owner = names.owner_names(zone_config(zones, HASH).scheme, "10.0.0.1")[0]
    assert core_answer(responder(zones), f"{owner}.{HASH}", "A") == \
        ("NOERROR", {"A 300 127.0.0.3"})


# --------------------------------------------------------------------------- generic


def test_generic_records_keep_their_types_and_ttls(tmp_path: Path) -> None:
    zones = copy_zones(tmp_path)
    data = write(tmp_path, "generic", """\
$TTL 600
@ TXT "apex text"
info A 127.0.0.8
info 60 TXT "about this list"
mail 3600 MX 10 mx.example.net
""")
    result = import_rbldnsd(zone_config(zones, DOM), data, "generic")
    assert f"{data}:2: apex records belong in the zone file's records section; skipped" \
        in result.notes
    core = responder(zones)
    assert core_answer(core, f"info.{DOM}", "A") == ("NOERROR", {"A 600 127.0.0.8"})
    assert core_answer(core, f"info.{DOM}", "TXT") == ("NOERROR", {'TXT 60 "about this list"'})
    assert core_answer(core, f"mail.{DOM}", "MX") == ("NOERROR", {"MX 3600 10 mx.example.net."})


def test_generic_records_of_an_ip_zone_are_reversed_addresses(tmp_path: Path) -> None:
    zones = copy_zones(tmp_path)
    data = write(tmp_path, "generic", "1.0.0.10 TXT \"ten\"\nwww A 192.0.2.1\n")
    with pytest.raises(DatasetError) as raised:
        import_rbldnsd(zone_config(zones, IP), data, "generic")
    assert raised.value.problems == (
        f"{data}:2: 'www' is not a reversed IPv4 or IPv6 address, and an IP zone's store "
        "holds addresses",
    )
    data.write_text("1.0.0.10 TXT \"ten\"\n")
    import_rbldnsd(zone_config(zones, IP), data, "generic")
    assert core_answer(responder(zones), f"1.0.0.10.{IP}", "TXT") == \
        ("NOERROR", {'TXT 300 "ten"'})


# --------------------------------------------------------------------------- bad input


def test_bad_lines_are_reported_with_file_and_line_and_nothing_is_written(
    tmp_path: Path,
) -> None:
    zones = copy_zones(tmp_path)
    data = write(tmp_path, "ip4set", """\
10.0.0.1
10.0.0.300
10.0.1.7/24
10.0.2.0/24 :127.0.0.1:never 127.0.0.1
$DATASET ip4set x
$UNKNOWN 1
10.0.3.9-10.0.3.1
10 ; a bare number
10.0.4.0 :127.0.0.2:ok
10.0.5.0:x
""")
    with pytest.raises(DatasetError) as raised:
        import_rbldnsd(zone_config(zones, IP), data, "ip4set")
    lines = [int(problem.split(":")[1]) for problem in raised.value.problems]
    assert lines == [2, 3, 5, 6, 7, 8, 10, 4]
    assert all(problem.startswith(f"{data}:") for problem in raised.value.problems)
    assert "10.0.1.0/24" in raised.value.problems[1]  # the network meant is suggested
    assert serial(zones, IP) == 0


def test_a_dataset_of_the_wrong_kind_for_the_zone_is_refused(tmp_path: Path) -> None:
    zones = copy_zones(tmp_path)
    data = write(tmp_path, "ip4set", "10.0.0.1\n")
    with pytest.raises(DatasetError, match="dom.example.net is a name zone"):
        import_rbldnsd(zone_config(zones, DOM), data, "ip4set")
    with pytest.raises(DatasetError, match="bl.example.net is an IP zone"):
        import_rbldnsd(zone_config(zones, IP), data, "dnset")


def test_read_dataset_raises_after_the_last_entry_without_a_problem_list(
    tmp_path: Path,
) -> None:
    data = write(tmp_path, "dnset", "good.example\n!\nnext.example :3:x\n")
    seen: list[ImportedEntry] = []
    with pytest.raises(DatasetError, match=r"dnset:2: missing domain name"):
        for entry in read_dataset(data, "dnset"):
            seen.append(entry)
    assert [entry.token for entry in seen] == ["good.example", "next.example"]
    assert seen[1].code == ipaddress.IPv4Address("127.0.0.3") and seen[1].txt == b"x"


def test_replace_removes_what_the_dataset_does_not_list(tmp_path: Path) -> None:
    zones = copy_zones(tmp_path)
    config = zone_config(zones, IP)
    import_rbldnsd(config, write(tmp_path, "a", "10.0.0.1\n10.0.0.2\n"), "ip4set")
    result = import_rbldnsd(config, write(tmp_path, "b", "10.0.0.2 :3:\n"), "ip4set",
                            replace=True)
    assert (result.added, result.changed, result.deleted) == (0, 1, 1)
    core = responder(zones)
    assert core_answer(core, f"1.0.0.10.{IP}", "A")[0] == "NXDOMAIN"
    assert core_answer(core, f"2.0.0.10.{IP}", "A") == ("NOERROR", {"A 300 127.0.0.3"})


# --------------------------------------------------------------------------- command


def _parser(jsonl: list[argparse.Namespace], monkeypatch: pytest.MonkeyPatch
            ) -> argparse.ArgumentParser:
    """``zonepub``'s parser as publisher.cli builds it, the JSON-lines import recorded."""

    def jsonl_command(args: argparse.Namespace) -> int:
        jsonl.append(args)
        return 0

    monkeypatch.setattr(cli, "cmd_import", jsonl_command)
    return cli.build_parser()


def test_import_command_routes_rbldnsd_datasets_and_keeps_json_lines(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    zones = copy_zones(tmp_path)
    data = write(tmp_path, "set", "$SOA 0 a. b. 0 1 1 1 1\n10.0.0.1\n")
    jsonl: list[argparse.Namespace] = []
    parser = _parser(jsonl, monkeypatch)
    args = parser.parse_args(["-c", str(zones), "import", "--zone", IP, "--format", "rbldnsd",
                              "--dataset-type", "ip4set", str(data)])
    assert args.func(args) == 0
    captured = capsys.readouterr()
    assert "zone bl.example.net: 1 ip4set entries as 1 names: 1 added" in captured.out
    assert f"zonepub: note: {data}:1: $SOA ignored: the zone file decides it" in captured.err
    args = parser.parse_args(["-c", str(zones), "import", "--zone", IP, str(data)])
    assert args.func(args) == 0 and len(jsonl) == 1
    args = parser.parse_args(["-c", str(zones), "import", "--zone", IP, "--format", "rbldnsd",
                              str(data)])
    with pytest.raises(SystemExit, match="needs --dataset-type"):
        args.func(args)
    args = parser.parse_args(["-c", str(zones), "import", "--zone", IP, "--dataset-type",
                              "dnset", str(data)])
    with pytest.raises(SystemExit, match="goes with --format rbldnsd"):
        args.func(args)
