"""YOLO: normalised centre boxes, one file per frame, CVAT's YOLO 1.1 folder."""

from __future__ import annotations

import math

import pytest

from trackers.formats import yolo
from trackers.formats.common import FormatError
from trackers.trajectory import Entry, Origin, Trajectory
from trackers.types import Box


def test_datumaro_example(tmp_path):
    # datumaro wrote this line for the box (288, 209, 64, 45) on a 640x360 frame.
    labels = tmp_path / "labels"
    labels.mkdir()
    (labels / "frame_000000.txt").write_text("0 0.500000 0.643056 0.100000 0.125000\n")
    (tmp_path / "classes.txt").write_text("car\n")
    t = yolo.read(tmp_path, frame_size=(640, 360))
    box = t[0].box
    assert t.label == "car" and box is not None
    assert (box.x, box.w, box.h) == (288, 64, 45)
    assert math.isclose(box.y, 209, abs_tol=1e-3)  # six decimals: 0.643056 * 360 = 231.50016


def test_write(tmp_path):
    t = Trajectory(
        (Entry(Box(288, 209, 64, 45), Origin.KEYFRAME), Entry(None), None), frame_size=(640, 360), label="car"
    )
    yolo.write(t, tmp_path / "out")
    out = tmp_path / "out"
    cls, *values = (out / "obj_train_data" / "frame_000000.txt").read_text().split()
    assert cls == "0"
    assert [float(v) for v in values] == pytest.approx([0.5, 231.5 / 360, 0.1, 0.125], abs=1e-12)
    assert (out / "obj_train_data" / "frame_000001.txt").read_text() == ""  # absent: empty file
    assert not (out / "obj_train_data" / "frame_000002.txt").exists()  # unannotated: no file
    assert (out / "obj.names").read_text() == "car\n"
    assert (out / "train.txt").read_text().splitlines()[2] == "data/obj_train_data/frame_000002.jpg"


def test_frame_size_is_needed(tmp_path):
    with pytest.raises(FormatError, match="--video"):
        yolo.write(Trajectory.empty(1), tmp_path / "out")
    assert not (tmp_path / "out").exists()
    (tmp_path / "labels").mkdir()
    with pytest.raises(FormatError, match="--video"):
        yolo.read(tmp_path)


def test_frames_found_by_name_without_a_list(tmp_path):
    (tmp_path / "obj.names").write_text("object\n")
    (tmp_path / "00000003.txt").write_text("0 0.5 0.5 0.5 0.5 0.25\n")  # 1-based frame file, with a score
    t = yolo.read(tmp_path, frame_size=(100, 100))
    assert t.frame_count == 3 and t[2] == Entry(Box(25, 25, 50, 50), score=0.25) and t[0] is None


def test_an_ultralytics_dataset_root_is_read(tmp_path):
    """Issue 18.3: ``data.yaml`` + ``labels/<split>/`` read as 0 boxes, exit 0.

    Layout from docs.ultralytics.com/datasets/detect ("Ultralytics YOLO format"):
    a dataset YAML with ``names`` as a mapping, ``images/train``, ``labels/train``.
    """
    root = tmp_path / "dataset"
    (root / "labels" / "train").mkdir(parents=True)
    (root / "labels" / "val").mkdir(parents=True)
    (root / "images" / "train").mkdir(parents=True)
    (root / "data.yaml").write_text(
        "path: .\ntrain: images/train\nval: images/val\n\nnames:\n  0: person\n  1: 'red car'\n"
    )
    (root / "labels" / "train" / "frame_000000.txt").write_text("1 0.5 0.5 0.25 0.5\n")
    (root / "labels" / "train" / "frame_000001.txt").write_text("")
    (root / "labels" / "val" / "frame_000002.txt").write_text("1 0.25 0.5 0.25 0.5\n")
    from trackers.formats import detect_format

    assert detect_format(root) == "yolo"
    t = yolo.read(root, frame_size=(64, 48))
    assert t.label == "red car" and t.frame_count == 3
    assert t[0] == Entry(Box(24, 12, 16, 24)) and t[1] == Entry(None) and t[2] == Entry(Box(8, 12, 16, 24))


def test_yaml_names_spellings(tmp_path):
    path = tmp_path / "data.yaml"
    path.write_text("names: ['a', b]\n")
    assert yolo.yaml_names(path) == ["a", "b"]
    path.write_text('nc: 2\nnames:\n  - cat # first\n  - "dog"\ntrain: x\n')
    assert yolo.yaml_names(path) == ["cat", "dog"]


def test_a_folder_without_label_files_is_an_error(tmp_path):
    root = tmp_path / "dataset"
    (root / "labels" / "train").mkdir(parents=True)
    (root / "data.yaml").write_text("names: [a]\n")
    with pytest.raises(FormatError, match="no YOLO label files: looked for"):
        yolo.read(root, frame_size=(64, 48))


def test_an_ultralytics_root_with_split_lists(tmp_path):
    """datumaro's yolo_ultralytics export also writes train.txt / val.txt, one per split:
    the frames of val/ are not in train.txt and must still be read (by name)."""
    root = tmp_path / "out"
    for split in ("train", "val"):
        (root / "labels" / split).mkdir(parents=True)
    (root / "data.yaml").write_text("train: train.txt\nval: val.txt\nnames:\n  0: person\n  1: red car\n")
    (root / "train.txt").write_text("./images/train/frame_000000.jpg\n./images/train/frame_000001.jpg\n")
    (root / "val.txt").write_text("./images/val/frame_000002.jpg\n")
    (root / "labels" / "train" / "frame_000000.txt").write_text("1 0.5 0.5 0.25 0.5\n")
    (root / "labels" / "train" / "frame_000001.txt").write_text("")
    (root / "labels" / "val" / "frame_000002.txt").write_text("1 0.25 0.5 0.25 0.5\n")
    t = yolo.read(root, frame_size=(64, 48))
    assert t.label == "red car" and t.frame_count == 3 and t[2] == Entry(Box(8, 12, 16, 24))
