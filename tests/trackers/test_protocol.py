"""Every registered tracker runs through the same protocol on a synthetic sequence."""

from __future__ import annotations

import math
import threading

import numpy as np
import pytest

from resources.demo_clip import render_sequence
from trackers import TRACKERS, Box, Tracker, TrackerError, TrackResult, create_tracker
from trackers.run import track_frames


@pytest.fixture(scope="module")
def sequence():
    frames, boxes = render_sequence(n_frames=8, size=(240, 160), seed=3)
    return frames, boxes


def test_registry_holds_the_promised_names():
    for name in (
        "siamfc",
        "siamfc-3s",
        "siamrpn",
        "dsiam",
        "dsiamm",
        "cv-mil",
        "cv-kcf",
        "cv-csrt",
        "cv-nano",
        "cv-vit",
    ):
        assert name in TRACKERS


def test_unknown_name_lists_the_known_ones():
    with pytest.raises(TrackerError, match="siamfc"):
        create_tracker("siamese-dream")


@pytest.mark.parametrize("name", sorted(TRACKERS))
def test_tracker_runs_through_the_protocol(name, sequence):
    frames, boxes = sequence
    try:
        tracker = create_tracker(name, device="cpu")
    except TrackerError as exc:
        if name in {"cv-nano", "cv-vit"}:
            pytest.skip(f"{name} model files not found: {exc}")
        raise
    assert isinstance(tracker, Tracker)
    assert tracker.name == name
    steps = list(track_frames(tracker, frames, boxes[0]))
    assert len(steps) == len(frames)
    assert steps[0].result.box == boxes[0]
    for step in steps:
        assert isinstance(step.result, TrackResult)
        assert step.result.box.is_finite()
        assert math.isfinite(step.result.score)
        assert step.seconds >= 0


def test_run_loop_stops_on_cancel(sequence):
    frames, boxes = sequence
    cancel = threading.Event()
    seen = []
    for step in track_frames(create_tracker("identity"), frames, boxes[0], cancel=cancel):
        seen.append(step.index)
        if step.index == 2:
            cancel.set()
    assert seen == [0, 1, 2]


def test_run_loop_rejects_an_empty_box(sequence):
    frames, _ = sequence
    with pytest.raises(ValueError):
        list(track_frames(create_tracker("identity"), frames, Box(1, 1, 0, 5)))


def test_identity_tracker_keeps_the_box():
    tracker = create_tracker("identity")
    frame = np.zeros((10, 10, 3), np.uint8)
    tracker.init(frame, Box(1, 2, 3, 4))
    assert tracker.update(frame).box == Box(1, 2, 3, 4)
