"""Zone configuration: the shipped examples load, and every mistake is named exactly."""

from __future__ import annotations

import dataclasses
import ipaddress
from pathlib import Path
from textwrap import dedent

import dns.rdata
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from listformat.codes import ReturnCodes
from listformat.hashing import HashScheme
from listformat.names import OwnerScheme
from tests.support.configs import MINIMAL, problems_of, write
from tests.support.repo import ZONES
from zoned.access import TsigKey
from zoned.config import (
    ConfigError,
    Journal,
    ListedOverride,
    Problem,
    Soa,
    StaticRecord,
    ZoneConfig,
    load_zone_file,
    load_zones,
)
from zoned.sourceconf import DEFAULT_BUCKETS, Bucket, SourceSettings


def fields_of(path: Path) -> list[tuple[int, str]]:
    return [(line, field) for line, _, field, _ in problems_of(path)]


# ------------------------------------------------------------------ shipped examples


def test_shipped_examples_load() -> None:
    """Every file in zones/ loads, in file-name order, with the stores under ../var."""
    zones = load_zones(ZONES)
    assert [z.origin for z in zones] == ["bl.example.net", "dom.example.net", "hash.example.net"]
    for zone in zones:
        assert zone.store == (ZONES.parent / "var" / zone.origin).resolve()
        assert zone.file == ZONES / f"{zone.origin}.yaml"
        assert zone.ns == ("ns1.example.net", "ns2.example.net")
        assert zone.soa.rname == "hostmaster.example.net"
        assert any(r.name == "" and r.rtype == "TXT" for r in zone.records)
        assert zone.listed and zone.unlisted
        assert isinstance(zone.source, SourceSettings)
        assert zone.source.urls == ("redis://127.0.0.1:6379/0",)
        for record in zone.records:
            record.rdata()  # every static value is valid presentation RDATA


def test_shipped_ip_zone() -> None:
    """The RFC 5782 zone is an ip zone with the default bands, overrides and a big TXT name."""
    zone = load_zone_file(ZONES / "bl.example.net.yaml")
    assert zone.scheme.kind == "ip"
    assert zone.soa == Soa("ns1.example.net", "hostmaster.example.net", 3600, 600, 604800, 60, 3600)
    assert zone.codes == ReturnCodes.default()
    assert zone.journal == Journal(100, 64 * 1024 * 1024, 7 * 86400)
    assert zone.listed[0] == ListedOverride(
        "198.51.100.7", ipaddress.IPv4Address("127.0.0.2"), {"reason": "manual"}
    )
    assert zone.listed[1].token == "203.0.113.0/24"
    assert zone.unlisted == ("192.0.2.99",)
    assert StaticRecord("www", "MX", 3600, "10 mx.example.net.") in zone.records
    big = sum(len(r.rdata()) for r in zone.records if r.name == "big")
    huge = [r for r in zone.records if r.name == "huge"]
    assert 512 < big < 1232 < sum(len(r.rdata()) for r in huge)
    assert huge[-1].value.count('" "') == 1  # 400 bytes of text: two character-strings
    assert zone.source is not None and zone.source.prefix == "RR:"


def test_shipped_hash_and_name_zones() -> None:
    """The hashed zone has blake2/base32/32 plus a sha1/hex alias; the name zone is graded."""
    hashed = load_zone_file(ZONES / "hash.example.net.yaml")
    assert hashed.scheme.kind == "hash"
    assert hashed.scheme.hash == HashScheme("blake2", "base32", 32)
    assert hashed.scheme.aliases == (HashScheme("sha1", "hex", None),)
    named = load_zone_file(ZONES / "dom.example.net.yaml")
    assert named.scheme.kind == "name"
    assert named.codes.graded and named.codes.bands == ()
    assert named.unlisted == ("example.org", "xn--bcher-kva.example")


# ------------------------------------------------------------------ one file


def test_minimal_zone_defaults(tmp_path: Path) -> None:
    """Everything but zone, soa names, ns and owner has a default."""
    zone = load_zone_file(write(tmp_path / "zones", "rep.yaml", MINIMAL))
    assert zone == ZoneConfig(
        origin="rep.example.net",
        file=tmp_path / "zones" / "rep.yaml",
        ttl=300,
        soa=Soa("ns1.example.net", "hostmaster.example.net", 3600, 600, 604800, 60, 3600),
        ns=("ns1.example.net",),
        ns_ttl=3600,
        scheme=OwnerScheme("ip"),
        codes=ReturnCodes.default(),
        publish_a=True,
        publish_txt=True,
        store=(tmp_path / "var" / "rep.example.net").resolve(),
        journal=Journal(100, 67108864, 604800),
        records=(),
        listed=(),
        unlisted=(),
        source=None,
    )


def test_problem_names_file_line_column_and_field(tmp_path: Path) -> None:
    """A bad value is reported as file:line:column: field: message, at the value."""
    text = MINIMAL.replace(
        "  rname: hostmaster.example.net\n", "  rname: h.example.net\n  refresh: abc\n"
    )
    path = write(tmp_path, "rep.yaml", text)
    with pytest.raises(ConfigError) as info:
        load_zone_file(path)
    assert str(info.value) == f"{path}:5:12: soa.refresh: expected a positive integer, got 'abc'"
    assert info.value.problems == [
        Problem(path, 5, 12, "soa.refresh", "expected a positive integer, got 'abc'")
    ]


