"""Label Studio video object tracking (``VideoRectangle``) JSON.

Read: Label Studio's JSON export (a list of tasks, each with ``annotations``
and/or ``predictions``, each with a ``result`` list). Written: a tasks file with
``predictions``, which Label Studio imports as pre-annotations. Each result of
type ``videorectangle`` is one object (labelstud.io/tags/videorectangle,
labelstud.io/templates/video_object_detector)::

    {"id": "3", "type": "videorectangle", "from_name": "box", "to_name": "video",
     "value": {"framesCount": 300, "duration": 12.5, "labels": ["car"],
               "sequence": [{"frame": 1, "enabled": true, "rotation": 0,
                             "x": 1.5, "y": 5.0, "width": 10.0, "height": 12.5, "time": 0.0}]}}

* ``x, y, width, height`` are **percent** of the frame's width and height (top-left
  corner), so reading and writing need the frame size (``--video``).
* ``frame`` is **1-based**; ``time`` is seconds (we write ``(frame - 1) / 24``,
  Label Studio's default ``framerate``; it places boxes by ``frame``).
* Every ``sequence`` item is a keyframe. From an ``enabled`` keyframe Label Studio
  interpolates linearly to the next keyframe (after the last one, the box stays to
  the end); after a keyframe with ``enabled: false`` the object is gone until the
  next keyframe (label_studio_sdk's ``converter/keyframes.py`` fills frames the same
  way). We read it so: filled frames read as interpolated.

We write every box as a keyframe, with ``enabled: false`` where the next frame has
no box, so nothing is left to interpolate. Frames without a box are absent: Label
Studio cannot tell an unannotated frame from an absent one. The result ``id`` is
the object's id; ``framesCount`` keeps the frame count; origin, score and occlusion
are not kept.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from trackers.formats.common import Format, FormatError
from trackers.formats.frames import fit_to_video
from trackers.formats.reading import file_head, read_text
from trackers.formats.tracks import Track, check_ids, pick, stable_ids
from trackers.formats.writing import write_text_atomic
from trackers.trajectory import DEFAULT_LABEL, Entry, Origin, Trajectory
from trackers.types import Box

FRAMERATE = 24.0
"""Label Studio's default ``<Video framerate>``: only used to write ``time``."""
RESULT_TYPE = "videorectangle"
FROM_NAME, TO_NAME = "box", "video"
MODEL_VERSION = "siamtrack"


def _needs_size(path: Path, frame_size: tuple[int, int] | None) -> tuple[int, int]:
    if frame_size is None:
        raise FormatError(path, "Label Studio boxes are percent of the frame size: give the video (--video)")
    return frame_size


