"""OTB: 1-based x,y,w,h per line, NaN for absent."""

from __future__ import annotations

import numpy as np
import pytest

from trackers.evaluation import read_groundtruth
from trackers.formats import otb
from trackers.formats.common import FormatError
from trackers.trajectory import Entry, Origin, Trajectory
from trackers.types import Box


def test_read_converts_one_based_pixels(tmp_path):
    path = tmp_path / "groundtruth_rect.txt"
    path.write_text("1,1,10,20\n5.5\t6.5 3 4\nNaN,NaN,NaN,NaN\n\n")
    t = otb.read(path)
    assert t.entries == (Entry(Box(0, 0, 10, 20)), Entry(Box(4.5, 5.5, 3, 4)), Entry(None))
    assert all(e is not None and e.origin is Origin.IMPORTED for e in t.entries)


def test_read_a_sequence_folder(tmp_path):
    (tmp_path / "img").mkdir()
    (tmp_path / "groundtruth_rect.txt").write_text("11,21,30,40\n")
    assert otb.read(tmp_path)[0] == Entry(Box(10, 20, 30, 40))


def test_several_targets_need_a_file(tmp_path):
    (tmp_path / "groundtruth_rect.1.txt").write_text("1,1,1,1\n")
    (tmp_path / "groundtruth_rect.2.txt").write_text("1,1,1,1\n")
    with pytest.raises(FormatError, match="several targets"):
        otb.read(tmp_path)


def test_write_is_one_based_and_nan_for_absent_and_unannotated(tmp_path):
    t = Trajectory((Entry(Box(0, 0, 10, 20), Origin.KEYFRAME), Entry(None), None, Entry(Box(-2.5, 3, 1, 1))))
    path = tmp_path / "gt.txt"
    otb.write(t, path)
    assert path.read_text() == "1,1,10,20\nNaN,NaN,NaN,NaN\nNaN,NaN,NaN,NaN\n-1.5,4,1,1\n"


def test_what_we_write_reads_the_same_in_evaluation(tmp_path):
    t = Trajectory((Entry(Box(0, 0, 10, 20)), Entry(None), Entry(Box(3.25, 4, 5, 6))))
    path = tmp_path / "gt.txt"
    otb.write(t, path)
    np.testing.assert_array_equal(read_groundtruth(path), t.to_arrays().boxes)


def test_video_hints(tmp_path):
    path = tmp_path / "gt.txt"
    path.write_text("1,1,2,2\nNaN,NaN,NaN,NaN\n")
    t = otb.read(path, frame_count=4, frame_size=(64, 48))
    assert t.frame_count == 4 and t.frame_size == (64, 48) and t[3] is None
    assert otb.read(path, frame_count=1).frame_count == 1  # an absent frame past the end is dropped
    path.write_text("1,1,2,2\n1,1,2,2\n")
    with pytest.raises(FormatError, match="video has only 1 frames"):
        otb.read(path, frame_count=1)
