"""AnnotationSession: edits, undo/redo, run bounds, stale runs, the rejoin rule, fusion, interpolation."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.model.session import AnnotationSession, ChangeEvent, TrackerSettings
from trackers.trajectory import Entry, Origin, Trajectory
from trackers.types import Box, TrackResult

N = 20


def make(trajectory: Trajectory | None = None, **kwargs) -> AnnotationSession:
    return AnnotationSession(Path("video.mp4"), N, (200, 100), "hash", trajectory, **kwargs)


def result(x: float, score: float = 0.9) -> TrackResult:
    return TrackResult(box=Box(x, 10, 20, 20), score=score)


def tracked(x: float, score: float = 0.5) -> Entry:
    return Entry(Box(x, 10, 20, 20), Origin.TRACKED, score)


def old_track() -> Trajectory:
    """Keyframe on 0, then an earlier run's boxes at x = 100 on every later frame."""
    traj = Trajectory.empty(N, (200, 100)).with_entry(0, Entry(Box(0, 10, 20, 20), Origin.KEYFRAME))
    return traj.with_entries({i: tracked(100) for i in range(1, N)})


# --------------------------------------------------------------------------- edits


def test_keyframe_edit_undo_redo():
    s = make()
    events: list[ChangeEvent] = []
    s.add_listener(events.append)
    assert not s.can_undo and not s.can_redo
    s.set_keyframe(4, Box(1, 2, 3, 4), occluded=True)
    assert s.trajectory[4] == Entry(Box(1, 2, 3, 4), Origin.KEYFRAME, None, True)
    assert events[-1] == ChangeEvent(range(4, 5), "keyframe")
    assert s.undo() and s.trajectory[4] is None
    assert events[-1].kind == "undo" and list(events[-1].frames) == [4]
    assert s.redo() and s.trajectory[4].box == Box(1, 2, 3, 4)
    assert not s.redo()
    assert s.undo() and not s.undo()


def test_absent_range_and_clear_each_undo_in_one_step():
    s = make()
    s.set_keyframe(2, Box(0, 0, 5, 5))
    s.set_absent(5, 9)
    assert [i for i in range(N) if s.trajectory[i] is not None and s.trajectory[i].absent] == [5, 6, 7, 8]
    assert all(s.trajectory[i].origin is Origin.KEYFRAME for i in range(5, 9))
    s.set_absent(12)
    assert s.trajectory[12].absent
    s.clear(0, N)
    assert all(e is None for e in s.trajectory.entries)
    s.undo()
    assert s.trajectory[2] is not None and s.trajectory[12].absent and s.trajectory[7].absent
    s.undo()
    assert s.trajectory[12] is None and s.trajectory[7].absent
    s.undo()
    assert s.trajectory[7] is None and s.trajectory[2] is not None


def test_an_edit_clears_redo_and_a_no_op_is_not_a_step():
    s = make()
    s.set_keyframe(1, Box(0, 0, 5, 5))
    s.undo()
    s.set_absent(3)
    assert not s.can_redo
    s.clear(10)  # nothing to clear
    s.undo()
    assert s.trajectory[3] is None and not s.can_undo


def test_bad_edits_raise():
    s = make()
    with pytest.raises(ValueError):
        s.set_keyframe(0, Box(0, 0, 0, 5))
    with pytest.raises(IndexError):
        s.set_keyframe(N, Box(0, 0, 5, 5))
    with pytest.raises(IndexError):
        s.set_absent(3, 3)
    with pytest.raises(ValueError, match="not a keyframe"):
        s.begin_run(0)
    s.set_absent(0)
    with pytest.raises(ValueError, match="not a keyframe"):
        s.begin_run(0)  # an absent keyframe has no box to start from
    with pytest.raises(ValueError):
        TrackerSettings(max_frames=0)


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from(["key", "absent", "clear"]), st.integers(0, N - 1), st.integers(1, 4)),
        min_size=1,
        max_size=12,
    )
)
def test_undo_all_then_redo_all_restores_every_state(edits):
    s = make()
    states = [s.trajectory]
    for kind, index, length in edits:
        stop = min(N, index + length)
        if kind == "key":
            s.set_keyframe(index, Box(index, length, 3, 4))
        elif kind == "absent":
            s.set_absent(index, stop)
        else:
            s.clear(index, stop)
        if s.trajectory != states[-1]:
            states.append(s.trajectory)
    for state in reversed(states[:-1]):
        assert s.undo()
        assert s.trajectory == state
    assert not s.undo()
    for state in states[1:]:
        assert s.redo()
        assert s.trajectory == state


