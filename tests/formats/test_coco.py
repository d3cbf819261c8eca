"""COCO-VID / TAO JSON: 0-based bbox, TAO's and mmtracking's keys."""

from __future__ import annotations

import json

import pytest

from trackers.formats import coco
from trackers.formats.common import FormatError
from trackers.trajectory import Entry, Origin, Trajectory
from trackers.types import Box

TAO = {
    "videos": [{"id": 5, "name": "val/YFCC100M/v_1", "width": 640, "height": 480}],
    "images": [
        {"id": 50, "video_id": 5, "file_name": "f0.jpg", "frame_index": 0, "width": 640, "height": 480},
        {"id": 51, "video_id": 5, "file_name": "f30.jpg", "frame_index": 30, "width": 640, "height": 480},
        {"id": 52, "video_id": 5, "file_name": "f60.jpg", "frame_index": 60, "width": 640, "height": 480},
    ],
    "tracks": [{"id": 9, "category_id": 2, "video_id": 5}],
    "categories": [{"id": 1, "name": "person"}, {"id": 2, "name": "dog"}],
    "annotations": [
        {"id": 1, "image_id": 50, "track_id": 9, "category_id": 2, "bbox": [10, 20, 30, 40], "area": 1200},
        {"id": 2, "image_id": 52, "track_id": 9, "category_id": 2, "bbox": [12.5, 20, 30, 40], "area": 1200},
    ],
}


def test_read_tao(tmp_path):
    path = tmp_path / "tao.json"
    path.write_text(json.dumps(TAO))
    t = coco.read(path)
    assert t.frame_count == 61 and t.frame_size == (640, 480) and t.label == "dog"
    assert t[0] == Entry(Box(10, 20, 30, 40))  # COCO's bbox is already 0-based x, y, w, h
    assert t[30] == Entry(None)  # listed, no box: absent
    assert t[60] == Entry(Box(12.5, 20, 30, 40))
    assert t[1] is None  # not listed: unannotated


def test_read_mmtracking_keys(tmp_path):
    data = {
        "videos": [{"id": 1, "name": "a"}],
        "images": [{"id": 1, "video_id": 1, "frame_id": 0}, {"id": 2, "video_id": 1, "frame_id": 1}],
        "categories": [{"id": 1, "name": "car"}],
        "annotations": [
            {
                "id": 1,
                "image_id": 2,
                "instance_id": 4,
                "category_id": 1,
                "bbox": [1, 2, 3, 4],
                "occluded": True,
            }
        ],
    }
    path = tmp_path / "vid.json"
    path.write_text(json.dumps(data))
    t = coco.read(path)
    assert t.entries == (Entry(None), Entry(Box(1, 2, 3, 4), occluded=True)) and t.label == "car"


def test_write_and_our_attributes(tmp_path):
    t = Trajectory(
        (Entry(Box(1, 2, 3, 4), Origin.TRACKED, 0.5, True), None, Entry(None)),
        frame_size=(64, 48),
        label="cat",
    )
    path = tmp_path / "out.json"
    coco.write(t, path)
    data = json.loads(path.read_text())
    assert [i["frame_index"] for i in data["images"]] == [0, 2]
    (ann,) = data["annotations"]
    assert ann["bbox"] == [1, 2, 3, 4] and ann["track_id"] == ann["instance_id"] == 1
    assert ann["score"] == 0.5 and ann["attributes"] == {"occluded": True, "origin": "tracked"}
    assert data["categories"][0]["name"] == "cat" and data["videos"][0]["width"] == 64
    assert coco.read(path) == t


def test_several_tracks(tmp_path):
    data = json.loads(json.dumps(TAO))
    data["annotations"].append(
        {"id": 3, "image_id": 51, "track_id": 10, "category_id": 1, "bbox": [0, 0, 1, 1]}
    )
    path = tmp_path / "tao.json"
    path.write_text(json.dumps(data))
    with pytest.raises(FormatError, match=r"2 tracks \(9, 10\)"):
        coco.read(path)
    t = coco.read(path, track=10)
    assert t[30] == Entry(Box(0, 0, 1, 1)) and t[0] == Entry(None) and t.label == "person"


