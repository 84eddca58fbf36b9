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

from client import names
from client.codes import CodeError, validate_code
from client.txt import TxtError
from zoned import keys
from zoned.answers import token_answer
from zoned.config import ZoneConfig
from zoned.store import ZoneStore
from zoned.wire import name_labels

Fields = Mapping[str, int | float | str]


class RecordError(ValueError):
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
    with path.open(encoding="utf-8") as stream:
        for lineno, line in enumerate(stream, 1):
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            where = f"{path}:{lineno}"
            try:
                records.append(parse_record(json.loads(line), where))
            except (ValueError, RecordError) as exc:
                problems.append(f"{where}: {exc}")
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

    Raises OwnerNameError when the token cannot be a name under the zone's scheme.
    """
    if config.scheme.kind == "ip":
        if ":" not in token and "/" not in token:
            try:  # a single IPv4 address, the common token, without ipaddress objects
                packed = socket.inet_pton(socket.AF_INET, token)
                if socket.inet_ntop(socket.AF_INET, packed) == token:
                    return [keys.net_key_from(packed, 32)]
            except OSError:
                pass
        return [keys.net_key(names.parse_network(token))]
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


def write_entries(
    config: ZoneConfig, entries: Mapping[bytes, bytes], *, replace: bool
) -> tuple[int, int, int, int, int]:
    """Commit entries as one serial, as ``zonepub import`` does.

    Returns (added, changed, deleted, serial before, serial after); ``replace``
    deletes every key that ``entries`` does not hold.
    """
    store = ZoneStore.for_zone(config)
    try:
        stale = [key for key, _ in store.entries() if key not in entries] if replace else []
        added = changed = deleted = 0
        with store.transaction() as txn:
            before = txn.serial_before
            for key, value in entries.items():
                old = txn.get(key)
                if old != value:
                    txn.put(key, value)
                    added += old is None
                    changed += old is not None
            for key in stale:
                deleted += txn.delete(key)
        after = txn.serial_after
    finally:
        store.close()
    return added, changed, deleted, before, after
