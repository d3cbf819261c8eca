"""Independent readers agree with our writers (skipped when motmetrics / datumaro / pycocotools /
label-studio-sdk are not installed; they passed with motmetrics 1.4.0, datumaro 1.13.12,
pycocotools 2.0.11 and label-studio-sdk 2.1.2).

None is a dependency: install them into a separate folder (pip install --target DIR) and put
it on PYTHONPATH to run these.
"""

from __future__ import annotations

import math

import pytest

from trackers.formats import cvat, mot
from trackers.trajectory import Entry, Origin, Trajectory
from trackers.types import Box

TRAJECTORY = Trajectory(
    (
        Entry(Box(10, 20, 30, 40), Origin.KEYFRAME, 0.9, occluded=True),
        Entry(Box(12.5, 21, 30, 40), Origin.TRACKED, 0.8),
        Entry(None, Origin.KEYFRAME),
        Entry(Box(15, 22, 31, 41), Origin.TRACKED, 0.7),
    ),
    frame_size=(64, 48),
    label="car",
)


def test_motmetrics_reads_our_mot_file(tmp_path):
    mm = pytest.importorskip("motmetrics")
    path = tmp_path / "res.txt"
    mot.write(TRAJECTORY, path)
    frame = mm.io.loadtxt(str(path), fmt="mot15-2D")  # subtracts 1 from X and Y itself
    rows = {int(f): r for (f, _id), r in frame.iterrows()}
    assert sorted(rows) == [1, 2, 4]  # MOT frames are 1-based; the absent frame has no row
    for index, entry in enumerate(TRAJECTORY.entries):
        if entry is None or entry.box is None:
            continue
        row = rows[index + 1]
        got = (row["X"], row["Y"], row["Width"], row["Height"])
        assert all(
            math.isclose(a, b) for a, b in zip(got, (entry.box.x, entry.box.y, entry.box.w, entry.box.h))
        )
        assert math.isclose(row["Confidence"], entry.score)


def test_datumaro_reads_our_cvat_video_file(tmp_path):
    dm = pytest.importorskip("datumaro")
    folder = tmp_path / "cvat"
    folder.mkdir()
    cvat.write(TRAJECTORY, folder / "annotations.xml")
    dataset = dm.Dataset.import_from(str(folder), "cvat")
    seen = {}
    for item in dataset:
        (bbox,) = [a for a in item.annotations if a.type == dm.AnnotationType.bbox]
        seen[int(item.attributes["frame"])] = bbox
    assert sorted(seen) == [0, 1, 2, 3]  # 0-based frames; the absent frame is an outside box
    for index, entry in enumerate(TRAJECTORY.entries):
        bbox = seen[index]
        assert bbox.attributes["outside"] is (entry.box is None)
        assert bbox.attributes["keyframe"] is True  # every box: CVAT keeps only keyframes
        assert bbox.attributes["origin"] == entry.origin.value
        if entry.box is not None:
            assert all(
                math.isclose(a, b)
                for a, b in zip(bbox.get_bbox(), (entry.box.x, entry.box.y, entry.box.w, entry.box.h))
            )
            assert bbox.attributes["occluded"] is entry.occluded


def test_pycocotools_reads_our_coco_file(tmp_path):
    """Issue 18.1: the COCO export pycocotools 2.0.11 loads, boxes unchanged, one track per object."""
    coco_api = pytest.importorskip("pycocotools.coco")
    from trackers.formats import Track, coco

    other = Trajectory((Entry(Box(1, 1, 5, 5)), None, None, Entry(Box(2, 1, 5, 5))), (64, 48), "person")
    path = tmp_path / "tao.json"
    coco.write_tracks([Track(4, "car", TRAJECTORY), Track(9, "person", other)], path)
    api = coco_api.COCO(str(path))
    cats = {c["name"]: c["id"] for c in api.loadCats(api.getCatIds())}
    cars = api.loadAnns(api.getAnnIds(catIds=[cats["car"]]))
    assert {a["track_id"] for a in cars} == {4}
    by_frame = {api.loadImgs(a["image_id"])[0]["frame_index"]: a["bbox"] for a in cars}
    for index, entry in enumerate(TRAJECTORY.entries):
        if entry is not None and entry.box is not None:
            assert by_frame[index] == [entry.box.x, entry.box.y, entry.box.w, entry.box.h]
    assert len(api.getAnnIds(catIds=[cats["person"]])) == 2


def test_datumaro_reads_our_voc_folder(tmp_path):
    """Issue 18.9: with labelmap.txt datumaro's VOC import works; it reads the devkit's
    1-based inclusive corners as 0-based ones (what the VOC help says)."""
    dm = pytest.importorskip("datumaro")
    from trackers.formats import voc

    # not one of VOC's 20 classes: without labelmap.txt datumaro fails with "Undeclared label"
    trajectory = Trajectory((Entry(Box(10, 20, 30, 40)), Entry(None)), frame_size=(64, 48), label="red car")
    voc.write(trajectory, tmp_path / "voc")
    dataset = dm.Dataset.import_from(str(tmp_path / "voc"), "voc_detection")
    labels = dataset.categories()[dm.AnnotationType.label]
    boxes = {item.id: [a for a in item.annotations if a.type == dm.AnnotationType.bbox] for item in dataset}
    (bbox,) = boxes["frame_000000"]
    assert labels[bbox.label].name == "red car"
    assert bbox.get_bbox() == [11, 21, 29, 39]  # xmin, ymin, xmax - xmin, ymax - ymin
    assert boxes["frame_000001"] == []


