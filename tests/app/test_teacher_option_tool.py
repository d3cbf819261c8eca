"""tools/teacher_option.py: the sparse project it builds, and one tiny run of both fine-tunes."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from tests.media import otb_line, write_clip
from tests.tools import load_tool


@pytest.fixture(scope="module")
def tool():
    return load_tool("teacher_option")


@pytest.fixture
def clip(tmp_path: Path):
    path = tmp_path / "clip.avi"
    boxes = write_clip(path, n_frames=60)
    path.with_suffix(".txt").write_text("\n".join(otb_line(b) for b in boxes) + "\n")
    return path, boxes


def test_the_sparse_project_keeps_every_nth_box_in_0_based_pixels(tool, clip):
    video, boxes = clip
    (sequence,) = tool.load_sequences([video])
    seq = tool.sparse_sequence(sequence, 5)
    kept = ~np.isnan(seq.groundtruth).any(axis=1)
    assert np.flatnonzero(kept).tolist() == list(range(0, 60, 5))
    # the clip's exact 0-based boxes, not the file's 1-based ones
    expected = [[b.x, b.y, b.w, b.h] for b in boxes[::5]]
    assert np.allclose(seq.groundtruth[kept], expected)


def test_the_held_out_part_is_scored_on_every_frame_from_the_cut(tool, clip):
    from app.model.project_training import split_sequence

    video, boxes = clip
    (sequence,) = tool.load_sequences([video])
    split = tool.dense_heldout(split_sequence(tool.sparse_sequence(sequence, 2)), sequence)
    held = ~np.isnan(split.heldout.groundtruth).any(axis=1)
    assert np.flatnonzero(held).tolist() == list(range(split.cut, 60))
    assert split.heldout_frames == 60 - split.cut
    first = boxes[split.cut]
    assert np.allclose(split.heldout.groundtruth[split.cut], [first.x, first.y, first.w, first.h])
    trained = ~np.isnan(split.train.groundtruth).any(axis=1)
    assert np.flatnonzero(trained).tolist() == list(range(0, split.cut, 2))  # training keeps the sparse boxes


def test_both_fine_tunes_run_and_only_one_asks_the_teacher(tool, clip, tmp_path):
    video, _boxes = clip
    out = tmp_path / "figures.json"
    argv = [str(video), "--every", "2", "--epochs", "1", "--pairs-per-epoch", "8", "--json", str(out)]
    assert tool.main(argv) == 0
    figures = json.loads(out.read_text())
    (row,) = figures["rows"]
    assert row["plain"]["teacher_frames"] is None and row["teacher"]["teacher_frames"] > 0
    for tag in ("plain", "teacher"):
        assert 0.0 <= row[tag]["before"] <= 1.0 and math.isfinite(row[tag]["after"])
    # the same weights on the same frames
    assert row["plain"]["before"] == pytest.approx(row["teacher"]["before"])
