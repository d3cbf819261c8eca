"""GOT-10k: 1-based boxes, absence and cover labels, meta_info.ini; the dataset export."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from trackers.formats import got10k
from trackers.formats.common import FormatError
from trackers.sources import open_source
from trackers.trajectory import Entry, Origin, Trajectory
from trackers.types import Box


def write_sequence(folder, gt, absence=None, cover=None, meta=None):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "groundtruth.txt").write_text(gt)
    for name, text in (("absence.label", absence), ("cover.label", cover), ("meta_info.ini", meta)):
        if text is not None:
            (folder / name).write_text(text)
    return folder


def test_read_all_files(tmp_path):
    folder = write_sequence(
        tmp_path / "GOT-10k_Val_000001",
        "11,21,30,40\n0,0,0,0\n12.5,22,30,40\n13,23,30,40\n",
        absence="0\n1\n0\n0\n",
        cover="8\n0\n5\n0\n",
        meta="[METAINFO]\nurl: https://example.org/v\nobject_class: ichneumon\nmotion_class: walking\n"
        "resolution: (1280, 720)\n",
    )
    t = got10k.read(folder)
    assert t.entries == (
        Entry(Box(10, 20, 30, 40)),
        Entry(None),  # absence.label says absent; its box line is ignored
        Entry(Box(11.5, 21, 30, 40), occluded=True),  # cover 5 of 8: partly occluded
        Entry(None),  # cover 0: invisible, so absent too
    )
    assert t.label == "ichneumon" and t.frame_size == (1280, 720)
    assert got10k.read(folder / "groundtruth.txt") == t  # a file inside the folder works too


def test_test_split_has_only_the_first_box(tmp_path):
    folder = write_sequence(tmp_path / "seq", "11,21,30,40\n")
    for i in range(5):
        (folder / got10k.frame_name(i)).write_bytes(b"")
    t = got10k.read(folder)
    assert t.frame_count == 5 and t[0] == Entry(Box(10, 20, 30, 40)) and t.entries[1:] == (None,) * 4


def test_write(tmp_path):
    t = Trajectory(
        (
            Entry(Box(0, 0, 10, 20), Origin.KEYFRAME),
            Entry(Box(600, 5, 50, 5), occluded=True),
            Entry(None),
            None,
        ),
        frame_size=(640, 360),
        label="car",
    )
    got10k.write(t, tmp_path / "seq")
    files = {p.name: p.read_text() for p in (tmp_path / "seq").iterdir()}
    assert files["groundtruth.txt"] == "1,1,10,20\n601,6,50,5\nNaN,NaN,NaN,NaN\nNaN,NaN,NaN,NaN\n"
    assert files["absence.label"] == "0\n0\n1\n1\n"
    assert files["cover.label"] == f"8\n{got10k.OCCLUDED_COVER}\n0\n0\n"
    assert files["cut_by_image.label"] == "0\n1\n0\n0\n"  # 600 + 50 > 640
    assert files["meta_info.ini"] == "[METAINFO]\nobject_class: car\nresolution: (640, 360)\n"


def make_frames(folder, count, size=(32, 24)):
    folder.mkdir(parents=True)
    for i in range(count):
        image = np.full((size[1], size[0], 3), 40 * i, dtype=np.uint8)
        cv2.imwrite(str(folder / f"{i:04d}.png"), image)
    return folder


def test_export_dataset(tmp_path):
    frames = make_frames(tmp_path / "clip", 4)
    t = Trajectory((Entry(Box(1, 2, 10, 8), Origin.KEYFRAME), Entry(None), None, Entry(Box(3, 2, 10, 8))))
    calls = []
    seq = got10k.export_got10k_dataset(
        t, frames, tmp_path / "train", "clip_a", progress=lambda d, n: calls.append((d, n))
    )
    assert seq == tmp_path / "train" / "clip_a"
    assert calls[-1] == (4, 4)
    assert sorted(p.name for p in seq.glob("*.jpg")) == [got10k.frame_name(i) for i in range(4)]
    assert (tmp_path / "train" / "list.txt").read_text() == "clip_a\n"
    back = got10k.read(seq)
    assert back.frame_size == (32, 24)
    assert back.entries == (Entry(Box(1, 2, 10, 8)), Entry(None), Entry(None), Entry(Box(3, 2, 10, 8)))
    with open_source(seq) as source:  # the training loader opens the folder like this
        assert len(source) == 4 and source.size == (32, 24)
        assert abs(int(source[2][0, 0, 0]) - 80) <= 2  # JPEG keeps the grey level
    # the training/evaluation view: 0-based rows, NaN where absent or unannotated
    assert got10k.is_got10k_folder(seq)
    sequence = got10k.read_got10k_sequence(seq)
    assert sequence.name == "clip_a" and sequence.source == seq
    np.testing.assert_array_equal(sequence.groundtruth, t.to_arrays().boxes)
    # a second sequence is added to the list; exporting again replaces the first
    got10k.export_got10k_dataset(t, frames, tmp_path / "train", "clip_b")
    got10k.export_got10k_dataset(
        t.with_entry(1, Entry(Box(0, 0, 1, 1))), frames, tmp_path / "train", "clip_a"
    )
    assert (tmp_path / "train" / "list.txt").read_text() == "clip_a\nclip_b\n"
    assert got10k.read(seq)[1] == Entry(Box(0, 0, 1, 1))


def test_export_refuses_a_mismatched_video_and_leaves_nothing(tmp_path):
    frames = make_frames(tmp_path / "clip", 3)
    with pytest.raises(FormatError, match="more frames"):
        got10k.export_got10k_dataset(Trajectory.empty(2), frames, tmp_path / "train", "x")
    with pytest.raises(FormatError, match="has 3 frames"):
        got10k.export_got10k_dataset(Trajectory.empty(5), frames, tmp_path / "train", "x")
    assert not (tmp_path / "train" / "x").exists() and not (tmp_path / "train" / "list.txt").exists()
    assert [p.name for p in (tmp_path / "train").iterdir()] == []  # no temporary folder left


def test_export_cancelled_from_progress(tmp_path):
    frames = make_frames(tmp_path / "clip", 3)

    def cancel(done, total):
        if done == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        got10k.export_got10k_dataset(Trajectory.empty(3), frames, tmp_path / "train", "x", progress=cancel)
    assert list((tmp_path / "train").iterdir()) == []
