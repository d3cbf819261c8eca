"""OpenCV trackers behind the Tracker protocol: conversion at the edges, model lookup, tracking."""

from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np
import pytest

from trackers.evaluation import iou
from trackers.opencv import (
    MODEL_DIR_ENV,
    OpenCVTracker,
    _to_cv_rect,
    resolve_model_dir,
)
from trackers.protocol import Tracker, TrackerError
from trackers.types import Box, TrackResult, as_frame

FRAME_W, FRAME_H = 320, 240
TARGET = 40
STEPS = 20
VELOCITY = (3.0, 2.0)


def _texture(rng: np.random.Generator, height: int, width: int, blur: int) -> np.ndarray:
    noise = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    return cv2.GaussianBlur(noise, (0, 0), blur)


def moving_square(seed: int = 0) -> tuple[list[np.ndarray], list[Box]]:
    """A textured square drifting a few px per frame over a differently textured background."""
    rng = np.random.default_rng(seed)
    background = _texture(rng, FRAME_H, FRAME_W, 3)
    # Coarse, high-contrast pattern: distinct from the fine background.
    target = cv2.resize(
        rng.integers(0, 256, (5, 5, 3), dtype=np.uint8),
        (TARGET, TARGET),
        interpolation=cv2.INTER_NEAREST,
    )
    frames, boxes = [], []
    for i in range(STEPS):
        x, y = 60 + round(VELOCITY[0] * i), 50 + round(VELOCITY[1] * i)
        frame = background.copy()
        frame[y : y + TARGET, x : x + TARGET] = target
        frames.append(as_frame(frame))
        boxes.append(Box(x, y, TARGET, TARGET))
    return frames, boxes


def red_on_blue() -> tuple[list[np.ndarray], list[Box]]:
    """A red, lightly textured square on a blue background, in RGB order."""
    rng = np.random.default_rng(1)
    frames, boxes = [], []
    for i in range(STEPS):
        frame = np.zeros((FRAME_H, FRAME_W, 3), dtype=np.uint8)
        frame[..., 2] = 200  # blue channel of RGB
        frame[..., :] += rng.integers(0, 20, (FRAME_H, FRAME_W, 3), dtype=np.uint8)
        x, y = 100 + 3 * i, 80 + 2 * i
        frame[y : y + TARGET, x : x + TARGET] = (220, 30, 30)
        frame[y + 10 : y + 20, x + 10 : x + 30] = (120, 0, 0)
        frames.append(as_frame(frame))
        boxes.append(Box(x, y, TARGET, TARGET))
    return frames, boxes


def _models_available(kind: str) -> str | None:
    """None when the ONNX files for ``kind`` are found, else the reason to skip."""
    try:
        OpenCVTracker(kind)
    except TrackerError as exc:
        return str(exc)
    return None


def _kind_params() -> list[object]:
    params: list[object] = ["mil", "kcf", "csrt"]
    for kind in ("nano", "vit"):
        reason = _models_available(kind)
        marks = [pytest.mark.skip(reason=f"cv-{kind} models not found: {reason}")] if reason else []
        params.append(pytest.param(kind, marks=marks))
    return params


def _run(tracker: OpenCVTracker, frames: list[np.ndarray], first: Box) -> list[TrackResult]:
    tracker.init(frames[0], first)
    return [tracker.update(frame) for frame in frames[1:]]


def _results_in_fresh_process(kind: str) -> list[TrackResult]:
    """MIL draws from OpenCV's process-wide random state, which no seed reaches: its result
    depends on every MIL run before it in the process. A fresh child makes it repeatable."""
    import pickle
    import subprocess
    import sys

    code = (
        "import pickle, sys\n"
        "from tests.trackers.test_opencv import OpenCVTracker, _run, moving_square\n"
        "frames, truth = moving_square()\n"
        f"results = _run(OpenCVTracker({kind!r}), frames, truth[0])\n"
        "sys.stdout.buffer.write(pickle.dumps(results))\n"
    )
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, check=True)
    return pickle.loads(done.stdout)


@pytest.mark.parametrize("kind", _kind_params())
def test_follows_a_moving_square(kind: str) -> None:
    frames, truth = moving_square()
    tracker = OpenCVTracker(kind)
    assert tracker.name == f"cv-{kind}"
    assert isinstance(tracker, Tracker)
    results = _results_in_fresh_process(kind) if kind == "mil" else _run(tracker, frames, truth[0])
    for result in results:
        assert result.box.is_finite()
        assert math.isfinite(result.score)
        assert 0.0 <= result.score <= 1.0
    final = iou(results[-1].box.as_array(), truth[-1].as_array())[0]
    assert final > 0.5, f"cv-{kind} ended at {results[-1].box} vs {truth[-1]} (IoU {final:.2f})"


def test_scores_one_without_a_confidence_of_its_own() -> None:
    frames, truth = moving_square()
    results = _run(OpenCVTracker("csrt"), frames, truth[0])
    assert {r.score for r in results} == {1.0}


