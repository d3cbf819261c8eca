"""Pascal VOC: ``Annotations/<stem>.xml`` per frame, ``ImageSets/Main/default.txt`` listing the frames.

Each file is ``<annotation><filename/><size><width/><height/><depth/></size>
<object><name/><truncated/><occluded/><difficult/><bndbox><xmin/><ymin/><xmax/>
<ymax/></bndbox></object></annotation>``.

VOC's pixel coordinates are **1-based and inclusive**: a box over our pixels
``x .. x+w-1`` is ``xmin = x + 1, xmax = x + w`` (the devkit, and Faster R-CNN's
loader subtracting 1). We follow the devkit, and whole-pixel boxes come out as
whole numbers. datumaro (and so CVAT, which imports VOC through it) reads the
corners as 0-based continuous ones, ``Bbox(xmin, ymin, xmax - xmin, ymax -
ymin)``: it sees our boxes 1 px right and down and 1 px smaller, and what it
writes reads back here 1 px left and up and 1 px larger.

We also write ``labelmap.txt`` (datumaro's ``label:color_rgb:parts:actions``
lines, ``background`` first): datumaro's VOC import fails without it.

A frame's file without an ``<object>`` is absent; a listed frame without a file
is unannotated. The label and frame size live in the frame files, so a
trajectory without boxes loses its label, and one without annotated frames its
size. The image list (our frames ``frame_000000``..., 0-based) keeps the
frame count; without a list, frames are found by name as in :mod:`.yolo`.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path

from trackers.formats.common import Format, FormatError
from trackers.formats.frames import check_frames, fit_to_video, frame_stem, index_from_stem
from trackers.formats.numbers import format_number, parse_flag, parse_int, parse_number
from trackers.formats.reading import numbered_lines
from trackers.formats.safe_xml import XmlNode, parse_xml, sub, xml_text
from trackers.formats.writing import replace_folder
from trackers.trajectory import DEFAULT_LABEL, Entry, Trajectory
from trackers.types import Box

ANNOTATIONS = "Annotations"
IMAGE_SETS = "ImageSets/Main"
LIST = "default.txt"
LABELMAP = "labelmap.txt"
_OWNED = re.compile(rf"({ANNOTATIONS}/frame_\d+\.xml|{IMAGE_SETS}/{LIST}|{LABELMAP})")


def _root(path: Path) -> Path:
    if (path / ANNOTATIONS).is_dir():
        return path
    if path.is_dir() and path.name == ANNOTATIONS:
        return path.parent
    raise FormatError(path, f"no {ANNOTATIONS}/ folder: not a Pascal VOC folder")


def _image_list(folder: Path) -> Path | None:
    sets = folder / IMAGE_SETS
    if not sets.is_dir():
        return None
    for name in (LIST, "trainval.txt"):
        if (sets / name).is_file():
            return sets / name
    lists = sorted(sets.glob("*.txt"))
    return lists[0] if len(lists) == 1 else None


def _frame_indices(folder: Path, files: list[Path]) -> tuple[dict[Path, int], int]:
    listing = _image_list(folder)
    if listing is not None:
        order: dict[str, int] = {}
        for number, text in numbered_lines(listing):
            if not text:
                continue
            stem = text.split()[0]
            if stem in order:
                raise FormatError(listing, f"lists {stem} twice", number)
            order[stem] = len(order)
        missing = next((f for f in files if f.stem not in order), None)
        if missing is not None:
            raise FormatError(missing, f"this frame is not listed in {listing.name}")
        return {f: order[f.stem] for f in files}, len(order)
    indices: dict[Path, int] = {}
    seen: dict[int, Path] = {}
    for file in files:
        index = index_from_stem(file.stem)
        if index is not None:
            check_frames(file, index)
        if index is None:
            raise FormatError(
                file,
                "cannot tell which frame this is: name it frame_000000.xml "
                f"or list frames in {IMAGE_SETS}/{LIST}",
            )
        if index in seen:
            raise FormatError(file, f"is frame {index}, like {seen[index].name}")
        seen[index] = file
        indices[file] = index
    return indices, max(indices.values(), default=-1) + 1


def _number(path: Path, node: XmlNode, tag: str) -> float:
    child = node.find(tag)
    if child is None:
        raise FormatError(path, f"<{node.tag}> lacks <{tag}>", node.line)
    return parse_number(child.text, path, child.line, f"<{tag}>")


def _read_file(path: Path) -> tuple[Entry, tuple[int, int] | None, str | None]:
    root = parse_xml(path)
    if root.tag != "annotation":
        raise FormatError(path, f"expected <annotation> at the top, got <{root.tag}>", root.line)
    size = None
    size_node = root.find("size")
    if size_node is not None:
        w, h = (size_node.find(t) for t in ("width", "height"))
        if w is None or h is None:
            raise FormatError(path, "<size> needs <width> and <height>", size_node.line)
        size = (parse_int(w.text, path, w.line, "<width>"), parse_int(h.text, path, h.line, "<height>"))
        if size[0] <= 0 or size[1] <= 0:
            size = None  # VOC files from some tools say 0 when they do not know
    objects = root.findall("object")
    if len(objects) > 1:
        raise FormatError(path, "a second <object>: siamtrack reads one object per frame", objects[1].line)
    if not objects:
        return Entry(None), size, None
    obj = objects[0]
    box_node = obj.find("bndbox")
    if box_node is None:
        raise FormatError(path, "<object> lacks <bndbox>", obj.line)
    x0, y0, x1, y1 = (_number(path, box_node, t) for t in ("xmin", "ymin", "xmax", "ymax"))
    # 1-based inclusive: the box covers pixels xmin..xmax, i.e. xmax - xmin + 1 of them.
    box = Box(x0 - 1.0, y0 - 1.0, x1 - x0 + 1.0, y1 - y0 + 1.0)
    if box.w < 0 or box.h < 0:
        raise FormatError(path, "xmax/ymax lie before xmin/ymin", box_node.line)
    occluded_node = obj.find("occluded")
    occluded = False
    if occluded_node is not None and occluded_node.text.strip():
        occluded = parse_flag(occluded_node.text, path, occluded_node.line, "<occluded>")
    return Entry(box, occluded=occluded), size, obj.findtext("name") or None


def read(
    path: Path,
    *,
    frame_count: int | None = None,
    frame_size: tuple[int, int] | None = None,
    track: int | None = None,
) -> Trajectory:
    folder = _root(Path(path))
    files = sorted((folder / ANNOTATIONS).glob("*.xml"))
    indices, count = _frame_indices(folder, files)
    entries: list[Entry | None] = [None] * count
    size: tuple[int, int] | None = None
    label: tuple[str, Path] | None = None
    for file in files:
        entry, file_size, name = _read_file(file)
        if file_size is not None:
            if size is not None and file_size != size:
                raise FormatError(
                    file, f"frame size {file_size[0]}x{file_size[1]}, others say {size[0]}x{size[1]}"
                )
            size = file_size
        if name is not None:
            label = label or (name, file)
            if name != label[0]:
                raise FormatError(file, f"object {name!r}, but {label[1].name} has {label[0]!r}")
        entries[indices[file]] = entry
    trajectory = Trajectory(tuple(entries), size, label[0] if label else DEFAULT_LABEL)
    return fit_to_video(trajectory, folder, frame_count, frame_size)


def _truncated(box: Box, frame_size: tuple[int, int] | None) -> bool:
    """VOC's truncated flag: the box leaves the frame (unknown, so 0, without a frame size)."""
    if frame_size is None:
        return False
    x0, y0, x1, y1 = box.corners()
    return x0 < 0 or y0 < 0 or x1 > frame_size[0] or y1 > frame_size[1]