def test_datumaro_coco_export_of_a_video_task_reads_back(tmp_path):
    """Issue 18.7: plain image COCO as datumaro (and so CVAT) writes it, track_id in attributes."""
    dm = pytest.importorskip("datumaro")
    from trackers.formats import Track, read_tracks

    other = Trajectory((Entry(Box(1, 1, 5, 5)), Entry(Box(2, 1, 5, 5)), None, None), (64, 48), "person")
    folder = tmp_path / "cvat"
    folder.mkdir()
    cvat.write_tracks([Track(0, "car", TRAJECTORY), Track(1, "person", other)], folder / "annotations.xml")
    dataset = dm.Dataset.import_from(str(folder), "cvat")
    dataset.export(str(tmp_path / "coco"), "coco_instances", save_media=False)
    (path,) = (tmp_path / "coco" / "annotations").glob("*.json")
    tracks = {t.label: t for t in read_tracks(path, "coco")}
    assert set(tracks) == {"car", "person"}
    for index, entry in enumerate(TRAJECTORY.entries):
        got = tracks["car"].trajectory[index]
        if entry is not None and entry.box is not None:
            assert got is not None and got.box == entry.box and got.occluded == entry.occluded


def test_datumaro_ultralytics_export_reads_back(tmp_path):
    """Issue 18.3: an Ultralytics YOLO root as datumaro writes it (data.yaml, labels/train, labels/val)."""
    dm = pytest.importorskip("datumaro")
    import numpy as np

    from trackers.formats import read_trajectory

    def item(index, subset, boxes):
        image = dm.Image.from_numpy(np.zeros((48, 64, 3), np.uint8))
        return dm.DatasetItem(id=f"frame_{index:06d}", subset=subset, media=image, annotations=boxes)

    items = [
        item(0, "train", [dm.Bbox(10, 20, 30, 20, label=1)]),
        item(1, "train", []),
        item(2, "val", [dm.Bbox(12, 20, 30, 20, label=1)]),
    ]
    dm.Dataset.from_iterable(items, categories=["person", "red car"]).export(
        str(tmp_path / "out"), "yolo_ultralytics", save_media=True
    )
    trajectory, name = read_trajectory(tmp_path / "out", frame_size=(64, 48))
    assert name == "yolo" and trajectory.label == "red car" and trajectory.frame_count == 3
    assert trajectory[1] == Entry(None)
    for index, x in ((0, 10), (2, 12)):
        box = trajectory[index].box
        assert all(
            math.isclose(a, b, abs_tol=1e-3) for a, b in zip((box.x, box.y, box.w, box.h), (x, 20, 30, 20))
        )


def test_label_studio_sdk_fills_our_keyframes_as_we_read_them(tmp_path):
    """Issue 18.4: label-studio-sdk 2.1.2's keyframe filling (extract_key_frames) and our
    reader agree on every frame, for their export and for the predictions we write."""
    video = pytest.importorskip("label_studio_sdk._extensions.label_studio_tools.postprocessing.video")
    import copy
    import json

    from trackers.formats import labelstudio

    from .test_labelstudio import EXPORT

    size = (200, 100)
    ours = Trajectory(
        (
            Entry(Box(20, 20, 50, 50)),
            Entry(Box(22, 20, 50, 50)),
            Entry(None),
            None,
            Entry(Box(1, 2, 3, 4)),
            None,
        ),
        frame_size=size,
    )
    written = tmp_path / "tasks.json"
    labelstudio.write(ours, written)
    exported = tmp_path / "export.json"
    exported.write_text(json.dumps(EXPORT))
    for path, group in ((exported, "annotations"), (written, "predictions")):
        (result,) = [
            r for r in json.loads(path.read_text())[0][group][0]["result"] if r["type"] == "videorectangle"
        ]
        (filled,) = video.extract_key_frames([copy.deepcopy(result)])
        theirs = {f["frame"] - 1: f for f in filled["value"]["sequence"]}
        trajectory = labelstudio.read(path, frame_size=size)
        for index, entry in enumerate(trajectory.entries):
            if entry is None or entry.box is None:
                continue  # no box: the SDK has no frame there either (checked below)
            f = theirs[index]
            expected = (
                f["x"] * size[0] / 100,
                f["y"] * size[1] / 100,
                f["width"] * size[0] / 100,
                f["height"] * size[1] / 100,
            )
            assert all(
                math.isclose(a, b, abs_tol=1e-9)
                for a, b in zip((entry.box.x, entry.box.y, entry.box.w, entry.box.h), expected)
            )
        assert sorted(theirs) == [
            i for i, e in enumerate(trajectory.entries) if e is not None and e.box is not None
        ]
