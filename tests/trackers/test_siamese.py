"""What the three Siamese trackers share through ``SiameseTracker`` (issue 19 item 3)."""

from __future__ import annotations

import numpy as np
import pytest

from trackers.registry import create_tracker
from trackers.siamese import SiameseTracker
from trackers.types import Box


@pytest.mark.parametrize("name", ["siamfc-3s", "siamrpn", "dsiam"])
def test_every_siamese_tracker_clamps_at_the_border_the_one_way(name, monkeypatch):
    """A box pushed past the frame comes back through ``SiameseTracker._keep_in_frame``:
    its centre inside the frame, its size within the frame."""
    calls = []
    keep = SiameseTracker._keep_in_frame

    def counted(self, min_size, max_size):
        calls.append(name)
        return keep(self, min_size, max_size)

    monkeypatch.setattr(SiameseTracker, "_keep_in_frame", counted)
    rng = np.random.default_rng(0)
    frame = rng.integers(0, 256, (96, 128, 3), dtype=np.uint8)
    tracker = create_tracker(name, device="cpu", config={"precision": "fp32"})
    tracker.init(frame, Box(100, 70, 40, 30))  # past the bottom-right corner
    tracker._center = np.array([500.0, -300.0])  # as if the target had run away
    box = tracker.update(frame).box
    assert calls == [name]
    cx, cy = box.center()
    assert 0.0 <= cx <= 128.0 and 0.0 <= cy <= 96.0
    assert 0.0 < box.w <= 128.0 and 0.0 < box.h <= 96.0


def test_the_clamp_keeps_size_and_centre_within_the_frame():
    tracker = SiameseTracker.__new__(SiameseTracker)
    tracker._frame_size = (100, 80)
    tracker._center = np.array([120.0, -5.0])
    tracker._target_size = np.array([300.0, 1.0])
    box = tracker._keep_in_frame(np.array([4.0, 4.0]), np.array([100.0, 80.0]))
    assert box == Box.from_center(100.0, 0.0, 100.0, 4.0)
    assert tracker._center.tolist() == [100.0, 0.0] and tracker._target_size.tolist() == [100.0, 4.0]