def _frame_xml(trajectory: Trajectory, index: int, entry: Entry) -> str:
    root = ET.Element("annotation")
    sub(root, "folder", "")
    sub(root, "filename", f"{frame_stem(index)}.jpg")
    if trajectory.frame_size is not None:
        size = sub(root, "size")
        sub(size, "width", str(trajectory.frame_size[0]))
        sub(size, "height", str(trajectory.frame_size[1]))
        sub(size, "depth", "3")
    sub(root, "segmented", "0")
    if entry.box is not None:
        obj = sub(root, "object")
        sub(obj, "name", trajectory.label)
        sub(obj, "pose", "Unspecified")
        sub(obj, "truncated", "1" if _truncated(entry.box, trajectory.frame_size) else "0")
        sub(obj, "occluded", "1" if entry.occluded else "0")
        sub(obj, "difficult", "0")
        bndbox = sub(obj, "bndbox")
        x, y, w, h = entry.box.x, entry.box.y, entry.box.w, entry.box.h
        for tag, value in (("xmin", x + 1), ("ymin", y + 1), ("xmax", x + w), ("ymax", y + h)):
            sub(bndbox, tag, format_number(value))
    return xml_text(root)


def _fill(trajectory: Trajectory, folder: Path) -> None:
    (folder / ANNOTATIONS).mkdir()
    (folder / IMAGE_SETS).mkdir(parents=True)
    stems = [frame_stem(i) for i in range(trajectory.frame_count)]
    (folder / IMAGE_SETS / LIST).write_text("".join(s + "\n" for s in stems), encoding="utf-8")
    if ":" in trajectory.label or "\n" in trajectory.label:
        raise FormatError(folder / LABELMAP, f"the label {trajectory.label!r} holds a ':' or a line break")
    (folder / LABELMAP).write_text(
        f"# label:color_rgb:parts:actions\nbackground:0,0,0::\n{trajectory.label}:128,0,0::\n",
        encoding="utf-8",
    )
    for index, entry in trajectory.annotated():
        xml = _frame_xml(trajectory, index, entry)
        (folder / ANNOTATIONS / f"{stems[index]}.xml").write_text(xml, encoding="utf-8")


def write(trajectory: Trajectory, path: Path) -> None:
    replace_folder(Path(path), lambda tmp: _fill(trajectory, tmp), lambda rel: bool(_OWNED.fullmatch(rel)))


FORMAT = Format(
    name="voc",
    title=(
        "Pascal VOC folder (Annotations/<frame>.xml, labelmap.txt; corners 1-based inclusive as in the "
        "devkit: datumaro and CVAT read them as 0-based, so they see each box 1 px right/down and "
        "1 px smaller)"
    ),
    layout="folder",
    fields=frozenset(
        {"box", "absent", "unannotated", "absent_record", "occluded", "label", "frame_size", "frame_count"}
    ),
    read=read,
    write=write,
)
