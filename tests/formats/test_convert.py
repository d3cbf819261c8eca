"""``siamtrack convert``: detection, --video, --track, and the fields a target drops."""

from __future__ import annotations

import argparse
import io
import json

import cv2
import numpy as np
import pytest

from trackers.formats import cvat, detect_format, otb, read_tracks, voc, yolo
from trackers.formats.common import FormatError
from trackers.formats.convert import add_convert_parser, cmd_convert
from trackers.trajectory import Entry, Origin, Trajectory
from trackers.types import Box


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="siamtrack")
    sub = parser.add_subparsers(dest="command", required=True)
    add_convert_parser(sub)
    return parser.parse_args(["convert", *map(str, argv)])


def run(*argv: str) -> tuple[int, str]:
    err = io.StringIO()
    code = cmd_convert(parse(*argv), stderr=err)
    return code, err.getvalue()


@pytest.fixture
def video(tmp_path):
    """Three 64x48 frames in an image folder: what --video reads frame count and size from."""
    folder = tmp_path / "clip"
    folder.mkdir()
    for i in range(3):
        cv2.imwrite(str(folder / f"{i + 1:04d}.png"), np.zeros((48, 64, 3), np.uint8))
    return folder


def test_otb_to_cvat_detects_and_converts(tmp_path):
    source = tmp_path / "groundtruth_rect.txt"
    source.write_text("11,21,30,40\nNaN,NaN,NaN,NaN\n")
    code, err = run(source, tmp_path / "out.xml", "--to", "cvat")
    assert code == 0
    assert "otb -> cvat: 2 frames, 1 boxes, 1 absent" in err and "drops" not in err
    t = cvat.read(tmp_path / "out.xml")
    assert t.entries == (Entry(Box(10, 20, 30, 40)), Entry(None))


def test_dropped_fields_are_named(tmp_path, video):
    rich = Trajectory(
        (Entry(Box(1, 2, 3, 4), Origin.TRACKED, 0.5, True), Entry(None, Origin.KEYFRAME), None),
        frame_size=(64, 48),
        label="car",
    )
    source = tmp_path / "in.json"
    from trackers.formats import coco

    coco.write(rich, source)
    code, err = run(source, tmp_path / "yolo", "--to", "yolo")
    assert code == 0
    # COCO already lost the absent frame's keyframe and the trailing unannotated frame.
    assert "yolo drops: origin, score, occluded, frame_size\n" in err
    assert yolo.read(tmp_path / "yolo", frame_size=(64, 48))[0] == Entry(Box(1, 2, 3, 4))
    code, err = run(source, tmp_path / "gt.txt", "--to", "otb")
    assert "otb drops: origin, score, occluded, label, frame_size\n" in err
    # The video has the size; its third frame is unannotated, which OTB writes as absent.
    code, err = run(source, tmp_path / "gt.txt", "--to", "otb", "--video", video)
    assert "otb drops: unannotated, origin, score, occluded, label\n" in err


def test_yolo_needs_the_video(tmp_path, video):
    source = tmp_path / "groundtruth_rect.txt"
    source.write_text("11,21,30,20\n")
    with pytest.raises(FormatError, match="needs the frame size: give the video with --video"):
        run(source, tmp_path / "yolo", "--to", "yolo")
    assert not (tmp_path / "yolo").exists()
    code, _err = run(source, tmp_path / "yolo", "--to", "yolo", "--video", video)
    back = yolo.read(tmp_path / "yolo", frame_size=(64, 48))
    assert code == 0 and back.frame_count == 3 and back[0] == Entry(Box(10, 20, 30, 20))
    # and back again, with --from given and the size from the video
    code, _err = run(tmp_path / "yolo", tmp_path / "voc", "--from", "yolo", "--to", "voc", "--video", video)
    assert voc.read(tmp_path / "voc").frame_size == (64, 48)


def test_video_frame_count_is_checked(tmp_path, video):
    source = tmp_path / "groundtruth_rect.txt"
    source.write_text("1,1,2,2\n" * 5)
    with pytest.raises(FormatError, match="video has only 3 frames"):
        run(source, tmp_path / "out.json", "--to", "coco", "--video", video)


