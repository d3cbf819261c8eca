"""The box convention, stated once in trackers/types.py, tested by round trips."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from trackers.evaluation.metrics import box_iou
from trackers.geometry import clamp_box, crop_square
from trackers.types import Box, as_frame

coords = st.floats(min_value=-1e4, max_value=1e4, allow_nan=False, allow_infinity=False)
sizes = st.floats(min_value=1e-3, max_value=1e4, allow_nan=False, allow_infinity=False)


def test_pixel_convention():
    # a box covering exactly pixels 10..19 starts at 10, is 10 wide, and is centred at 15.0
    box = Box(10, 20, 10, 4)
    assert box.center() == (15.0, 22.0)
    assert box.corners() == (10.0, 20.0, 20.0, 24.0)
    # OTB's 1-based first pixel is our pixel 0
    assert Box.from_one_based(1, 1, 5, 5) == Box(0, 0, 5, 5)


@given(coords, coords, sizes, sizes)
def test_round_trips(x, y, w, h):
    box = Box(x, y, w, h)
    assert _close(Box.from_one_based(*box.to_one_based()), box)
    assert _close(Box.from_center(*box.center(), box.w, box.h), box)
    assert _close(Box.from_corners(*box.corners()), box)
    assert _close(Box.parse(f"{x!r},{y!r},{w!r},{h!r}"), box)


def _close(a: Box, b: Box) -> bool:
    return all(math.isclose(p, q, rel_tol=1e-9, abs_tol=1e-6) for p, q in zip(a.as_array(), b.as_array()))


def test_parse_accepts_field_separators_and_rejects_garbage():
    assert Box.parse("1,2,3,4") == Box(1, 2, 3, 4)
    assert Box.parse("1\t2\t3\t4") == Box(1, 2, 3, 4)
    assert Box.parse("1 2 3 4") == Box(1, 2, 3, 4)
    for bad in ("1,2,3", "a,b,c,d", "1,2,3,4,5", ""):
        with pytest.raises(ValueError):
            Box.parse(bad)


def test_validity():
    assert Box(0, 0, 1, 1).is_valid()
    assert not Box(0, 0, 0, 1).is_valid()
    assert not Box(0, 0, -1, 1).is_valid()
    assert not Box(float("nan"), 0, 1, 1).is_valid()


def test_clipped_and_clamped():
    assert Box(-5, -5, 10, 10).clipped(100, 100) == Box(0, 0, 5, 5)
    assert Box(200, 200, 10, 10).clipped(100, 100).w == 0
    clamped = clamp_box(Box(500, -50, 20, 20), 100, 80)
    assert clamped.center() == (100.0, 0.0)


def test_iou():
    a = Box(0, 0, 10, 10)
    assert box_iou(a, a) == 1.0
    assert box_iou(a, Box(10, 0, 10, 10)) == 0.0  # touching edges share no pixel
    assert box_iou(a, Box(5, 0, 10, 10)) == pytest.approx(50 / 150)


def test_crop_square_is_exact_at_unit_scale():
    # a crop at scale 1 centred on a pixel grid point is a plain slice of the frame
    rng = np.random.default_rng(0)
    frame = rng.integers(0, 256, (50, 60, 3), dtype=np.uint8)
    crop = crop_square(frame, 30.0, 25.0, 20.0, 20, fill=(0, 0, 0))
    np.testing.assert_array_equal(crop, frame[15:35, 20:40])


def test_crop_square_fills_outside_with_given_colour():
    frame = np.zeros((10, 10, 3), np.uint8)
    crop = crop_square(frame, 0.0, 0.0, 10.0, 10, fill=(10, 20, 30))
    np.testing.assert_array_equal(crop[0, 0], [10, 20, 30])
    np.testing.assert_array_equal(crop[9, 9], [0, 0, 0])


def test_as_frame_checks_and_freezes():
    frame = as_frame(np.zeros((4, 5, 3), np.uint8))
    assert not frame.flags.writeable
    with pytest.raises(ValueError):
        as_frame(np.zeros((4, 5), np.uint8))
    with pytest.raises(ValueError):
        as_frame(np.zeros((4, 5, 3), np.float32))


def test_box_iou_follows_the_metric_rule():
    """One IoU: the scalar one is the metric's on one row; zero union and NaN give 0."""
    from trackers.evaluation.metrics import iou

    a, b = Box(0.3, 1.7, 10.1, 7.9), Box(2.2, 0.4, 9.3, 8.8)
    assert box_iou(a, b) == float(iou(a.as_array(), b.as_array())[0])
    assert box_iou(Box(5, 5, 0, 0), Box(5, 5, 0, 0)) == 0.0
    assert box_iou(Box(float("nan"), 0, 10, 10), Box(0, 0, 10, 10)) == 0.0
