"""LabelMe / X-AnyLabeling: a folder of per-frame ``<stem>.json`` files.

Each file (LabelMe's ``labelme/_label_file.py``; X-AnyLabeling writes the same keys
and adds ``score``, ``difficult``, ``attributes``, ``description``)::

    {"version": "5.5.0", "flags": {}, "imagePath": "frame_000012.jpg", "imageData": null,
     "imageWidth": 640, "imageHeight": 360,
     "shapes": [{"label": "car", "points": [[x1, y1], [x2, y2]], "group_id": 3,
                 "shape_type": "rectangle", "flags": {}, "description": ""}]}

* A rectangle's points are two opposite corners (X-AnyLabeling writes all four), in
  continuous pixel coordinates, our convention: the box is their bounding box.
* ``group_id`` is the object's id (X-AnyLabeling's tracking mode writes the track id
  there). Shapes without one are told apart by their label.
* The frame is the file's stem: ``frame_000012`` is frame 12 (0-based), digits only
  (``00000013``) are 1-based, as for YOLO and VOC.
* A frame file without a shape of an object is absent for that object; a frame
  without a file is unannotated. With several objects, a frame file of one object
  makes that frame absent (not unannotated) for the others.
* We keep the score in X-AnyLabeling's ``score`` and occlusion in the shape's
  ``flags`` (``{"occluded": true}``); the origin is not kept. The frame count after
  the last file is not kept either.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from trackers.formats.common import Format, FormatError
from trackers.formats.frames import check_frames, fit_to_video, frame_stem, index_from_stem
from trackers.formats.reading import file_head, read_text
from trackers.formats.tracks import Track, check_ids, pick, stable_ids
from trackers.formats.writing import replace_folder
from trackers.trajectory import DEFAULT_LABEL, Entry, Trajectory
from trackers.types import Box

VERSION = "5.5.0"
_OWNED = re.compile(r"frame_\d+\.json")


def _number(path: Path, value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise FormatError(path, f"{where}: expected a finite number, got {value!r}")
    return float(value)


def _folder(path: Path) -> Path:
    path = Path(path)
    if path.is_file():
        path = path.parent
    if not path.is_dir():
        raise FormatError(path, "no such folder: LabelMe annotations are a folder of per-frame .json files")
    return path


def _read_frame(path: Path) -> tuple[tuple[int, int] | None, list[tuple[object, str, Entry]]]:
    """The frame size and ``(object key, label, entry)`` of every rectangle in one file."""
    try:
        data = json.loads(read_text(path))
    except json.JSONDecodeError as exc:
        raise FormatError(path, f"not valid JSON ({exc.msg})", exc.lineno) from None
    if not isinstance(data, dict) or not isinstance(data.get("shapes"), list):
        raise FormatError(path, "expected an object with a 'shapes' list (LabelMe JSON)")
    size = None
    if "imageWidth" in data and "imageHeight" in data:
        w, h = data["imageWidth"], data["imageHeight"]
        if isinstance(w, int) and isinstance(h, int) and w > 0 and h > 0:
            size = (w, h)
    shapes = []
    for s, shape in enumerate(data["shapes"]):
        where = f"shapes[{s}]"
        if not isinstance(shape, dict):
            raise FormatError(path, f"{where}: expected an object")
        if shape.get("shape_type", "polygon") != "rectangle":
            continue  # polygons, points ...: not a box
        points = shape.get("points")
        if (
            not isinstance(points, list)
            or len(points) < 2
            or not all(isinstance(p, list) and len(p) == 2 for p in points)
        ):
            raise FormatError(path, f"{where}.points: expected two or four [x, y] corners")
        xs = [_number(path, p[0], f"{where}.points") for p in points]
        ys = [_number(path, p[1], f"{where}.points") for p in points]
        label = shape.get("label")
        label = label.strip() if isinstance(label, str) and label.strip() else DEFAULT_LABEL
        group = shape.get("group_id")
        if group is not None and (isinstance(group, bool) or not isinstance(group, int)):
            raise FormatError(path, f"{where}.group_id: expected a whole number or null, got {group!r}")
        key: object = group if group is not None else ("label", label)
        score = shape.get("score")
        score = None if score is None else _number(path, score, f"{where}.score")
        flags = shape.get("flags") or {}
        occluded = bool(flags.get("occluded", False)) if isinstance(flags, dict) else False
        box = Box.from_corners(min(xs), min(ys), max(xs), max(ys))
        shapes.append((key, label, Entry(box, score=score, occluded=occluded)))
    return size, shapes


def read_tracks(
    path: Path, *, frame_count: int | None = None, frame_size: tuple[int, int] | None = None
) -> list[Track]:
    folder = _folder(path)
    files = sorted(folder.glob("*.json"))
    if not files:
        raise FormatError(folder, "no LabelMe .json files: looked for <frame>.json in this folder")
    frames: dict[int, Path] = {}
    per_object: dict[object, dict[int, Entry]] = {}
    labels: dict[object, str] = {}
    size: tuple[int, int] | None = None
    for file in files:
        index = index_from_stem(file.stem)
        if index is None:
            raise FormatError(
                file, "cannot tell which frame this is: name it frame_000000.json or 00000001.json"
            )
        check_frames(file, index)
        if index in frames:
            raise FormatError(file, f"is frame {index}, like {frames[index].name}")
        frames[index] = file
        file_size, shapes = _read_frame(file)
        if file_size is not None:
            if size is not None and file_size != size:
                raise FormatError(
                    file, f"image size {file_size[0]}x{file_size[1]}, others say {size[0]}x{size[1]}"
                )
            size = file_size
        for key, label, entry in shapes:
            mine = per_object.setdefault(key, {})
            if index in mine:
                raise FormatError(file, f"a second rectangle of object {key!r} in this frame")
            mine[index] = entry
            labels.setdefault(key, label)
    count = max(frames, default=-1) + 1
    ids = stable_ids(per_object)
    tracks = []
    for key, boxes in per_object.items():
        entries: list[Entry | None] = [None] * count
        for index in frames:
            entries[index] = boxes.get(index, Entry(None))
        trajectory = Trajectory(tuple(entries), size, labels[key])
        tracks.append(Track(ids[key], labels[key], fit_to_video(trajectory, folder, frame_count, frame_size)))
    if not tracks:  # frame files, all without rectangles: one object, absent throughout
        trajectory = Trajectory(tuple(Entry(None) if i in frames else None for i in range(count)), size)
        tracks.append(Track(1, DEFAULT_LABEL, fit_to_video(trajectory, folder, frame_count, frame_size)))
    return sorted(tracks, key=lambda t: t.id)


def read(
    path: Path,
    *,
    frame_count: int | None = None,
    frame_size: tuple[int, int] | None = None,
    track: int | None = None,
) -> Trajectory:
    tracks = read_tracks(path, frame_count=frame_count, frame_size=frame_size)
    return pick(tracks, _folder(path), track).trajectory


def _shape(track: Track, entry: Entry) -> dict[str, Any]:
    assert entry.box is not None
    x0, y0, x1, y1 = entry.box.corners()
    shape: dict[str, Any] = {
        "label": track.label,
        "points": [[x0, y0], [x1, y1]],
        "group_id": track.id,
        "description": "",
        "shape_type": "rectangle",
        "flags": {"occluded": True} if entry.occluded else {},
    }
    if entry.score is not None:
        shape["score"] = entry.score
    return shape


def write_tracks(tracks: Sequence[Track], path: Path) -> None:
    path = Path(path)
    check_ids(tracks, path)
    sizes = {t.trajectory.frame_size for t in tracks} - {None}
    if len(sizes) > 1:
        raise FormatError(path, f"the objects' frame sizes differ: {sorted(sizes)}")
    size = next(iter(sizes), None)
    frames = sorted({i for t in tracks for i, _e in t.trajectory.annotated()})

    def fill(tmp: Path) -> None:
        for index in frames:
            shapes = [
                _shape(t, t.trajectory[index])
                for t in tracks
                if index < t.trajectory.frame_count
                and t.trajectory[index] is not None
                and t.trajectory[index].box is not None
            ]
            data: dict[str, Any] = {
                "version": VERSION,
                "flags": {},
                "shapes": shapes,
                "imagePath": f"{frame_stem(index)}.jpg",
                "imageData": None,
            }
            if size is not None:
                data["imageHeight"], data["imageWidth"] = size[1], size[0]
            (tmp / f"{frame_stem(index)}.json").write_text(
                json.dumps(data, indent=1) + "\n", encoding="utf-8"
            )

    replace_folder(path, fill, lambda rel: bool(_OWNED.fullmatch(rel)))


def write(trajectory: Trajectory, path: Path) -> None:
    write_tracks([Track.of(trajectory)], path)


def looks_like(path: Path) -> bool:
    """A JSON file with LabelMe's ``shapes`` and ``imagePath`` keys."""
    head = file_head(path)
    return b'"shapes"' in head and b'"imagePath"' in head


FORMAT = Format(
    name="labelme",
    title="LabelMe / X-AnyLabeling folder (<frame>.json per frame, rectangle corners, group_id = object id)",
    layout="folder",
    fields=frozenset({"box", "absent", "unannotated", "score", "occluded", "label", "frame_size"}),
    read=read,
    write=write,
    multi_track=True,
    read_tracks=read_tracks,
    write_tracks=write_tracks,
)
