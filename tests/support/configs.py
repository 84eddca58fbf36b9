"""Zone files written by a test, and the problems their loader names."""

from __future__ import annotations

from pathlib import Path

import pytest

from zoned.config import ConfigError, load_zone_file

#: The smallest zone file that loads: everything else takes its default.
MINIMAL = """\
zone: rep.example.net
soa:
  mname: ns1.example.net
  rname: hostmaster.example.net
ns: [ns1.example.net]
owner: ip
"""


def write(directory: Path, name: str, text: str) -> Path:
    path = directory / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def problems_of(path: Path) -> list[tuple[int, int, str, str]]:
    with pytest.raises(ConfigError) as info:
        load_zone_file(path)
    assert all(p.file == path for p in info.value.problems)
    return [(p.line, p.column, p.field, p.message) for p in info.value.problems]

