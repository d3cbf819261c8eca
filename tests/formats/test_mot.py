"""MOT Challenge CSV: 1-based frames and pixels; several ids."""

from __future__ import annotations

import pytest

from trackers.formats import mot
from trackers.formats.common import FormatError
from trackers.trajectory import Entry, Origin, Trajectory
from trackers.types import Box


def test_read_results_layout(tmp_path):
    path = tmp_path / "res.txt"
    path.write_text("1,1,11,21,30,40,0.9,-1,-1,-1\n3,1,13.5,23,30,40,-1,-1,-1,-1\n")
    t = mot.read(path)
    assert t.entries == (
        Entry(Box(10, 20, 30, 40), score=0.9),
        Entry(None),  # no row: absent
        Entry(Box(12.5, 22, 30, 40)),  # conf -1: no score
    )
    assert mot.read(path, frame_count=5).entries[3:] == (Entry(None), Entry(None))


def test_read_ground_truth_layout(tmp_path):
    path = tmp_path / "gt.txt"
    path.write_text("1,7,11,21,30,40,1,1,1.0\n2,7,11,21,30,40,1,1,0.4\n")
    t = mot.read(path)
    assert t.entries == (Entry(Box(10, 20, 30, 40)), Entry(Box(10, 20, 30, 40), occluded=True))


def test_several_ids(tmp_path):
    path = tmp_path / "gt.txt"
    path.write_text("1,1,1,1,5,5\n1,2,11,11,5,5\n2,2,12,11,5,5\n")
    with pytest.raises(FormatError, match=r"holds 2 ids \(1, 2\): choose one with --track"):
        mot.read(path)
    assert mot.read(path, track=2).entries == (Entry(Box(10, 10, 5, 5)), Entry(Box(11, 10, 5, 5)))
    with pytest.raises(FormatError, match="no id 3"):
        mot.read(path, track=3)


def test_write(tmp_path):
    t = Trajectory(
        (Entry(Box(0, 0, 10, 20), Origin.KEYFRAME, 0.5), Entry(None, score=0.1), None, Entry(Box(2, 3, 4, 5)))
    )
    path = tmp_path / "res.txt"
    mot.write(t, path)
    assert path.read_text() == "1,1,1,1,10,20,0.5,-1,-1,-1\n4,1,3,4,4,5,-1,-1,-1,-1\n"


def test_a_score_of_minus_one_is_mot_no_value(tmp_path):
    path = tmp_path / "res.txt"
    mot.write(Trajectory((Entry(Box(0, 0, 1, 1), score=-1.0),)), path)
    assert mot.read(path)[0] == Entry(Box(0, 0, 1, 1))


def test_pixel_coordinates_are_rounded_to_a_hundredth(tmp_path):
    from trackers.formats import FORMATS
    from trackers.trajectory import Entry, Origin, Trajectory
    from trackers.types import Box

    trajectory = Trajectory(
        (Entry(Box(632.1741662612833, 10.004999, 20.123456, 30.0), Origin.TRACKED, 0.75),),
        frame_size=(640, 360),
    )
    FORMATS["mot"].write(trajectory, tmp_path / "gt.txt")
    assert (tmp_path / "gt.txt").read_text().startswith("1,1,633.17,11,20.12,30,0.75,")
    FORMATS["cvat"].write(trajectory, tmp_path / "a.xml")
    text = (tmp_path / "a.xml").read_text()
    assert 'xtl="632.17"' in text and 'xbr="652.3"' in text and "741662" not in text