# --------------------------------------------------------------------------- runs


def test_begin_run_bounds():
    s = make()
    s.set_keyframe(3, Box(0, 0, 5, 5))
    s.set_keyframe(9, Box(0, 0, 5, 5))
    forward = s.begin_run(3)
    assert (forward.start, forward.stop, forward.direction) == (3, 9, 1)
    assert list(forward.indices) == [3, 4, 5, 6, 7, 8]
    assert forward.box == Box(0, 0, 5, 5)
    assert s.current_run_id == forward.run_id
    backward = s.begin_run(9, -1)
    assert (backward.stop, list(backward.indices)) == (3, [9, 8, 7, 6, 5, 4])
    assert s.begin_run(3, -1).stop == -1  # to the video's start
    assert s.begin_run(9).stop == N  # to the video's end
    limited = s.begin_run(9, settings=TrackerSettings(tracker="identity", max_frames=4))
    assert (limited.stop, limited.tracker) == (14, "identity")
    assert s.begin_run(9, -1, TrackerSettings(max_frames=2)).stop == 6
    assert s.begin_run(3, settings=TrackerSettings(max_frames=50)).stop == 9
    s.set_absent(12)  # an absent keyframe bounds a run too
    assert s.begin_run(9).stop == 12
    ids = [forward.run_id, backward.run_id, limited.run_id]
    assert len(set(ids)) == 3


def test_run_frames_are_one_undo_step_and_keep_the_keyframe():
    s = make()
    s.set_keyframe(2, Box(0, 10, 20, 20))
    events: list[ChangeEvent] = []
    s.add_listener(events.append)
    run = s.begin_run(2)
    assert not s.accept(run.run_id, 2, result(99))  # the keyframe itself
    for i in range(3, 8):
        assert s.accept(run.run_id, i, result(i, score=0.1 * i))
    assert not s.accept(run.run_id, 1, result(1))  # outside the run
    assert [e.kind for e in events] == ["tracked"] * 5
    s.end_run(run.run_id, "completed")
    assert s.current_run_id is None and events[-1] == ChangeEvent((), "run_ended")
    assert s.trajectory[2].origin is Origin.KEYFRAME and s.trajectory[2].box.x == 0
    assert s.trajectory[5] == Entry(Box(5, 10, 20, 20), Origin.TRACKED, 0.5)
    assert s.undo()
    assert all(s.trajectory[i] is None for i in range(3, 8)) and s.trajectory[2] is not None
    assert s.redo() and s.trajectory[7].box.x == 7
    with pytest.raises(ValueError):
        s.end_run(run.run_id, "bored")


def test_a_run_that_follows_an_edit_joins_its_undo_step_and_names_it():
    """Issue 17 item 6: a drag that re-tracks is one user action, so one Ctrl+Z."""
    s = make(old_track())
    assert s.undo_text == ""
    s.set_keyframe(5, Box(40, 10, 20, 20))
    assert s.undo_text == "box at frame 5"
    run = s.begin_run(5, join_last_edit="correction at frame 5")
    for i in range(6, 9):
        assert s.accept(run.run_id, i, result(40))
    assert s.undo_text == "correction at frame 5"
    s.end_run(run.run_id, "completed")
    assert s.undo_text == "correction at frame 5"
    assert s.undo()
    assert s.trajectory == old_track()  # keyframe and re-track gone together
    assert s.redo_text == "correction at frame 5" and not s.can_undo
    assert s.redo() and s.trajectory[8].box.x == 40 and s.trajectory[5].origin is Origin.KEYFRAME


