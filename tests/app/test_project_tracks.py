"""A three-object project through every multi-track format and back (needs trackers.formats' tracks API)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from app.model.project_tracks import objects_from_tracks, session_tracks
from app.model.session import AnnotationSession
from trackers.types import Box

N = 12
SIZE = (320, 240)


def three_objects(video: Path = Path("clip.mp4"), digest: str = "hash") -> AnnotationSession:
    s = AnnotationSession(video, N, SIZE, digest)
    s.update_object(label="person")
    s.add_object("car", select=False)
    s.add_object("dog", select=False)
    for i in range(N):
        s.set_keyframe(i, Box(10 + i, 20, 30, 40), object_id=1)
        s.set_keyframe(i, Box(100, 50 + i, 20, 10), object_id=2)
        if i >= 4:
            s.set_keyframe(i, Box(200.5, 100, 16, 12), object_id=3)
    return s


def test_tracks_carry_id_label_and_boxes_both_ways():
    s = three_objects()
    tracks = session_tracks(s)
    assert [(t.id, t.label) for t in tracks] == [(1, "person"), (2, "car"), (3, "dog")]
    back = objects_from_tracks(tracks, N)
    assert [(o.id, o.label) for o in back] == [(1, "person"), (2, "car"), (3, "dog")]
    assert [o.trajectory for o in back] == [o.trajectory for o in s.objects]


def test_every_format_writes_three_objects_and_reads_their_boxes_back(tmp_path):
    from trackers.formats import FORMATS, read_tracks, write_tracks

    s = three_objects()
    for name in FORMATS:
        out = (
            tmp_path
            / name
            / ("tracks.xml" if name == "cvat" else "tracks.json" if name in ("coco",) else "tracks")
        )
        if name == "mot":
            out = tmp_path / name / "gt.txt"
        out.parent.mkdir(parents=True, exist_ok=True)
        write_tracks(session_tracks(s), out, name)
        tracks = read_tracks(out, name, frame_count=N, frame_size=SIZE)
        back = objects_from_tracks(tracks, N)
        assert len(back) == 3, name
        for mine, theirs in zip(s.objects, back):
            a, b = mine.trajectory.to_arrays().boxes, theirs.trajectory.to_arrays().boxes
            present = ~np.isnan(a).any(axis=1)
            np.testing.assert_allclose(b[present], a[present], atol=1.0, err_msg=name)


def test_convert_carries_every_object_of_a_project(tmp_path):
    from app.cli import main
    from app.model.project import content_hash, save_project
    from tests.media import write_video

    video = write_video(tmp_path / "clip.avi", [np.zeros((SIZE[1], SIZE[0], 3), np.uint8)] * N, fps=10)
    s = three_objects(video, content_hash(video))
    project = tmp_path / "clip.siamtrack.json"
    save_project(s, project)
    assert main(["convert", str(project), str(tmp_path / "gt.txt"), "--to", "mot"]) == 0
    rows = np.loadtxt(tmp_path / "gt.txt", delimiter=",", ndmin=2)
    assert sorted(set(rows[:, 1].astype(int))) == [1, 2, 3]
    assert (rows[:, 1] == 3).sum() == N - 4
