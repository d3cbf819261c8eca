"""Malformed files: a FormatError naming the file, the line and the problem; nothing half-read.

The corpus under ``broken/`` is hand-broken, one fault per case.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trackers.formats import FORMATS
from trackers.formats.common import FormatError
from trackers.trajectory import Entry, Origin, Trajectory
from trackers.types import Box

BROKEN = Path(__file__).parent / "broken"

# (input, format, file the error names, line or None, words the message holds)
CASES = [
    ("otb/three_numbers.txt", "otb", "otb/three_numbers.txt", 2, "expected 4 numbers x,y,w,h"),
    ("otb/not_a_number.txt", "otb", "otb/not_a_number.txt", 3, "expected a number, got 'abc'"),
    ("otb/negative_size.txt", "otb", "otb/negative_size.txt", 1, "negative width or height"),
    ("otb/blank_line.txt", "otb", "otb/blank_line.txt", 2, "expected 4 numbers"),
    ("otb/infinite.txt", "otb", "otb/infinite.txt", 2, "finite"),
    ("otb/not_utf8.txt", "otb", "otb/not_utf8.txt", 3, "not UTF-8"),
    ("mot/frame_zero.txt", "mot", "mot/frame_zero.txt", 2, "frame numbers start at 1"),
    ("mot/duplicate.txt", "mot", "mot/duplicate.txt", 3, "second row for id 1 on frame 2 (first on line 2)"),
    ("mot/five_fields.txt", "mot", "mot/five_fields.txt", 1, "expected 6 to 10"),
    ("mot/fractional_frame.txt", "mot", "mot/fractional_frame.txt", 2, "frame: expected a whole number"),
    (
        "got10k/absence_length",
        "got10k",
        "got10k/absence_length/absence.label",
        None,
        "has 2 lines but groundtruth.txt has 3",
    ),
    ("got10k/bad_cover", "got10k", "got10k/bad_cover/cover.label", 2, "expected a value 0..8, got '9'"),
    (
        "got10k/bad_resolution",
        "got10k",
        "got10k/bad_resolution/meta_info.ini",
        3,
        "resolution: expected (W, H)",
    ),
    ("lasot/bad_flag", "lasot", "lasot/bad_flag/full_occlusion.txt", 1, "value 3: expected 0 or 1"),
    ("lasot/two_lines", "lasot", "lasot/two_lines/out_of_view.txt", 2, "one line"),
    ("cvat/bad_coordinate.xml", "cvat", "cvat/bad_coordinate.xml", 6, "ytl: expected a number, got 'two'"),
    ("cvat/inverted.xml", "cvat", "cvat/inverted.xml", 3, "xbr/ybr lie before xtl/ytl"),
    ("cvat/unclosed.xml", "cvat", "cvat/unclosed.xml", 4, "not well-formed XML (mismatched tag)"),
    ("cvat/bad_flag.xml", "cvat", "cvat/bad_flag.xml", 5, "outside: expected 0 or 1, got 'yes'"),
    ("cvat/duplicate_frame.xml", "cvat", "cvat/duplicate_frame.xml", 4, "second <box> for frame 0"),
    ("cvat/billion_laughs.xml", "cvat", "cvat/billion_laughs.xml", 2, "DOCTYPE declaration is not accepted"),
    (
        "cvat/external_entity.xml",
        "cvat",
        "cvat/external_entity.xml",
        2,
        "DOCTYPE declaration is not accepted",
    ),
    ("cvat/undefined_entity.xml", "cvat", "cvat/undefined_entity.xml", 2, "undefined entity"),
    ("coco/syntax.json", "coco", "coco/syntax.json", 4, "not valid JSON"),
    ("coco/bad_bbox.json", "coco", "coco/bad_bbox.json", None, "annotations[0].bbox: expected [x, y, w, h]"),
    (
        "coco/no_frame_index.json",
        "coco",
        "coco/no_frame_index.json",
        None,
        "images[0]: no frame_index or frame_id, and its file_name",
    ),
    ("coco/plain_coco.json", "coco", "coco/plain_coco.json", None, "annotations[0]: has no track_id"),
    ("coco/bad_origin.json", "coco", "coco/bad_origin.json", None, "annotations[0].attributes.origin"),
    ("yolo/two_boxes", "yolo", "yolo/two_boxes/obj_train_data/frame_000000.txt", 2, "a second box"),
    (
        "yolo/bad_number",
        "yolo",
        "yolo/bad_number/obj_train_data/frame_000001.txt",
        2,
        "expected a number, got 'half'",
    ),
    ("yolo/unnamed", "yolo", "yolo/unnamed/shot_a.txt", None, "cannot tell which frame"),
    ("voc/no_bndbox", "voc", "voc/no_bndbox/Annotations/frame_000000.xml", 3, "<object> lacks <bndbox>"),
    ("voc/two_objects", "voc", "voc/two_objects/Annotations/frame_000000.xml", 3, "a second <object>"),
    ("voc/doctype", "voc", "voc/doctype/Annotations/frame_000000.xml", 2, "DOCTYPE"),
]


@pytest.mark.parametrize(("case", "name", "named", "line", "words"), CASES, ids=[c[0] for c in CASES])
def test_broken_file_is_refused_with_file_and_line(case, name, named, line, words):
    with pytest.raises(FormatError) as info:
        FORMATS[name].read(BROKEN / case, frame_size=(100, 100))
    error = info.value
    assert error.path == BROKEN / named
    assert error.line == line
    assert words in str(error)
    text = str(error)
    assert text.startswith(f"{BROKEN / named}:{line}: " if line else f"{BROKEN / named}: ")
    assert "\n" not in text  # one line, for the CLI and status bars
    assert isinstance(error, ValueError)


def test_every_case_exists_and_every_file_is_used():
    used = {c[0] for c in CASES}
    for case in used:
        assert (BROKEN / case).exists(), case
    tops = {p.relative_to(BROKEN).as_posix() for p in BROKEN.glob("*/*")}
    assert tops == used


# --------------------------------------------------------------------------- damaged files

JUNK = ["", "-", "1e999", "nan", '"', "{", "]", "<", ">", ",", "\n", "x", "-1", "null", "true", "&x;", ":"]
SAMPLE = Trajectory(
    (Entry(Box(1.5, 2, 30, 40), Origin.KEYFRAME, 0.9, True), None, Entry(None), Entry(Box(-3, 4, 5, 6))),
    frame_size=(640, 360),
    label="car",
)
edits = st.lists(
    st.tuples(st.integers(0, 10**6), st.integers(0, 6), st.sampled_from(JUNK)), min_size=1, max_size=3
)


@pytest.mark.parametrize("name", list(FORMATS))
@settings(max_examples=15, derandomize=True, deadline=None)
@given(pick=st.integers(0, 100), changes=edits)
def test_damaged_files_read_or_raise_format_error(name, pick, changes):
    """Whatever is garbled, an import gives a trajectory or a FormatError, never another exception."""
    fmt = FORMATS[name]
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "out"
        fmt.write(SAMPLE, out)
        files = [out] if out.is_file() else sorted(p for p in out.rglob("*") if p.is_file())
        target = files[pick % len(files)]
        text = target.read_text()
        for position, span, junk in changes:
            at = position % (len(text) + 1)
            text = text[:at] + junk + text[at + span :]
        target.write_text(text)
        try:
            fmt.read(out, frame_size=SAMPLE.frame_size if fmt.needs_frame_size else None)
        except FormatError:
            pass


def test_absurd_frame_numbers_are_refused_before_memory_runs_out(tmp_path):
    path = tmp_path / "gt.txt"
    path.write_text("1,1,1,1,5,5\n99999999999,1,1,1,5,5\n")
    with pytest.raises(FormatError, match="past the 10,000,000 frames") as info:
        FORMATS["mot"].read(path)
    assert info.value.line == 2