def test_rgb_frames_are_converted() -> None:
    frames, truth = red_on_blue()
    tracker = OpenCVTracker("csrt")
    seen: list[np.ndarray] = []
    real_cv = tracker._cv

    class Spy:
        def init(self, image: np.ndarray, rect: tuple[int, int, int, int]) -> None:
            seen.append(image)
            real_cv.init(image, rect)

        def update(self, image: np.ndarray) -> tuple[bool, tuple[int, int, int, int]]:
            seen.append(image)
            return real_cv.update(image)

    tracker._cv = Spy()
    results = _run(tracker, frames, truth[0])
    # OpenCV got BGR: the blue background is in channel 0, the red target in channel 2.
    assert seen[0][0, 0, 0] >= 200 and seen[0][0, 0, 2] < 20
    assert tuple(seen[0][int(truth[0].y) + 1, int(truth[0].x) + 1]) == (30, 30, 220)
    assert all(r.box.is_valid() for r in results)
    assert iou(results[-1].box.as_array(), truth[-1].as_array())[0] > 0.5


def test_failure_keeps_the_previous_box_with_score_zero() -> None:
    frames, truth = moving_square()
    tracker = OpenCVTracker("mil")
    tracker.init(frames[0], truth[0])

    class Lost:
        def update(self, image: np.ndarray) -> tuple[bool, tuple[int, int, int, int]]:
            assert image.shape == frames[0].shape
            return False, (0, 0, 0, 0)

    tracker._cv = Lost()
    result = tracker.update(frames[1])
    assert result.box == truth[0]
    assert result.score == 0.0


def test_reinit_starts_afresh() -> None:
    frames, truth = moving_square()
    tracker = OpenCVTracker("kcf")
    _run(tracker, frames, truth[0])
    tracker.init(frames[0], Box(200, 150, 30, 30))
    assert tracker.update(frames[0]).box.is_valid()


def test_update_before_init() -> None:
    frames, _ = moving_square()
    with pytest.raises(TrackerError, match="before init"):
        OpenCVTracker("mil").update(frames[0])


@pytest.mark.parametrize(
    "box",
    [Box(10, 10, 0, 20), Box(10, 10, 20, -5), Box(float("nan"), 10, 20, 20), Box(400, 10, 20, 20)],
)
def test_invalid_box_raises_value_error(box: Box) -> None:
    frames, _ = moving_square()
    with pytest.raises(ValueError):
        OpenCVTracker("mil").init(frames[0], box)


def test_box_rounding_and_clipping() -> None:
    assert _to_cv_rect(Box(10.0, 20.0, 30.0, 40.0), 320, 240) == (10, 20, 30, 40)
    # Corners are rounded: [10.4, 30.6) -> pixels 10..30, [20.6, 25.4) -> 21..24.
    assert _to_cv_rect(Box(10.4, 20.6, 20.2, 4.8), 320, 240) == (10, 21, 21, 4)
    # Partly outside: clipped to the frame.
    assert _to_cv_rect(Box(-5.0, 230.0, 20.0, 20.0), 320, 240) == (0, 230, 15, 10)
    # Smaller than a pixel: still one pixel.
    assert _to_cv_rect(Box(5.1, 5.1, 0.2, 0.2), 320, 240) == (5, 5, 1, 1)


def test_unknown_kind() -> None:
    with pytest.raises(ValueError, match="goturn"):
        OpenCVTracker("goturn")


def test_missing_model_dir_names_the_file(tmp_path: Path) -> None:
    with pytest.raises(TrackerError) as info:
        OpenCVTracker("nano", model_dir=tmp_path)
    message = str(info.value)
    assert "nanotrack_backbone_sim.onnx" in message
    assert str(tmp_path) in message
    assert "--model-dir" in message and MODEL_DIR_ENV in message
    assert "\n" not in message

    with pytest.raises(TrackerError, match="vitTracker.onnx"):
        OpenCVTracker("vit", model_dir=tmp_path / "absent")


def test_model_dir_resolution_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(MODEL_DIR_ENV, str(tmp_path / "env"))
    assert resolve_model_dir(tmp_path / "explicit") == tmp_path / "explicit"
    assert resolve_model_dir(None) == tmp_path / "env"
    with pytest.raises(TrackerError, match="env"):
        OpenCVTracker("vit")
    monkeypatch.delenv(MODEL_DIR_ENV)
    # nothing given: the copies bundled with siamtrack
    assert resolve_model_dir(None).parts[-2:] == ("resources", "models")
    assert (resolve_model_dir(None) / "nanotrack-v2" / "nanotrack_head_sim.onnx").is_file()


def test_flat_model_folder(tmp_path: Path) -> None:
    default = resolve_model_dir(None)
    source = default / "vittrack" / "vitTracker.onnx"
    if not source.is_file():
        pytest.skip(f"vitTracker.onnx not found under {default}")
    # A link, not a copy: the layout is what is under test.
    (tmp_path / "vitTracker.onnx").symlink_to(source)
    frames, truth = moving_square()
    results = _run(OpenCVTracker("vit", model_dir=tmp_path), frames[:3], truth[0])
    assert all(r.box.is_finite() for r in results)


def test_contrib_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delattr(cv2, "TrackerCSRT")
    with pytest.raises(TrackerError, match="opencv-contrib"):
        OpenCVTracker("csrt")