def _number(path: Path, value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise FormatError(path, f"{where}: expected a finite number, got {value!r}")
    return float(value)


def _results(path: Path, data: Any) -> list[dict[str, Any]]:
    """The videorectangle results of the file's one task (its first annotation, else its first prediction)."""
    tasks = data if isinstance(data, list) else [data]
    found = []
    for t, task in enumerate(tasks):
        if not isinstance(task, dict):
            raise FormatError(path, f"[{t}]: expected a task object, got {type(task).__name__}")
        for key in ("annotations", "completions", "predictions"):
            groups = task.get(key) or []
            if not isinstance(groups, list):
                raise FormatError(path, f"[{t}].{key}: expected a list")
            for g, group in enumerate(groups):
                results = group.get("result") if isinstance(group, dict) else None
                if not isinstance(results, list):
                    raise FormatError(path, f"[{t}].{key}[{g}].result: expected a list")
                mine = [
                    r
                    for r in results
                    if isinstance(r, dict) and str(r.get("type", "")).lower() == RESULT_TYPE
                ]
                if mine:
                    found.append((t, mine))
                    break
            if found and found[-1][0] == t:
                break
    if not found:
        raise FormatError(
            path, f"holds no {RESULT_TYPE} result (looked in each task's annotations and predictions)"
        )
    if len({t for t, _ in found}) > 1:
        raise FormatError(path, f"holds {len(found)} annotated video tasks; export one task")
    return found[0][1]


def _keyframes(
    path: Path, result: dict[str, Any], where: str, size: tuple[int, int]
) -> list[tuple[int, Box, bool]]:
    value = result.get("value")
    if not isinstance(value, dict) or not isinstance(value.get("sequence"), list):
        raise FormatError(path, f"{where}.value.sequence: expected a list")
    width, height = size
    keyframes: dict[int, tuple[Box, bool]] = {}
    for k, item in enumerate(value["sequence"]):
        at = f"{where}.value.sequence[{k}]"
        if not isinstance(item, dict):
            raise FormatError(path, f"{at}: expected an object")
        frame = item.get("frame")
        if isinstance(frame, bool) or not isinstance(frame, int) or frame < 1:
            raise FormatError(path, f"{at}.frame: expected a whole number from 1, got {frame!r}")
        x, y, w, h = (_number(path, item.get(key), f"{at}.{key}") for key in ("x", "y", "width", "height"))
        if w < 0 or h < 0:
            raise FormatError(path, f"{at}: negative width or height")
        if frame - 1 in keyframes:
            raise FormatError(path, f"{at}: frame {frame} is a keyframe twice")
        enabled = item.get("enabled", True)
        if not isinstance(enabled, bool):
            raise FormatError(path, f"{at}.enabled: expected true or false, got {enabled!r}")
        box = Box(x * width / 100.0, y * height / 100.0, w * width / 100.0, h * height / 100.0)
        keyframes[frame - 1] = (box, enabled)
    return [(frame, box, enabled) for frame, (box, enabled) in sorted(keyframes.items())]


def _lerp(a: Box, b: Box, t: float) -> Box:
    return Box(a.x + (b.x - a.x) * t, a.y + (b.y - a.y) * t, a.w + (b.w - a.w) * t, a.h + (b.h - a.h) * t)


def _trajectory(
    keyframes: list[tuple[int, Box, bool]], count: int, size: tuple[int, int], label: str
) -> Trajectory:
    entries: list[Entry | None] = [Entry(None)] * count
    for k, (frame, box, enabled) in enumerate(keyframes):
        entries[frame] = Entry(box, Origin.IMPORTED)
        if not enabled:
            continue
        following = keyframes[k + 1] if k + 1 < len(keyframes) else None
        stop = following[0] if following is not None else count
        for between in range(frame + 1, stop):
            filled = (
                box if following is None else _lerp(box, following[1], (between - frame) / (stop - frame))
            )
            entries[between] = Entry(filled, Origin.INTERPOLATED)
    return Trajectory(tuple(entries), size, label)


def read_tracks(
    path: Path, *, frame_count: int | None = None, frame_size: tuple[int, int] | None = None
) -> list[Track]:
    path = Path(path)
    size = _needs_size(path, frame_size)
    try:
        data = json.loads(read_text(path))
    except json.JSONDecodeError as exc:
        raise FormatError(path, f"not valid JSON ({exc.msg})", exc.lineno) from None
    results = _results(path, data)
    keys = [str(r.get("id", f"#{i}")) for i, r in enumerate(results)]
    ids = stable_ids(keys)
    parsed = []
    for i, result in enumerate(results):
        where = f"result[{i}]"
        keyframes = _keyframes(path, result, where, size)
        value = result["value"]
        labels = value.get("labels") or value.get("videorectanglelabels") or []
        label = (
            labels[0] if isinstance(labels, list) and labels and isinstance(labels[0], str) else DEFAULT_LABEL
        )
        stated = value.get("framesCount")
        if stated is not None and (isinstance(stated, bool) or not isinstance(stated, int) or stated < 0):
            raise FormatError(path, f"{where}.value.framesCount: expected a whole number, got {stated!r}")
        parsed.append((ids[keys[i]], label.strip() or DEFAULT_LABEL, keyframes, stated))
    last = max((kf[-1][0] + 1 for *_a, kf, _s in parsed if kf), default=0)
    count = (
        frame_count if frame_count is not None else max([last, *(s for *_a, s in parsed if s is not None)])
    )
    tracks = []
    for track_id, label, keyframes, _stated in parsed:
        if keyframes and keyframes[-1][0] >= count:
            raise FormatError(
                path, f"object {track_id} has a keyframe on frame {keyframes[-1][0] + 1} past the video's end"
            )
        trajectory = _trajectory(keyframes, count, size, label)
        tracks.append(Track(track_id, label, fit_to_video(trajectory, path, frame_count, frame_size)))
    return tracks


def read(
    path: Path,
    *,
    frame_count: int | None = None,
    frame_size: tuple[int, int] | None = None,
    track: int | None = None,
) -> Trajectory:
    tracks = read_tracks(path, frame_count=frame_count, frame_size=frame_size)
    return pick(tracks, Path(path), track).trajectory


def _result(track: Track, size: tuple[int, int], count: int) -> dict[str, Any]:
    width, height = size
    entries = track.trajectory.entries
    sequence = []
    for index, entry in enumerate(entries):
        if entry is None or entry.box is None:
            continue
        following = entries[index + 1] if index + 1 < len(entries) else None
        box = entry.box
        sequence.append(
            {
                "frame": index + 1,
                # the box lasts only while the next frame has one (see the module notes)
                "enabled": following is not None and following.box is not None,
                "rotation": 0,
                "x": box.x * 100.0 / width,
                "y": box.y * 100.0 / height,
                "width": box.w * 100.0 / width,
                "height": box.h * 100.0 / height,
                "time": index / FRAMERATE,
            }
        )
    if sequence and sequence[-1]["frame"] == count:
        sequence[-1]["enabled"] = True  # the video ends here: nothing follows to hide
    return {
        "id": str(track.id),
        "type": RESULT_TYPE,
        "from_name": FROM_NAME,
        "to_name": TO_NAME,
        "origin": "prediction",
        "value": {
            "framesCount": count,
            "duration": count / FRAMERATE,
            "sequence": sequence,
            "labels": [track.label],
        },
    }


def write_tracks(tracks: Sequence[Track], path: Path) -> None:
    """A one-task file with the objects as ``predictions`` (set ``data.video`` to the
    video's URL in Label Studio, or import it into the task that has the video)."""
    path = Path(path)
    check_ids(tracks, path)
    sizes = {t.trajectory.frame_size for t in tracks} - {None}
    if not sizes:
        raise FormatError(path, "Label Studio boxes are percent of the frame size: give the video (--video)")
    if len(sizes) > 1:
        raise FormatError(path, f"the objects' frame sizes differ: {sorted(sizes)}")
    size = sizes.pop()
    count = max((t.trajectory.frame_count for t in tracks), default=0)
    task = {
        "data": {"video": "video.mp4"},
        "predictions": [
            {"model_version": MODEL_VERSION, "result": [_result(t, size, count) for t in tracks]}
        ],
    }
    write_text_atomic(path, json.dumps([task], indent=1) + "\n")


def write(trajectory: Trajectory, path: Path) -> None:
    write_tracks([Track.of(trajectory)], path)


def looks_like(path: Path) -> bool:
    """A JSON file that mentions a videorectangle result."""
    return b'"videorectangle"' in file_head(path).lower()


FORMAT = Format(
    name="labelstudio",
    title="Label Studio video JSON (VideoRectangle: percent boxes, 1-based keyframes)",
    layout="file",
    fields=frozenset({"box", "absent", "absent_record", "label", "frame_count"}),
    read=read,
    write=write,
    multi_track=True,
    needs_frame_size=True,
    read_tracks=read_tracks,
    write_tracks=write_tracks,
)