def test_all_problems_of_a_file_are_reported_together(tmp_path: Path) -> None:
    """Reading goes on after a problem, so one run lists every mistake, in file order."""
    path = write(
        tmp_path,
        "rep.yaml",
        dedent("""\
        zone: rep..example.net
        ttl: -5
        soa:
          mname: ns1.example.net
          retry: 0
        ns: [ns1.example.net, "not a name"]
        owner: {scheme: ip}
        answers: {a: maybe}
        """),
    )
    assert problems_of(path) == [
        (1, 7, "zone", "empty label, got 'rep..example.net'"),
        (2, 6, "ttl", "expected a non-negative integer, got '-5'"),
        (3, 1, "soa.rname", "required field is missing"),
        (5, 10, "soa.retry", "expected a positive integer, got '0'"),
        (
            6,
            23,
            "ns[1]",
            "bad label 'not a name': 1 to 63 of a-z, 0-9, '_', '-' (not at either end), "
            "got 'not a name'",
        ),
        (8, 14, "answers.a", "expected true or false, got 'maybe'"),
    ]


def test_required_fields(tmp_path: Path) -> None:
    """Missing required fields point at the mapping that should hold them."""
    path = write(tmp_path, "rep.yaml", "ttl: 60\nsoa: {mname: ns1.example.net}\n")
    assert problems_of(path) == [
        (1, 1, "zone", "required field is missing"),
        (1, 1, "ns", "required field is missing"),
        (1, 1, "owner", "required field is missing"),
        (2, 1, "soa.rname", "required field is missing"),
    ]


def test_duplicate_keys(tmp_path: Path) -> None:
    """A repeated key is an error at the repeat, pointing back to the first."""
    path = write(
        tmp_path,
        "rep.yaml",
        MINIMAL
        + dedent("""\
        ttl: 60
        records:
          www: {A: 192.0.2.1, A: 192.0.2.2}
        source:
          redis: {url: a, url: b}
        zone: other.example.net
        """),
    )
    assert problems_of(path) == [
        (9, 23, "records.www.A", f"duplicate key (first at {path}:9:9)"),
        (11, 10, "source.redis", "expected a Redis URL or a list of them"),
        (11, 19, "source.redis.url", f"duplicate key (first at {path}:11:11)"),
        (12, 1, "zone", f"duplicate key (first at {path}:1:1)"),
    ]


def test_unknown_keys_suggest_the_field_meant(tmp_path: Path) -> None:
    """Typos are errors, not silently ignored settings, with the closest field suggested."""
    path = write(
        tmp_path,
        "rep.yaml",
        MINIMAL.replace("soa:\n", "soa:\n  refersh: 60\n")
        + "recrods: {}\nrecords:\n  www: {txt: [x]}\nwhatever: 1\n",
    )
    assert problems_of(path) == [
        (3, 3, "soa.refersh", "unknown field; did you mean 'refresh'?"),
        (8, 1, "recrods", "unknown field; did you mean 'records'?"),
        (10, 9, "records.www.txt", "unknown field; did you mean 'TXT'?"),
        (
            11,
            1,
            "whatever",
            "unknown field; expected zone, ttl, soa, ns, ns_ttl, owner, answers, store, "
            "journal, records, overrides, source, queries, transfer, keys, widest_prefix",
        ),
    ]


@pytest.mark.parametrize(
    ("text", "line", "column", "message"),
    [
        (
            "zone: a\nsoa: [1, 2\nns: x\n",
            3,
            3,
            "expected ',' or ']', but got ':' (while parsing a flow sequence at 2:6)",
        ),
        ("zone: a\n  ttl: 3\n", 2, 6, "mapping values are not allowed here"),
        (
            "zone: a\nttl:\t3\n",
            2,
            5,
            "found character '\\t' that cannot start any token (while scanning for the next token)",
        ),
        ("zone: *x\n", 1, 7, "found undefined alias 'x'"),
    ],
)
def test_yaml_syntax_errors(
    tmp_path: Path, text: str, line: int, column: int, message: str
) -> None:
    """A YAML syntax error is one problem at the parser's line and column."""
    path = tmp_path / "rep.yaml"
    path.write_text(text)
    assert problems_of(path) == [(line, column, "", message)]


