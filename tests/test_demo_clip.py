"""The synthetic demo sequence (exact, deterministic, scaling, occluded) and its bundled files."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from resources import DEMO_GROUNDTRUTH, DEMO_VIDEO
from resources.demo_clip import (
    DEFAULT_FRAMES,
    DEFAULT_SIZE,
    SCALE_MAX,
    SCALE_MIN,
    _base_object_size,
    hidden_fraction,
    occluder_box,
    render_background,
    render_sequence,
)
from trackers.sources import open_source
from trackers.types import Box


@pytest.fixture(scope="module")
def sequence() -> tuple[list[np.ndarray], list[Box]]:
    return render_sequence()


def _box_mask(box: Box, size: tuple[int, int]) -> np.ndarray:
    mask = np.zeros((size[1], size[0]), bool)
    mask[int(box.y) : int(box.y + box.h), int(box.x) : int(box.x + box.w)] = True
    return mask


def test_frames_are_rgb_uint8() -> None:
    frames, boxes = render_sequence()
    assert len(frames) == len(boxes) == DEFAULT_FRAMES
    for frame in frames:
        assert frame.shape == (DEFAULT_SIZE[1], DEFAULT_SIZE[0], 3) and frame.dtype == np.uint8


def test_deterministic_for_a_seed() -> None:
    frames_a, boxes_a = render_sequence(30, (200, 120), seed=7)
    frames_b, boxes_b = render_sequence(30, (200, 120), seed=7)
    frames_c, boxes_c = render_sequence(30, (200, 120), seed=8)
    assert boxes_a == boxes_b == boxes_c  # the seed changes the look, not the path
    assert all(np.array_equal(a, b) for a, b in zip(frames_a, frames_b, strict=True))
    assert not np.array_equal(frames_a[0], frames_c[0])


def test_boxes_are_integer_and_inside_the_frame(sequence) -> None:
    _, boxes = sequence
    width, height = DEFAULT_SIZE
    for box in boxes:
        assert all(float(v).is_integer() for v in box.as_array())
        assert box.x >= 0 and box.y >= 0
        assert box.x + box.w <= width and box.y + box.h <= height


def test_boxes_are_exact(sequence) -> None:
    """Outside box and bar the frame is pure background; the box's outer ring is all object.

    Together these say the object's extent is the box, to the pixel, wherever the bar
    does not hide it.
    """
    frames, boxes = sequence
    background = render_background(DEFAULT_SIZE, seed=0)
    bar = _box_mask(occluder_box(DEFAULT_SIZE), DEFAULT_SIZE)
    checked_whole = 0
    for i, (frame, box) in enumerate(zip(frames, boxes, strict=True)):
        differs = np.any(frame != background, axis=2)
        inside = _box_mask(box, DEFAULT_SIZE)
        assert not np.any(differs & ~inside & ~bar), f"frame {i}: object pixels outside its box"
        x, y, w, h = (int(v) for v in box.as_array())
        ring = inside.copy()
        ring[y + 1 : y + h - 1, x + 1 : x + w - 1] = False
        assert np.all(differs[ring & ~bar]), f"frame {i}: box edge shows background"
        if not np.any(inside & bar):
            ys, xs = np.nonzero(differs & ~bar)
            found = Box.from_corners(xs.min(), ys.min(), xs.max() + 1, ys.max() + 1)
            assert found == box, f"frame {i}"
            checked_whole += 1
    assert checked_whole > DEFAULT_FRAMES // 2


def test_object_scales_up_and_down(sequence) -> None:
    _, boxes = sequence
    base_w, base_h = _base_object_size(DEFAULT_SIZE)
    widths = np.array([b.w for b in boxes])
    scales = widths / base_w
    assert scales.min() == pytest.approx(SCALE_MIN, abs=0.03)
    assert scales.max() == pytest.approx(SCALE_MAX, abs=0.03)
    steps = np.sign(np.diff(widths))
    steps = steps[steps != 0]
    turns = np.count_nonzero(np.diff(steps))
    assert turns >= 2  # it grows, shrinks and grows again (or the reverse)
    aspects = np.array([b.w / b.h for b in boxes])
    assert np.ptp(aspects) < 0.15  # scaling, not squashing


def test_object_passes_behind_the_bar(sequence) -> None:
    frames, boxes = sequence
    hidden = np.array([hidden_fraction(b, DEFAULT_SIZE) for b in boxes])
    mostly = np.flatnonzero(hidden >= 0.5)
    assert 8 <= len(mostly) <= 12
    assert np.all(np.diff(mostly) == 1)  # one passage, not flicker
    assert hidden.max() >= 0.95
    # The bar is drawn on top: its pixels are the same in every frame.
    bar = occluder_box(DEFAULT_SIZE)
    region = np.s_[int(bar.y) : int(bar.y + bar.h), int(bar.x) : int(bar.x + bar.w)]
    assert all(np.array_equal(f[region], frames[0][region]) for f in frames)
    # And the object really is hidden: hardly any of its pixels show in the worst frame.
    worst = int(np.argmax(hidden))
    background = render_background(DEFAULT_SIZE, seed=0)
    visible = np.any(frames[worst] != background, axis=2) & _box_mask(boxes[worst], DEFAULT_SIZE)
    visible[region] = False
    assert visible.sum() <= 0.05 * boxes[worst].w * boxes[worst].h


def test_object_is_textured(sequence) -> None:
    frames, boxes = sequence
    box = boxes[0]
    x, y, w, h = (int(v) for v in box.as_array())
    patch = frames[0][y + 2 : y + h - 2, x + 2 : x + w - 2]
    assert patch.reshape(-1, 3).std(axis=0).min() > 15  # not a flat square


def test_bundled_groundtruth_matches_the_generator(sequence) -> None:
    _, boxes = sequence
    lines = DEMO_GROUNDTRUTH.read_text(encoding="utf-8").splitlines()
    assert len(lines) == len(boxes)
    for line, box in zip(lines, boxes, strict=True):
        assert Box.from_one_based(*Box.parse(line).as_array()) == box


def test_bundled_video_decodes_to_the_same_clip(sequence) -> None:
    frames, _ = sequence
    assert DEMO_VIDEO.stat().st_size < 1_500_000
    with open_source(DEMO_VIDEO) as source:
        assert source.size == DEFAULT_SIZE
        assert source.fps == pytest.approx(30.0)
        assert len(source) == len(frames)
        for i in (0, 75, len(frames) - 1):
            # Lossy mp4v, so close rather than equal; another clip would score far lower.
            psnr = cv2.PSNR(np.ascontiguousarray(source[i]), np.ascontiguousarray(frames[i]))
            assert psnr > 25, f"frame {i}: PSNR {psnr:.1f}"


def test_the_object_has_no_border_that_looks_like_a_selection_box(sequence) -> None:
    """Issue 17 item 3: a dashed magenta and cyan rim was baked into the texture."""
    frames, boxes = sequence
    for i in (0, 40, 120):
        x, y, w, h = (int(v) for v in boxes[i].as_array())
        patch = frames[i][y : y + h, x : x + w].astype(np.int32)
        ring = np.concatenate([patch[0], patch[-1], patch[:, 0], patch[:, -1]])
        assert len(np.unique(ring, axis=0)) > 12  # the texture runs to the edge, not 2 dash colours
        inner = patch[2:-2, 2:-2].reshape(-1, 3)
        # the edge's colours are the texture's: its saturation is no outlier
        assert abs(np.ptp(ring, axis=1).mean() - np.ptp(inner, axis=1).mean()) < 60
