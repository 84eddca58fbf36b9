"""Reading token records (``{"token": ..., counters...}``) and turning them into store entries.

One JSON object per line: ``token`` is required; ``code`` (an A return code) is optional;
every other key is published as TXT data (``n``, ``s``, ``h``, ``p``, ``sc``, ``l``, bucket
values...).  Every problem is reported with its file and line, and nothing is written
while any line is bad.
"""

from __future__ import annotations

import ipaddress
import json
import socket
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from listformat import names
from listformat.codes import CodeError, validate_code
from listformat.txt import TxtError
from publisher.errors import PublisherError
from publisher.plan import (
    DeleteGuard,
    Plan,
    apply,
    full_plan,
    partial_plan,
)
from publisher.settings import source_settings
from zoned import keys
from zoned.answers import token_answer
from zoned.config import NetworkTooWide, ZoneConfig
from zoned.store import Kind, ZoneStore
from zoned.wire import name_labels

Fields = Mapping[str, int | float | str]


class RecordError(PublisherError, ValueError):
    """A record cannot be published; the message names the file and line."""


@dataclass(frozen=True)
class TokenRecord:
    """What is known of one token: where it came from, its TXT fields, an optional code."""

    source: str  # "file:line" for messages
    token: str
    fields: Fields
    code: ipaddress.IPv4Address | None = None


def read_jsonl(path: Path, problems: list[str]) -> list[TokenRecord]:
    """Parse a JSON-lines file; bad lines are appended to ``problems`` as ``file:line: why``."""
    records: list[TokenRecord] = []
    with path.open("rb") as stream:
        for lineno, raw in enumerate(stream, 1):
            where = f"{path}:{lineno}"
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                problems.append(f"{where}: not UTF-8 text (byte {exc.start + 1})")
                continue
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            try:
                records.append(parse_record(json.loads(line), where))
            except (ValueError, RecordError) as exc:
                problems.append(f"{where}: {str(exc)[:300]}")
    return records


def parse_record(obj: object, where: str) -> TokenRecord:
    """Validate one decoded JSON object."""
    if not isinstance(obj, dict):
        raise RecordError("expected a JSON object")
    token = obj.get("token")
    if not isinstance(token, str) or not token:
        raise RecordError("'token' must be a non-empty string")
    code = None
    if "code" in obj:
        try:
            code = ipaddress.IPv4Address(obj["code"])
            validate_code(code)
        except (ValueError, CodeError) as exc:
            raise RecordError(f"'code': {exc}") from exc
    fields: dict[str, int | float | str] = {}
    for key, value in obj.items():
        if key in ("token", "code"):
            continue
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            raise RecordError(f"{key!r}: expected a number or a string, got {value!r}")
        fields[key] = value
    return TokenRecord(where, token, fields, code)


def owner_keys(config: ZoneConfig, token: str) -> list[bytes]:
    """Store keys a token is published under: its network, or one name per hash scheme.

    Raises OwnerNameError, and nothing else, when the token cannot be a name under the
    zone's scheme: text that is not UTF-8 (lone surrogates), an address with a NUL, a
    network wider than the zone's ``widest_prefix`` (never /0).
    """
    if not token.isascii():
        try:
            token.encode("utf-8")
        except UnicodeEncodeError:
            raise names.OwnerNameError(f"{token[:80]!r} is not UTF-8 text") from None
    if config.scheme.kind == "ip":
        if ":" not in token and "/" not in token:
            try:  # a single IPv4 address, the common token, without ipaddress objects
                packed = socket.inet_pton(socket.AF_INET, token)
                if socket.inet_ntop(socket.AF_INET, packed) == token:
                    return [keys.net_key_from(packed, 32)]
            except (OSError, ValueError):  # ValueError: an embedded NUL
                pass
        network = names.parse_network(token)
        try:
            config.widest_prefix.check(network)
        except NetworkTooWide as exc:
            raise names.OwnerNameError(str(exc)) from None
        return [keys.net_key(network)]
    return [
        keys.name_key([label.lower() for label in name_labels(owner)])
        for owner in names.owner_names(config.scheme, token)
    ]


def entries(config: ZoneConfig, record: TokenRecord) -> list[tuple[bytes, bytes]]:
    """Store (key, packed answer) pairs for one record: one per owner name or network."""
    try:
        answer = token_answer(config, record.fields, record.code)
    except TxtError as exc:
        raise RecordError(f"{record.source}: {exc}") from exc
    if answer is None:
        return []
    try:
        return [(key, answer) for key in owner_keys(config, record.token)]
    except names.OwnerNameError as exc:
        raise RecordError(f"{record.source}: token {record.token!r}: {exc}") from exc


def load_entries(config: ZoneConfig, paths: Iterable[Path]) -> dict[bytes, bytes]:
    """Entries of every record in the files; raises RecordError listing every bad line."""
    result: dict[bytes, bytes] = {}
    problems: list[str] = []
    for path in paths:
        for record in read_jsonl(path, problems):
            try:
                result.update(entries(config, record))
            except RecordError as exc:
                problems.append(str(exc))
    if problems:
        raise RecordError("\n".join(problems))
    return result


@dataclass(frozen=True)
class Written:
    """What writing entries did: the plan, and the serials before and after it."""

    plan: Plan
    serial_before: int
    serial_after: int
    applied: bool  # False for a dry run (and serial_after == serial_before)


def zone_guard(config: ZoneConfig) -> DeleteGuard:
    """The delete guard of a zone: its ``source:`` limits, else the defaults."""
    settings = source_settings(config)
    if settings is None:
        return DeleteGuard()
    return DeleteGuard(settings.max_delete, settings.max_delete_min)


def write_entries(
    config: ZoneConfig,
    entries: Mapping[bytes, bytes],
    *,
    replace: bool,
    guard: DeleteGuard | None = None,
    force: bool = False,
    dry_run: bool = False,
) -> Written:
    """Plan writing ``entries``, check the plan, commit it as one serial (``zonepub import``).

    ``replace`` deletes every key that ``entries`` does not hold; such a plan is checked
    against ``guard`` (default: :func:`zone_guard`) and raises PlanRefused, having
    written nothing, unless ``force``.  A dry run neither writes nor creates the store.
    """
    if guard is None:
        guard = zone_guard(config)
    if dry_run:
        kind: Kind = "ip" if config.scheme.kind == "ip" else "name"
        store = ZoneStore.open_readonly(config.store, kind=kind)
        if store is None:  # nothing published yet: the plan adds everything
            plan = Plan(0, 0, adds=dict(entries))
            plan.check(guard, force)
            return Written(plan, 0, 0, False)
    else:
        store = ZoneStore.for_zone(config)
    try:
        if replace:
            plan = full_plan(store, entries)
        else:
            plan = partial_plan(store, entries, store.count())
        plan.check(guard, force)
        if dry_run:
            return Written(plan, plan.serial, plan.serial, False)
        return Written(plan, plan.serial, apply(store, plan), True)
    finally:
        store.close()