def test_unreadable_files(tmp_path: Path) -> None:
    """Undecodable, empty, too deep and non-mapping files are problems, not tracebacks."""
    bad = tmp_path / "bad.yaml"
    bad.write_bytes(b"zone: a\nttl: \xff\n")
    assert problems_of(bad) == [(2, 6, "", "not valid UTF-8")]
    empty = tmp_path / "empty.yaml"
    empty.write_text("# nothing\n")
    assert problems_of(empty) == [
        (1, 1, "", "empty file; expected a mapping starting with 'zone:'")
    ]
    assert str(Problem(empty, 0, 0, "", "x")) == f"{empty}: x"
    scalar = tmp_path / "scalar.yaml"
    scalar.write_text("just text\n")
    assert problems_of(scalar) == [(1, 1, "", "expected a mapping, got 'just text'")]
    deep = tmp_path / "deep.yaml"
    deep.write_text("zone: a\nsource: " + "[" * 5000 + "]" * 5000 + "\n")
    assert problems_of(deep) == [(2, 72, "", "nested more than 64 levels deep")]  # the 64th [
    assert problems_of(tmp_path / "missing.yaml") == [
        (0, 0, "", "cannot read: No such file or directory")
    ]


def test_recursive_alias_in_source(tmp_path: Path) -> None:
    """A self-referencing alias is reported instead of looping."""
    path = write(tmp_path, "rep.yaml", MINIMAL + "source: &s {self: *s}\n")
    assert problems_of(path) == [(7, 9, "source.self", "recursive alias")]


# ------------------------------------------------------------------ fields


def test_store_paths_are_relative_to_the_zone_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A relative store starts at the zone file's directory, not the working directory."""
    zones = tmp_path / "conf" / "zones"
    write(zones, "a.yaml", MINIMAL + "store: ../data/rep\n")
    monkeypatch.chdir(tmp_path / "conf")
    given = load_zone_file(Path("zones/a.yaml"))
    assert given.file == Path("zones/a.yaml")
    assert given.store == (tmp_path / "conf" / "data" / "rep").resolve()
    assert given.store.is_absolute()
    monkeypatch.chdir(zones)
    assert load_zone_file(Path("a.yaml")).store == given.store
    absolute = load_zone_file(write(zones, "b.yaml", MINIMAL + f"store: {tmp_path / 's'}\n"))
    assert absolute.store == (tmp_path / "s").resolve()
    default = load_zone_file(write(zones, "c.yaml", MINIMAL))
    assert default.store == (tmp_path / "conf" / "var" / "rep.example.net").resolve()


def test_names_are_lowercased_and_rname_mailbox_converted(tmp_path: Path) -> None:
    """Trailing dots and case do not matter; user@host becomes the name user.host."""
    text = MINIMAL.replace("zone: rep.example.net", "zone: Rep.Example.NET.").replace(
        "rname: hostmaster.example.net", "rname: dns-admin@Example.net"
    )
    zone = load_zone_file(write(tmp_path, "rep.yaml", text))
    assert zone.origin == "rep.example.net"
    assert zone.soa.rname == "dns-admin.example.net"
    dotted = write(tmp_path, "dot.yaml", text.replace("dns-admin@", "first.last@"))
    assert fields_of(dotted) == [(4, "soa.rname")]


def test_static_records(tmp_path: Path) -> None:
    """Values become presentation RDATA; long TXT is split into 255-byte strings."""
    long = "x" * 300
    path = write(
        tmp_path,
        "rep.yaml",
        MINIMAL
        + dedent(f"""\
        ttl: 120
        records:
          "@": {{TXT: 'say "hi" \\ there', MX: "0 ."}}
          mail: {{ttl: 60, A: 192.0.2.1, AAAA: "2001:DB8:0::1", MX: [10 MX.example.net.]}}
          alias.rep.example.net.: {{CNAME: www.example.net}}
          big: {{TXT: [{long}]}}
        """),
    )
    records = load_zone_file(path).records
    assert records == (
        StaticRecord("", "TXT", 120, '"say \\"hi\\" \\\\ there"'),
        StaticRecord("", "MX", 120, "0 ."),
        StaticRecord("mail", "A", 60, "192.0.2.1"),
        StaticRecord("mail", "AAAA", 60, "2001:db8::1"),
        StaticRecord("mail", "MX", 60, "10 mx.example.net."),
        StaticRecord("alias", "CNAME", 120, "www.example.net."),
        StaticRecord("big", "TXT", 120, f'"{"x" * 255}" "{"x" * 45}"'),
    )
    txt = dns.rdata.from_wire("IN", "TXT", records[-1].rdata(), 0, len(records[-1].rdata()))
    assert txt.to_text() == records[-1].value
    first = records[0].rdata()
    assert first[1:] == b'say "hi" \\ there'


def test_static_record_errors(tmp_path: Path) -> None:
    """CNAME rules (RFC 1034 3.6.2), names outside the zone and bad values are reported."""
    path = write(
        tmp_path,
        "rep.yaml",
        MINIMAL
        + dedent("""\
        records:
          "@": {CNAME: a.example.net}
          www: {CNAME: [a.example.net, b.example.net], A: 192.0.2.1}
          other.example.org.: {A: 192.0.2.1}
          Mail: {AAAA: 192.0.2.1, TXT: "tab\\there", NS: ns.example.net}
          mail: {MX: "99999 mx.example.net"}
          empty: {}
        """),
    )
    assert problems_of(path) == [
        (8, 9, "records.@.CNAME", "CNAME not allowed at the apex"),
        (9, 9, "records.www.CNAME", "CNAME not allowed with other records"),
        (9, 16, "records.www.CNAME", "a name has at most one CNAME (RFC 2181 10.1)"),
        (
            10,
            3,
            "records.'other.example.org.'",
            "'other.example.org.' is outside the zone 'rep.example.net'",
        ),
        (11, 16, "records.Mail.AAAA", "expected an IPv6 address, got '192.0.2.1'"),
        (11, 32, "records.Mail.TXT", "TXT text must be printable ASCII"),
        (
            11,
            45,
            "records.Mail.NS",
            "not served: the apex NS records come from 'ns' and there are no delegations",
        ),
        (12, 3, "records.mail", f"the same name as {path}:11:3"),
        (13, 3, "records.empty", "no records"),
    ]


