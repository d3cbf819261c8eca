"""OTB: ``groundtruth_rect.txt``, one 1-based ``x,y,w,h`` line per frame.

Fields are separated by commas, tabs or spaces. OTB's pixels are MATLAB's, the
first one is 1; ours is 0, so x and y lose 1 on the way in and gain it on the way
out. A line with a NaN means the target is absent. GOT-10k and LaSOT store their
boxes the same way, so their modules use :func:`read_box_lines` too.

The file has no room for anything else: an unannotated frame is written as
absent, and all entries read back as imported.
"""

from __future__ import annotations

import math
from pathlib import Path

from trackers.formats.common import Format, FormatError
from trackers.formats.frames import fit_to_video
from trackers.formats.numbers import format_number, parse_number
from trackers.formats.reading import numbered_lines, sequence_folder, split_fields
from trackers.formats.writing import write_text_atomic
from trackers.trajectory import Entry, Trajectory
from trackers.types import Box

GROUNDTRUTH = "groundtruth_rect.txt"
ABSENT_LINE = "NaN,NaN,NaN,NaN"


def read_box_lines(path: Path) -> list[tuple[int, Box | None]]:
    """``(line number, 0-based box or None for absent)`` per line of a 1-based x,y,w,h file."""
    rows: list[tuple[int, Box | None]] = []
    for number, text in numbered_lines(path):
        fields = split_fields(text)
        if fields and all(f.lower() == "nan" for f in fields):
            rows.append((number, None))  # the target is absent ("NaN" alone is seen in the wild)
            continue
        if len(fields) != 4:
            raise FormatError(path, f"expected 4 numbers x,y,w,h, got {text!r}", number)
        if any(f.lower() == "nan" for f in fields):
            rows.append((number, None))  # the target is absent
            continue
        x, y, w, h = (parse_number(f, path, number, "x,y,w,h") for f in fields)
        if w < 0 or h < 0:
            raise FormatError(path, f"negative width or height in {text!r}", number)
        # MATLAB's first pixel is 1, ours is 0.
        rows.append((number, Box.from_one_based(x, y, w, h)))
    return rows


def read_folder_boxes(path: Path, filename: str) -> tuple[Path, list[tuple[int, Box | None]]]:
    """The sequence folder of ``path`` and the 1-based box lines of its ``filename``
    (GOT-10k and LaSOT both keep OTB-style lines in a ``groundtruth.txt``)."""
    folder = sequence_folder(Path(path))
    gt_path = folder / filename
    if not gt_path.is_file():
        raise FormatError(folder, f"no {filename} in this folder")
    return folder, read_box_lines(gt_path)


def box_line(box: Box | None) -> str:
    """A 1-based ``x,y,w,h`` line, or NaNs for an absent target."""
    if box is None:
        return ABSENT_LINE
    return ",".join(format_number(v) for v in box.to_one_based())


def groundtruth_file(path: Path) -> Path:
    """The annotation file of ``path``: the file itself, or ``groundtruth_rect.txt`` in a folder."""
    if not path.is_dir():
        return path
    if (path / GROUNDTRUTH).is_file():
        return path / GROUNDTRUTH
    several = sorted(p.name for p in path.glob("groundtruth_rect.*.txt"))
    if several:
        raise FormatError(path, f"holds several targets ({', '.join(several)}): give one of the files")
    raise FormatError(path, f"no {GROUNDTRUTH} in this folder")


def read(
    path: Path,
    *,
    frame_count: int | None = None,
    frame_size: tuple[int, int] | None = None,
    track: int | None = None,
) -> Trajectory:
    path = groundtruth_file(Path(path))
    entries = [Entry(box) for _line, box in read_box_lines(path)]
    return fit_to_video(Trajectory(tuple(entries)), path, frame_count, frame_size)


def write(trajectory: Trajectory, path: Path) -> None:
    lines = [box_line(None if e is None else e.box) for e in trajectory.entries]
    write_text_atomic(Path(path), "".join(line + "\n" for line in lines))


def _is_nan_or_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def looks_like(path: Path) -> bool:
    """A text file whose first line is four numbers (or NaNs): x,y,w,h."""
    try:
        with open(path, encoding="utf-8-sig", errors="replace") as f:
            first = next((line for line in f if line.strip()), "")
    except OSError:
        return False
    fields = split_fields(first)
    return len(fields) == 4 and all(_is_nan_or_number(f) and not math.isinf(float(f)) for f in fields)


FORMAT = Format(
    name="otb",
    title="OTB groundtruth_rect.txt (1-based x,y,w,h per line)",
    layout="file",
    fields=frozenset({"box", "absent", "absent_record", "frame_count"}),
    read=read,
    write=write,
)
