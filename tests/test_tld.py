"""client.tld: eTLD+1 as Rspamd's get_tld computes it, checked against Rspamd's own output."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from publicsuffixlist import PublicSuffixList

from client.tld import etld1, has_known_suffix

VECTORS = Path(__file__).resolve().parents[2] / "shared" / "vectors"
TLD_VECTORS: list[dict[str, str]] = json.loads(
    (VECTORS / "rspamd-tld-vectors.json").read_text(encoding="utf-8")
)

# Vectors where we deliberately return something other than Rspamd: input -> (ours, why).
# Empty: every vector is reproduced.  A deviation added later must be listed here and in
# the module docstring of client/tld.py.
DEVIATIONS: dict[str, tuple[str, str]] = {}

# Vectors where Rspamd departs from the plain PSL algorithm (the package's privatesuffix
# with keep_case); we follow Rspamd.  input -> (plain PSL answer, why Rspamd differs).
RSPAMD_QUIRKS: dict[str, tuple[str | None, str]] = {
    "1.2.3.4": ("3.4", "IP literals are returned as they are"),
    "192.0.2.1": ("2.1", "IP literals are returned as they are"),
    "2001:db8::1": (None, "IP literals are returned as they are"),
    "[::1]": (None, "IP literals are returned as they are"),
    "localhost": (None, "no rule matches: the input comes back"),
    "example": (None, "no rule matches: the input comes back"),
    "sub.example.com:8080": ("example.com:8080", "'com:8080' is no suffix: input back"),
    "": (None, "empty input comes back"),
    "example.com.": ("example.com", "the trailing dot is kept"),
    "www.example.co.uk.": ("example.co.uk", "the trailing dot is kept"),
    ".example.com": (None, "an empty label is a label, not an error"),
    "example..com": (None, "an empty label is a label: '' + '.com'"),
    "co.uk": (None, "a public suffix comes back whole"),
    "com": (None, "a public suffix comes back whole"),
    "github.io": (None, "a public suffix comes back whole"),
    "test.ck": (None, "a public suffix (by *.ck) comes back whole"),
    "www.city.kawasaki.jp": ("city.kawasaki.jp", "exception rules (!) are ignored"),
}


def _ids(vector: dict[str, str]) -> str:
    return repr(vector["input"])


@pytest.mark.parametrize("vector", TLD_VECTORS, ids=_ids)
def test_vector(vector: dict[str, str]) -> None:
    """Each Rspamd vector is reproduced, or deviates exactly as DEVIATIONS documents."""
    got = etld1(vector["input"])
    if vector["input"] in DEVIATIONS:
        assert got == DEVIATIONS[vector["input"]][0]
        assert got != vector["output"]
    else:
        assert got == vector["output"]


def test_vector_file_covers_the_cases_we_document() -> None:
    """Every documented quirk and deviation names a vector that exists in the file."""
    inputs = {v["input"] for v in TLD_VECTORS}
    assert len(TLD_VECTORS) == 43
    assert set(RSPAMD_QUIRKS) <= inputs
    assert set(DEVIATIONS) <= inputs


@pytest.mark.parametrize("host", sorted(RSPAMD_QUIRKS))
def test_rspamd_departs_from_plain_psl(host: str) -> None:
    """Where Rspamd's answer is not the plain PSL answer, the table says both, exactly."""
    plain = PublicSuffixList().privatesuffix(host, keep_case=True)
    assert plain == RSPAMD_QUIRKS[host][0]
    rspamd = next(v["output"] for v in TLD_VECTORS if v["input"] == host)
    assert plain != rspamd


def test_only_the_documented_vectors_depart_from_plain_psl() -> None:
    """Every other vector is what the plain PSL algorithm gives: no silent quirk."""
    psl = PublicSuffixList()
    for vector in TLD_VECTORS:
        if vector["input"] not in RSPAMD_QUIRKS:
            assert psl.privatesuffix(vector["input"], keep_case=True) == vector["output"]


def test_unknown_tld_keeps_every_label() -> None:
    """Without a default rule, an unknown TLD gives back the whole name, not two labels."""
    assert etld1("a.b.foo.unknowntld") == "a.b.foo.unknowntld"
    assert PublicSuffixList().privatesuffix("a.b.foo.unknowntld") == "foo.unknowntld"


def test_private_section_rules_apply() -> None:
    """Rules from the PSL's private section count, as in Rspamd's copy of the list."""
    assert etld1("x.y.z.s3.amazonaws.com") == "z.s3.amazonaws.com"
    assert etld1("foo.bar.blogspot.com") == "bar.blogspot.com"


def test_unicode_case_is_matched_and_kept() -> None:
    """Upper-case U-labels match their rule and come back in the case given."""
    assert etld1("WWW.ПРИМЕР.РФ") == "ПРИМЕР.РФ"


def test_known_suffix_needs_a_label_left_of_it() -> None:
    """A URL host needs a listed suffix after a dot; bare suffixes and names do not pass."""
    assert has_known_suffix("example.com")
    assert has_known_suffix("co.uk")
    assert has_known_suffix("example.com.")
    assert has_known_suffix("пример.рф")
    assert has_known_suffix("example.xn--p1ai")
    assert not has_known_suffix("com")
    assert not has_known_suffix("localhost")
    assert not has_known_suffix("foo.unknowntld")
    assert not has_known_suffix("")


_LABEL = st.text(alphabet="abcdefgxyz0123456789-", min_size=0, max_size=8)


@given(st.lists(_LABEL, min_size=1, max_size=6), st.sampled_from(["com", "co.uk", "jp", "zz"]))
def test_result_is_a_label_suffix_of_the_input(labels: list[str], tld: str) -> None:
    """The result is always the input or a whole-label suffix of it, never a new string."""
    host = ".".join([*labels, tld])
    got = etld1(host)
    assert host == got or host.endswith("." + got)


@given(st.lists(_LABEL.filter(bool), min_size=1, max_size=5))
def test_case_does_not_change_where_the_cut_is(labels: list[str]) -> None:
    """Upper-casing the input upper-cases the result and nothing else."""
    host = ".".join([*labels, "co.uk"])
    assert etld1(host.upper()) == etld1(host).upper()
