"""The plugin's pure parts under ``rspamadm lua`` (Rspamd's own Lua and hash functions):
its labels equal Rspamd's hash vectors and our Python hashing; its TXT reader and score
equal the client's; ASN records read as Rspamd's asn module reads them."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from client.asn import AsnZones, parse_cymru, query_name
from listformat import txt
from listformat.hashing import HashScheme, hash_token
from listformat.scoring import rspamd_score
from tests.support.processes import tool
from tests.support.repo import REPO, SHARED

PLUGIN = REPO / "integrations" / "rspamd" / "repzone_reputation.lua"
VECTORS = SHARED / "vectors" / "rspamd-hash-vectors.json"
# Vector encoding -> our scheme's encoding name (rbase32 is the RFC form lowercased).
ENCODINGS = {"hex": "hex", "base32": "base32", "base32-rfc": "rbase32",
             "base32-bleach": "bleach"}
ALGS = ("blake2", "sha1", "sha256", "sha384", "sha512", "md5")


def run_lua(tmp_path: Path, body: str, data: object) -> object:
    """``body`` with ``M`` (the plugin's exports) and ``INPUT``; it returns a JSON value."""
    (tmp_path / "input.json").write_text(json.dumps(data))
    script = tmp_path / "run.lua"
    script.write_text(f"""
REPZONE_REPUTATION_EXPORT = true
local M = dofile({json.dumps(str(PLUGIN))})
local ucl = require "ucl"
local parser = ucl.parser()
assert(parser:parse_file({json.dumps(str(tmp_path / "input.json"))}))
local INPUT = parser:get_object()
local function main() {body} end
local f = io.open({json.dumps(str(tmp_path / "out.json"))}, "w")
f:write(ucl.to_format(main(), "json-compact"))
f:close()
""")
    subprocess.run([tool("rspamadm", "rspamd"), "lua", str(script)], check=True,
                   capture_output=True, timeout=60)
    return json.loads((tmp_path / "out.json").read_text())


def test_labels_equal_rspamds_vectors(tmp_path: Path) -> None:
    vectors = [v for v in json.loads(VECTORS.read_text())
               if v["alg"] in ALGS and v["encoding"] in ENCODINGS]
    assert len(vectors) > 400
    cases = [{"alg": v["alg"], "encoding": ENCODINGS[v["encoding"]], "input": v["input"]}
             for v in vectors]
    got = run_lua(tmp_path, """
  local out = {}
  for i, c in ipairs(INPUT) do
    out[i] = M.hash_label(c.input, {alg = c.alg, encoding = c.encoding})
  end
  return out""", cases)
    assert isinstance(got, list)
    for vector, case, label in zip(vectors, cases, got, strict=True):
        expected = vector["output"].lower() if case["encoding"] == "rbase32" else vector["output"]
        assert label == expected, vector
        scheme = HashScheme(case["alg"], case["encoding"], None)
        assert label == hash_token(case["input"], scheme), vector


def test_txt_and_score_equal_the_client(tmp_path: Path) -> None:
    records = ["v=1;n=12;sc=0.5;l=1700000000;v1m=17.25", "v=1;n=9;v1m=30",
               "v=1;n=10;v1m=-3.5;v1d=2.25;zz=unknown", "v=1;s=7;h=2;p=2", "v=1;sc=-0.42",
               "v=1;n=40;v1m=4.49805", "v=1;;n=11;v1m=1e1;"]
    got = run_lua(tmp_path, """
  local out = {}
  for i, text in ipairs(INPUT) do
    local fields = M.parse_txt(text)
    out[i] = string.format('%.17g', (M.score(fields, 10, 15)))
  end
  return out""", records)
    assert isinstance(got, list)
    for text, score in zip(records, got, strict=True):
        record = txt.decode(text)
        n = record.number("n")
        values = [float(v) for k, v in sorted(record.fields.items())
                  if k.startswith("v") and isinstance(v, int | float)]
        if n is not None and values:
            expected = rspamd_score(n, values)
        elif "s" in record.fields:
            expected = (7 - 2 + 1) / 11
        else:
            expected = -0.42
        assert abs(float(score) - expected) < 1e-12, text


def test_bad_txt_is_never_read(tmp_path: Path) -> None:
    bad = ["n=50;v1m=20", "hello", "v=2;n=50;v1m=20", "v=x;n=1", "v=1;n=1;n=2",
           "v=1;N=5", "v=1;n=50;v1m=20;pad=" + "x" * 300, "v=0;n=1", "v=1;novalue"]
    got = run_lua(tmp_path, """
  local out = {}
  for i, text in ipairs(INPUT) do
    local fields, status = M.parse_txt(text)
    out[i] = fields and 'read' or status
  end
  return out""", bad)
    assert got == ["malformed", "malformed", "newer_version", "malformed", "malformed",
                   "malformed", "malformed", "malformed", "malformed"]


def test_names_rspamd_would_not_ask(tmp_path: Path) -> None:
    names = ["a.b_c-d.example.net", "a:b.example.net", "x" * 64 + ".example.net",
             "a..example.net", "b\u00fccher.example.net", ("a" * 60 + ".") * 5 + "net"]
    got = run_lua(tmp_path, """
  local out = {}
  for i, name in ipairs(INPUT) do out[i] = (M.check_name(name)) end
  return out""", names)
    assert got == [True, False, False, False, False, False]


def test_cymru_records_as_rspamd_reads_them() -> None:
    info = parse_cymru("15169 | 8.8.8.0/24 | US | arin | 2023-12-28")
    assert info is not None and (info.asn, info.network, info.country) == (
        "15169", "8.8.8.0/24", "US")
    odd = parse_cymru("AS64500|192.0.2.0/24|DE")
    assert odd is not None and odd.asn is None and odd.country == "DE"
    assert parse_cymru(" | ") is None
    zones = AsnZones("Origin.ASN.example.net.", "origin6.asn.example.net")
    assert query_name(zones, "192.0.2.10") == "10.2.0.192.origin.asn.example.net"
    assert query_name(zones, "2001:db8::1") == (
        "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2."
        "origin6.asn.example.net")
    assert query_name(zones, "10.1.2.3") is None  # local: the asn module skips it
    assert query_name(AsnZones("origin.asn.example.net"), "2001:db8::1") is None
