"""tools/where_lost.py: the lost frame, slid or jumped, and a run on a synthetic sequence."""

from __future__ import annotations

import numpy as np
import pytest

from tests.media import make_otb
from tests.tools import load_tool

where = load_tool("where_lost")
nan = float("nan")


def test_the_first_run_of_zero_overlap_is_the_loss():
    ious = np.array([1.0, 0.8, 0.0, 0.6, 0.0, 0.0, 0.0, 0.0])
    assert where.first_loss(ious, 3) == 4  # the single 0 at frame 2 is not a loss
    assert where.first_loss(ious, 1) == 2
    assert where.first_loss(ious, 5) is None
    # absent frames (NaN) neither count nor break a run
    assert where.first_loss(np.array([1.0, 0.0, nan, 0.0, 0.0]), 3) == 1


def test_slid_and_jumped():
    slid = np.array([0.9, 0.7, 0.45, 0.3, 0.1, 0.0, 0.0, 0.0])
    jumped = np.array([0.9, 0.8, 0.75, 0.0, 0.0, 0.0])
    assert where.how_lost(slid, where.first_loss(slid)) == "slid"
    assert where.how_lost(jumped, where.first_loss(jumped)) == "jumped"


def test_a_run_names_each_sequence_and_refuses_a_bad_run(tmp_path, capsys):
    folder = make_otb(tmp_path / "data", "Still", frames=6)
    assert where.main([str(folder), "--tracker", "siamfc-3s"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("Still: kept (6 frames, mean IoU ")
    with pytest.raises(SystemExit):
        where.main([str(folder), "--run", "0"])


def test_tracking_starts_at_the_first_valid_box_as_eval_does(tmp_path):
    from trackers.evaluation.datasets import load_sequences
    from trackers.registry import create_tracker

    (sequence,) = load_sequences([str(make_otb(tmp_path / "data", "Late", frames=6, absent=(0, 1)))])
    boxes, scores = where.track(sequence, create_tracker("siamfc-3s", device="cpu"))
    assert boxes.shape == (6, 4) and np.isnan(boxes[:2]).all() and np.isfinite(boxes[2:]).all()
    assert boxes[2] == pytest.approx(sequence.groundtruth[2])
    assert np.isnan(scores[:3]).all() and np.isfinite(scores[3:]).all()
