"""Several objects in one session: the model, undo, projects (old and new), the journal, SIGKILL."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from app.model.journal import Journal, find_recoverable, journal_path, replay, restore
from app.model.project import load_project, save_project
from app.model.session import AnnotationSession, ChangeEvent, TrackerSettings
from trackers.trajectory import Entry, Origin
from trackers.types import Box, TrackResult

ROOT = Path(__file__).resolve().parents[2]
N = 30


def make() -> AnnotationSession:
    return AnnotationSession(
        Path("/videos/clip.mp4"), N, (64, 48), "cafe", settings=TrackerSettings("identity")
    )


def three_objects(s: AnnotationSession) -> tuple[int, int, int]:
    """Objects 1 (person), 2 (car), 3 (dog), each with keyframes and a tracked stretch."""
    s.update_object(1, label="person")
    s.set_keyframe(0, Box(1, 1, 10, 10))
    b = s.add_object("car", box=(0, Box(20, 20, 8, 6)))
    c = s.add_object("dog", box=(2, Box(5, 30, 6, 6)), name="brown", colour="#00ff00")
    s.set_absent(10, 14, object_id=c)
    s.update_object(b, hidden=True, settings=TrackerSettings("siamrpn", max_frames=5))
    return 1, b, c


def test_add_select_and_edits_act_on_the_selected_object_only():
    s = make()
    events: list[ChangeEvent] = []
    s.add_listener(events.append)
    s.set_keyframe(0, Box(1, 1, 5, 5))
    b = s.add_object("car", box=(3, Box(2, 2, 4, 4)))
    assert b == 2 and s.selected_id == b and s.object_ids == [1, 2]
    assert s.trajectory[3].box == Box(2, 2, 4, 4) and s.trajectory[0] is None
    assert s.trajectory_of(1)[0].box == Box(1, 1, 5, 5) and s.trajectory_of(1)[3] is None
    s.set_keyframe(5, Box(3, 3, 4, 4))  # the selected object
    assert s.trajectory_of(1)[5] is None and events[-1].object_id == b
    s.select(1)
    assert s.trajectory is s.trajectory_of(1) and events[-1] == ChangeEvent((), "select")
    assert s.labels == ("object", "car")
    with pytest.raises(KeyError, match="no object 9"):
        s.select(9)


def test_every_object_action_is_one_undo_step_and_undo_restores_exactly():
    s = make()
    states = [s.objects]
    a, b, c = three_objects(s)
    steps = 6
    assert len(s.objects) == 3
    s.delete_object(b)
    assert s.object_ids == [1, c]
    s.undo()
    assert s.object_ids == [1, b, c] and s.object(b).hidden
    assert s.object(b).settings == TrackerSettings("siamrpn", max_frames=5)
    final = s.objects
    for _ in range(steps):
        assert s.undo()
    assert not s.undo() and s.objects == states[0]
    for _ in range(steps):
        assert s.redo()
    assert s.objects == final
    assert s.object(c).title == "3 dog (brown)" and s.object(c).colour == "#00ff00"


def test_the_last_object_cannot_be_deleted():
    s = make()
    with pytest.raises(ValueError, match="at least one object"):
        s.delete_object()


def test_runs_of_several_objects_are_one_undo_step_and_keep_to_their_object():
    s = make()
    a, b, c = three_objects(s)
    requests = s.begin_runs(0, +1)
    # object 3 has no keyframe on frame 0; object 2's own settings bound its run
    assert [r.object_id for r in requests] == [a, b]
    assert requests[1].stop == 6 and requests[1].tracker == "siamrpn"
    assert requests[0].stop == N
    for i in range(1, 4):
        for r in requests:
            assert s.accept(r.run_id, i, TrackResult(Box(r.object_id + i, 1, 5, 5), 0.7))
    s.end_run(requests[0].run_id, "completed")
    assert s.current_run_ids == [requests[1].run_id]  # the other is still going
    assert s.accept(requests[1].run_id, 4, TrackResult(Box(9, 1, 5, 5), 0.7))
    s.end_run(requests[1].run_id, "cancelled")
    assert s.trajectory_of(a)[3].box == Box(4, 1, 5, 5) and s.trajectory_of(b)[4].box == Box(9, 1, 5, 5)
    assert s.trajectory_of(c)[1] is None
    s.undo()  # both runs at once
    assert s.trajectory_of(a)[1] is None and s.trajectory_of(b)[4] is None
    assert s.trajectory_of(b)[0].origin is Origin.KEYFRAME


def test_correcting_one_object_leaves_the_others_alone():
    s = make()
    a, b, c = three_objects(s)
    before = {o.id: o.trajectory for o in s.objects}
    run = s.begin_run(0, object_id=b)
    for i in range(1, 5):
        s.accept(run.run_id, i, TrackResult(Box(20 + i, 20, 8, 6), 0.8))
    s.end_run(run.run_id, "completed")
    s.set_keyframe(3, Box(30, 20, 8, 6), object_id=b)
    assert s.trajectory_of(a) == before[a] and s.trajectory_of(c) == before[c]
    assert s.trajectory_of(b)[3].origin is Origin.KEYFRAME


def test_three_objects_survive_save_and_reopen(tmp_path):
    video = tmp_path / "clip.mp4"
    video.write_bytes(b"not really a video, but hashable" * 10)
    from app.model.project import content_hash

    s = AnnotationSession(video, N, (64, 48), content_hash(video))
    three_objects(s)
    s.add_label("bicycle")
    s.select(2)
    assert s.is_modified
    path = tmp_path / "clip.siamtrack.json"
    save_project(s, path)
    assert not s.is_modified
    loaded = load_project(path)
    assert loaded.objects == s.objects and loaded.labels == s.labels and loaded.selected_id == 2
    assert not loaded.is_modified
    s.update_object(3, colour="#123456")
    assert s.is_modified
    s.undo()
    assert not s.is_modified


def test_an_old_single_object_project_opens_as_one_object(tmp_path):
    video = tmp_path / "clip.mp4"
    video.write_bytes(b"x" * 100)
    from app.model.project import content_hash

    old = {
        "format": "siamtrack-project",
        "version": 1,
        "video": {
            "path": str(video),
            "relative_path": "clip.mp4",
            "content_hash": content_hash(video),
            "frame_count": 5,
            "frame_size": [64, 48],
        },
        "label": "car",
        "settings": {
            "tracker": "siamrpn",
            "weights": None,
            "device": "cpu",
            "model_dir": None,
            "max_frames": None,
        },
        "frames": [
            {
                "index": 1,
                "box": [1.5, 2, 3, 4],
                "origin": "keyframe",
                "score": None,
                "absent": False,
                "occluded": False,
            }
        ],
    }
    path = tmp_path / "old.siamtrack.json"
    path.write_text(json.dumps(old))
    s = load_project(path)
    assert s.object_ids == [1] and s.object().label == "car" and s.settings.tracker == "siamrpn"
    assert s.trajectory[1] == Entry(Box(1.5, 2, 3, 4), Origin.KEYFRAME)
    save_project(s, path)
    assert load_project(path).objects == s.objects


def test_the_journal_restores_every_object_and_object_changes(tmp_path):
    s = make()
    journal = Journal(journal_path("cafe", tmp_path), flush_interval=0.01)
    journal.attach(s)
    a, b, c = three_objects(s)
    run = s.begin_run(0, object_id=b)
    for i in range(1, 4):
        s.accept(run.run_id, i, TrackResult(Box(20 + i, 20, 8, 6), 0.8))
    s.end_run(run.run_id, "completed")
    d = s.add_object("cat", box=(5, Box(1, 1, 2, 2)))
    s.delete_object(d)
    s.undo()  # the cat is back
    s.delete_object(a)
    journal.close(discard=False)
    restored = restore(journal.path)
    assert restored.objects == s.objects and restored.labels == s.labels
    fresh = make()
    replay(journal.path, fresh)
    assert fresh.objects == s.objects
    fresh.undo()  # the replay is one step
    assert [o.id for o in fresh.objects] == [1]


CHILD = """
import sys, time
from pathlib import Path
from app.model.journal import Journal, journal_path
from app.model.session import AnnotationSession
from trackers.types import Box

