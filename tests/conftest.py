"""Fixtures for every test: the shared synthetic clip.

The builders themselves (videos, clips with exact boxes, OTB folders) are plain
functions in ``tests/media.py``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.media import write_clip
from trackers.types import Box


@pytest.fixture(scope="session")
def synthetic_clip(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Box]]:
    """A 30-frame 160x120 MJPG clip of the demo generator, with its exact 0-based boxes."""
    path = tmp_path_factory.mktemp("clip") / "clip.avi"
    return path, write_clip(path)

