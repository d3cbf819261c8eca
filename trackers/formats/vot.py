"""VOT sequence folder: ``groundtruth.txt``, ``sequence``, per-frame ``*.tag`` files, ``color/%08d.jpg``.

The layout the VOT toolkit reads from ``sequences/<name>/`` of a workspace
(vot-toolkit ``vot/dataset/vot.py``; see ``tools/vot/make_workspace.py``)::

    sequences/list.txt            one sequence name per line
    sequences/<name>/sequence     channels.color=color/%08d.jpg, fps, width, height
    sequences/<name>/color/00000001.jpg ...
    sequences/<name>/groundtruth.txt
    sequences/<name>/occlusion.tag

* ``groundtruth.txt``: one region per frame, a rectangle ``x,y,w,h`` in **0-based**
  continuous pixels (``vot/region/raster.py`` rasterises it as pixels ``x .. x+w-1``),
  our convention unchanged. A polygon (6 or more numbers) is read as its bounding
  box; ``NaN`` values or a lone ``0`` (VOT's special "unknown" region) mean absent.
  We write absent frames as ``NaN,NaN,NaN,NaN`` (VOT-LT's spelling).
* ``occlusion.tag``: 0/1 per frame, our occluded flag.
* ``sequence``: ``width``/``height`` keep the frame size.

VOT has no label or origin; unannotated frames are written as absent.
:func:`export_vot_sequence` also writes the frames and adds the sequence to
``list.txt``, so a project becomes a workspace sequence in one step
(``siamtrack convert ... --to vot --video V``).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from trackers.formats.common import Format, FormatError
from trackers.formats.frames import fit_to_video
from trackers.formats.numbers import format_number, parse_flag, parse_number
from trackers.formats.reading import numbered_lines, read_text, sequence_folder, split_fields
from trackers.formats.sequence_folder import export_sequence_folder
from trackers.formats.writing import replace_folder
from trackers.trajectory import Entry, Trajectory
from trackers.types import Box

if TYPE_CHECKING:
    from trackers.sources import FrameSource

GROUNDTRUTH = "groundtruth.txt"
SEQUENCE = "sequence"
OCCLUSION = "occlusion.tag"
COLOR = "color"
ABSENT_LINE = "NaN,NaN,NaN,NaN"
FPS = 30
ANNOTATION_FILES = frozenset({GROUNDTRUTH, SEQUENCE, OCCLUSION})
_FRAME_FILE = re.compile(rf"{COLOR}/\d{{8}}\.jpg")



def _region(path: Path, number: int, text: str) -> Box | None:
    fields = split_fields(text)
    if len(fields) == 1 and fields[0].strip() in ("0", "1", "2", "3"):
        return None  # a special region: unknown / initialisation / failure markers
    if any(f.lower() == "nan" for f in fields):
        return None
    values = [parse_number(f, path, number, "region") for f in fields]
    if len(values) == 4:
        x, y, w, h = values
        if w < 0 or h < 0:
            raise FormatError(path, f"negative width or height in {text!r}", number)
        return Box(x, y, w, h)
    if len(values) >= 6 and len(values) % 2 == 0:
        xs, ys = values[0::2], values[1::2]
        return Box.from_corners(min(xs), min(ys), max(xs), max(ys))
    raise FormatError(path, f"expected a rectangle x,y,w,h or a polygon, got {text!r}", number)


def read_sequence_file(path: Path) -> dict[str, str]:
    """``key=value`` lines of a VOT ``sequence`` file."""
    values = {}
    for number, text in enumerate(read_text(path).splitlines(), start=1):
        text = text.strip()
        if not text or text.startswith("#"):
            continue
        key, sep, value = text.partition("=")
        if not sep:
            raise FormatError(path, f"expected key=value, got {text!r}", number)
        values[key.strip()] = value.strip()
    return values


def read(
    path: Path,
    *,
    frame_count: int | None = None,
    frame_size: tuple[int, int] | None = None,
    track: int | None = None,
) -> Trajectory:
    folder = sequence_folder(Path(path))
    gt = folder / GROUNDTRUTH
    if not gt.is_file():
        raise FormatError(folder, f"no {GROUNDTRUTH} in this folder")
    boxes = []
    for number, text in numbered_lines(gt):
        if not text:
            raise FormatError(gt, "empty line", number)
        boxes.append(_region(gt, number, text))
    occluded = [False] * len(boxes)
    if (folder / OCCLUSION).is_file():
        lines = numbered_lines(folder / OCCLUSION)
        if len(lines) != len(boxes):
            raise FormatError(
                folder / OCCLUSION, f"has {len(lines)} lines but {GROUNDTRUTH} has {len(boxes)}"
            )
        occluded = [parse_flag(t, folder / OCCLUSION, n, "tag") for n, t in lines]
    size = None
    if (folder / SEQUENCE).is_file():
        meta = read_sequence_file(folder / SEQUENCE)
        if "width" in meta and "height" in meta:
            w, h = meta["width"], meta["height"]
            if not (w.isdigit() and h.isdigit() and int(w) > 0 and int(h) > 0):
                raise FormatError(
                    folder / SEQUENCE, f"width/height: expected positive whole numbers, got {w}x{h}"
                )
            size = (int(w), int(h))
    entries = tuple(Entry(box, occluded=hidden and box is not None) for box, hidden in zip(boxes, occluded))
    return fit_to_video(Trajectory(entries, size), gt, frame_count, frame_size)


def _region_line(box: Box | None) -> str:
    if box is None:
        return ABSENT_LINE
    return ",".join(format_number(v) for v in (box.x, box.y, box.w, box.h))


def _write_annotations(trajectory: Trajectory, folder: Path, name: str | None = None) -> None:
    boxes = [None if e is None else e.box for e in trajectory.entries]
    (folder / GROUNDTRUTH).write_text("".join(_region_line(b) + "\n" for b in boxes), encoding="utf-8")
    tags = ["1" if e is not None and e.occluded else "0" for e in trajectory.entries]
    (folder / OCCLUSION).write_text("".join(t + "\n" for t in tags), encoding="utf-8")
    meta = [f"channels.{COLOR}={COLOR}/%08d.jpg", f"fps={FPS}"]
    if name:
        meta.append(f"name={name}")
    if trajectory.frame_size is not None:
        meta += [f"width={trajectory.frame_size[0]}", f"height={trajectory.frame_size[1]}"]
    (folder / SEQUENCE).write_text("\n".join(meta) + "\n", encoding="utf-8")


def write(trajectory: Trajectory, path: Path) -> None:
    """The annotation files of one sequence folder (no frames; see :func:`export_vot_sequence`)."""

    def owns(relative: str) -> bool:
        return relative in ANNOTATION_FILES or bool(_FRAME_FILE.fullmatch(relative))

    replace_folder(Path(path), lambda tmp: _write_annotations(trajectory, tmp), owns)


def export_vot_sequence(
    trajectory: Trajectory,
    source: FrameSource | str | Path,
    sequences: str | Path,
    name: str,
    progress: Callable[[int, int], None] | None = None,
) -> Path:
    """Write ``sequences/name/`` (frames as ``color/%08d.jpg`` and annotations) and list it
    in ``sequences/list.txt``; returns the sequence folder. An exception from
    ``progress(done, total)`` cancels, leaving ``sequences`` as it was."""

    def owns(relative: str) -> bool:
        return relative in ANNOTATION_FILES or bool(_FRAME_FILE.fullmatch(relative))

    return export_sequence_folder(
        trajectory, source, sequences, name, frames_dir=COLOR,
        write_annotations=lambda trajectory, folder: _write_annotations(trajectory, folder, name),
        owns=owns, progress=progress,
    )


def is_vot_folder(folder: Path) -> bool:
    return (folder / GROUNDTRUTH).is_file() and ((folder / SEQUENCE).is_file() or (folder / COLOR).is_dir())


FORMAT = Format(
    name="vot",
    title="VOT sequence folder (groundtruth.txt 0-based x,y,w,h, sequence, occlusion.tag, color/)",
    layout="folder",
    fields=frozenset({"box", "absent", "absent_record", "occluded", "frame_size", "frame_count"}),
    read=read,
    write=write,
)
