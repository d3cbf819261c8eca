"""Every format keeps what its capabilities say, and loses exactly the rest.

A random trajectory (present, absent and unannotated frames, every origin,
scores, occlusion) is written and read back through each format; the result must
equal ``project(trajectory, format.fields)``. Frame count and size come from the
"video" only where the format does not hold them.
"""

from __future__ import annotations

import dataclasses
import importlib
import re
import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import trackers.formats as formats
from trackers.formats import FIELDS, FORMATS, detect_format, project
from trackers.formats.common import FormatError
from trackers.formats.reading import file_head
from trackers.trajectory import Entry, Origin, Trajectory
from trackers.types import Box

from .helpers import ROUNDED_FORMATS, assert_same

coords = st.floats(min_value=-50, max_value=700, allow_nan=False)
sizes = st.floats(min_value=0, max_value=400, allow_nan=False)
boxes = st.builds(Box, coords, coords, sizes, sizes)
origins = st.sampled_from(list(Origin))
# -1 is MOT's "no value": a score of exactly -1 reads back from MOT as None (tested on its own).
scores = st.none() | st.floats(min_value=-5, max_value=5, allow_nan=False).filter(lambda s: s != -1.0)
present = st.builds(Entry, boxes, origins, scores, st.booleans())
absent = st.builds(Entry, st.none(), origins, scores)
frames = st.one_of(st.none(), present, absent)
trajectories = st.builds(
    Trajectory,
    st.lists(frames, min_size=1, max_size=14).map(tuple),
    st.tuples(st.integers(1, 4000), st.integers(1, 4000)),
    st.sampled_from(["object", "car", "red car", "bird_2"]),
)

# Written where detection looks for it, so the same round trip checks detection.
OUT_NAME = {
    "otb": "groundtruth_rect.txt",
    "mot": "gt.txt",
    "cvat": "annotations.xml",
    "coco": "tao.json",
    "labelstudio": "tasks.json",
    "darklabel": "darklabel.txt",
    "csv": "boxes.csv",
}


def round_trip(name: str, trajectory: Trajectory, folder: Path) -> tuple[Trajectory, Trajectory]:
    """(what came back, what should have): the video supplies what the format lacks."""
    fmt = FORMATS[name]
    out = folder / OUT_NAME.get(name, name)
    fmt.write(trajectory, out)
    if name == "labelme" and not any(e is not None for e in trajectory.entries):
        # LabelMe writes a file per annotated frame: none here, and an empty folder
        # is refused on reading (it says what it looked for).
        with pytest.raises(FormatError, match="no LabelMe .json files"):
            fmt.read(out)
        return project(trajectory, fmt.fields), project(trajectory, fmt.fields)
    hints = {}
    if "frame_count" not in fmt.fields:
        hints["frame_count"] = trajectory.frame_count
    if "frame_size" not in fmt.fields:
        hints["frame_size"] = trajectory.frame_size
    got = fmt.read(out, **hints)
    expected = project(trajectory, fmt.fields)
    if "frame_size" not in fmt.fields:
        expected = dataclasses.replace(expected, frame_size=trajectory.frame_size)
    if name in ("voc", "labelme", "darklabel", "csv"):
        # These keep the label with each box (VOC and LabelMe the size in the per-frame
        # files, see their module notes): with no box there is no label, with no
        # annotated frame no size.
        if not any(e is not None and e.box is not None for e in trajectory.entries):
            expected = dataclasses.replace(expected, label="object")
        if name == "voc" and not any(e is not None for e in trajectory.entries):
            expected = dataclasses.replace(expected, frame_size=None)
    if any(e is not None and e.box is not None for e in trajectory.entries) or name not in (
        "mot",
        "darklabel",
    ):
        assert detect_format(out) == name  # an all-absent MOT or DarkLabel file is empty: nothing to detect
    return got, expected


@pytest.mark.parametrize("name", list(FORMATS))
@settings(max_examples=20, derandomize=True, deadline=None)
@given(trajectory=trajectories)
def test_round_trip_keeps_what_the_format_holds(name, trajectory):
    with tempfile.TemporaryDirectory() as tmp:
        got, expected = round_trip(name, trajectory, Path(tmp))
    assert_same(got, expected, ROUNDED_FORMATS.get(name, 1e-6))


# A trajectory that uses every field, for checking that the table claims no more
# and no less than each format keeps.
RICH = Trajectory(
    (
        Entry(Box(10.25, 20, 30, 40), Origin.KEYFRAME, 0.5, occluded=True),
        Entry(Box(12, 21, 30, 40), Origin.TRACKED, 0.25),
        Entry(None, Origin.KEYFRAME, 0.125),
        None,
        Entry(Box(14, 22, 30, 40), Origin.INTERPOLATED),
        None,
    ),
    frame_size=(640, 360),
    label="car",
)


@pytest.mark.parametrize("name", list(FORMATS))
def test_each_missing_field_is_really_lost(name, tmp_path):
    fmt = FORMATS[name]
    got, expected = round_trip(name, RICH, tmp_path)
    assert_same(got, expected)
    for field in sorted(set(FIELDS) - fmt.fields - {"box", "frame_count", "frame_size"}):
        claimed = project(RICH, fmt.fields | {field})
        # If the format kept this field after all, the table would under-claim it.
        with pytest.raises(AssertionError):
            assert_same(got, dataclasses.replace(claimed, frame_size=got.frame_size))


def test_the_documented_table_matches_the_registry():
    rows = {}
    for line in (formats.__doc__ or "").splitlines():
        cells = line.split()
        if cells and cells[0] == "field":
            header = cells[1:]
        elif cells and cells[0] in FIELDS:
            rows[cells[0]] = cells[1:]
    assert header == list(FORMATS)
    assert list(rows) == list(FIELDS)
    for index, name in enumerate(header):
        claimed = {field for field, cells in rows.items() if cells[index] == "yes"}
        assert claimed == set(FORMATS[name].fields), name


def test_every_format_holds_boxes_and_absence():
    for fmt in FORMATS.values():
        assert {"box", "absent"} <= fmt.fields
        assert re.fullmatch(r"[a-z0-9]+", fmt.name)


@pytest.mark.parametrize("name", ["cvat", "labelme", "labelstudio"])
def test_a_file_guess_on_what_cannot_be_read_is_no(name, tmp_path):
    # looks_like reads the file's head (trackers.formats.reading.file_head): a missing file or
    # a folder is not of the format, and raises nothing
    looks_like = importlib.import_module(f"trackers.formats.{name}").looks_like
    assert looks_like(tmp_path / "missing.json") is False
    assert looks_like(tmp_path) is False


def test_file_head_reads_at_most_the_asked_bytes(tmp_path):
    path = tmp_path / "a.txt"
    path.write_bytes(b"x" * 10 + b"<annotations>")
    assert file_head(path, 10) == b"x" * 10
    assert file_head(path) == b"x" * 10 + b"<annotations>"
    assert file_head(tmp_path / "missing") == b"" and file_head(tmp_path) == b""
