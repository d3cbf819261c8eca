"""tools/teacher_split.py: the teacher's stretches become OTB folders that evaluation reads back exactly."""

from __future__ import annotations

import numpy as np
import pytest

from tests.media import block_frames, write_video
from tests.tools import load_tool
from trackers.evaluation import load_sequences
from trackers.sources import open_source
from trackers.types import AnnotatedSequence

tool = load_tool("teacher_split")


def test_stretches_are_runs_of_two_frames_or_more():
    nan = [np.nan] * 4
    box = [1.0, 2.0, 3.0, 4.0]
    rows = np.array([nan, box, box, box, nan, box, nan, box, box])
    assert tool.stretches(rows) == [(1, 3), (7, 8)]
    assert tool.stretches(np.full((5, 4), np.nan)) == []


def test_each_stretch_is_written_as_an_otb_folder_read_back_as_it_was(tmp_path):
    frames = block_frames(12, size=(96, 72))
    clip = write_video(tmp_path / "clip.avi", [image for image, _ in frames], fourcc="MJPG")
    truth = np.full((12, 4), np.nan)
    for k in list(range(2, 6)) + [8, 9]:
        truth[k] = frames[k][1].as_array()
    truth[9, 0] += 0.25  # a fractional box survives the 1-based text
    lines = tool.write_stretches([AnnotatedSequence("teacher:clip-o1p0", clip, truth)], tmp_path / "split")
    assert lines == ["clip-f2-o1p0 clip.avi 2 5", "clip-f8-o1p0 clip.avi 8 9"]
    assert (tmp_path / "split" / "SPLIT.txt").read_text().splitlines() == lines
    read = {s.name: s for s in load_sequences(sorted((tmp_path / "split").glob("clip-*")))}
    assert sorted(read) == ["clip-f2-o1p0", "clip-f8-o1p0"]
    np.testing.assert_allclose(read["clip-f2-o1p0"].groundtruth, truth[2:6], atol=1e-6)
    np.testing.assert_allclose(read["clip-f8-o1p0"].groundtruth, truth[8:10], atol=1e-6)
    with open_source(clip) as source, open_source(read["clip-f8-o1p0"].source) as written:
        original = list(source.iter_from(8, 10))
        copied = list(written.iter_from(0))
    assert len(copied) == 2
    for a, b in zip(original, copied):
        assert a.shape == b.shape
        assert float(np.abs(a.astype(float) - b.astype(float)).mean()) == pytest.approx(0.0, abs=2.0)
