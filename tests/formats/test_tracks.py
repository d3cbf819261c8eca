"""Several objects: read_tracks / write_tracks keep every object's id, label and trajectory
(to what each format holds), in every format (issue 21)."""

from __future__ import annotations

import dataclasses

import pytest

from trackers.formats import FORMATS, Track, project, read_tracks, write_tracks
from trackers.formats.common import FormatError
from trackers.trajectory import DEFAULT_LABEL, Entry, Origin, Trajectory
from trackers.types import Box

from .helpers import assert_same

SIZE = (640, 360)


def trajectory(shift: float, label: str, count: int = 6) -> Trajectory:
    entries: list[Entry | None] = [
        Entry(Box(10 + shift, 20, 30, 40), Origin.KEYFRAME),
        Entry(Box(12 + shift, 21, 30, 40), Origin.TRACKED, 0.75),
        Entry(None, Origin.TRACKED),
        Entry(Box(14 + shift, 22.5, 31, 41), Origin.INTERPOLATED, occluded=True),
        None,
        Entry(Box(16 + shift, 23, 30, 40)),
    ]
    return Trajectory(tuple(entries[:count]), SIZE, label)


THREE = [
    Track(3, "car", trajectory(0, "car")),
    Track(7, "red car", trajectory(100, "red car")),
    Track(12, "person", trajectory(200, "person")),
]
MULTI = [name for name, fmt in FORMATS.items() if fmt.multi_track]


def expected(track: Track, name: str) -> Track:
    fmt = FORMATS[name]
    held = project(track.trajectory, fmt.fields)
    if "frame_size" not in fmt.fields:
        held = dataclasses.replace(held, frame_size=SIZE)
    label = track.label if "label" in fmt.fields or not fmt.multi_track else DEFAULT_LABEL
    return Track(track.id, label, held)


SUFFIX = {"cvat": ".xml", "coco": ".json", "labelstudio": ".json"}


def out_path(tmp_path, name):
    fmt = FORMATS[name]
    if fmt.multi_track and fmt.layout == "file":
        return tmp_path / f"out_{name}{SUFFIX.get(name, '.txt')}"
    return tmp_path / f"out_{name}"


def test_the_multi_track_formats_are_the_issues():
    assert {"mot", "cvat", "coco"} <= set(MULTI)
    for name in MULTI:
        assert FORMATS[name].read_tracks is not None and FORMATS[name].write_tracks is not None, name


@pytest.mark.parametrize("name", list(FORMATS))
def test_three_objects_round_trip(name, tmp_path):
    path = out_path(tmp_path, name)
    write_tracks(THREE, path, name)
    got = read_tracks(path, name, frame_count=6, frame_size=SIZE)
    assert [t.id for t in got] == [t.id for t in THREE]
    for back, track in zip(got, THREE):
        want = expected(track, name)
        assert back.label == want.label, name
        assert_same(back.trajectory, want.trajectory)
    # and detected without naming the format
    assert [t.id for t in read_tracks(path, frame_count=6, frame_size=SIZE)] == [3, 7, 12]


def test_single_object_formats_write_one_entry_per_object(tmp_path):
    write_tracks(THREE, tmp_path / "otb", "otb")
    assert sorted(p.name for p in (tmp_path / "otb").iterdir()) == [
        "12_person.txt",
        "3_car.txt",
        "7_red car.txt",
    ]
    write_tracks(THREE, tmp_path / "got", "got10k")
    assert (tmp_path / "got" / "7_red car" / "groundtruth.txt").is_file()


def test_otb_numbered_targets_read_as_objects(tmp_path):
    (tmp_path / "groundtruth_rect.1.txt").write_text("1,1,2,2\n")
    (tmp_path / "groundtruth_rect.2.txt").write_text("5,5,2,2\n")
    tracks = read_tracks(tmp_path, "otb")
    assert [(t.id, t.label) for t in tracks] == [(1, "object"), (2, "object")]
    assert tracks[1].trajectory[0] == Entry(Box(4, 4, 2, 2))


def test_one_object_file_is_a_list_of_one(tmp_path):
    (tmp_path / "groundtruth_rect.txt").write_text("1,1,2,2\n")
    (track,) = read_tracks(tmp_path / "groundtruth_rect.txt")
    assert track.id == 1 and track.trajectory[0] == Entry(Box(0, 0, 2, 2))


def test_ids_must_be_unique(tmp_path):
    with pytest.raises(FormatError, match="two objects have the id 3"):
        write_tracks([THREE[0], THREE[0]], tmp_path / "a.txt", "mot")


def test_track_keeps_its_trajectory_label_in_step():
    track = Track(1, " dog ", Trajectory.empty(2))
    assert track.label == "dog" and track.trajectory.label == "dog"
    with pytest.raises(TypeError):
        Track("1", "dog", Trajectory.empty(2))  # type: ignore[arg-type]