def test_track_choice(tmp_path):
    source = tmp_path / "gt.txt"
    source.write_text("1,1,1,1,5,5,1,-1,-1,-1\n1,2,11,11,5,5,1,-1,-1,-1\n")
    # Without --track every object is carried: OTB holds one, so OUT is a folder of them.
    code, err = run(source, tmp_path / "all", "--to", "otb")
    assert code == 0 and "2 objects (ids 1, 2)" in err and "one entry per object" in err
    assert sorted(p.name for p in (tmp_path / "all").iterdir()) == ["1_object.txt", "2_object.txt"]
    code, err = run(source, tmp_path / "all.xml", "--to", "cvat")
    assert [t.id for t in read_tracks(tmp_path / "all.xml")] == [1, 2]
    (tmp_path / "file.txt").write_text("")
    with pytest.raises(FormatError, match="written to a folder"):
        run(source, tmp_path / "file.txt", "--to", "otb")
    code, _ = run(source, tmp_path / "out.txt", "--to", "otb", "--track", "2")
    assert code == 0 and otb.read(tmp_path / "out.txt")[0] == Entry(Box(10, 10, 5, 5))
    otb_in = tmp_path / "groundtruth_rect.txt"
    otb_in.write_text("1,1,1,1\n")
    with pytest.raises(ValueError, match="holds one object"):
        run(otb_in, tmp_path / "o.txt", "--to", "mot", "--track", "1")


def test_user_errors(tmp_path, capsys):
    with pytest.raises(SystemExit):
        parse("a", "b", "--to", "pascal")  # not a format: argparse says so
    assert "invalid choice" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        parse("a", "b")  # --to is required
    unknown = tmp_path / "notes.md"
    unknown.write_text("hello\n")
    with pytest.raises(FormatError, match="cannot tell the annotation format"):
        run(unknown, tmp_path / "o.txt", "--to", "otb")
    with pytest.raises(FormatError, match="no such file"):
        run(tmp_path / "missing.txt", tmp_path / "o.txt", "--to", "otb")
    (tmp_path / "dir").mkdir()
    source = tmp_path / "groundtruth_rect.txt"
    source.write_text("1,1,1,1\n")
    with pytest.raises(FormatError, match="is a folder"):
        run(source, tmp_path / "dir", "--to", "mot")


def test_detection_rules(tmp_path):
    def make(rel: str, text: str = "") -> None:
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)

    make("otbseq/groundtruth_rect.txt", "1,1,2,2\n")
    make("gotseq/groundtruth.txt", "1,1,2,2\n")
    make("gotseq/absence.label", "0\n")
    make("testsplit/groundtruth.txt", "1,1,2,2\n")
    make("lasotseq/groundtruth.txt", "1,1,2,2\n")
    make("lasotseq/out_of_view.txt", "0\n")
    make("vocset/Annotations/a.xml", "<annotation/>")
    make("yoloset/obj.names", "car\n")
    make("plain.txt", "1\t2\t3\t4\n")
    make("res.txt", "1,1,2,2,3,3,1,-1,-1,-1\n")
    make("x.json", json.dumps({"images": [], "annotations": []}))
    make("task.xml", "<?xml version='1.0'?><annotations><version>1.1</version></annotations>")
    expected = {
        "otbseq": "otb",
        "otbseq/groundtruth_rect.txt": "otb",
        "gotseq": "got10k",
        "gotseq/absence.label": "got10k",
        "testsplit": "got10k",
        "lasotseq": "lasot",
        "lasotseq/groundtruth.txt": "lasot",
        "vocset": "voc",
        "vocset/Annotations": "voc",
        "yoloset": "yolo",
        "plain.txt": "otb",
        "res.txt": "mot",
        "x.json": "coco",
        "task.xml": "cvat",
    }
    for rel, name in expected.items():
        assert detect_format(tmp_path / rel) == name, rel
    with pytest.raises(FormatError, match="Pascal VOC"):
        detect_format(tmp_path / "vocset/Annotations/a.xml")
