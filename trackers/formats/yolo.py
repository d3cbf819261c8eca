"""YOLO: one ``<stem>.txt`` per frame, a line ``class cx cy w h`` normalised to the frame.

We write CVAT's "YOLO 1.1" (darknet) layout::

    obj.data  obj.names  train.txt  obj_train_data/frame_000000.txt ...

``train.txt`` lists every frame (so the frame count survives); a frame whose file
is empty is absent, a frame without a file is unannotated. The file holds no
frame size, so reading and writing need one (``--video``). Boxes are written as
they are, also where they leave the frame (values outside 0..1): clipping would
change the trajectory. Example (datumaro): the box (288,209,64,45) on 640x360 is
``0 0.5 0.643056 0.1 0.125``.

Reading also takes an Ultralytics dataset root (docs.ultralytics.com/datasets/detect:
``data.yaml`` with ``names``, ``images/<split>/``, ``labels/<split>/<stem>.txt``;
the splits are read together), a flat ``labels/`` folder, or the label files in
the folder itself with ``classes.txt`` for the names. A folder with no label
file at all is an error that says where it looked, never an empty trajectory. Without ``train.txt``, frames
are found by name: ``frame_000012`` is frame 12 (0-based), ``00000013`` is frame
12 too (1-based frame files). An optional sixth value is read as the score.
"""

from __future__ import annotations

import re
from pathlib import Path

from trackers.formats.common import Format, FormatError
from trackers.formats.frames import check_frames, fit_to_video, frame_stem, index_from_stem
from trackers.formats.numbers import format_number, parse_int, parse_number
from trackers.formats.reading import numbered_lines, read_text, split_fields
from trackers.formats.writing import replace_folder
from trackers.trajectory import DEFAULT_LABEL, Entry, Trajectory
from trackers.types import Box

DATA = "obj.data"
NAMES = "obj.names"
LIST = "train.txt"
LABELS = "obj_train_data"
_OTHER_NAMES = "classes.txt"
_OTHER_LABELS = "labels"
ULTRALYTICS_DATA = ("data.yaml", "dataset.yaml", "data.yml")
_LOOKED_FOR = f"{LABELS}/*.txt, labels/*.txt, labels/<split>/*.txt or *.txt"
_LABEL_FILE = re.compile(rf"{LABELS}/frame_\d+\.txt")


def _labels_dir(folder: Path) -> Path:
    for name in (LABELS, _OTHER_LABELS):
        if (folder / name).is_dir():
            return folder / name
    return folder


def _label_files(folder: Path) -> list[Path]:
    """The per-frame label files: in ``obj_train_data/``, ``labels/``, ``labels/<split>/`` or the folder."""
    labels_dir = _labels_dir(folder)
    skip = {NAMES, _OTHER_NAMES, LIST} if labels_dir == folder else set()
    files = [p for p in labels_dir.glob("*.txt") if p.name not in skip]
    if labels_dir.name == _OTHER_LABELS:
        files += [p for split in labels_dir.iterdir() if split.is_dir() for p in split.glob("*.txt")]
    return sorted(files)


def _names(folder: Path) -> list[str]:
    for name in (NAMES, _OTHER_NAMES):
        if (folder / name).is_file():
            return [text for _n, text in numbered_lines(folder / name) if text]
    for name in ULTRALYTICS_DATA:
        if (folder / name).is_file():
            return yaml_names(folder / name)
    return []


def _unquote(text: str) -> str:
    text = text.strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return text[1:-1]
    return text


def yaml_names(path: Path) -> list[str]:
    """The class names of an Ultralytics ``data.yaml``, without a YAML library.

    Takes the three spellings its docs use: ``names: [a, b]``, a block list
    (``- a``) and a block mapping (``0: a``).
    """
    lines = read_text(path).splitlines()
    for number, line in enumerate(lines):
        key, sep, rest = line.partition(":")
        if not sep or key.strip() != "names" or line[:1].isspace():
            continue
        rest = rest.split(" #")[0].strip()
        if rest.startswith("["):
            if not rest.endswith("]"):
                raise FormatError(path, "names: expected [a, b, ...] on one line", number + 1)
            return [_unquote(v) for v in rest[1:-1].split(",") if v.strip()]
        if rest:
            raise FormatError(path, f"names: expected a list or a mapping, got {rest!r}", number + 1)
        mapping: dict[int, str] = {}
        listed: list[str] = []
        for offset, item in enumerate(lines[number + 1 :], start=number + 2):
            if not item.strip() or item.strip().startswith("#"):
                continue
            if not item[:1].isspace():
                break
            item = item.split(" #")[0].strip()
            if item.startswith("- "):
                listed.append(_unquote(item[2:]))
                continue
            index, colon, value = item.partition(":")
            if not colon:
                raise FormatError(path, f"names: expected 'N: name', got {item!r}", offset)
            mapping[parse_int(index, path, offset, "class number")] = _unquote(value)
        if mapping:
            return [mapping.get(i, str(i)) for i in range(max(mapping) + 1)]
        return listed
    return []


def _is_ultralytics(folder: Path) -> bool:
    return any((folder / name).is_file() for name in ULTRALYTICS_DATA)


