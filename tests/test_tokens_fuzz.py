"""Hypothesis against the publisher's token parsers: they raise their documented error only.

Every parser here reads text anyone can write into Redis or an imported file.  Whatever
it is given, it returns a result or raises the one error its callers count (TokenError,
OwnerNameError, RecordError, DatasetError, ValueError for redis_key); a network it
returns is never wider than the zone allows.  Bounded: a few hundred examples each.
"""

from __future__ import annotations

import ipaddress
import json
import tempfile
from collections.abc import Iterator
from pathlib import Path

import hiredis
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from listformat import names, tokens
from publisher.entries import RecordError, owner_keys
from publisher.judge import Publish, SourceToken, Stats
from publisher.rbldnsd import DATASET_KINDS, DatasetError, dataset_entries
from publisher.records import load_entries
from publisher.settings import source_settings
from publisher.sync import ZoneSync
from tests.support.publishing import copy_zones
from zoned import keys
from zoned.config import ZoneConfig, load_zone_file

pytestmark = pytest.mark.adversarial

FUZZ = settings(max_examples=300, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow])
ZONES = ("bl.example.net", "dom.example.net", "hash.example.net")

# Any text, lone surrogates (bytes that were not UTF-8) and control characters included.
ANY_TEXT = st.text(st.characters(codec=None, exclude_categories=()), max_size=60)
IP_LIKE = st.one_of(
    st.ip_addresses().map(str),
    st.builds(lambda a, n: f"{a}/{n}", st.ip_addresses(), st.integers(-1, 130)),
    st.builds(lambda a, junk: f"{a}{junk}", st.ip_addresses(), ANY_TEXT),
    st.from_regex(r"[0-9a-fA-F:.%/\x00]{1,45}", fullmatch=True),
)
TOKENS = st.one_of(ANY_TEXT, IP_LIKE)


def _raw(text: str) -> bytes:
    """Bytes as a file or Redis may hold them: lone surrogates become invalid UTF-8."""
    return text.encode("utf-8", "surrogatepass")


@pytest.fixture(scope="module")
def configs() -> Iterator[dict[str, ZoneConfig]]:
    with tempfile.TemporaryDirectory() as base:
        zones = copy_zones(Path(base))
        yield {zone: load_zone_file(zones / f"{zone}.yaml") for zone in ZONES}


@FUZZ
@given(st.sampled_from(tokens.SELECTORS), st.one_of(
    ANY_TEXT, IP_LIKE.map(lambda t: "i:" + t), ANY_TEXT.map(lambda t: "i:" + t)))
def test_token_of_returns_a_token_or_raises_token_error(selector: str, key: str) -> None:
    try:
        token = tokens.token_of(selector, key)
    except tokens.TokenError:
        return
    if token is None or selector != "ip":
        return
    network = ipaddress.ip_network(token)  # an address, or the /64 Rspamd writes
    assert network.prefixlen in (32, 64, 128), token
    assert token.encode("utf-8")


@FUZZ
@given(st.sampled_from(tokens.SELECTORS), TOKENS)
def test_redis_key_raises_only_value_error(selector: str, token: str) -> None:
    try:
        key = tokens.redis_key(selector, token)
    except ValueError:
        return
    assert tokens.token_of(selector, key) is not None


@FUZZ
@given(TOKENS)
def test_parse_network_raises_only_owner_name_error(token: str) -> None:
    try:
        names.parse_network(token)
    except names.OwnerNameError:
        pass


@FUZZ
@given(st.sampled_from(ZONES), TOKENS)
def test_owner_keys_raise_only_owner_name_error_and_stay_within_the_widest_prefix(
    configs: dict[str, ZoneConfig], zone: str, token: str
) -> None:
    config = configs[zone]
    try:
        found = owner_keys(config, token)
    except names.OwnerNameError:
        return
    assert found
    if config.scheme.kind == "ip":
        (key,) = found
        assert config.widest_prefix.allows(keys.key_network(key))


JSON_VALUES = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), ANY_TEXT),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(ANY_TEXT, inner, max_size=3),
    max_leaves=6,
)
RECORDS = st.one_of(
    st.fixed_dictionaries({"token": TOKENS}, optional={
        "n": JSON_VALUES, "sc": JSON_VALUES, "code": JSON_VALUES, "x": JSON_VALUES}),
    JSON_VALUES,
)


@FUZZ
@given(st.sampled_from(ZONES), st.lists(st.one_of(
    RECORDS.map(lambda r: json.dumps(r).encode()),
    st.binary(max_size=40)), min_size=1, max_size=5))