def test_a_run_joins_only_the_edit_it_follows():
    s = make(old_track())
    s.set_keyframe(5, Box(40, 10, 20, 20))
    run = s.begin_run(5, join_last_edit="correction at frame 5")
    s.set_absent(15)  # another edit in between: the run (now stale) keeps its own step
    assert not s.accept(run.run_id, 6, result(40))
    assert s.undo_text == "absent at frame 15"
    assert s.undo() and s.undo_text == "correction at frame 5"
    # an ordinary run is its own step
    s.set_keyframe(5, Box(10, 10, 20, 20))
    run = s.begin_run(5)
    assert s.accept(run.run_id, 6, result(12))
    s.end_run(run.run_id, "completed")
    assert s.undo_text == "tracking at frame 6"
    assert s.undo() and s.trajectory[5].box.x == 10


def test_stale_runs_are_dropped():
    s = make()
    s.set_keyframe(0, Box(0, 10, 20, 20))
    first = s.begin_run(0)
    assert s.accept(first.run_id, 1, result(1))
    second = s.begin_run(0)
    assert s.run_should_stop(first.run_id) and not s.run_should_stop(second.run_id)
    assert not s.accept(first.run_id, 2, result(2))
    s.end_run(first.run_id, "completed")  # stale: ignored
    assert s.current_run_id == second.run_id
    assert s.accept(second.run_id, 2, result(2))
    s.set_absent(15)  # a user edit stales the running run
    assert s.current_run_id is None
    assert not s.accept(second.run_id, 3, result(3))
    assert s.trajectory[3] is None and s.trajectory[2].box.x == 2
    s.undo()  # the absent mark
    s.undo()  # the second run
    assert s.trajectory[2] is None and s.trajectory[1].box.x == 1
    s.undo()  # the first run
    assert s.trajectory[1] is None


def test_undo_during_a_run_stops_and_undoes_it():
    s = make()
    s.set_keyframe(0, Box(0, 10, 20, 20))
    run = s.begin_run(0)
    s.accept(run.run_id, 1, result(1))
    assert s.can_undo
    assert s.undo()
    assert s.current_run_id is None and s.trajectory[1] is None and s.trajectory[0] is not None
    assert s.run_should_stop(run.run_id)


def test_untrackable_boxes_are_dropped():
    s = make()
    s.set_keyframe(0, Box(0, 10, 20, 20))
    run = s.begin_run(0)
    assert not s.accept(run.run_id, 1, TrackResult(Box(float("nan"), 0, 5, 5), 0.9))
    assert s.trajectory[1] is None


def test_rejoin_stops_the_run_and_keeps_the_later_frames():
    s = make(old_track())
    s.set_keyframe(0, Box(2, 10, 20, 20))  # the user fixes the drifted start
    run = s.begin_run(0)
    for i in range(1, 5):  # the new track differs from the old one...
        assert s.accept(run.run_id, i, result(10 * i))
    for i in (5, 6):  # ...then meets it again
        assert s.accept(run.run_id, i, result(101))
        assert not s.run_should_stop(run.run_id)
    assert s.accept(run.run_id, 7, result(101))
    assert s.run_should_stop(run.run_id) and s.run_stop_reason(run.run_id) == "rejoined"
    assert not s.accept(run.run_id, 8, result(150))
    s.end_run(run.run_id, "rejoined")
    assert [s.trajectory[i].box.x for i in range(1, 9)] == [10, 20, 30, 40, 101, 101, 101, 100]
    assert all(s.trajectory[i] == tracked(100) for i in range(8, N))
    s.undo()
    assert s.trajectory == old_track().with_entry(0, Entry(Box(2, 10, 20, 20), Origin.KEYFRAME))


def test_rejoin_needs_consecutive_agreeing_frames():
    s = make(old_track(), rejoin_frames=3, rejoin_iou=0.8)
    run = s.begin_run(0)
    xs = [100, 100, 40, 100, 100, 60, 100]  # never three in a row
    for i, x in enumerate(xs, start=1):
        assert s.accept(run.run_id, i, result(x))
    assert not s.run_should_stop(run.run_id)
    # IoU of boxes 5 px apart (20 px wide) is 15/25 = 0.6 < 0.8: no agreement.
    for i in (8, 9, 10):
        s.accept(run.run_id, i, result(105))
    assert not s.run_should_stop(run.run_id)


def test_rejoin_only_counts_tracked_frames():
    traj = old_track().with_entries(
        {i: Entry(Box(100, 10, 20, 20), Origin.INTERPOLATED) for i in range(1, N)}
    )
    s = make(traj)
    run = s.begin_run(0)
    for i in range(1, 10):
        s.accept(run.run_id, i, result(100))
    assert not s.run_should_stop(run.run_id)