# Plain image COCO as CVAT's "COCO 1.0" export of a video task writes it: no video keys,
# frames named frame_NNNNNN, the track in attributes.track_id (cvat-ai/cvat#6969,
# "Allow to upload tracks from COCO formats"; datumaro keeps attributes the same way).
CVAT_COCO = {
    "licenses": [{"name": "", "id": 0, "url": ""}],
    "info": {"contributor": "", "date_created": "", "description": "", "url": "", "version": "", "year": ""},
    "categories": [
        {"id": 1, "name": "car", "supercategory": ""},
        {"id": 2, "name": "person", "supercategory": ""},
    ],
    "images": [
        {"id": 1, "width": 640, "height": 360, "file_name": "frame_000000.jpg", "license": 0},
        {"id": 2, "width": 640, "height": 360, "file_name": "frame_000001.jpg", "license": 0},
        {"id": 3, "width": 640, "height": 360, "file_name": "frame_000002.jpg", "license": 0},
    ],
    "annotations": [
        {
            "id": 1,
            "image_id": 1,
            "category_id": 1,
            "segmentation": [],
            "area": 1200.0,
            "bbox": [10.0, 20.0, 30.0, 40.0],
            "iscrowd": 0,
            "attributes": {"occluded": False, "rotation": 0.0, "track_id": 0, "keyframe": True},
        },
        {
            "id": 2,
            "image_id": 3,
            "category_id": 1,
            "segmentation": [],
            "area": 1200.0,
            "bbox": [14.0, 20.0, 30.0, 40.0],
            "iscrowd": 0,
            "attributes": {"occluded": True, "rotation": 0.0, "track_id": 0, "keyframe": True},
        },
        {
            "id": 3,
            "image_id": 2,
            "category_id": 2,
            "segmentation": [],
            "area": 50.0,
            "bbox": [1.0, 2.0, 5.0, 10.0],
            "iscrowd": 0,
            "attributes": {"occluded": False, "rotation": 0.0, "track_id": 1, "keyframe": True},
        },
    ],
}


def test_plain_image_coco_with_attribute_track_ids(tmp_path):
    path = tmp_path / "instances_default.json"
    path.write_text(json.dumps(CVAT_COCO))
    with pytest.raises(FormatError, match="2 tracks"):
        coco.read(path)
    car = coco.read(path, track=0)
    assert car.label == "car" and car.frame_size == (640, 360) and car.frame_count == 3
    assert car.entries == (Entry(Box(10, 20, 30, 40)), Entry(None), Entry(Box(14, 20, 30, 40), occluded=True))
    assert coco.read(path, track="person")[1] == Entry(Box(1, 2, 5, 10))  # by category
    tracks = coco.read_tracks(path)
    assert [(t.id, t.label) for t in tracks] == [(0, "car"), (1, "person")]
    assert tracks[0].trajectory == car


def test_two_tracks_of_one_category_need_an_id(tmp_path):
    data = json.loads(json.dumps(CVAT_COCO))
    data["annotations"][2]["category_id"] = 1
    path = tmp_path / "a.json"
    path.write_text(json.dumps(data))
    with pytest.raises(FormatError, match="2 car tracks"):
        coco.read(path, track="car")


def test_a_zero_image_size_is_unknown(tmp_path):
    """datumaro's coco_instances export writes width = height = 0 when it has no media."""
    data = json.loads(json.dumps(CVAT_COCO))
    for image in data["images"]:
        image["width"] = image["height"] = 0
    path = tmp_path / "instances_default.json"
    path.write_text(json.dumps(data))
    assert coco.read(path, track=0).frame_size is None
    assert coco.read(path, track=0, frame_size=(640, 360)).frame_size == (640, 360)
