"""VOT sequence folders: 0-based regions, polygons, tags, the sequence file, and the workspace export."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from trackers.formats import detect_format, vot
from trackers.formats.common import FormatError
from trackers.trajectory import Entry, Trajectory
from trackers.types import Box


def test_read_a_vot_sequence(tmp_path):
    # vot-toolkit's layout (vot/dataset/vot.py): sequence metadata, groundtruth.txt with
    # rectangles or polygons, per-frame tags.
    seq = tmp_path / "bag"
    (seq / "color").mkdir(parents=True)
    (seq / "sequence").write_text("channels.color=color/%08d.jpg\nfps=30\nwidth=640\nheight=360\n")
    (seq / "groundtruth.txt").write_text("10,20,30,40\n1,1,11,1,11,21,1,21\nnan,nan,nan,nan\n0\n")
    (seq / "occlusion.tag").write_text("1\n0\n0\n0\n")
    assert detect_format(seq) == "vot" and detect_format(seq / "groundtruth.txt") == "vot"
    t = vot.read(seq)
    assert t.frame_size == (640, 360)
    assert t.entries == (
        Entry(Box(10, 20, 30, 40), occluded=True),
        Entry(Box(1, 1, 10, 20)),
        Entry(None),
        Entry(None),
    )


def test_write_and_back(tmp_path):
    t = Trajectory((Entry(Box(1.5, 2, 3, 4), occluded=True), None, Entry(None)), frame_size=(64, 48))
    vot.write(t, tmp_path / "seq")
    assert (
        tmp_path / "seq" / "groundtruth.txt"
    ).read_text() == "1.5,2,3,4\nNaN,NaN,NaN,NaN\nNaN,NaN,NaN,NaN\n"
    assert (tmp_path / "seq" / "occlusion.tag").read_text() == "1\n0\n0\n"
    back = vot.read(tmp_path / "seq")
    assert back.entries == (t[0], Entry(None), Entry(None)) and back.frame_size == (64, 48)


def test_export_a_workspace_sequence_with_frames(tmp_path):
    frames = tmp_path / "clip"
    frames.mkdir()
    for i in range(3):
        cv2.imwrite(str(frames / f"{i + 1:04d}.png"), np.full((48, 64, 3), 40 * i, np.uint8))
    t = Trajectory.from_boxes([[1, 2, 3, 4]] * 3, frame_size=(64, 48))
    sequences = tmp_path / "ws" / "sequences"
    folder = vot.export_vot_sequence(t, frames, sequences, "clip1")
    assert sorted(p.name for p in (folder / "color").iterdir()) == [
        "00000001.jpg",
        "00000002.jpg",
        "00000003.jpg",
    ]
    assert (sequences / "list.txt").read_text() == "clip1\n"
    assert "name=clip1" in (folder / "sequence").read_text()
    vot.export_vot_sequence(t, frames, sequences, "clip2")
    assert (sequences / "list.txt").read_text() == "clip1\nclip2\n"
    with pytest.raises(FormatError, match="plain folder name"):
        vot.export_vot_sequence(t, frames, sequences, "../x")


def test_a_video_of_another_size_or_length_is_refused_and_nothing_is_written(tmp_path):
    frames = tmp_path / "clip"
    frames.mkdir()
    for i in range(3):
        cv2.imwrite(str(frames / f"{i + 1:04d}.png"), np.full((48, 64, 3), 40 * i, np.uint8))
    sequences = tmp_path / "ws" / "sequences"
    wrong_size = Trajectory.from_boxes([[1, 2, 3, 4]] * 3, frame_size=(80, 48))
    with pytest.raises(FormatError, match="frame 0 is 64x48, the trajectory's frames are 80x48"):
        vot.export_vot_sequence(wrong_size, frames, sequences, "clip1")
    too_long = Trajectory.from_boxes([[1, 2, 3, 4]] * 4, frame_size=(64, 48))
    with pytest.raises(FormatError, match="has 3 frames, the trajectory 4"):
        vot.export_vot_sequence(too_long, frames, sequences, "clip1")
    assert not (sequences / "clip1").exists() and not (sequences / "list.txt").exists()


def test_convert_to_vot_with_the_video_writes_the_frames(tmp_path, capsys):
    from app.cli import main

    frames = tmp_path / "clip"
    frames.mkdir()
    for i in range(2):
        cv2.imwrite(str(frames / f"{i + 1:04d}.png"), np.zeros((48, 64, 3), np.uint8))
    source = tmp_path / "groundtruth_rect.txt"
    source.write_text("2,3,4,5\n3,3,4,5\n")
    out = tmp_path / "sequences" / "mine"
    assert main(["convert", str(source), str(out), "--to", "vot", "--video", str(frames)]) == 0
    assert (out / "color" / "00000002.jpg").is_file() and (tmp_path / "sequences" / "list.txt").is_file()
    assert vot.read(out)[0].box == Box(1, 2, 4, 5)


def test_bad_region(tmp_path):
    (tmp_path / "groundtruth.txt").write_text("1,2,3\n")
    (tmp_path / "sequence").write_text("channels.color=color/%08d.jpg\n")
    with pytest.raises(FormatError, match=r"groundtruth.txt:1: expected a rectangle"):
        vot.read(tmp_path)


def test_several_objects_become_several_workspace_sequences(tmp_path, capsys):
    from app.cli import main
    from trackers.formats import read_tracks

    frames = tmp_path / "clip"
    frames.mkdir()
    for i in range(2):
        cv2.imwrite(str(frames / f"{i + 1:04d}.png"), np.zeros((48, 64, 3), np.uint8))
    source = tmp_path / "gt.txt"
    source.write_text("1,3,2,3,4,5,-1,-1,-1,-1\n1,7,20,3,4,5,-1,-1,-1,-1\n2,3,3,3,4,5,-1,-1,-1,-1\n")
    sequences = tmp_path / "sequences"
    assert main(["convert", str(source), str(sequences), "--to", "vot", "--video", str(frames)]) == 0
    assert (sequences / "list.txt").read_text() == "3_object\n7_object\n"
    assert (sequences / "7_object" / "color" / "00000002.jpg").is_file()
    assert [t.id for t in read_tracks(sequences, "vot")] == [3, 7]
