"""Pascal VOC: 1-based inclusive corners, one XML per frame."""

from __future__ import annotations

import pytest

from trackers.formats import voc
from trackers.trajectory import Entry, Origin, Trajectory
from trackers.types import Box

FRAME = """<annotation>
  <filename>000001.jpg</filename>
  <size><width>353</width><height>500</height><depth>3</depth></size>
  <object>
    <name>dog</name><truncated>0</truncated><occluded>1</occluded><difficult>0</difficult>
    <bndbox><xmin>11</xmin><ymin>21</ymin><xmax>40</xmax><ymax>60</ymax></bndbox>
  </object>
</annotation>
"""


def test_read_one_based_inclusive(tmp_path):
    (tmp_path / "Annotations").mkdir()
    (tmp_path / "Annotations" / "000001.xml").write_text(FRAME)
    (tmp_path / "Annotations" / "000003.xml").write_text(
        "<annotation><filename>3.jpg</filename></annotation>"
    )
    t = voc.read(tmp_path)
    # pixels 11..40 (1-based, inclusive) are our pixels 10..39: x=10, w=30
    assert t.entries == (Entry(Box(10, 20, 30, 40), occluded=True), None, Entry(None))
    assert t.label == "dog" and t.frame_size == (353, 500)


def test_write(tmp_path):
    t = Trajectory(
        (Entry(Box(10, 20, 30, 40), Origin.KEYFRAME), None, Entry(None)), frame_size=(64, 48), label="dog"
    )
    voc.write(t, tmp_path / "voc")
    text = (tmp_path / "voc" / "Annotations" / "frame_000000.xml").read_text()
    assert "<xmin>11</xmin>" in text and "<ymin>21</ymin>" in text
    assert "<xmax>40</xmax>" in text and "<ymax>60</ymax>" in text
    assert "<truncated>1</truncated>" in text  # 60 > 48: the box leaves the frame
    assert not (tmp_path / "voc" / "Annotations" / "frame_000001.xml").exists()
    assert "<object>" not in (tmp_path / "voc" / "Annotations" / "frame_000002.xml").read_text()
    listing = (tmp_path / "voc" / "ImageSets" / "Main" / "default.txt").read_text()
    assert listing == "frame_000000\nframe_000001\nframe_000002\n"
    assert voc.read(tmp_path / "voc" / "Annotations") == voc.read(tmp_path / "voc")


def test_labelmap_for_datumaro_and_the_help_says_how_corners_are_read(tmp_path, capsys):
    """Issue 18.9: datumaro's VOC import needs labelmap.txt (label:color_rgb:parts:actions)."""
    from trackers.formats import FORMATS
    from trackers.trajectory import Entry, Trajectory
    from trackers.types import Box

    t = Trajectory((Entry(Box(0, 0, 2, 2)),), (8, 8), "red car")
    voc.write(t, tmp_path / "voc")
    lines = (tmp_path / "voc" / "labelmap.txt").read_text().splitlines()
    assert lines[1:] == ["background:0,0,0::", "red car:128,0,0::"]
    voc.write(t, tmp_path / "voc")  # ours: replaced without complaint
    assert (
        "1-based inclusive" in FORMATS["voc"].title
        and "datumaro and CVAT read them as 0-based" in FORMATS["voc"].title
    )
    from app.cli import main

    with pytest.raises(SystemExit):
        main(["convert", "--help"])
    assert "datumaro and CVAT read them as 0-based" in capsys.readouterr().out
