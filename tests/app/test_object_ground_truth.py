"""``eval`` and ``effort`` on multi-object ground truth: one scored sequence per object."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from app.cli import main
from resources.demo_clip import render_sequence
from trackers.evaluation import load_sequences
from trackers.object_sequences import object_sequences

N = 8


def _frames(folder):
    frames, boxes = render_sequence(n_frames=N, size=(160, 120), seed=3)
    folder.mkdir(parents=True)
    for i, frame in enumerate(frames):
        cv2.imwrite(str(folder / f"{i + 1:06d}.jpg"), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    return boxes


@pytest.fixture
def mot_folder(tmp_path):
    """img1/ and gt/gt.txt (9 columns) with object 1 on every frame, 2 from frame 3 on, and an ignore row."""
    seq = tmp_path / "MOT-demo"
    boxes = _frames(seq / "img1")
    lines = []
    for i, b in enumerate(boxes):
        lines.append(f"{i + 1},1,{b.x + 1:g},{b.y + 1:g},{b.w:g},{b.h:g},1,1,1")
        if i >= 2:
            lines.append(f"{i + 1},2,101,11,20,30,1,1,0.5")
    lines.append("1,7,1,1,5,5,0,1,1")  # consider = 0: an ignore region
    (seq / "gt").mkdir()
    (seq / "gt" / "gt.txt").write_text("\n".join(lines) + "\n")
    return seq, boxes


def test_a_mot_folder_gives_one_sequence_per_object(mot_folder):
    seq, boxes = mot_folder
    sequences = object_sequences(seq)
    assert [s.name for s in sequences] == ["MOT-demo#1", "MOT-demo#2"]
    np.testing.assert_allclose(sequences[0].groundtruth[0], boxes[0].as_array())
    second = sequences[1].groundtruth
    assert np.isnan(second[:2]).all() and second[2].tolist() == [100, 10, 20, 30]
    assert [s.name for s in load_sequences([seq.parent])] == ["MOT-demo#1", "MOT-demo#2"]


def test_eval_and_effort_score_each_object(mot_folder, tmp_path, capsys):
    seq, _ = mot_folder
    out = tmp_path / "eval.json"
    assert main(["eval", str(seq), "--tracker", "identity", "--json", str(out)]) == 0
    scores = json.loads(out.read_text())["trackers"]["identity"]["sequences"]
    assert set(scores) == {"MOT-demo#1", "MOT-demo#2"}
    # a still object: identity is perfect (IoU 1 passes every threshold but the last, "> 1")
    assert scores["MOT-demo#2"]["auc"] == pytest.approx(20 / 21)
    out = tmp_path / "effort.json"
    assert main(["effort", str(seq), "--tracker", "identity", "--json", str(out)]) == 0
    text = out.read_text()
    assert "MOT-demo#1" in text and "MOT-demo#2" in text


def test_a_cvat_video_file_beside_a_video(tmp_path):
    folder = tmp_path / "clip"
    _frames(folder / "img")
    tracks = []
    for track_id, x in ((0, 10), (4, 60)):
        boxes = "".join(
            f'<box frame="{i}" xtl="{x}" ytl="10" xbr="{x + 20}" ybr="40" '
            'outside="0" occluded="0" keyframe="1"/>'
            for i in range(N)
        )
        tracks.append(f'<track id="{track_id}" label="person" source="manual">{boxes}</track>')
    (folder / "annotations.xml").write_text(
        f"<annotations><version>1.1</version>{''.join(tracks)}</annotations>"
    )
    sequences = object_sequences(folder)
    assert [s.name for s in sequences] == ["clip#0", "clip#4"]
    assert sequences[1].groundtruth[5].tolist() == [60, 10, 20, 30]


def test_a_single_object_file_is_left_to_the_single_object_loaders(tmp_path):
    folder = tmp_path / "one"
    _frames(folder / "img1")
    (folder / "gt.txt").write_text("1,1,1,1,5,5,1,1,1\n")
    assert object_sequences(folder) == []
