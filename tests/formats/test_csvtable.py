"""DarkLabel text and the generic CSV with named columns."""

from __future__ import annotations

import io

import pytest

from trackers.formats import csvtable, detect_format, read_tracks
from trackers.formats.common import FormatError
from trackers.formats.convert import cmd_convert
from trackers.trajectory import Entry, Trajectory
from trackers.types import Box

from .test_convert import parse

# DarkLabel's default text export: "fn,cname,id,x1,y1,w,h" per box (its format list in
# DarkLabel.yml / the program's save dialog; frames from 0).
DARKLABEL = """0,car,1,10,20,30,40
0,person,2,100,50,10,30
1,car,1,12,20,30,40
3,car,1,15,21,30,40
"""


def test_darklabel_default_layout(tmp_path):
    path = tmp_path / "video.txt"
    path.write_text(DARKLABEL)
    assert detect_format(path) == "darklabel"
    tracks = read_tracks(path)
    assert [(t.id, t.label) for t in tracks] == [(1, "car"), (2, "person")]
    car = tracks[0].trajectory
    assert car.entries == (
        Entry(Box(10, 20, 30, 40)),
        Entry(Box(12, 20, 30, 40)),
        Entry(None),
        Entry(Box(15, 21, 30, 40)),
    )
    assert tracks[1].trajectory.entries[1:] == (Entry(None),) * 3
    out = tmp_path / "again.txt"
    csvtable.DARKLABEL.write_tracks(tracks, out)
    assert out.read_text() == DARKLABEL


def test_csv_columns_from_the_command_line(tmp_path):
    source = tmp_path / "boxes.csv"
    source.write_text("5,x,1,1,11,21\n6,x,2,2,12,22\n")  # fn1, (skipped), x1, y1, x2, y2
    out = tmp_path / "gt.txt"
    err = io.StringIO()
    args = parse(source, out, "--from", "csv", "--to", "otb", "--columns", "fn1,-,x1,y1,x2,y2")
    assert cmd_convert(args, stderr=err) == 0
    assert out.read_text().splitlines() == ["NaN,NaN,NaN,NaN"] * 4 + ["2,2,10,20", "3,3,10,20"]


def test_csv_writes_a_header_and_reads_it(tmp_path):
    t = Trajectory(
        (Entry(Box(1, 2, 3, 4), score=0.5), Entry(None), Entry(Box(2, 2, 3, 4), occluded=True)), label="cat"
    )
    path = tmp_path / "out.csv"
    csvtable.CSV.write(t, path)
    lines = path.read_text().splitlines()
    assert lines[0] == "fn,id,label,x1,y1,w,h,score,occluded"
    assert lines[1] == "0,1,cat,1,2,3,4,0.5,0"
    assert detect_format(path) == "csv"
    assert csvtable.CSV.read(path, frame_count=3).entries == t.entries
    custom = csvtable.with_columns("fn,cx,cy,w,h")
    custom.write(t, tmp_path / "c.csv")
    assert (tmp_path / "c.csv").read_text().splitlines()[1] == "0,2.5,4,3,4"
    # the header names the columns, whatever --columns said
    assert csvtable.with_columns("fn,x1,y1,w,h").read(tmp_path / "c.csv")[0].box == Box(1, 2, 3, 4)


@pytest.mark.parametrize(
    "columns, words",
    [
        ("fn,x1,y1,w", "the box needs"),
        ("x1,y1,w,h", "one frame column"),
        ("fn,x1,y1,w,h,size", "unknown column 'size'"),
        ("fn,x1,x1,y1,w,h", "named twice"),
    ],
)
def test_bad_columns(columns, words):
    with pytest.raises(ValueError, match=words):
        csvtable.parse_columns(columns)


def test_bad_rows_are_named(tmp_path):
    path = tmp_path / "d.txt"
    path.write_text("0,car,1,10,20,30,40\n1,car,1,10,20\n")
    with pytest.raises(FormatError, match=r"d.txt:2: expected 7 fields"):
        csvtable.DARKLABEL.read(path)