session = AnnotationSession(Path("/videos/clip.mp4"), {n}, (64, 48), "cafe")
Journal(journal_path("cafe", Path(sys.argv[1]))).attach(session)
session.add_object("car", box=(0, Box(30, 30, 5, 5)), select=False)
session.add_object("dog", box=(0, Box(40, 30, 5, 5)), select=False)
for i in range({n}):
    session.set_keyframe(i, Box(i, i + 0.5, 10, 12), object_id=1 + i % 3)
    print(i, time.time(), flush=True)
    time.sleep(0.01)
print("done", flush=True)
time.sleep(60)
"""


def test_sigkill_with_three_objects_loses_nothing_older_than_a_second(tmp_path):
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD.format(n=N), str(tmp_path)], cwd=ROOT, stdout=subprocess.PIPE, text=True
    )
    try:
        last = 0.0
        for line in child.stdout:
            if line.strip() == "done":
                break
            last = float(line.split()[1])
        time.sleep(max(0.0, last + 1.5 - time.time()))
        os.kill(child.pid, signal.SIGKILL)
        child.wait(10)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        child.stdout.close()
    assert child.returncode == -signal.SIGKILL
    (orphan,) = find_recoverable(tmp_path)
    restored = restore(orphan)
    assert [o.label for o in restored.objects] == ["object", "car", "dog"]
    for i in range(N):
        entry = restored.trajectory_of(1 + i % 3)[i]
        assert entry is not None and entry.box == Box(i, i + 0.5, 10, 12)
    assert restored.trajectory_of(2)[0].box == Box(30, 30, 5, 5)


def test_relabelling_or_adding_an_object_does_not_stop_a_run_but_deleting_does():
    s = make()
    s.set_keyframe(0, Box(1, 1, 5, 5))
    run = s.begin_run(0)
    assert s.accept(run.run_id, 1, TrackResult(Box(2, 1, 5, 5), 0.9))
    s.update_object(label="runner", colour="#112233")
    b = s.add_object("car", select=False)
    assert s.run_stop_reason(run.run_id) is None
    assert s.accept(run.run_id, 2, TrackResult(Box(3, 1, 5, 5), 0.9))
    s.delete_object(b)
    assert s.run_stop_reason(run.run_id) == "stale"
    s.undo()  # the deletion
    s.undo()  # the run
    assert s.trajectory[1] is None and s.object().label == "runner"


def test_the_edit_menu_names_object_steps_and_a_joined_correction():
    s = make()
    b = s.add_object("car", box=(0, Box(2, 2, 4, 4)))
    assert s.undo_text == "new object 2"
    s.update_object(b, colour="#010203")
    assert s.undo_text == "object's label, colour or name 2"
    s.set_keyframe(5, Box(3, 3, 4, 4), object_id=b)
    run = s.begin_run(5, object_id=b, join_last_edit="correction at frame 5")
    assert s.accept(run.run_id, 6, TrackResult(Box(4, 3, 4, 4), 0.9))
    s.end_run(run.run_id, "completed")
    assert s.undo_text == "correction at frame 5"
    s.undo()
    assert s.trajectory_of(b)[5] is None and s.trajectory_of(b)[6] is None
    s.delete_object(b)
    assert s.undo_text == "delete object 2"


def test_a_version_1_journal_still_restores(tmp_path):
    path = journal_path("cafe", tmp_path)
    path.parent.mkdir(parents=True)
    header = {
        "type": "header",
        "version": 1,
        "pid": 1,
        "created": 0.0,
        "project": None,
        "unsaved": True,
        "session": {
            "format": "siamtrack-project",
            "version": 1,
            "video": {
                "path": "/videos/clip.mp4",
                "relative_path": None,
                "content_hash": "cafe",
                "frame_count": N,
                "frame_size": [64, 48],
            },
            "label": "object",
            "settings": {},
            "frames": [],
        },
    }
    edit = {
        "type": "edit",
        "kind": "keyframe",
        "t": 0.0,
        "frames": [
            [
                3,
                {
                    "box": [1, 2, 3, 4],
                    "origin": "keyframe",
                    "score": None,
                    "absent": False,
                    "occluded": False,
                },
            ]
        ],
    }
    path.write_text(json.dumps(header) + "\n" + json.dumps(edit) + "\n")
    restored = restore(path)
    assert restored.object_ids == [1] and restored.trajectory[3].box == Box(1, 2, 3, 4)
