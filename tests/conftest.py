"""Shared fixtures: zone directories with filled stores, and a free loopback port."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path

import pytest

from publisher.publish import publish as publish_records
from publisher.records import read_jsonl
from zoned.config import find_zone
from zoned.core import Responder
from zoned.service import build_authority
from zoned.zone import ReaderPool

pytest_plugins = ["tests.redis_server"]

REPO = Path(__file__).resolve().parents[1]
ZONES = REPO / "zones"
SHARED = REPO.parent / "shared"


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


@pytest.fixture
def zones(tmp_path: Path) -> Path:
    """Example zones with the demo samples published."""
    directory = copy_zones(tmp_path)
    publish_samples(directory)
    return directory


@pytest.fixture
def responder(zones: Path) -> Responder:
    return Responder(build_authority(zones, ReaderPool()))


def free_port() -> int:
    """A port free for both UDP and TCP on 127.0.0.1."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
            tcp.bind(("127.0.0.1", 0))
            port = int(tcp.getsockname()[1])
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
                try:
                    udp.bind(("127.0.0.1", port))
                except OSError:
                    continue
                return port
    raise RuntimeError("no free port")
