"""session_runner: forward and backward runs over a real (synthetic) video, cancel, rejoin, failure."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest

import trackers.run
from app.model.session import AnnotationSession, TrackerSettings
from app.model.session_runner import run_bidirectional, run_request
from tests.media import decoded_frames, write_clip
from trackers.registry import create_tracker
from trackers.trajectory import Entry, Origin, Trajectory
from trackers.types import Box, Frame, TrackResult

FRAMES = 24
SIZE = (96, 64)


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    """An MJPG clip and what streaming decode gives for each of its frames."""
    path = tmp_path_factory.mktemp("clip") / "clip.avi"
    write_clip(path, FRAMES, SIZE, seed=3)
    decoded = decoded_frames(path)
    assert len(decoded) == FRAMES
    return path, decoded


IDENTITY = TrackerSettings(tracker="identity")


def session_for(path: Path, settings: TrackerSettings = IDENTITY) -> AnnotationSession:
    return AnnotationSession(path, FRAMES, SIZE, "hash", settings=settings)


class Recorder:
    """Moves its box one pixel right per update and remembers every frame it was given."""

    def __init__(self, on_update=None) -> None:
        self.frames: list[Frame] = []
        self.box: Box | None = None
        self.on_update = on_update

    def init(self, frame: Frame, box: Box) -> None:
        self.frames.append(frame)
        self.box = box

    def update(self, frame: Frame) -> TrackResult:
        self.frames.append(frame)
        assert self.box is not None
        self.box = Box(self.box.x + 1, self.box.y, self.box.w, self.box.h)
        if self.on_update is not None:
            self.on_update(len(self.frames) - 1)
        return TrackResult(self.box, score=1.0 / len(self.frames))


def factory(tracker):
    def make(name, **kwargs):
        return tracker

    return make


BOX = Box(10, 10, 20, 16)


def test_forward_identity_run_fills_to_the_end(source, clip):
    s = session_for(clip[0])
    s.set_keyframe(3, BOX)
    request = s.begin_run(3)
    assert run_request(s, request, source, create_tracker) == "completed"
    assert s.current_run_id is None
    assert s.trajectory[3].origin is Origin.KEYFRAME
    assert all(s.trajectory[i] == Entry(BOX, Origin.TRACKED, 1.0) for i in range(4, FRAMES))
    assert all(s.trajectory[i] is None for i in range(3))
    s.undo()
    assert all(s.trajectory[i] is None for i in range(4, FRAMES))


@pytest.mark.parametrize("chunk_frames", [1000, 3])
def test_backward_run_sees_the_right_frames(source, clip, monkeypatch, chunk_frames):
    # A tiny chunk makes the backward reader of a video go through several chunks.
    monkeypatch.setattr(trackers.run, "BACKWARD_CHUNK_BYTES", chunk_frames * SIZE[0] * SIZE[1] * 3)
    s = session_for(clip[0])
    s.set_keyframe(2, BOX)
    s.set_keyframe(17, BOX)
    recorder = Recorder()
    request = s.begin_run(17, -1)
    assert run_request(s, request, source, factory(recorder)) == "completed"
    expected = list(range(17, 2, -1))
    assert len(recorder.frames) == len(expected)
    for frame, index in zip(recorder.frames, expected):
        assert np.array_equal(frame, clip[1][index])
    assert [s.trajectory[i].box.x for i in range(3, 17)] == [10 + 17 - i for i in range(3, 17)]
    assert s.trajectory[2].box == BOX


def test_backward_run_through_random_access(clip):
    """Anything with frames[i] works (a FrameCache, a list): indices go downwards."""
    s = session_for(clip[0])
    s.set_keyframe(5, BOX)
    recorder = Recorder()
    assert run_request(s, s.begin_run(5, -1), clip[1], factory(recorder)) == "completed"
    assert all(np.array_equal(f, clip[1][i]) for f, i in zip(recorder.frames, range(5, -1, -1)))
    assert s.trajectory[0].box.x == 15


def test_forward_run_with_max_frames_sees_the_right_frames(source, clip):
    s = session_for(clip[0], TrackerSettings(tracker="identity", max_frames=5))
    s.set_keyframe(7, BOX)
    recorder = Recorder()
    assert run_request(s, s.begin_run(7), source, factory(recorder)) == "completed"
    assert len(recorder.frames) == 6
    assert all(np.array_equal(f, clip[1][i]) for f, i in zip(recorder.frames, range(7, 13)))
    assert s.trajectory[12] is not None and s.trajectory[13] is None


def test_cancel_stops_within_one_frame_and_keeps_what_was_tracked(source, clip):
    cancel = threading.Event()

    def cancel_after(update: int) -> None:
        if update == 5:
            cancel.set()

    recorder = Recorder(on_update=cancel_after)
    s = session_for(clip[0])
    s.set_keyframe(0, BOX)
    assert run_request(s, s.begin_run(0), source, factory(recorder), cancel) == "cancelled"
    assert len(recorder.frames) == 6  # the keyframe and five updates: not one more
    assert [i for i, _ in s.trajectory.annotated()] == [0, 1, 2, 3, 4, 5]
    assert s.current_run_id is None
    s.undo()
    assert [i for i, _ in s.trajectory.annotated()] == [0]


def test_a_rejoining_run_ends_as_rejoined(source, clip):
    old = Trajectory.empty(FRAMES, SIZE).with_entries(
        {i: Entry(Box(10 + i, 10, 20, 16), Origin.TRACKED, 0.5) for i in range(1, FRAMES)}
    )
    s = AnnotationSession(clip[0], FRAMES, SIZE, "hash", old)
    s.set_keyframe(0, BOX)
    recorder = Recorder()  # moves exactly like the old track
    assert run_request(s, s.begin_run(0), source, factory(recorder)) == "rejoined"
    assert len(recorder.frames) == 4
    assert s.trajectory[10] == old[10]


def test_a_failing_tracker_ends_the_run_and_raises(source, clip):
    def boom(update: int) -> None:
        if update == 3:
            raise RuntimeError("tracker exploded")

    s = session_for(clip[0])
    s.set_keyframe(0, BOX)
    request = s.begin_run(0)
    with pytest.raises(RuntimeError, match="exploded"):
        run_request(s, request, source, factory(Recorder(on_update=boom)))
    assert s.current_run_id is None
    assert [i for i, _ in s.trajectory.annotated()] == [0, 1, 2]


def test_bidirectional_run_fuses_by_score(source, clip):
    s = session_for(clip[0])
    s.set_keyframe(4, BOX)
    s.set_keyframe(12, Box(50, 10, 20, 16))
    trackers = iter([Recorder(), Recorder()])

    def make(name, **kwargs):
        return next(trackers)

    assert run_bidirectional(s, 4, 12, source, make_tracker=make) == "completed"
    # Both score 1/k on their k-th frame: the nearer keyframe wins, forward on the tie (frame 8).
    xs = [s.trajectory[i].box.x for i in range(5, 12)]
    assert xs == [11, 12, 13, 14, 53, 52, 51]
    assert s.undo() and all(s.trajectory[i] is None for i in range(5, 12))


def test_a_failing_bidirectional_run_keeps_what_the_forward_half_got_as_the_app_does(source, clip):
    """Issue 19.6: one rule for the app and the runner (app.model.bidirectional). The app fused
    what both halves got after an error; the runner dropped it and went on to raise."""

    def boom(update: int) -> None:
        if update == 3:
            raise RuntimeError("tracker exploded")

    s = session_for(clip[0])
    s.set_keyframe(4, BOX)
    s.set_keyframe(12, Box(50, 10, 20, 16))
    with pytest.raises(RuntimeError, match="exploded"):
        run_bidirectional(s, 4, 12, source, make_tracker=factory(Recorder(on_update=boom)))
    assert [i for i, e in s.trajectory.annotated() if e.origin is Origin.TRACKED] == [5, 6]
    assert s.undo() and s.trajectory[5] is None  # one undo step


def test_the_backward_half_runs_only_after_a_forward_half_that_reached_every_frame(clip):
    """A forward half that ran out of frames (the video is shorter than the annotation) ends the
    two-way run, as in the app: the backward half would have been given the wrong frames."""
    s = AnnotationSession(clip[0], FRAMES + 10, SIZE, "hash", settings=IDENTITY)
    s.set_keyframe(FRAMES - 4, BOX)
    s.set_keyframe(FRAMES + 6, BOX)
    made: list[Recorder] = []

    def make(name, **kwargs):
        made.append(Recorder())
        return made[-1]

    with open_source(clip[0]) as source:
        assert run_bidirectional(s, FRAMES - 4, FRAMES + 6, source, make_tracker=make) == "cancelled"
    assert len(made) == 1  # no backward half
    tracked = [i for i, e in s.trajectory.annotated() if e.origin is Origin.TRACKED]
    assert tracked == list(range(FRAMES - 3, FRAMES))


def test_the_two_way_rule():
    from app.model.bidirectional import BidirectionalRun

    s = AnnotationSession(Path("clip.avi"), FRAMES, SIZE, "hash", settings=IDENTITY)
    s.set_keyframe(2, BOX)
    s.set_keyframe(9, Box(40, 10, 20, 16))
    run = BidirectionalRun.between(s, 2, 9)
    forward, backward = run.forward, run.backward
    assert (forward.start, forward.direction, backward.start, backward.direction) == (2, 1, 9, -1)
    assert run.owns(forward.run_id) and run.owns(backward.run_id) and not run.owns(backward.run_id + 1)
    assert run.next_after(forward.run_id, "completed") is backward
    for reason in ("cancelled", "failed"):
        assert run.next_after(forward.run_id, reason) is None
    assert run.next_after(backward.run_id, "completed") is None
    run.accept(forward.run_id, 3, TrackResult(Box(1, 1, 5, 5), 0.4))
    run.accept(backward.run_id, 3, TrackResult(Box(2, 2, 5, 5), 0.6))
    run.accept(forward.run_id, 4, TrackResult(Box(3, 3, 5, 5), 0.5))
    run.fuse(s)
    assert s.trajectory[3].box == Box(2, 2, 5, 5) and s.trajectory[4].box == Box(3, 3, 5, 5)


def test_a_two_way_run_lands_on_its_own_object_when_another_is_selected_meanwhile():
    from app.model.bidirectional import BidirectionalRun

    s = AnnotationSession(Path("clip.avi"), FRAMES, SIZE, "hash", settings=IDENTITY)
    s.set_keyframe(2, BOX)
    s.set_keyframe(9, Box(40, 10, 20, 16))
    first = s.object(None).id
    run = BidirectionalRun.between(s, 2, 9)
    other = s.add_object(box=(0, Box(5, 5, 10, 10)))  # selects the new object
    assert other != first and s.object(None).id == other
    run.accept(run.forward.run_id, 3, TrackResult(Box(1, 1, 5, 5), 0.4))
    run.fuse(s)
    assert s.object(first).trajectory[3].box == Box(1, 1, 5, 5)
    assert s.object(other).trajectory[3] is None or s.object(other).trajectory[3].box != Box(1, 1, 5, 5)


# --------------------------------------------------------------------------- several objects


def test_a_group_of_runs_shares_each_frame_and_keeps_each_object_in_bounds(source, clip):
    from app.model.session_runner import run_group

    s = session_for(clip[0])
    s.set_keyframe(2, BOX)
    b = s.add_object("car", box=(2, Box(50, 20, 10, 10)))
    s.set_keyframe(9, Box(60, 20, 10, 10), object_id=b)  # bounds object b's run
    c = s.add_object("dog")  # no keyframe on frame 2: no run
    recorders = [Recorder(), Recorder()]
    made = iter(recorders)
    requests = s.begin_runs(2, +1)
    assert [r.object_id for r in requests] == [1, b]
    reasons = run_group(s, requests, source, make_tracker=lambda name, **kw: next(made))
    assert set(reasons.values()) == {"completed"}
    assert len(recorders[0].frames) == FRAMES - 2 and len(recorders[1].frames) == 9 - 2
    # the same decoded frames reached both trackers
    assert all(x is y for x, y in zip(recorders[0].frames, recorders[1].frames))
    assert np.array_equal(recorders[0].frames[0], clip[1][2])
    assert s.trajectory_of(1)[FRAMES - 1].box == Box(10 + FRAMES - 3, 10, 20, 16)
    assert s.trajectory_of(b)[8].box == Box(56, 20, 10, 10)
    assert s.trajectory_of(b)[9].origin is Origin.KEYFRAME
    assert all(e is None for e in s.trajectory_of(c).entries)
    s.undo()  # the whole group is one step
    assert s.trajectory_of(1)[3] is None and s.trajectory_of(b)[3] is None
    assert s.trajectory_of(b)[9] is not None


def test_a_group_with_a_shared_siamfc_network_matches_its_one_object_runs(source, clip):
    from app.model.session_runner import run_group

    settings = TrackerSettings(tracker="siamfc-3s", device="cpu")

    def make(name, **kwargs):
        return create_tracker(name, device="cpu", config={"precision": "fp32"})

    s = session_for(clip[0], settings)
    s.set_keyframe(0, BOX)
    b = s.add_object(box=(0, Box(50, 20, 16, 16)))
    short = TrackerSettings(tracker="siamfc-3s", device="cpu", max_frames=5)
    requests = s.begin_runs(0, +1, settings=short)
    assert [r.stop for r in requests] == [6, 6]
    run_group(s, requests, source, make_tracker=make)
    for object_id in (1, b):
        alone = session_for(clip[0], settings)
        alone.set_keyframe(0, s.trajectory_of(object_id)[0].box)
        run_request(alone, alone.begin_run(0, settings=short), source, make)
        for i in range(1, 6):
            assert alone.trajectory[i].box == pytest.approx(s.trajectory_of(object_id)[i].box)
