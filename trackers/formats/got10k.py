"""GOT-10k: a sequence folder of ``groundtruth.txt``, ``absence.label``, ``cover.label``, ``meta_info.ini``.

* ``groundtruth.txt``: one ``x,y,w,h`` per frame, **1-based** like OTB (the
  toolkit's author: "All coordinate values are 1-based", got-10k/toolkit#6). The
  test split has only the first line.
* ``absence.label``: 0/1 per frame, 1 = the target is absent.
* ``cover.label``: 0-8 per frame, the visible part in eighths-ish levels (0 =
  invisible, 8 = fully visible). We read 1-7 as occluded and write an occluded
  target as :data:`OCCLUDED_COVER`, since the flag says nothing finer.
* ``cut_by_image.label``: 0/1, the box leaves the frame (written when the frame
  size is known; not read).
* ``meta_info.ini``: ``[METAINFO]`` then ``key: value`` lines; we use
  ``object_class`` (the label) and ``resolution: (W, H)``.
* Frames ``00000001.jpg``... in the same folder (only :func:`export_got10k_dataset`
  writes them).

An absent frame's box line is written as NaNs (pytracking's and got10k's loaders
parse them; our readers ignore the box of an absent frame). Unannotated frames
are written as absent: the files need a line for every frame.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from trackers.formats.common import Format, FormatError
from trackers.formats.frames import fit_to_video
from trackers.formats.numbers import parse_int
from trackers.formats.otb import box_line, read_folder_boxes
from trackers.formats.reading import numbered_lines, read_text
from trackers.formats.sequence_folder import export_sequence_folder, frame_name
from trackers.formats.writing import replace_folder
from trackers.trajectory import DEFAULT_LABEL, Entry, Trajectory
from trackers.types import AnnotatedSequence, Box

if TYPE_CHECKING:
    from trackers.sources import FrameSource

GROUNDTRUTH = "groundtruth.txt"
ABSENCE = "absence.label"
COVER = "cover.label"
CUT_BY_IMAGE = "cut_by_image.label"
META = "meta_info.ini"
ANNOTATION_FILES = frozenset({GROUNDTRUTH, ABSENCE, COVER, CUT_BY_IMAGE, META})
FULL_COVER = 8
OCCLUDED_COVER = 4
"""The cover level written for an occluded target: about half visible."""
_FRAME_FILE = re.compile(r"\d{8}\.jpg")
_RESOLUTION = re.compile(r"\(\s*(\d+)\s*,\s*(\d+)\s*\)")



def _read_levels(path: Path, top: int) -> list[tuple[int, int]]:
    """``(line number, value)`` of a file with one whole number 0..top per line."""
    levels = []
    for number, text in numbered_lines(path):
        value = parse_int(text, path, number, f"a value 0..{top}")
        if not 0 <= value <= top:
            raise FormatError(path, f"expected a value 0..{top}, got {text!r}", number)
        levels.append((number, value))
    return levels


def read_meta(path: Path) -> dict[str, tuple[str, int]]:
    """``key -> (value, line)`` of a ``meta_info.ini`` (``key: value`` or ``key = value``)."""
    meta: dict[str, tuple[str, int]] = {}
    for number, text in enumerate(read_text(path).splitlines(), start=1):
        text = text.strip()
        if not text or text.startswith(("#", ";", "[")):
            continue
        key, sep, value = text.partition(":")
        if not sep:
            key, sep, value = text.partition("=")
        if not sep:
            raise FormatError(path, f"expected 'key: value', got {text!r}", number)
        meta[key.strip().lower()] = (value.strip(), number)
    return meta


def _frame_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if _FRAME_FILE.fullmatch(p.name))


def read(
    path: Path,
    *,
    frame_count: int | None = None,
    frame_size: tuple[int, int] | None = None,
    track: int | None = None,
) -> Trajectory:
    folder, boxes = read_folder_boxes(path, GROUNDTRUTH)

    flags: dict[str, list[tuple[int, int]]] = {}
    for name, top in ((ABSENCE, 1), (COVER, FULL_COVER)):
        if (folder / name).is_file():
            flags[name] = _read_levels(folder / name, top)
            # The test split's groundtruth.txt holds only the first frame; then the
            # label files (if any) say how many frames there are.
            if len(boxes) > 1 and len(flags[name]) != len(boxes):
                raise FormatError(
                    folder / name, f"has {len(flags[name])} lines but {GROUNDTRUTH} has {len(boxes)}"
                )

    label, size = DEFAULT_LABEL, None
    if (folder / META).is_file():
        meta = read_meta(folder / META)
        if meta.get("object_class", ("", 0))[0]:
            label = meta["object_class"][0]
        if "resolution" in meta:
            text, number = meta["resolution"]
            match = _RESOLUTION.fullmatch(text)
            if not match or int(match.group(1)) <= 0 or int(match.group(2)) <= 0:
                raise FormatError(folder / META, f"resolution: expected (W, H), got {text!r}", number)
            size = (int(match.group(1)), int(match.group(2)))

    count = max([len(boxes), *(len(v) for v in flags.values()), len(_frame_files(folder))])
    entries: list[Entry | None] = [None] * count
    for index in range(count):
        box = boxes[index][1] if index < len(boxes) else None
        absent = ABSENCE in flags and index < len(flags[ABSENCE]) and flags[ABSENCE][index][1] == 1
        cover = flags[COVER][index][1] if COVER in flags and index < len(flags[COVER]) else None
        if index >= len(boxes) and not absent:
            continue  # test split: no box, nothing said
        if absent or box is None or cover == 0:
            entries[index] = Entry(None)
        else:
            entries[index] = Entry(box, occluded=cover is not None and cover < FULL_COVER)
    trajectory = Trajectory(tuple(entries), size, label)
    return fit_to_video(trajectory, folder / GROUNDTRUTH, frame_count, frame_size)


def _cut_by_image(box: Box, frame_size: tuple[int, int]) -> bool:
    x0, y0, x1, y1 = box.corners()
    return x0 < 0 or y0 < 0 or x1 > frame_size[0] or y1 > frame_size[1]


def _write_annotations(trajectory: Trajectory, folder: Path) -> None:
    if "\n" in trajectory.label or "\r" in trajectory.label:
        raise FormatError(folder / META, "a label cannot span lines")
    gt, absence, cover, cut = [], [], [], []
    for entry in trajectory.entries:
        box = None if entry is None else entry.box
        gt.append(box_line(box))
        absence.append("1" if box is None else "0")
        if box is None or entry is None:
            cover.append("0")
        else:
            cover.append(str(OCCLUDED_COVER if entry.occluded else FULL_COVER))
        if trajectory.frame_size is not None:
            cut.append("1" if box is not None and _cut_by_image(box, trajectory.frame_size) else "0")
    files = {GROUNDTRUTH: gt, ABSENCE: absence, COVER: cover}
    if trajectory.frame_size is not None:
        files[CUT_BY_IMAGE] = cut
    for name, lines in files.items():
        (folder / name).write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    meta = ["[METAINFO]", f"object_class: {trajectory.label}"]
    if trajectory.frame_size is not None:
        meta.append(f"resolution: ({trajectory.frame_size[0]}, {trajectory.frame_size[1]})")
    (folder / META).write_text("\n".join(meta) + "\n", encoding="utf-8")


def write(trajectory: Trajectory, path: Path) -> None:
    """The annotation files of one sequence folder (no frames; see export_got10k_dataset)."""
    replace_folder(Path(path), lambda tmp: _write_annotations(trajectory, tmp), ANNOTATION_FILES.__contains__)


# --------------------------------------------------------------------------- training data


def is_got10k_folder(path: Path) -> bool:
    """A GOT-10k sequence: ``groundtruth.txt`` beside ``00000001.jpg``..."""
    path = Path(path)
    return path.is_dir() and (path / GROUNDTRUTH).is_file() and (path / frame_name(0)).is_file()


def read_got10k_sequence(folder: Path) -> AnnotatedSequence:
    """A GOT-10k sequence folder as an evaluation/training ``AnnotatedSequence`` (0-based, NaN = absent)."""
    folder = Path(folder)
    trajectory = read(folder)
    return AnnotatedSequence(folder.name, folder, trajectory.to_arrays().boxes)


def export_got10k_dataset(
    trajectory: Trajectory,
    source: FrameSource | str | Path,
    out_dir: str | Path,
    name: str,
    progress: Callable[[int, int], None] | None = None,
) -> Path:
    """Write ``out_dir/name/`` as a GOT-10k sequence (frames + annotations), listed in ``out_dir/list.txt``.

    ``source`` is the trajectory's video (a FrameSource or a path). Unannotated
    frames are written as absent, so training skips them. ``progress(done, total)``
    is called per frame; an exception raised from it cancels the export, which
    then leaves ``out_dir`` as it was. Returns the sequence folder.
    """
    def owns(relative: str) -> bool:
        return relative in ANNOTATION_FILES or bool(_FRAME_FILE.fullmatch(relative))

    return export_sequence_folder(
        trajectory, source, out_dir, name, frames_dir="", write_annotations=_write_annotations,
        owns=owns, progress=progress,
    )


FORMAT = Format(
    name="got10k",
    title="GOT-10k sequence folder (groundtruth.txt, absence.label, cover.label, meta_info.ini)",
    layout="folder",
    fields=frozenset({"box", "absent", "absent_record", "occluded", "label", "frame_size", "frame_count"}),
    read=read,
    write=write,
)
