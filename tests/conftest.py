"""The fixtures the tests share (the helpers they share are in :mod:`tests.support`)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.publishing import copy_zones, publish_samples
from zoned.core import Responder
from zoned.service import build_authority
from zoned.zone import ReaderPool

pytest_plugins = ["tests.support.redis_server"]


@pytest.fixture
def zones(tmp_path: Path) -> Path:
    """Example zones with the demo samples published."""
    directory = copy_zones(tmp_path)
    publish_samples(directory)
    return directory


@pytest.fixture
def responder(zones: Path) -> Responder:
    return Responder(build_authority(zones, ReaderPool()))