def test_owner_schemes(tmp_path: Path) -> None:
    """Hash settings belong to the hash scheme and are checked by listformat.names."""
    hashed = MINIMAL.replace("owner: ip\n", "owner:\n  scheme: hash\n  length: 32\n  aliases:\n")
    ok = load_zone_file(write(tmp_path, "ok.yaml", hashed + "    - {alg: md5, encoding: hex}\n"))
    assert ok.scheme.hash == HashScheme("blake2", "base32", 32)
    assert ok.scheme.aliases == (HashScheme("md5", "hex", None),)
    bad = write(
        tmp_path,
        "bad.yaml",
        hashed
        + "    - {alg: blake2, length: 32}\n"
        + "    - {encoding: base64}\n"
        + "    - {alg: md4, encoding: hex, size: 3}\n",
    )
    assert problems_of(bad) == [
        (10, 7, "owner.aliases[0]", "repeats a hash scheme already published"),
        (11, 7, "owner.aliases[1]", "encoding base64 is not usable as a DNS label ('+', '/', '=')"),
        (
            12,
            7,
            "owner.aliases[2]",
            "unknown hash algorithm 'md4' (one of blake2, sha1, sha256, sha384, sha512, md5)",
        ),
        (12, 33, "owner.aliases[2].size", "unknown field; expected alg, encoding, length"),
    ]
    whole = write(tmp_path, "whole.yaml", MINIMAL.replace("owner: ip", "owner: hash"))
    assert problems_of(whole) == [
        (
            6,
            8,
            "owner",
            "blake2/base32 gives 103 characters, over the 63 a DNS label holds: set length",
        )
    ]
    ip = write(tmp_path, "ip.yaml", MINIMAL.replace("owner: ip", "owner: {scheme: ip, alg: md5}"))
    assert problems_of(ip) == [(6, 21, "owner.alg", "only for scheme hash")]
    other = write(tmp_path, "o.yaml", MINIMAL.replace("owner: ip", "owner: {scheme: dns}"))
    assert problems_of(other) == [(6, 17, "owner.scheme", "expected ip, name or hash, got 'dns'")]


def test_answers_and_bands(tmp_path: Path) -> None:
    """Bands take min or max and a valid code; graded mode takes no bands."""
    custom = write(
        tmp_path,
        "ok.yaml",
        MINIMAL + "answers:\n  txt: false\n  bands: [{min: 0.5, code: 127.0.0.9}, "
        "{max: -0.5, code: 127.0.0.10}]\n",
    )
    zone = load_zone_file(custom)
    assert not zone.publish_txt and zone.publish_a
    assert zone.codes.code_for(0.6) == ipaddress.IPv4Address("127.0.0.9")
    assert zone.codes.code_for(-0.6) == ipaddress.IPv4Address("127.0.0.10")
    assert zone.codes.code_for(0.0) is None
    bad = write(
        tmp_path,
        "bad.yaml",
        MINIMAL
        + dedent("""\
        answers:
          a: false
          txt: false
          bands:
            - {min: 1.5, code: 127.0.0.2}
            - {min: 0.5, max: 0.6, code: 127.0.0.3}
            - {min: 0.1, code: 127.255.255.1}
            - {min: 0.2, code: 127.0.1.5}
        """),
    )
    assert problems_of(bad) == [
        (7, 1, "answers", "a and txt are both false: nothing to publish"),
        (11, 13, "answers.bands[0].min", "expected a number from -1 to 1, got '1.5'"),
        (12, 7, "answers.bands[1]", "set exactly one of min and max"),
        (
            13,
            24,
            "answers.bands[2].code",
            "return code 127.255.255.1 is in 127.255.255.0/24, reserved for errors",
        ),
        (14, 7, "answers.bands[3]", "band 127.0.1.5: 127.0.1.0/24 is reserved for graded codes"),
    ]
    graded = write(
        tmp_path,
        "g.yaml",
        MINIMAL + "answers: {graded: true, bands: [{min: 0, code: 127.0.0.2}]}\n",
    )
    assert problems_of(graded) == [
        (7, 32, "answers.bands", "graded mode derives codes from the score; it takes no bands")
    ]


