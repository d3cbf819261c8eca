"""tools/teacher_in_siamfc.py: SiamFC's tracking with NanoTrack's maps as its score maps."""

from __future__ import annotations

import numpy as np

from tests.tools import load_tool
from trackers.nanotrack import resample_to_grid
from trackers.types import Box


def frame_with_square(x: int, y: int) -> np.ndarray:
    rng = np.random.default_rng(0)
    frame = rng.integers(0, 60, (240, 320, 3), dtype=np.uint8)
    frame[y : y + 40, x : x + 40] = (230, 200, 40)
    frame.setflags(write=False)
    return frame


def test_the_score_maps_are_the_teachers_and_the_box_moves_toward_the_target():
    tool = load_tool("teacher_in_siamfc")
    tracker = tool.make("teacher-map-siamfc")
    tracker.init(frame_with_square(100, 80), Box(100, 80, 40, 40))
    moved = frame_with_square(108, 84)
    cfg = tracker.config
    _, images = tracker.search(moved)  # the crops update() will cut (no state changes)
    expected = np.stack([
        resample_to_grid(tracker.teacher.maps(tracker._teacher_exemplar, image).foreground,
                         cfg.score_size, cfg.total_stride)
        for image in images.float().numpy()
    ])
    result = tracker.update(moved)
    scores = tracker._teacher_scores.numpy()[:, 0]
    assert scores.shape == (len(tracker._scale_factors), cfg.score_size, cfg.score_size)
    np.testing.assert_allclose(scores, expected, atol=1e-6)
    assert np.all((scores >= 0) & (scores <= 1))
    # the square moved by (8, 4): the box moves right and down, though not exactly onto it:
    # NanoTrack's foreground is a plateau over the whole target, not a peak at its centre
    cx, cy = result.box.x + result.box.w / 2, result.box.y + result.box.h / 2
    assert cx > 120 and cy > 100
