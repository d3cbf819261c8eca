"""COCO-VID / TAO JSON: ``videos``, ``images``, ``tracks``, ``annotations``, ``categories``.

* TAO (``tao/toolkit/tao/tao.py``): ``image{id, video_id, file_name, frame_index,
  width, height}``, ``track{id, category_id, video_id}``, ``annotation{id,
  image_id, track_id, bbox, area, category_id}``.
* COCO-VID as mmtracking writes it: ``frame_id`` for ``frame_index`` and
  ``instance_id`` for ``track_id``, no ``tracks`` list.

We write both spellings, so either reader finds its keys. ``bbox`` is COCO's
0-based ``[x, y, w, h]``, our convention unchanged. The listed images are the
annotated frames (TAO lists only the frames it annotated): a listed image without
a box for the track is absent, a frame not listed is unannotated. The score goes
in ``score`` (COCO's results key); origin and occlusion go in the annotation's
``attributes`` dict, where datumaro keeps ``occluded`` too. An absent frame has
no annotation, so it keeps nothing but its absence. The JSON does not say how
many frames the video has after the last listed one.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from trackers.formats.common import Format, FormatError
from trackers.formats.frames import check_frames, fit_to_video, frame_stem, index_from_stem
from trackers.formats.reading import read_text
from trackers.formats.tracks import Track, check_ids, stable_ids
from trackers.formats.writing import write_text_atomic
from trackers.trajectory import DEFAULT_LABEL, Entry, Origin, Trajectory
from trackers.types import Box

VIDEO_ID = 1
TRACK_ID = 1
CATEGORY_ID = 1


class _Reader:
    """Checks values at a JSON path (``images[3].frame_index``); JSON has no line numbers after parsing."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def fail(self, where: str, problem: str) -> FormatError:
        return FormatError(self.path, f"{where}: {problem}")

    def obj(self, value: Any, where: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(where, f"expected an object, got {type(value).__name__}")
        return value

    def items(self, data: dict[str, Any], key: str, required: bool = True) -> list[dict[str, Any]]:
        value = data.get(key)
        if value is None and not required:
            return []
        if not isinstance(value, list):
            raise self.fail(key, "expected a list")
        return [self.obj(item, f"{key}[{i}]") for i, item in enumerate(value)]

    def int(self, item: dict[str, Any], key: str, where: str) -> int:
        value = item.get(key)
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(f"{where}.{key}", f"expected a whole number, got {value!r}")
        return value

    def number(self, value: Any, where: str) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise self.fail(where, f"expected a finite number, got {value!r}")
        return float(value)


def _track_of(check: _Reader, index: int, annotation: dict[str, Any]) -> int | str:
    """TAO's ``track_id``, mmtracking's ``instance_id``, or CVAT's and datumaro's
    ``attributes.track_id`` (plain image COCO exported from a video task)."""
    value = annotation.get("track_id", annotation.get("instance_id"))
    if value is None and isinstance(annotation.get("attributes"), dict):
        value = annotation["attributes"].get("track_id")
    if value is None:
        raise check.fail(
            f"annotations[{index}]",
            "has no track_id, instance_id or attributes.track_id: not a video annotation",
        )
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise check.fail(f"annotations[{index}].track_id", f"expected a number or a name, got {value!r}")
    return value


def _in_order(ids: set[int | str]) -> list[int | str]:
    """Numbers numerically, then names."""
    return sorted(ids, key=lambda v: (isinstance(v, str), v if isinstance(v, int) else 0, str(v)))


def _positive_size(check: _Reader, item: dict[str, Any], where: str) -> tuple[int, int] | None:
    """``(width, height)``, or None for 0 or less: datumaro writes 0x0 when it does not know."""
    width, height = check.int(item, "width", where), check.int(item, "height", where)
    return (width, height) if width > 0 and height > 0 else None


class _Document:
    """A parsed COCO file: which tracks it has, and any one of them as a trajectory."""

    def __init__(self, path: Path) -> None:
        self.path = path
        check = self.check = _Reader(path)
        try:
            data = json.loads(read_text(path))
        except json.JSONDecodeError as exc:
            raise FormatError(path, f"not valid JSON ({exc.msg})", exc.lineno) from None
        data = check.obj(data, "the top level")
        self.images = check.items(data, "images")
        self.annotations = check.items(data, "annotations")
        self.videos = check.items(data, "videos", required=False)
        self.tracks = check.items(data, "tracks", required=False)
        self.categories = check.items(data, "categories", required=False)
        self.owners = [_track_of(check, i, a) for i, a in enumerate(self.annotations)]
        self.track_ids = _in_order(set(self.owners))
        if not self.track_ids:
            # No boxes at all (every listed frame absent): the tracks list still names the objects.
            self.track_ids = _in_order(
                {t.get("id") for t in self.tracks if isinstance(t.get("id"), (int, str))}
            )

    def label_of(self, chosen: int | str | None) -> str:
        the_track = next((t for t in self.tracks if chosen is not None and t.get("id") == chosen), None)
        category_id = None if the_track is None else the_track.get("category_id")
        if category_id is None:
            mine = [a for a, owner in zip(self.annotations, self.owners) if owner == chosen]
            category_id = mine[0].get("category_id") if mine else None
        label = next((c.get("name") for c in self.categories if c.get("id") == category_id), None)
        return label.strip() if isinstance(label, str) and label.strip() else DEFAULT_LABEL

    def choose(self, track: int | str | None) -> int | str | None:
        """``track`` by id, or by its category's name; the only track when None."""
        ids = self.track_ids
        if track is not None:
            if track in ids:
                return track
            if isinstance(track, str) and track.strip().lstrip("-").isdigit() and int(track) in ids:
                return int(track)
            named = [t for t in ids if self.label_of(t) == track]
            if len(named) == 1:
                return named[0]
            if len(named) > 1:
                raise FormatError(
                    self.path,
                    f"holds {len(named)} {track} tracks ({', '.join(map(str, named))}): choose one by id",
                )
            raise FormatError(
                self.path, f"has no track {track} (tracks: {', '.join(map(str, ids)) or 'none'})"
            )
        if len(ids) > 1:
            raise FormatError(
                self.path, f"holds {len(ids)} tracks ({', '.join(map(str, ids))}): choose one with --track"
            )
        return ids[0] if ids else None

    def _frame_of_image(self, i: int, image: dict[str, Any]) -> int:
        check = self.check
        if "frame_index" in image or "frame_id" in image:
            key = "frame_index" if "frame_index" in image else "frame_id"
            frame = check.int(image, key, f"images[{i}]")
            where = f"images[{i}].{key}"
        else:
            # Plain image COCO (CVAT's and datumaro's export of a video task): the file name says.
            name = image.get("file_name")
            frame = index_from_stem(Path(name).stem) if isinstance(name, str) else None
            if frame is None:
                raise check.fail(
                    f"images[{i}]",
                    f"no frame_index or frame_id, and its file_name {name!r} does not say which frame "
                    "(frame_000000 or 000001)",
                )
            where = f"images[{i}].file_name"
        check_frames(self.path, frame, what=where)
        if frame < 0:
            raise check.fail(where, f"must be >= 0, got {frame}")
        return frame

    def trajectory(
        self, chosen: int | str | None, frame_count: int | None, frame_size: tuple[int, int] | None
    ) -> Trajectory:
        path, check, images = self.path, self.check, self.images
        mine = [(i, a) for i, (a, owner) in enumerate(zip(self.annotations, self.owners)) if owner == chosen]
        the_track = next((t for t in self.tracks if chosen is not None and t.get("id") == chosen), None)

        image_by_id: dict[int, tuple[int, dict[str, Any]]] = {}
        for i, image in enumerate(images):
            image_by_id[check.int(image, "id", f"images[{i}]")] = (i, image)
        if mine:
            first_image = image_by_id.get(check.int(mine[0][1], "image_id", f"annotations[{mine[0][0]}]"))
            video_id = None if first_image is None else first_image[1].get("video_id")
        elif the_track is not None and "video_id" in the_track:
            video_id = the_track["video_id"]
        elif len(self.videos) == 1:
            video_id = self.videos[0].get("id")
        elif not self.videos:
            video_id = None
        else:
            raise FormatError(path, f"holds {len(self.videos)} videos and no track to choose one by")

        # --- the video's frames
        frame_of: dict[Any, int] = {}
        listed: set[int] = set()
        size = None
        for i, image in enumerate(images):
            if video_id is not None and image.get("video_id") != video_id:
                continue
            frame = self._frame_of_image(i, image)
            if frame in listed:
                raise check.fail(f"images[{i}]", f"frame {frame} is listed twice")
            listed.add(frame)
            frame_of[image.get("id")] = frame
            if size is None and "width" in image and "height" in image:
                size = _positive_size(check, image, f"images[{i}]")
        for i, video in enumerate(self.videos):
            if video.get("id") == video_id and "width" in video and "height" in video:
                size = _positive_size(check, video, f"videos[{i}]") or size

        # --- the entries
        count = max(listed, default=-1) + 1
        entries: list[Entry | None] = [None] * count
        for frame in listed:
            entries[frame] = Entry(None)
        seen: dict[int, int] = {}
        for i, annotation in mine:
            frame, entry = self._entry(i, annotation, frame_of)
            if frame in seen:
                raise check.fail(
                    f"annotations[{i}]",
                    f"a second box for the track on frame {frame} (first: annotations[{seen[frame]}])",
                )
            seen[frame] = i
            entries[frame] = entry
        trajectory = Trajectory(tuple(entries), size, self.label_of(chosen))
        return fit_to_video(trajectory, path, frame_count, frame_size)

    def _entry(self, i: int, annotation: dict[str, Any], frame_of: dict[Any, int]) -> tuple[int, Entry]:
        check = self.check
        where = f"annotations[{i}]"
        image_id = check.int(annotation, "image_id", where)
        frame = frame_of.get(image_id)
        if frame is None:
            raise check.fail(f"{where}.image_id", f"no image {image_id} in the track's video")
        bbox = annotation.get("bbox")
        if not isinstance(bbox, list) or len(bbox) != 4:
            raise check.fail(f"{where}.bbox", f"expected [x, y, w, h], got {bbox!r}")
        x, y, w, h = (check.number(v, f"{where}.bbox") for v in bbox)
        if w < 0 or h < 0:
            raise check.fail(f"{where}.bbox", "negative width or height")
        score = annotation.get("score")
        if score is not None:
            score = check.number(score, f"{where}.score")
        attributes = check.obj(annotation.get("attributes") or {}, f"{where}.attributes")
        origin_name = attributes.get("origin", Origin.IMPORTED.value)
        try:
            origin = Origin(origin_name)
        except ValueError:
            names = ", ".join(o.value for o in Origin)
            raise check.fail(
                f"{where}.attributes.origin", f"expected one of {names}, got {origin_name!r}"
            ) from None
        occluded = attributes.get("occluded", annotation.get("occluded", False))
        if not isinstance(occluded, bool):
            raise check.fail(f"{where}.attributes.occluded", f"expected true or false, got {occluded!r}")
        return frame, Entry(Box(x, y, w, h), origin, score, occluded)


def read(
    path: Path,
    *,
    frame_count: int | None = None,
    frame_size: tuple[int, int] | None = None,
    track: int | str | None = None,
) -> Trajectory:
    document = _Document(Path(path))
    return document.trajectory(document.choose(track), frame_count, frame_size)


def read_tracks(
    path: Path, *, frame_count: int | None = None, frame_size: tuple[int, int] | None = None
) -> list[Track]:
    """Every track of the file; ids that are names get the next free numbers."""
    document = _Document(Path(path))
    ids = stable_ids(document.track_ids)
    tracks = []
    for key in document.track_ids:
        trajectory = document.trajectory(key, frame_count, frame_size)
        tracks.append(Track(ids[key], trajectory.label, trajectory))
    return tracks


def write(trajectory: Trajectory, path: Path) -> None:
    write_tracks([Track(TRACK_ID, trajectory.label, trajectory)], path)


def write_tracks(tracks: Sequence[Track], path: Path) -> None:
    """One video; a category per label, a track per object (its id kept)."""
    path = Path(path)
    check_ids(tracks, path)
    sizes = {t.trajectory.frame_size for t in tracks} - {None}
    if len(sizes) > 1:
        raise FormatError(path, f"the objects' frame sizes differ: {sorted(sizes)}")
    frame_size = next(iter(sizes), None)
    size: dict[str, int] = {}
    if frame_size is not None:
        size = {"width": frame_size[0], "height": frame_size[1]}
    category_of = {label: n for n, label in enumerate(dict.fromkeys(t.label for t in tracks), start=1)}
    listed = sorted({i for t in tracks for i, _e in t.trajectory.annotated()})
    images = [
        {
            "id": index + 1,
            "video_id": VIDEO_ID,
            "file_name": f"{frame_stem(index)}.jpg",
            "frame_index": index,
            "frame_id": index,
            **size,
        }
        for index in listed
    ]
    annotations: list[dict[str, Any]] = []
    for track in tracks:
        for index, entry in track.trajectory.annotated():
            if entry.box is None:
                continue
            box = entry.box
            annotation: dict[str, Any] = {
                "id": len(annotations) + 1,
                "image_id": index + 1,
                "video_id": VIDEO_ID,
                "track_id": track.id,
                "instance_id": track.id,
                "category_id": category_of[track.label],
                "bbox": [box.x, box.y, box.w, box.h],
                "area": box.w * box.h,
                "iscrowd": 0,
                "attributes": {"occluded": entry.occluded, "origin": entry.origin.value},
            }
            if entry.score is not None:
                annotation["score"] = entry.score
            annotations.append(annotation)
    name = tracks[0].label if len(tracks) == 1 else "siamtrack"
    data = {
        "info": {"description": "trajectories written by siamtrack"},
        "licenses": [],
        "categories": [{"id": n, "name": label, "supercategory": ""} for label, n in category_of.items()],
        "videos": [{"id": VIDEO_ID, "name": name, **size}],
        "images": images,
        "tracks": [{"id": t.id, "category_id": category_of[t.label], "video_id": VIDEO_ID} for t in tracks],
        "annotations": annotations,
    }
    write_text_atomic(path, json.dumps(data, indent=1) + "\n")


FORMAT = Format(
    name="coco",
    title="COCO-VID / TAO JSON (0-based bbox [x, y, w, h])",
    layout="file",
    fields=frozenset(
        {"box", "absent", "unannotated", "keyframe", "origin", "score", "occluded", "label", "frame_size"}
    ),
    read=read,
    write=write,
    multi_track=True,
    read_tracks=read_tracks,
    write_tracks=write_tracks,
)