def test_overrides_are_validated_against_the_scheme(tmp_path: Path) -> None:
    """IP zones take addresses and networks, name zones normalize names; duplicates clash."""
    ip = write(
        tmp_path,
        "ip.yaml",
        MINIMAL
        + dedent("""\
        overrides:
          listed:
            - 192.0.2.1
            - {token: "2001:db8::/32", code: 127.0.0.3, txt: {reason: manual, sc: 0.5, n: 3}}
            - {token: 198.51.100.300}
            - {token: 192.0.2.1/32}
          unlisted: [10.0.0.0/8, example.org]
        """),
    )
    assert problems_of(ip) == [
        (
            11,
            15,
            "overrides.listed[2].token",
            "'198.51.100.300' is not an IPv4 or IPv6 address or network",
        ),
        (12, 7, "overrides.listed[3]", f"token '192.0.2.1' already at {ip}:9:7"),
        (
            13,
            26,
            "overrides.unlisted[1]",
            "'example.org' is not an IPv4 or IPv6 address or network",
        ),
    ]
    named = MINIMAL.replace("owner: ip", "owner: name") + dedent(
        """\
        overrides:
          listed: [{token: Spam.Example., txt: {reason: "a b"}}, Bücher.example]
          unlisted: [spam.example]
        """
    )
    path = write(tmp_path, "name.yaml", named)
    assert problems_of(path) == [
        (9, 14, "overrides.unlisted[0]", f"token 'spam.example' already at {path}:8:12")
    ]
    zone = load_zone_file(write(tmp_path, "ok.yaml", named.replace("[spam.example]", "[]")))
    assert zone.listed == (
        ListedOverride("spam.example", None, {"reason": "a b"}),
        ListedOverride("xn--bcher-kva.example", None, None),
    )
    good_ip = load_zone_file(
        write(tmp_path, "okip.yaml", ip.read_text().split("    - {token: 198")[0])
    )
    assert [o.token for o in good_ip.listed] == ["192.0.2.1", "2001:db8::/32"]
    assert good_ip.listed[1].txt == {"reason": "manual", "sc": 0.5, "n": 3}


def test_source_is_read_into_frozen_settings(tmp_path: Path) -> None:
    """The publisher's section is validated with the rest of the file, defaults filled in."""
    text = MINIMAL + "source:\n  redis: [redis://a, redis://b]\n  prefix: 'RR:'\n"
    zone = load_zone_file(write(tmp_path, "rep.yaml", text))
    assert zone.source == SourceSettings(
        urls=("redis://a", "redis://b"), prefix="RR:", buckets=DEFAULT_BUCKETS
    )
    with pytest.raises(dataclasses.FrozenInstanceError):
        zone.source.prefix = "x"  # type: ignore[misc]


# ------------------------------------------------------------------ a directory


def test_zones_load_sorted_and_ignore_other_files(tmp_path: Path) -> None:
    """*.yaml and *.yml are zones, in name order; other and hidden files are not."""
    write(tmp_path, "b.yml", MINIMAL.replace("rep.example.net", "b.example.net"))
    write(tmp_path, "a.yaml", MINIMAL.replace("rep.example.net", "a.example.net"))
    write(tmp_path, "notes.txt", "not a zone")
    write(tmp_path, ".#a.yaml", "editor lock file")
    assert [z.origin for z in load_zones(tmp_path)] == ["a.example.net", "b.example.net"]


def test_no_zone_files(tmp_path: Path) -> None:
    """An empty directory is an error: a server with nothing to serve is a mistake."""
    with pytest.raises(ConfigError) as info:
        load_zones(tmp_path)
    assert str(info.value) == f"{tmp_path}: no zone files (*.yaml, *.yml)"
    with pytest.raises(ConfigError):
        load_zones(tmp_path / "absent")


def test_duplicate_nested_and_shared_zones_across_files(tmp_path: Path) -> None:
    """Zones may not repeat, nest or share a store; the later file names the earlier one."""
    write(tmp_path, "a.yaml", MINIMAL)
    write(tmp_path, "b.yaml", MINIMAL.replace("zone: rep.example.net", "zone: REP.example.net."))
    write(tmp_path, "c.yaml", "# inner\n" + MINIMAL.replace("zone: rep", "zone: sub.rep"))
    write(tmp_path, "d.yaml", MINIMAL.replace("zone: rep.example.net", "zone: example.net"))
    write(tmp_path, "e.yaml", MINIMAL.replace("rep.", "other.") + "store: ../var/rep.example.net\n")
    with pytest.raises(ConfigError) as info:
        load_zones(tmp_path)
    a = tmp_path / "a.yaml"
    store = (tmp_path.parent / "var" / "rep.example.net").resolve()
    assert [(p.file.name, p.line, p.column, p.field, p.message) for p in info.value.problems] == [
        ("b.yaml", 1, 7, "zone", f"zone 'rep.example.net' is already defined at {a}:1:7"),
        (
            "c.yaml",
            2,
            7,
            "zone",
            f"zone lies inside zone 'rep.example.net' of {a}:1:7; zones may not nest",
        ),
        (
            "d.yaml",
            1,
            7,
            "zone",
            f"zone contains zone 'rep.example.net' of {a}:1:7; zones may not nest",
        ),
        ("e.yaml", 7, 8, "store", f"'{store}' is also the store of {a}:1:7"),
    ]


