"""Independent readers agree with our writers (skipped when motmetrics / datumaro are not installed).

Neither is a dependency: install them into a separate environment to run these.
"""

from __future__ import annotations

import math

import pytest

from trackers.formats import cvat, mot
from trackers.trajectory import Entry, Origin, Trajectory
from trackers.types import Box

TRAJECTORY = Trajectory(
    (
        Entry(Box(10, 20, 30, 40), Origin.KEYFRAME, 0.9, occluded=True),
        Entry(Box(12.5, 21, 30, 40), Origin.TRACKED, 0.8),
        Entry(None, Origin.KEYFRAME),
        Entry(Box(15, 22, 31, 41), Origin.TRACKED, 0.7),
    ),
    frame_size=(64, 48),
    label="car",
)


def test_motmetrics_reads_our_mot_file(tmp_path):
    mm = pytest.importorskip("motmetrics")
    path = tmp_path / "res.txt"
    mot.write(TRAJECTORY, path)
    frame = mm.io.loadtxt(str(path), fmt="mot15-2D")  # subtracts 1 from X and Y itself
    rows = {int(f): r for (f, _id), r in frame.iterrows()}
    assert sorted(rows) == [1, 2, 4]  # MOT frames are 1-based; the absent frame has no row
    for index, entry in enumerate(TRAJECTORY.entries):
        if entry is None or entry.box is None:
            continue
        row = rows[index + 1]
        got = (row["X"], row["Y"], row["Width"], row["Height"])
        assert all(
            math.isclose(a, b) for a, b in zip(got, (entry.box.x, entry.box.y, entry.box.w, entry.box.h))
        )
        assert math.isclose(row["Confidence"], entry.score)


def test_datumaro_reads_our_cvat_video_file(tmp_path):
    dm = pytest.importorskip("datumaro")
    folder = tmp_path / "cvat"
    folder.mkdir()
    cvat.write(TRAJECTORY, folder / "annotations.xml")
    dataset = dm.Dataset.import_from(str(folder), "cvat")
    seen = {}
    for item in dataset:
        (bbox,) = [a for a in item.annotations if a.type == dm.AnnotationType.bbox]
        seen[int(item.attributes["frame"])] = bbox
    assert sorted(seen) == [0, 1, 2, 3]  # 0-based frames; the absent frame is an outside box
    for index, entry in enumerate(TRAJECTORY.entries):
        bbox = seen[index]
        assert bbox.attributes["outside"] is (entry.box is None)
        assert bbox.attributes["keyframe"] is True  # every box: CVAT keeps only keyframes
        assert bbox.attributes["origin"] == entry.origin.value
        if entry.box is not None:
            assert all(
                math.isclose(a, b)
                for a, b in zip(bbox.get_bbox(), (entry.box.x, entry.box.y, entry.box.w, entry.box.h))
            )
            assert bbox.attributes["occluded"] is entry.occluded
