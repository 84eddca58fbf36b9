"""Token records as JSON lines (``{"token": ..., counters...}``), ``zonepub import``'s format.

One JSON object per line: ``token`` is required; ``code`` (an A return code) is optional;
every other key is published as TXT data (``n``, ``s``, ``h``, ``p``, ``sc``, ``l``, bucket
values...).  Every problem is reported with its file and line, and nothing is written
while any line is bad.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Iterable
from pathlib import Path

from listformat.codes import CodeError, validate_code
from publisher.entries import RecordError, TokenRecord, record_entries
from zoned.config import ZoneConfig


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


def load_entries(config: ZoneConfig, paths: Iterable[Path]) -> dict[bytes, bytes]:
    """Entries of every record in the files; raises RecordError listing every bad line."""
    result: dict[bytes, bytes] = {}
    problems: list[str] = []
    for path in paths:
        result.update(record_entries(config, read_jsonl(path, problems), problems))
    if problems:
        raise RecordError("\n".join(problems))
    return result
