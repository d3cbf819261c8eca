"""Label Studio video (VideoRectangle): percent boxes, 1-based keyframes, enabled, interpolation."""

from __future__ import annotations

import json

import pytest

from trackers.formats import labelstudio, read_tracks
from trackers.formats.common import FormatError
from trackers.trajectory import Entry, Origin, Trajectory
from trackers.types import Box

# A JSON export of one video task, in the layout of labelstud.io/templates/video_object_detector
# and Label Studio's own video test data (value.framesCount, duration, sequence, labels).
EXPORT = [
    {
        "id": 7,
        "data": {"video": "/data/upload/1/clip.mp4"},
        "annotations": [
            {
                "id": 3,
                "result": [
                    {
                        "value": {
                            "framesCount": 8,
                            "duration": 0.32,
                            "sequence": [
                                {
                                    "frame": 1,
                                    "enabled": True,
                                    "rotation": 0,
                                    "x": 10,
                                    "y": 20,
                                    "width": 25,
                                    "height": 50,
                                    "time": 0,
                                },
                                {
                                    "frame": 3,
                                    "enabled": False,
                                    "rotation": 0,
                                    "x": 20,
                                    "y": 20,
                                    "width": 25,
                                    "height": 50,
                                    "time": 0.08,
                                },
                                {
                                    "frame": 6,
                                    "enabled": True,
                                    "rotation": 0,
                                    "x": 50,
                                    "y": 0,
                                    "width": 10,
                                    "height": 10,
                                    "time": 0.2,
                                },
                            ],
                            "labels": ["Cell"],
                        },
                        "id": "aB3xQ",
                        "from_name": "box",
                        "to_name": "video",
                        "type": "videorectangle",
                        "origin": "manual",
                    },
                    {
                        "value": {"choices": ["ok"]},
                        "id": "c1",
                        "from_name": "q",
                        "to_name": "video",
                        "type": "choices",
                    },
                ],
            }
        ],
        "predictions": [],
    }
]


def test_read_an_export(tmp_path):
    path = tmp_path / "project.json"
    path.write_text(json.dumps(EXPORT))
    t = labelstudio.read(path, frame_size=(200, 100))
    assert t.label == "Cell" and t.frame_count == 8
    assert t[0] == Entry(Box(20, 20, 50, 50))  # percent of 200x100
    assert t[1] == Entry(Box(30, 20, 50, 50), Origin.INTERPOLATED)  # enabled: interpolated
    assert t[2] == Entry(Box(40, 20, 50, 50))  # disabled keyframe: shown, then gone
    assert t[3] == Entry(None) and t[4] == Entry(None)
    assert t[5] == Entry(Box(100, 0, 20, 10))
    assert t[7] == Entry(Box(100, 0, 20, 10), Origin.INTERPOLATED)  # the last box stays to the end


def test_needs_the_frame_size(tmp_path):
    path = tmp_path / "project.json"
    path.write_text(json.dumps(EXPORT))
    with pytest.raises(FormatError, match="percent of the frame size"):
        labelstudio.read(path)


def test_write_predictions_and_back(tmp_path):
    t = Trajectory(
        (
            Entry(Box(20, 20, 50, 50), Origin.KEYFRAME),
            Entry(Box(22, 20, 50, 50), Origin.TRACKED),
            Entry(None),
            None,
            Entry(Box(1, 2, 3, 4)),
        ),
        frame_size=(200, 100),
        label="car",
    )
    path = tmp_path / "tasks.json"
    labelstudio.write(t, path)
    (task,) = json.loads(path.read_text())
    (result,) = task["predictions"][0]["result"]
    assert result["type"] == "videorectangle" and result["value"]["labels"] == ["car"]
    assert result["value"]["framesCount"] == 5
    frames = [(k["frame"], k["enabled"], k["x"], k["width"]) for k in result["value"]["sequence"]]
    assert frames == [(1, True, 10.0, 25.0), (2, False, 11.0, 25.0), (5, True, 0.5, 1.5)]
    back = labelstudio.read(path, frame_size=(200, 100))
    assert [None if e is None else e.box for e in back.entries] == [
        Box(20, 20, 50, 50),
        Box(22, 20, 50, 50),
        None,
        None,
        Box(1, 2, 3, 4),
    ]


def test_several_objects_keep_ids_and_labels(tmp_path):
    data = json.loads(json.dumps(EXPORT))
    second = json.loads(json.dumps(data[0]["annotations"][0]["result"][0]))
    second["id"], second["value"]["labels"] = "12", ["Bacteria"]
    data[0]["annotations"][0]["result"].append(second)
    path = tmp_path / "project.json"
    path.write_text(json.dumps(data))
    tracks = read_tracks(path, frame_size=(200, 100))
    assert [(t.id, t.label) for t in tracks] == [(13, "Cell"), (12, "Bacteria")]  # a digit id is kept
    with pytest.raises(FormatError, match="choose one with --track"):
        labelstudio.read(path, frame_size=(200, 100))
    assert labelstudio.read(path, frame_size=(200, 100), track=12).label == "Bacteria"


def test_bad_keyframe_is_named(tmp_path):
    data = json.loads(json.dumps(EXPORT))
    data[0]["annotations"][0]["result"][0]["value"]["sequence"][1]["frame"] = 0
    path = tmp_path / "project.json"
    path.write_text(json.dumps(data))
    with pytest.raises(FormatError, match=r"sequence\[1\].frame: expected a whole number from 1"):
        labelstudio.read(path, frame_size=(200, 100))
