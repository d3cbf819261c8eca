"""LaSOT: a sequence folder of ``groundtruth.txt``, ``full_occlusion.txt``, ``out_of_view.txt``.

* ``groundtruth.txt``: one comma ``x,y,w,h`` per frame, **1-based** ("The smallest
  should be 1", the dataset's author in HengLan/LaSOT_Evaluation_Toolkit#14).
* ``full_occlusion.txt`` and ``out_of_view.txt``: each **one line** of
  comma-separated 0/1, one value per frame (``got10k/datasets/lasot.py``).

Either flag makes a frame absent. Our absent frames are written as full
occlusion (we cannot tell out-of-view apart), with a NaN box line. LaSOT has no
partial occlusion, label, frame size or origin; unannotated frames are written as
absent.
"""

from __future__ import annotations

from pathlib import Path

from trackers.formats.common import Format, FormatError
from trackers.formats.frames import fit_to_video
from trackers.formats.numbers import parse_flag
from trackers.formats.otb import box_line, read_folder_boxes
from trackers.formats.reading import numbered_lines
from trackers.formats.writing import replace_folder
from trackers.trajectory import Entry, Trajectory

GROUNDTRUTH = "groundtruth.txt"
FULL_OCCLUSION = "full_occlusion.txt"
OUT_OF_VIEW = "out_of_view.txt"
NLP = "nlp.txt"
ANNOTATION_FILES = frozenset({GROUNDTRUTH, FULL_OCCLUSION, OUT_OF_VIEW})


def _read_flag_line(path: Path, count: int) -> list[bool]:
    """The one line of comma-separated 0/1; it must have ``count`` values."""
    lines = [(n, t) for n, t in numbered_lines(path) if t]
    if len(lines) > 1:
        raise FormatError(path, "expected one line of comma-separated 0/1", lines[1][0])
    if not lines:
        if count:
            raise FormatError(path, f"is empty but {GROUNDTRUTH} has {count} frames")
        return []
    number, text = lines[0]
    values = [v.strip() for v in text.split(",")]
    flags = [parse_flag(v, path, number, f"value {i + 1}") for i, v in enumerate(values)]
    if len(flags) != count:
        raise FormatError(path, f"has {len(flags)} values but {GROUNDTRUTH} has {count} lines", number)
    return flags


def read(
    path: Path,
    *,
    frame_count: int | None = None,
    frame_size: tuple[int, int] | None = None,
    track: int | None = None,
) -> Trajectory:
    folder, boxes = read_folder_boxes(path, GROUNDTRUTH)
    hidden = [False] * len(boxes)
    for name in (FULL_OCCLUSION, OUT_OF_VIEW):
        if (folder / name).is_file():
            flags = _read_flag_line(folder / name, len(boxes))
            hidden = [a or b for a, b in zip(hidden, flags)]
    entries = tuple(Entry(None if gone else box) for (_n, box), gone in zip(boxes, hidden))
    return fit_to_video(Trajectory(entries), folder / GROUNDTRUTH, frame_count, frame_size)


def _write_annotations(trajectory: Trajectory, folder: Path) -> None:
    boxes = [None if e is None else e.box for e in trajectory.entries]
    (folder / GROUNDTRUTH).write_text("".join(box_line(b) + "\n" for b in boxes), encoding="utf-8")
    occlusion = ",".join("1" if b is None else "0" for b in boxes)
    (folder / FULL_OCCLUSION).write_text(occlusion + "\n", encoding="utf-8")
    (folder / OUT_OF_VIEW).write_text(",".join("0" for _ in boxes) + "\n", encoding="utf-8")


def write(trajectory: Trajectory, path: Path) -> None:
    replace_folder(Path(path), lambda tmp: _write_annotations(trajectory, tmp), ANNOTATION_FILES.__contains__)


FORMAT = Format(
    name="lasot",
    title="LaSOT sequence folder (groundtruth.txt, full_occlusion.txt, out_of_view.txt)",
    layout="folder",
    fields=frozenset({"box", "absent", "absent_record", "frame_count"}),
    read=read,
    write=write,
)
