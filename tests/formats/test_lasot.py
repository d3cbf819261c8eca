"""LaSOT: 1-based boxes, one line of flags per file."""

from __future__ import annotations

from trackers.formats import lasot
from trackers.trajectory import Entry, Origin, Trajectory
from trackers.types import Box


def test_read(tmp_path):
    (tmp_path / "groundtruth.txt").write_text("367,101,41,16\n0,0,0,0\n368,102,41,16\n369,103,41,16\n")
    (tmp_path / "full_occlusion.txt").write_text("0,1,0,0\n")
    (tmp_path / "out_of_view.txt").write_text("0,0,1,0")
    (tmp_path / "nlp.txt").write_text("white airplane landing on the ground\n")
    t = lasot.read(tmp_path)
    assert t.entries == (Entry(Box(366, 100, 41, 16)), Entry(None), Entry(None), Entry(Box(368, 102, 41, 16)))


def test_write(tmp_path):
    t = Trajectory((Entry(Box(0, 0, 5, 5), Origin.KEYFRAME), Entry(None), None))
    lasot.write(t, tmp_path / "airplane-1")
    folder = tmp_path / "airplane-1"
    assert (folder / "groundtruth.txt").read_text() == "1,1,5,5\nNaN,NaN,NaN,NaN\nNaN,NaN,NaN,NaN\n"
    assert (folder / "full_occlusion.txt").read_text() == "0,1,1\n"
    assert (folder / "out_of_view.txt").read_text() == "0,0,0\n"
