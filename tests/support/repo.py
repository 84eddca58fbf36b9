"""Where the repository, its example zones and the shared directory beside it are."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
ZONES = REPO / "zones"
SHARED = REPO.parent / "shared"