def _frame_indices(folder: Path, files: list[Path]) -> tuple[dict[Path, int], int]:
    """Each label file's 0-based frame, and the frame count the layout states (or implies)."""
    # An Ultralytics root's train.txt lists only the train split (datumaro writes one per
    # split): there the frames are found by name.
    if (folder / LIST).is_file() and not _is_ultralytics(folder):
        order: dict[str, int] = {}
        for number, text in numbered_lines(folder / LIST):
            if not text:
                continue
            stem = Path(text.replace("\\", "/")).stem
            if stem in order:
                raise FormatError(folder / LIST, f"lists {stem} twice", number)
            order[stem] = len(order)
        indices = {}
        for file in files:
            if file.stem not in order:
                raise FormatError(file, f"this frame is not listed in {LIST}")
            indices[file] = order[file.stem]
        return indices, len(order)
    indices = {}
    for file in files:
        index = index_from_stem(file.stem)
        if index is not None:
            check_frames(file, index)
        if index is None:
            raise FormatError(
                file, f"cannot tell which frame this is: name it frame_000000.txt or list frames in {LIST}"
            )
        indices[file] = index
    seen: dict[int, Path] = {}
    for file, index in indices.items():
        if index in seen:
            raise FormatError(file, f"is frame {index}, like {seen[index].name}")
        seen[index] = file
    return indices, max(indices.values(), default=-1) + 1


def read(
    path: Path,
    *,
    frame_count: int | None = None,
    frame_size: tuple[int, int] | None = None,
    track: int | None = None,
) -> Trajectory:
    folder = Path(path)
    if not folder.is_dir():
        raise FormatError(folder, "YOLO annotations are a folder of per-frame .txt files")
    if frame_size is None:
        raise FormatError(folder, "YOLO boxes are fractions of the frame size: give the video (--video)")
    width, height = frame_size
    files = _label_files(folder)
    if not files and not (folder / LIST).is_file():
        raise FormatError(folder, f"no YOLO label files: looked for {_LOOKED_FOR}")
    names = _names(folder)
    indices, count = _frame_indices(folder, files)

    entries: list[Entry | None] = [None] * count
    first: tuple[int, Path] | None = None  # a trajectory has one label: every box the same class
    for file in files:
        lines = [(n, t) for n, t in numbered_lines(file) if t]
        if len(lines) > 1:
            raise FormatError(file, "a second box: siamtrack reads one object per frame", lines[1][0])
        if not lines:
            entries[indices[file]] = Entry(None)
            continue
        number, text = lines[0]
        fields = split_fields(text)
        if len(fields) not in (5, 6):
            raise FormatError(file, f"expected 'class cx cy w h', got {text!r}", number)
        cls = parse_int(fields[0], file, number, "class")
        if cls < 0 or (names and cls >= len(names)):
            raise FormatError(file, f"class {cls} is not one of the {len(names)} names", number)
        first = first or (cls, file)
        if cls != first[0]:
            raise FormatError(file, f"class {cls}, but {first[1].name} has class {first[0]}", number)
        cx, cy, w, h = (parse_number(f, file, number, "cx cy w h") for f in fields[1:5])
        if w < 0 or h < 0:
            raise FormatError(file, "negative width or height", number)
        score = parse_number(fields[5], file, number, "score") if len(fields) == 6 else None
        box = Box.from_center(cx * width, cy * height, w * width, h * height)
        entries[indices[file]] = Entry(box, score=score)
    label = names[first[0] if first else 0] if names else DEFAULT_LABEL
    trajectory = Trajectory(tuple(entries), None, label)
    return fit_to_video(trajectory, folder, frame_count, frame_size)


def _fill(trajectory: Trajectory, folder: Path) -> None:
    if trajectory.frame_size is None:
        raise FormatError(folder, "YOLO boxes are fractions of the frame size: give the video (--video)")
    if "\n" in trajectory.label or "\r" in trajectory.label:
        raise FormatError(folder / NAMES, "a label cannot span lines")
    width, height = trajectory.frame_size
    (folder / NAMES).write_text(trajectory.label + "\n", encoding="utf-8")
    (folder / DATA).write_text(
        f"classes = 1\ntrain = data/{LIST}\nnames = data/{NAMES}\nbackup = backup/\n", encoding="utf-8"
    )
    listing = "".join(f"data/{LABELS}/{frame_stem(i)}.jpg\n" for i in range(trajectory.frame_count))
    (folder / LIST).write_text(listing, encoding="utf-8")
    (folder / LABELS).mkdir()
    for index, entry in trajectory.annotated():
        text = ""
        if entry.box is not None:
            cx, cy = entry.box.center()
            values = (cx / width, cy / height, entry.box.w / width, entry.box.h / height)
            text = "0 " + " ".join(format_number(v) for v in values) + "\n"
        (folder / LABELS / f"{frame_stem(index)}.txt").write_text(text, encoding="utf-8")


def write(trajectory: Trajectory, path: Path) -> None:
    def owns(relative: str) -> bool:
        return relative in (DATA, NAMES, LIST) or bool(_LABEL_FILE.fullmatch(relative))

    if trajectory.frame_size is None:  # checked before anything is touched
        raise FormatError(path, "YOLO boxes are fractions of the frame size: give the video (--video)")
    replace_folder(Path(path), lambda tmp: _fill(trajectory, tmp), owns)


FORMAT = Format(
    name="yolo",
    title="YOLO 1.1 folder (obj.names, train.txt, obj_train_data/<frame>.txt, normalised cx cy w h)",
    layout="folder",
    fields=frozenset({"box", "absent", "unannotated", "absent_record", "label", "frame_count"}),
    read=read,
    write=write,
    needs_frame_size=True,
)
