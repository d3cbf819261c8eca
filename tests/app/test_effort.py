"""`siamtrack effort` counts corrections the way a careful annotator would make them."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from app.cli import main
from app.model.effort import measure_effort, simulate_interpolation, simulate_tracker
from app.model.session import TrackerSettings
from trackers.evaluation import AnnotatedSequence

W, H = 10, 10
A, B, C = (0, 0), (40, 0), (40, 40)  # three far-apart places: any two boxes there are disjoint


def groundtruth() -> np.ndarray:
    """20 frames: still at A for 0-4, jumps to B for 5-9, to C for 10-14, absent for 15-17,
    back at C for 18-19."""
    rows = []
    for i in range(20):
        if i < 5:
            rows.append((*A, W, H))
        elif i < 10:
            rows.append((*B, W, H))
        elif 15 <= i < 18:
            rows.append((np.nan,) * 4)
        else:
            rows.append((*C, W, H))
    return np.array(rows, dtype=np.float64)


def make_clip(tmp_path: Path) -> Path:
    """An image folder of 20 blank 80x80 frames (the identity tracker never looks at them)."""
    folder = tmp_path / "seq" / "img"
    folder.mkdir(parents=True)
    for i in range(20):
        cv2.imwrite(str(folder / f"{i + 1:04d}.png"), np.zeros((80, 80, 3), np.uint8))
    return folder.parent


def test_tracker_corrections_are_counted_by_hand(tmp_path):
    from trackers.sources import open_source

    seq = AnnotatedSequence("jumps", make_clip(tmp_path), groundtruth())
    with open_source(seq.source) as frames:
        effort = simulate_tracker(seq, frames, (80, 80), TrackerSettings(tracker="identity"))
    # identity keeps the first box: fixes at 5 (to B) and 10 (to C), one for the absent
    # span 15-17; the run from 10 already holds C on 18-19.
    assert effort.corrections == 3
    assert effort.keyframes == [0, 5, 10, 15, 16, 17]
    assert effort.mean_iou == 1.0
    assert effort.per100 == pytest.approx(15.0)


def test_interpolation_corrections_are_counted_by_hand():
    seq = AnnotatedSequence("jumps", Path("unused"), groundtruth())
    effort = simulate_interpolation(seq, (80, 80))
    # The jump to B costs keyframes 5, then 1, 2, 3, 4 (each new keyframe re-interpolates
    # the frames before it, which drift off A); the jump to C costs 10, 6, 7, 8, 9; the
    # absent span costs one; the track is hidden after it until a keyframe at 18.
    assert effort.corrections == 12
    assert effort.keyframes == [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 15, 16, 17, 18]
    assert effort.mean_iou == 1.0


def test_effort_cli_table_and_json(tmp_path, capsys):
    folder = make_clip(tmp_path)
    gt = groundtruth()
    lines = [
        "NaN,NaN,NaN,NaN" if np.isnan(r).any() else f"{r[0] + 1:g},{r[1] + 1:g},{r[2]:g},{r[3]:g}" for r in gt
    ]
    (folder / "groundtruth_rect.txt").write_text("\n".join(lines) + "\n")
    out = tmp_path / "effort.json"
    assert main(["effort", str(folder), "--tracker", "identity", "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["iou"] == 0.5
    assert report["trackers"]["identity"]["per100"] == pytest.approx(15.0)
    assert report["interpolation"]["per100"] == pytest.approx(60.0)
    assert report["trackers"]["identity"]["ratio_vs_interpolation"] == pytest.approx(4.0)
    assert report["trackers"]["identity"]["sequences"]["seq"]["corrections"] == 3
    assert "4.00x" in capsys.readouterr().out


def test_bidirectional_mode_runs(tmp_path):
    folder = make_clip(tmp_path)
    seq = AnnotatedSequence("jumps", folder, groundtruth())
    report = measure_effort([seq], ["identity"], mode="bidirectional")
    assert report.trackers["identity"]["jumps"].corrections >= 3
    with pytest.raises(ValueError):
        measure_effort([seq], ["identity"], mode="sideways")


def test_policy_reaches_the_app_session(tmp_path):
    folder = make_clip(tmp_path)
    seq = AnnotatedSequence("jumps", folder, groundtruth())
    off = measure_effort([seq], ["identity"], policy={"rejoin_iou": 0.8, "rejoin_frames": 10**9})
    assert off.trackers["identity"]["jumps"].corrections == 3
    with pytest.raises(TypeError, match="retrack_everything"):
        measure_effort([seq], ["identity"], policy={"retrack_everything": True})