def test_problems_of_all_files_are_collected(tmp_path: Path) -> None:
    """One ConfigError lists the problems of every file, file by file."""
    write(tmp_path, "a.yaml", MINIMAL.replace("ns: [ns1.example.net]", "ns: []"))
    write(tmp_path, "b.yaml", MINIMAL.replace("rep.", "b.") + "ttl: x\n")
    write(tmp_path, "c.yaml", MINIMAL.replace("rep.", "c."))
    with pytest.raises(ConfigError) as info:
        load_zones(tmp_path)
    assert str(info.value).splitlines() == [
        f"{tmp_path / 'a.yaml'}:5:5: ns: at least one name server is required",
        f"{tmp_path / 'b.yaml'}:7:6: ttl: expected a non-negative integer, got 'x'",
    ]


# ------------------------------------------------------------------ robustness

EXAMPLE = (ZONES / "bl.example.net.yaml").read_text(encoding="utf-8")


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    edits=st.lists(
        st.tuples(
            st.integers(0, len(EXAMPLE)),
            st.integers(0, 8),
            st.text(
                alphabet=st.sampled_from(list(" \n\t:-[]{}\"'&*!#,.0@aZ1\\\u00e9")), max_size=4
            ),
        ),
        max_size=4,
    )
)
def test_mutated_files_give_problems_not_crashes(
    tmp_path: Path, edits: list[tuple[int, int, str]]
) -> None:
    """Any damage to a valid file loads or raises ConfigError with positioned problems."""
    text = EXAMPLE
    for at, cut, insert in edits:
        text = text[:at] + insert + text[at + cut :]
    path = tmp_path / "zones" / "fuzz.yaml"
    path.parent.mkdir(exist_ok=True)
    path.write_text(text, encoding="utf-8")
    try:
        load_zone_file(path)
    except ConfigError as exc:
        assert exc.problems
        assert all(p.file == path and p.line >= 0 and p.column >= 0 for p in exc.problems)


# ------------------------------------------------------------------ widest prefix


def test_widest_prefix_defaults_and_bounds(tmp_path: Path) -> None:
    """Defaults /8 and /16; a wider override is refused at its line; /0 never passes."""
    from zoned.config import NetworkTooWide, WidestPrefix

    assert load_zone_file(write(tmp_path, "a.yaml", MINIMAL)).widest_prefix == WidestPrefix(8, 16)
    path = write(tmp_path, "b.yaml", MINIMAL + dedent("""\
        overrides:
          listed: [10.0.0.0/8, 10.0.0.0/7, "2001:db8::/16", "2001::/15"]
          unlisted: [0.0.0.0/0, "::/0"]
        """))
    assert [(line, field) for line, _, field, _ in problems_of(path)] == [
        (8, "overrides.listed[1]"),
        (8, "overrides.listed[3]"),
        (9, "overrides.unlisted[0]"),
        (9, "overrides.unlisted[1]"),
    ]
    assert "widest_prefix.v4: /8" in problems_of(path)[0][3]
    path = write(tmp_path, "c.yaml", MINIMAL + dedent("""\
        widest_prefix: {v4: 1, v6: 128}
        overrides:
          listed: [128.0.0.0/1, "2001:db8::1/128"]
          unlisted: [0.0.0.0/0]
        """))
    assert fields_of(path) == [(10, "overrides.unlisted[0]")]
    zone = load_zone_file(write(tmp_path, "d.yaml", MINIMAL + "widest_prefix: {v4: 24}\n"))
    assert zone.widest_prefix == WidestPrefix(24, 16)
    assert zone.widest_prefix.allows(ipaddress.ip_network("192.0.2.0/24"))
    with pytest.raises(NetworkTooWide):
        zone.widest_prefix.check(ipaddress.ip_network("192.0.0.0/23"))
    path = write(tmp_path, "e.yaml", MINIMAL + dedent("""\
        widest_prefix: {v4: 0, v6: 129, v5: 3}
        """))
    assert fields_of(path) == [
        (7, "widest_prefix.v4"), (7, "widest_prefix.v6"), (7, "widest_prefix.v5")]


# ------------------------------------------------------------------ one reader of source:

SOURCE = MINIMAL + "source:\n  redis: redis://127.0.0.1:6379/0\n"