def test_json_lines_imports_raise_only_record_error(
    configs: dict[str, ZoneConfig], zone: str, lines: list[bytes]
) -> None:
    with tempfile.TemporaryDirectory() as base:
        path = Path(base) / "in.jsonl"
        path.write_bytes(b"\n".join(line.replace(b"\n", b" ") for line in lines) + b"\n")
        try:
            load_entries(configs[zone], [path])
        except RecordError as exc:
            assert str(exc)


@FUZZ
@given(st.sampled_from(ZONES), st.sampled_from(DATASET_KINDS), st.lists(st.one_of(
    st.binary(max_size=40), IP_LIKE.map(_raw), st.text(max_size=40).map(_raw),
    st.builds(lambda a, v: _raw(f"{a} {v}"), IP_LIKE, ANY_TEXT.map(repr))),
    min_size=1, max_size=6))
def test_rbldnsd_datasets_raise_only_dataset_error(
    configs: dict[str, ZoneConfig], zone: str, kind: str, lines: list[bytes]
) -> None:
    with tempfile.TemporaryDirectory() as base:
        path = Path(base) / "data"
        path.write_bytes(b"\n".join(line.replace(b"\n", b" ") for line in lines) + b"\n")
        try:
            entries, _, _ = dataset_entries(configs[zone], [path], kind)  # type: ignore[arg-type]
        except DatasetError:
            return
        config = configs[zone]
        if config.scheme.kind == "ip" and kind != "generic":
            for key in entries:
                assert config.widest_prefix.allows(keys.key_network(key))


# --------------------------------------------------------------------------- the sync


@pytest.fixture(scope="module")
def syncs() -> Iterator[dict[str, ZoneSync]]:
    """One ZoneSync per zone; judging keys needs no Redis connection."""
    with tempfile.TemporaryDirectory() as base:
        zones = copy_zones(Path(base))
        made = {}
        for zone in ZONES:
            config = load_zone_file(zones / f"{zone}.yaml")
            settings_ = source_settings(config, "redis://127.0.0.1:1/0")
            assert settings_ is not None
            made[zone] = ZoneSync(config, settings_)
        yield made
        for sync in made.values():
            sync.store.close()


KEYS = st.one_of(st.binary(max_size=50), IP_LIKE.map(lambda t: _raw("RR:i:" + t)),
                 st.binary(max_size=30).map(lambda b: b"RR:i:" + b),
                 st.binary(max_size=30).map(lambda b: b"RR:" + b))
FIELDS = st.dictionaries(
    st.one_of(st.sampled_from([b"n", b"l", b"v1m", b"v1h"]), st.binary(max_size=8)),
    st.one_of(st.from_regex(rb"-?[0-9]{1,20}(\.[0-9]{0,5})?(e-?[0-9]{1,3})?", fullmatch=True),
              st.binary(max_size=12)),
    max_size=5)


@FUZZ
@given(st.sampled_from(ZONES), KEYS, st.lists(FIELDS, max_size=2), st.booleans())
def test_the_sync_judges_any_key_without_raising(
    syncs: dict[str, ZoneSync], zone: str, key: bytes, hashes: list[dict[bytes, bytes]],
    wrong_type: bool,
) -> None:
    sync = syncs[zone]
    stats = Stats()
    raw = key[len(sync.judge.prefix):].decode("utf-8", "surrogateescape")
    outcome = sync.judge.evaluate(SourceToken(key, raw, hashes, wrong_type), stats)
    assert stats.keys == 1
    if isinstance(outcome, Publish) and sync.config.scheme.kind == "ip":
        for store_key, _ in outcome.entries:
            network = keys.key_network(store_key)
            assert network.prefixlen in (32, 64, 128)  # Redis tokens are never networks


REPLY_ERROR = hiredis.ReplyError("WRONGTYPE Operation against a key holding the wrong kind")
VALUES = st.one_of(st.just(REPLY_ERROR), st.lists(
    st.one_of(st.none(), st.binary(max_size=12),
              st.from_regex(rb"-?[0-9]{1,20}(\.[0-9]{0,3})?", fullmatch=True)),
    min_size=3, max_size=3))


@FUZZ
@given(st.sampled_from(ZONES), st.lists(st.tuples(KEYS, VALUES, st.one_of(
    st.integers(0, 6), st.just(REPLY_ERROR))), max_size=8))
def test_the_fast_path_judges_any_batch_without_raising(
    syncs: dict[str, ZoneSync], zone: str, batch: list[tuple[bytes, object, object]],
) -> None:
    sync = syncs[zone]
    if sync.fast is None:
        return
    desired: dict[bytes, bytes] = {}
    slow = sync.fast.judge([k for k, _, _ in batch], [v for _, v, _ in batch],
                           [n for _, _, n in batch], Stats(), desired)
    assert set(slow) <= {k for k, _, _ in batch}
    if sync.config.scheme.kind == "ip":
        assert all(keys.key_network(key).prefixlen == 32 for key in desired)
