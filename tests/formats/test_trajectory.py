"""The trajectory type: states per frame, immutability, arrays."""

from __future__ import annotations

import math

import numpy as np
import pytest

from trackers.trajectory import Entry, Origin, Trajectory
from trackers.types import Box

B = Box(10, 20, 30, 40)


def sample() -> Trajectory:
    # keyframe, tracked, absent, absent, unannotated, absent keyframe
    return Trajectory(
        (
            Entry(B, Origin.KEYFRAME),
            Entry(Box(11, 20, 30, 40), Origin.TRACKED, score=0.75, occluded=True),
            Entry(None, Origin.TRACKED, score=0.1),
            Entry(None),
            None,
            Entry(None, Origin.KEYFRAME),
        ),
        frame_size=(640, 360),
        label="car",
    )


def test_three_states_per_frame():
    t = sample()
    assert t.frame_count == len(t) == 6
    assert t[4] is None  # unannotated
    assert t[3] is not None and t[3].absent  # absent
    assert t[0] is not None and t[0].box == B and not t[0].absent


def test_keyframes_and_absent_spans():
    t = sample()
    assert t.keyframes() == [0, 5]
    assert t.absent_spans() == [(2, 4), (5, 6)]  # half-open; the unannotated frame breaks the run
    assert Trajectory.empty(3).absent_spans() == []


def test_to_arrays():
    arrays = sample().to_arrays()
    assert arrays.boxes.shape == (6, 4)
    assert arrays.boxes[1].tolist() == [11, 20, 30, 40]
    assert np.isnan(arrays.boxes[2:]).all()
    assert arrays.annotated.tolist() == [True, True, True, True, False, True]
    assert arrays.absent.tolist() == [False, False, True, True, False, True]
    assert arrays.occluded.tolist() == [False, True, False, False, False, False]
    assert arrays.scores[1] == 0.75 and arrays.scores[2] == 0.1 and np.isnan(arrays.scores[0])


def test_edits_return_new_trajectories():
    t = sample()
    edited = t.with_entry(4, Entry(B, Origin.KEYFRAME))
    assert t[4] is None and edited[4] == Entry(B, Origin.KEYFRAME)
    assert edited.entries[:4] == t.entries[:4]
    both = t.with_entries({0: None, 5: Entry(B)})
    assert both[0] is None and both[5] == Entry(B) and t[0] is not None
    assert t.with_frame_count(2).entries == t.entries[:2]
    assert t.with_frame_count(8).entries[6:] == (None, None)
    with pytest.raises(IndexError):
        t.with_entry(6, None)
    # equal and hashable, so undo stacks and caches can use them as values
    assert sample() == sample() and hash(sample()) == hash(sample())
    with pytest.raises(AttributeError):
        t.label = "x"  # type: ignore[misc]


def test_from_boxes_nan_rows_are_absent():
    t = Trajectory.from_boxes([[1, 2, 3, 4], [np.nan] * 4], scores=[0.5, None])
    assert t[0] == Entry(Box(1, 2, 3, 4), Origin.IMPORTED, 0.5)
    assert t[1] == Entry(None)
    arrays = t.to_arrays()
    assert arrays.boxes[0].tolist() == [1, 2, 3, 4] and np.isnan(arrays.boxes[1]).all()


def test_entry_checks():
    with pytest.raises(ValueError, match="finite"):
        Entry(Box(math.nan, 0, 1, 1))
    with pytest.raises(ValueError, match="negative"):
        Entry(Box(0, 0, -1, 1))
    with pytest.raises(ValueError, match="occluded"):
        Entry(None, occluded=True)
    with pytest.raises(TypeError):
        Entry(B, "keyframe")  # type: ignore[arg-type]
    assert Entry(B, score=math.nan).score is None  # a NaN score says nothing


def test_trajectory_checks():
    with pytest.raises(ValueError):
        Trajectory((), frame_size=(0, 10))
    with pytest.raises(ValueError):
        Trajectory((), label="  ")
    with pytest.raises(TypeError):
        Trajectory((B,))  # type: ignore[arg-type]
    assert repr(Trajectory.empty(100_000)).startswith("Trajectory(frames=100000, annotated=0")