@pytest.mark.parametrize(
    ("line", "field", "message"),
    [
        ("  layout: bogus\n", "source.layout", "expected one of rspamd, counters, buckets"),
        ("  max_delete: 2\n", "source.max_delete", "expected a number from 0 to 1"),
        ("  min_count: -1\n", "source.min_count", "expected a non-negative integer"),
        ("  reject_score: 1e999\n", "source.reject_score", "expected a number from 0.001"),
        ("  reject_score: 1.0e+999\n", "source.reject_score", "expected a number from 0.001"),
        ("  reject_score: .nan\n", "source.reject_score", "expected a number from 0.001"),
        ("  selector: ipv4\n", "source.selector", "expected one of ip, asn"),
        ("  buckets: []\n", "source.buckets", "at least one bucket is required"),
        ("  buckets: [{name: a, window: 1}, {name: a, window: 2}]\n", "source.buckets[1].name",
         "bucket 'a' is listed twice"),
        ("  cluster: true\n  redis: [redis://a, redis://b]\n", "source.redis",
         "a cluster source takes one URL"),
    ],
)
def test_zoned_t_refuses_what_zonepub_refuses(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], line: str, field: str, message: str
) -> None:
    """zoned -t and zonepub read source: with one reader: both refuse, at file:line: field."""
    from publisher.cli import main as zonepub
    from zoned.cli import main as zoned

    text = SOURCE + line
    if "redis: [" in line:
        text = text.replace("  redis: redis://127.0.0.1:6379/0\n", "")
    path = write(tmp_path, "rep.yaml", text)
    assert zoned(["-t", "-c", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert f"{path}:9:" in err, err
    assert f": {field}: {message}" in err, err
    # zonepub, even with --redis given, refuses the file before it connects anywhere.
    assert zonepub(["-c", str(tmp_path), "sync", "--once", "--redis", "redis://127.0.0.1:1/0"]) == 1
    assert f": {field}: {message}" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("buckets", "where"),
    [
        ("[]", "source.buckets"),
        ("[{name: 1 h, window: 1}]", "source.buckets[0].name"),
        ("[{name: a, window: 0}]", "source.buckets[0].window"),
        ("[{name: a, window: 1}, {name: a, window: 2}]", "source.buckets[1].name"),
        ("[{name: a, window: 1, mult: -1}]", "source.buckets[0].mult"),
        ("[{name: a, window: 1, extra: 1}]", "source.buckets[0]"),
    ],
)
def test_bucket_specs(tmp_path: Path, buckets: str, where: str) -> None:
    """The buckets list is read by the one reader of source: into Bucket values, each
    mistake named by its item and field (moved here from test_layouts' second reader)."""
    text = SOURCE + "  layout: buckets\n  buckets: "
    good = load_zone_file(write(tmp_path / "ok", "rep.yaml", text + (
        "[{name: 1h, window: 3600, mult: 1.5}, {name: 1d, window: 86400}]\n")))
    assert good.source is not None
    assert good.source.buckets == (Bucket("1h", 3600, 1.5), Bucket("1d", 86400, 1.0))
    fields = [field for _, field in fields_of(write(tmp_path, "rep.yaml", text + buckets + "\n"))]
    assert fields and all(field.startswith(where) for field in fields), fields


@pytest.mark.parametrize(
    "url", ["127.0.0.1:6379", "http://127.0.0.1/", "redis://host:99999/0", "redis://h/db",
            "unix://", "redis://", ""],
)
def test_redis_urls_are_checked_even_when_overridden(tmp_path: Path, url: str) -> None:
    """A URL redis-py cannot open is refused at its line, --redis or not."""
    path = write(tmp_path, "rep.yaml", SOURCE.replace("redis://127.0.0.1:6379/0", repr(url)))
    assert fields_of(path) == [(8, "source.redis")]
    good = load_zone_file(write(tmp_path / "ok", "rep.yaml", SOURCE))
    from publisher.settings import source_settings

    with pytest.raises(ConfigError, match="--redis"):
        source_settings(good, url)
    settings = source_settings(good, "rediss://:pw@127.0.0.1:6380/2?protocol=3")
    assert settings is not None and settings.urls == ("rediss://:pw@127.0.0.1:6380/2?protocol=3",)


def test_exclude_files_are_named_with_the_zone_files_line(tmp_path: Path) -> None:
    """A missing or bad exclude file is reported at the zone file's line, naming the file."""
    (tmp_path / "ok.map").write_text("# relays\n192.0.2.0/28 ours\n2001:db8::/32\n")
    (tmp_path / "bad.map").write_text("192.0.2.1\nnot-an-ip\n0.0.0.0/0\n")
    (tmp_path / "latin1.map").write_bytes(b"192.0.2.1\n\xe9\n")
    path = write(tmp_path, "rep.yaml", SOURCE + dedent("""\
        widest_prefix: {v4: 16}
        """).replace("widest", "  exclude: [ok.map, missing.map, bad.map, latin1.map]\nwidest"))
    problems = problems_of(path)
    assert [(line, field) for line, _, field, _ in problems] == [
        (9, "source.exclude[1]"), (9, "source.exclude[2]"), (9, "source.exclude[2]"),
        (9, "source.exclude[3]"),
    ]
    messages = [m for *_, m in problems]
    assert messages[0] == (
        f"cannot read exclude file {tmp_path / 'missing.map'}: No such file or directory"
    )
    assert messages[1].startswith(f"exclude file {tmp_path / 'bad.map'}:2: ")
    assert messages[2].startswith(f"exclude file {tmp_path / 'bad.map'}:3: network 0.0.0.0/0 is")
    assert messages[3] == f"exclude file {tmp_path / 'latin1.map'}:2: not valid UTF-8"
    ok = write(tmp_path, "rep.yaml", SOURCE + "  exclude: ok.map\n  selector: dkim\n")
    source = load_zone_file(ok).source
    assert source is not None and source.exclude == (tmp_path / "ok.map",)
    (tmp_path / "dir.map").mkdir()
    write(tmp_path, "rep.yaml", SOURCE + "  exclude: [dir.map, /dev/zero]\n")
    assert [m for *_, m in problems_of(path)] == [
        f"cannot read exclude file {tmp_path / 'dir.map'}: Is a directory",
        "cannot read exclude file /dev/zero: not a regular file",
    ]


# ------------------------------------------------------------------ across files


def keyed(origin: str, name: str, secret: str, algorithm: str = "hmac-sha256") -> str:
    return MINIMAL.replace("rep.example.net", origin) + dedent(f"""\
        transfer: {{allow: [127.0.0.1], key: {name}}}
        keys:
          {name}: {{algorithm: {algorithm}, secret: {secret}}}
        """)


def test_one_tsig_key_name_is_one_key_across_files(tmp_path: Path) -> None:
    """Every file defining a key name with another secret or algorithm gets the error."""
    first, second = "c2VjcmV0LW9uZQ==", "c2VjcmV0LXR3bw=="
    a = write(tmp_path, "a.yaml", keyed("a.example.net", "xfr", first))
    b = write(tmp_path, "b.yaml", keyed("b.example.net", "XFR.", second))  # the same name
    c = write(tmp_path, "c.yaml", keyed("c.example.net", "xfr", first))
    d = write(tmp_path, "d.yaml", keyed("d.example.net", "xfr", first, "hmac-sha512"))
    with pytest.raises(ConfigError) as info:
        load_zones(tmp_path)
    found = [(p.file, p.line, p.column, p.field) for p in info.value.problems]
    assert found == [
        (a, 9, 3, "keys.xfr"), (b, 9, 3, "keys.'XFR.'"), (c, 9, 3, "keys.xfr"),
        (d, 9, 3, "keys.xfr"),
    ]
    message = info.value.problems[0].message
    assert message.startswith(f"TSIG key 'xfr' has another secret or algorithm at {b}:9:3")
    d.unlink()
    b.write_text(keyed("b.example.net", "XFR.", first))
    assert [z.transfer.key for z in load_zones(tmp_path) if z.transfer] == [
        TsigKey("xfr", "hmac-sha256", b"secret-one")] * 3


def test_zones_sharing_bucket_keys_agree_on_windows(tmp_path: Path) -> None:
    """Two buckets-layout zones on one server and prefix: one bucket name, one window."""
    def zone(origin: str, buckets: str, prefix: str = "RB:") -> str:
        return MINIMAL.replace("rep.example.net", origin) + dedent(f"""\
            source:
              redis: [redis://127.0.0.1:6379/0]
              layout: buckets
              prefix: "{prefix}"
              buckets: {buckets}
            """)
    a = write(tmp_path, "a.yaml", zone("a.example.net", "[{name: 1h, window: 3600}]"))
    b = write(tmp_path, "b.yaml", zone("b.example.net", "[{name: 1h, window: 7200, mult: 2}]"))
    write(tmp_path, "c.yaml", zone("c.example.net", "[{name: 1h, window: 60}]", "XB:"))
    write(tmp_path, "d.yaml", zone("d.example.net", "[{name: 1d, window: 86400}]"))
    with pytest.raises(ConfigError) as info:
        load_zones(tmp_path)
    assert [(p.file, p.line, p.field) for p in info.value.problems] == [
        (a, 11, "source.buckets"), (b, 11, "source.buckets")]
    assert "bucket '1h' has window 7200 in " in info.value.problems[0].message
    b.write_text(zone("b.example.net", "[{name: 1h, window: 3600, mult: 2}]"))
    assert len(load_zones(tmp_path)) == 4


def test_explicit_tags_that_cannot_hold_their_value(tmp_path: Path) -> None:
    """``!!int ""`` made PyYAML's constructor raise IndexError; now it is a wrong value."""
    path = write(tmp_path, "rep.yaml", MINIMAL + 'ttl: !!int ""\nns_ttl: !!float x\n')
    assert problems_of(path) == [
        (7, 6, "ttl", "expected a non-negative integer, got ''"),
        (8, 9, "ns_ttl", "expected a non-negative integer, got 'x'"),
    ]


@pytest.mark.parametrize(
    ("name", "message"),
    [("/dev/zero", "not a regular file"), ("~nobody-such-user/k", "home directory"),
     ("big.key", "larger than 65536 bytes"), ("latin1.key", "codec can't decode")],
)
def test_secret_files_that_cannot_be_secrets(tmp_path: Path, name: str, message: str) -> None:
    """A device, an unknown home, a huge or non-UTF-8 file: an error at secret_file."""
    (tmp_path / "big.key").write_bytes(b"A" * 70000)
    (tmp_path / "latin1.key").write_bytes(b"\xe9\n")
    path = write(tmp_path, "rep.yaml", keyed("rep.example.net", "k", "x").replace(
        "secret: x", f"secret_file: '{name}'"))
    problems = problems_of(path)
    assert [(line, field) for line, _, field, _ in problems] == [
        (7, "transfer.key"), (9, "keys.k.secret_file")]  # the key that could not be read
    assert message in problems[1][3], problems
