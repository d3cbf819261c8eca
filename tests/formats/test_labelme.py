"""LabelMe / X-AnyLabeling per-frame JSON, group_id as the object id."""

from __future__ import annotations

import json

import pytest

from trackers.formats import detect_format, labelme, read_tracks
from trackers.formats.common import FormatError
from trackers.trajectory import Entry
from trackers.types import Box


def labelme_file(shapes, name="frame_000000.jpg", size=(640, 360)):
    # The keys LabelMe writes (labelme/_label_file.py, LabelFile.save): version, flags,
    # shapes[label, points, group_id, description, shape_type, flags], imagePath,
    # imageData, imageHeight, imageWidth.
    return {
        "version": "5.5.0",
        "flags": {},
        "shapes": shapes,
        "imagePath": name,
        "imageData": None,
        "imageHeight": size[1],
        "imageWidth": size[0],
    }


def rect(label, points, group_id=None, **extra):
    return {
        "label": label,
        "points": points,
        "group_id": group_id,
        "description": "",
        "shape_type": "rectangle",
        "flags": {},
        **extra,
    }


def test_labelme_and_x_anylabeling_files(tmp_path):
    folder = tmp_path / "frames"
    folder.mkdir()
    # LabelMe: two opposite corners, in either order.
    (folder / "frame_000000.json").write_text(
        json.dumps(
            labelme_file(
                [
                    rect("car", [[40, 60], [10, 20]], 3),
                    {
                        "label": "road",
                        "points": [[0, 0], [5, 5], [0, 5]],
                        "group_id": None,
                        "shape_type": "polygon",
                        "flags": {},
                    },
                ]
            )
        )
    )
    # X-AnyLabeling's tracking output: the rectangle's four corners, a score, the track id in group_id
    # (X-AnyLabeling docs/en/user_guide.md, "rectangle"; its JSON adds score, difficult, attributes).
    (folder / "frame_000002.json").write_text(
        json.dumps(
            labelme_file(
                [
                    rect(
                        "car",
                        [[12, 20], [42, 20], [42, 60], [12, 60]],
                        3,
                        score=0.9,
                        difficult=False,
                        attributes={},
                    ),
                    rect("person", [[1, 1], [3, 5]], 8),
                ],
                name="frame_000002.jpg",
            )
        )
    )
    assert detect_format(folder) == "labelme"
    assert detect_format(folder / "frame_000000.json") == "labelme"
    tracks = read_tracks(folder)
    assert [(t.id, t.label) for t in tracks] == [(3, "car"), (8, "person")]
    car = tracks[0].trajectory
    assert car.frame_size == (640, 360) and car.frame_count == 3
    assert car.entries == (Entry(Box(10, 20, 30, 40)), None, Entry(Box(12, 20, 30, 40), score=0.9))
    person = tracks[1].trajectory
    assert person.entries == (Entry(None), None, Entry(Box(1, 1, 2, 4)))  # frame 0 has a file: absent
    with pytest.raises(FormatError, match="choose one with --track"):
        labelme.read(folder)


def test_shapes_without_group_id_are_told_apart_by_label(tmp_path):
    (tmp_path / "00000001.json").write_text(json.dumps(labelme_file([rect("cat", [[0, 0], [2, 2]])])))
    (tmp_path / "00000002.json").write_text(json.dumps(labelme_file([rect("cat", [[1, 0], [3, 2]])])))
    t = labelme.read(tmp_path)
    assert t.label == "cat" and [e.box for e in t.entries] == [Box(0, 0, 2, 2), Box(1, 0, 2, 2)]


def test_write(tmp_path):
    from trackers.trajectory import Trajectory

    t = Trajectory((Entry(Box(1, 2, 3, 4), score=0.5, occluded=True), None, Entry(None)), (64, 48), "dog")
    labelme.write(t, tmp_path / "out")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["frame_000000.json", "frame_000002.json"]
    data = json.loads((tmp_path / "out" / "frame_000000.json").read_text())
    (shape,) = data["shapes"]
    assert (
        shape["points"] == [[1, 2], [4, 6]] and shape["group_id"] == 1 and shape["shape_type"] == "rectangle"
    )
    assert shape["score"] == 0.5 and shape["flags"] == {"occluded": True}
    assert data["imageWidth"] == 64 and data["imagePath"] == "frame_000000.jpg"
    assert labelme.read(tmp_path / "out").entries == t.entries


def test_errors(tmp_path):
    (tmp_path / "notes.json").write_text(json.dumps(labelme_file([])))
    with pytest.raises(FormatError, match="cannot tell which frame"):
        labelme.read(tmp_path)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(FormatError, match="no LabelMe .json files"):
        labelme.read(empty)
