"""Copies of the example zones, and publishing records into them as an operator would."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path

from publisher.publish import publish as publish_records
from publisher.records import read_jsonl
from tests.support.repo import REPO, ZONES
from zoned.config import find_zone


def copy_zones(target: Path) -> Path:
    """The shipped example zone files under ``target/zones`` (stores go to ``target/var``)."""
    zones = target / "zones"
    zones.mkdir(parents=True)
    for path in ZONES.glob("*.yaml"):
        shutil.copy(path, zones / path.name)
    return zones


def publish(zones: Path, zone: str, records: Iterable[Mapping[str, object]], *,
            replace: bool = False) -> None:
    """Publish token records with the ``zonepub import`` command, as an operator would.

    It runs as its own process: the publisher and the server never share one, and LMDB
    allows one open environment per process.
    """
    data = zones.parent / f"import-{zone}.jsonl"
    data.write_text("".join(json.dumps(dict(r)) + "\n" for r in records))
    argv = ["-c", str(zones), "import", "--zone", zone, str(data)]
    if replace:
        argv.insert(3, "--replace")
    subprocess.run([sys.executable, "-m", "publisher.cli", *argv], cwd=REPO, check=True,
                   capture_output=True)


def publish_samples(zones: Path) -> None:
    """Publish the shipped demo samples into every example zone, with the library call.

    In this process: no store of the zones is open yet (unlike :func:`publish`'s callers).
    """
    for sample in sorted((ZONES / "samples").glob("*.jsonl")):
        config = find_zone(zones, sample.stem)
        assert config is not None, sample
        problems: list[str] = []
        records = read_jsonl(sample, problems)
        assert not problems, problems
        written = publish_records(config, records)
        assert written.applied