# --------------------------------------------------------------------------- fusion etc.


def test_bidirectional_fusion_keeps_the_higher_score_per_frame():
    s = make()
    s.set_keyframe(2, Box(0, 10, 20, 20))
    s.set_keyframe(8, Box(60, 10, 20, 20))
    forward_request, backward_request = s.bidirectional_requests(2, 8)
    assert list(forward_request.indices) == [2, 3, 4, 5, 6, 7]
    assert list(backward_request.indices) == [8, 7, 6, 5, 4, 3]
    assert s.current_run_id is None
    forward = {i: result(10 * i, score=1.0 - 0.1 * i) for i in range(2, 8)}
    backward = {i: result(10 * i + 1, score=0.1 * i) for i in range(3, 9)}
    s.fuse_bidirectional(forward, backward)
    # forward scores 0.7 0.6 0.5 0.4 0.3 on 3..7, backward 0.3 0.4 0.5 0.6 0.7: ties go forward.
    assert [s.trajectory[i].box.x for i in range(3, 8)] == [30, 40, 50, 61, 71]
    assert [s.trajectory[i].score for i in range(3, 8)] == pytest.approx([0.7, 0.6, 0.5, 0.6, 0.7])
    assert s.trajectory[2].origin is Origin.KEYFRAME and s.trajectory[8].box.x == 60
    assert s.undo() and all(s.trajectory[i] is None for i in range(3, 8))


def test_fusion_takes_one_sided_frames_and_ignores_nan_scores():
    s = make()
    s.fuse_bidirectional({1: result(1, float("nan"))}, {1: result(2, 0.01), 2: result(3, 0.5)})
    assert s.trajectory[1].box.x == 2 and s.trajectory[2].box.x == 3


def test_low_confidence_frames():
    traj = Trajectory.empty(N).with_entries(
        {
            1: tracked(0, 0.2),
            2: tracked(0, 0.9),
            3: Entry(Box(0, 0, 5, 5), Origin.TRACKED, None),
            4: Entry(Box(0, 0, 5, 5), Origin.KEYFRAME, 0.1),
            5: tracked(0, 0.49),
        }
    )
    assert make(traj).low_confidence_frames(0.5) == [1, 5]


def test_interpolation_is_exact_for_linear_motion():
    def box(i: int) -> Box:
        return Box(10 + 3 * i, 50 - 0.5 * i, 20 + i, 30 - 0.25 * i)

    s = make()
    s.set_keyframe(2, box(2))
    s.set_keyframe(14, box(14))
    s.set_keyframe(9, Box(0, 0, 1, 1))  # a keyframe in between stays
    s.interpolate(2, 14)
    for i in range(3, 14):
        if i != 9:
            assert s.trajectory[i] == Entry(box(i), Origin.INTERPOLATED)
    assert s.trajectory[9].box == Box(0, 0, 1, 1)
    s.undo()
    assert s.trajectory[5] is None
    with pytest.raises(ValueError):
        s.interpolate(14, 2)
    with pytest.raises(ValueError):
        s.interpolate(2, 15)  # not a keyframe


def test_apply_is_one_restore_step():
    s = make()
    events: list[ChangeEvent] = []
    s.add_listener(events.append)
    s.apply({1: tracked(3), 4: None, 5: tracked(5)})
    assert events == [ChangeEvent((1, 5), "restore")]
    s.undo()
    assert s.trajectory[1] is None


def test_a_trajectory_of_the_wrong_length_is_refused():
    with pytest.raises(ValueError, match="frames"):
        AnnotationSession(Path("v.mp4"), 5, (10, 10), "h", Trajectory.empty(6))


def test_modified_flag_follows_saves_and_undo():
    s = make()
    assert not s.is_modified
    s.set_keyframe(1, Box(0, 0, 5, 5))
    assert s.is_modified
    s.mark_saved()
    assert not s.is_modified
    s.set_absent(2)
    assert s.is_modified
    s.undo()  # back to the saved state
    assert not s.is_modified
    s.mark_modified()
    assert s.is_modified
