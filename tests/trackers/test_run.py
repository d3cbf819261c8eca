"""trackers.run: the frame order of a run, and steps that carry the frame they tracked (issue 19.6)."""

from __future__ import annotations

import threading

import cv2
import numpy as np
import pytest

import trackers.run
from resources.demo_clip import render_sequence
from trackers.run import run_frames, track_frames, track_frames_multi
from trackers.sources import open_source
from trackers.types import Box, Frame, TrackResult

FRAMES = 20
SIZE = (64, 48)
BOX = Box(10, 10, 12, 12)


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    """An MJPG clip and what streaming decode gives for each of its frames."""
    frames, _ = render_sequence(n_frames=FRAMES, size=SIZE, seed=5)
    path = tmp_path_factory.mktemp("clip") / "clip.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 30, SIZE)
    for frame in frames:
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()
    with open_source(path) as source:
        decoded = list(source.iter_from(0))
    assert len(decoded) == FRAMES
    return path, decoded


class Still:
    """Stays on its box; remembers the frames it was given."""

    def __init__(self) -> None:
        self.frames: list[Frame] = []
        self.box = BOX

    def init(self, frame: Frame, box: Box) -> None:
        self.frames.append(frame)
        self.box = box

    def update(self, frame: Frame) -> TrackResult:
        self.frames.append(frame)
        return TrackResult(self.box, score=1.0)


def same(a: list[Frame], b: list[Frame]) -> bool:
    return len(a) == len(b) and all(np.array_equal(x, y) for x, y in zip(a, b))


@pytest.mark.parametrize("chunk_frames", [1000, 3])
def test_a_backward_run_over_a_video_sees_the_frames_in_reverse(clip, monkeypatch, chunk_frames):
    path, decoded = clip
    monkeypatch.setattr(trackers.run, "BACKWARD_CHUNK_BYTES", chunk_frames * SIZE[0] * SIZE[1] * 3)
    with open_source(path) as source:
        got = list(run_frames(source, 17, 2, -1))
    assert same(got, [decoded[i] for i in range(17, 2, -1)])


def test_forward_and_random_access_orders(clip):
    path, decoded = clip
    with open_source(path) as source:
        assert same(list(run_frames(source, 4, 11, +1)), decoded[4:11])
    # anything with frames[i] (a cache, a list) is indexed in the run's order
    assert same(list(run_frames(decoded, 6, -1, -1)), [decoded[i] for i in range(6, -1, -1)])


def test_a_cancelled_backward_read_stops(clip, monkeypatch):
    path, _ = clip
    monkeypatch.setattr(trackers.run, "BACKWARD_CHUNK_BYTES", 3 * SIZE[0] * SIZE[1] * 3)
    cancel = threading.Event()
    with open_source(path) as source:
        frames = run_frames(source, 19, -1, -1, cancel)
        first = [next(frames) for _ in range(2)]
        cancel.set()
        rest = list(frames)
    assert len(first) == 2 and len(first) + len(rest) < FRAMES


def test_every_step_carries_the_frame_the_tracker_got(clip):
    """The GUI shows the frame a step tracked without wrapping the frame iterator."""
    path, _ = clip
    tracker = Still()
    with open_source(path) as source:
        steps = list(track_frames(tracker, run_frames(source, 12, 0, -1), BOX))
    assert len(steps) == 12
    assert all(step.frame is frame for step, frame in zip(steps, tracker.frames))

    trackers_ = [Still(), Still()]
    multi = list(track_frames_multi(trackers_, clip[1][:5], [BOX, BOX]))
    assert [step.frame is frame for step, frame in zip(multi, clip[1][:5])] == [True] * 5
