"""CVAT for video 1.1: corners, 0-based frames, keyframe/outside/occluded, CVAT's filling rules."""

from __future__ import annotations

import pytest

from trackers.formats import cvat
from trackers.formats.common import FormatError
from trackers.trajectory import Entry, Origin, Trajectory
from trackers.types import Box

SPARSE = """<?xml version="1.0" encoding="utf-8"?>
<annotations>
  <version>1.1</version>
  <meta>
    <task>
      <size>10</size>
      <mode>interpolation</mode>
      <original_size><width>640</width><height>360</height></original_size>
    </task>
  </meta>
  <track id="3" label="person" source="manual">
    <box frame="1" outside="0" occluded="0" keyframe="1" xtl="10" ytl="20" xbr="40" ybr="60" z_order="0"/>
    <box frame="5" outside="0" occluded="1" keyframe="1" xtl="20" ytl="20" xbr="50" ybr="60" z_order="0"/>
    <box frame="7" outside="1" occluded="0" keyframe="1" xtl="20" ytl="20" xbr="50" ybr="60" z_order="0"/>
  </track>
</annotations>
"""


def test_read_follows_cvat_semantics(tmp_path):
    path = tmp_path / "annotations.xml"
    path.write_text(SPARSE)
    t = cvat.read(path)
    assert t.frame_count == 10 and t.frame_size == (640, 360) and t.label == "person"
    assert t[0] == Entry(None)  # before the track starts
    assert t[1] == Entry(Box(10, 20, 30, 40), Origin.KEYFRAME)  # corners -> x, y, w, h; frames 0-based
    assert t[3] == Entry(Box(15, 20, 30, 40), Origin.INTERPOLATED)  # halfway from frame 1 to 5
    assert t[5] == Entry(Box(20, 20, 30, 40), Origin.KEYFRAME, occluded=True)
    assert t[6] == Entry(Box(20, 20, 30, 40), Origin.INTERPOLATED, occluded=True)  # held until outside
    assert t[7] == Entry(None, Origin.KEYFRAME)
    assert t.entries[8:] == (Entry(None), Entry(None))  # outside lasts


def test_last_box_persists_to_the_end(tmp_path):
    path = tmp_path / "a.xml"
    path.write_text(SPARSE.replace('<box frame="7" outside="1"', '<box frame="7" outside="0"'))
    t = cvat.read(path)
    assert t[9] == Entry(Box(20, 20, 30, 40), Origin.INTERPOLATED)


def test_several_tracks(tmp_path):
    second = (
        '<track id="8" label="car"><box frame="0" xtl="0" ytl="0" xbr="1" ybr="1"/></track></annotations>'
    )
    path = tmp_path / "a.xml"
    path.write_text(SPARSE.replace("</annotations>", second))
    with pytest.raises(FormatError, match=r"2 box tracks \(ids: 3, 8\)"):
        cvat.read(path)
    t = cvat.read(path, track=8)
    assert t.label == "car" and t[0] == Entry(Box(0, 0, 1, 1), Origin.KEYFRAME)


def test_write(tmp_path):
    t = Trajectory(
        (
            Entry(Box(10, 20, 30, 40), Origin.KEYFRAME, 0.9, True),
            Entry(None, Origin.KEYFRAME),
            None,
            Entry(Box(1.5, 2, 3, 4)),
        ),
        frame_size=(640, 360),
        label="car",
    )
    path = tmp_path / "out.xml"
    cvat.write(t, path)
    text = path.read_text()
    first = '<box frame="0" keyframe="1" outside="0" occluded="1" xtl="10" ytl="20" xbr="40" ybr="60" '
    assert first + 'z_order="0">\n      <attribute name="origin">keyframe</attribute>' in text
    assert '<box frame="1" keyframe="1" outside="1" occluded="0" xtl="10" ytl="20" xbr="40" ybr="60"' in text
    assert '<box frame="2" keyframe="1" outside="1"' in text  # unannotated: written as absent
    assert '<box frame="3" keyframe="1" outside="0" occluded="0" xtl="1.5" ytl="2" xbr="4.5" ybr="6"' in text
    assert 'keyframe="0"' not in text
    assert "<size>4</size>" in text and "<width>640</width>" in text and '<track id="0" label="car"' in text
    back = cvat.read(path)
    assert back[2] == Entry(None) and back[3] == Entry(Box(1.5, 2, 3, 4))


def test_cvat_for_images_is_named(tmp_path):
    path = tmp_path / "a.xml"
    path.write_text('<annotations><version>1.1</version><image id="0" name="a.jpg"/></annotations>')
    with pytest.raises(FormatError, match="CVAT for images"):
        cvat.read(path)


def cvat_importer_keeps(path) -> dict[int, tuple[bool, tuple[float, ...]]]:
    """The shapes CVAT's importer keeps of our one track: a keyframe or an outside shape
    (``cvat/apps/dataset_manager/bindings.py``, ``import_dm_annotations``)."""
    import xml.etree.ElementTree as ET

    kept = {}
    for box in ET.parse(path).getroot().iter("box"):
        if box.get("keyframe") == "1" or box.get("outside") == "1":
            corners = tuple(float(box.get(k)) for k in ("xtl", "ytl", "xbr", "ybr"))
            kept[int(box.get("frame"))] = (box.get("outside") == "1", corners)
    return kept


def test_cvat_keeps_every_tracked_interpolated_and_imported_box(tmp_path):
    """Issue 18.2: only keyframe="1" shapes survive CVAT's import, so every box is one."""
    entries = [
        Entry(Box(10 + i, 20, 30, 40), origin)
        for i, origin in enumerate(
            [Origin.KEYFRAME, Origin.TRACKED, Origin.INTERPOLATED, Origin.IMPORTED, Origin.TRACKED]
        )
    ]
    t = Trajectory((*entries, Entry(None, Origin.TRACKED)), frame_size=(640, 360))
    path = tmp_path / "out.xml"
    cvat.write(t, path)
    kept = cvat_importer_keeps(path)
    assert sorted(kept) == list(range(6))
    for index, entry in enumerate(entries):
        assert kept[index] == (False, entry.box.corners())
    assert kept[5][0]  # outside
    # our origin survives in the attribute
    assert cvat.read(path).entries == t.entries
