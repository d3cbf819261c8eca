"""Project files: one JSON file per annotated video, saved atomically.

A project holds what is needed to reopen the work exactly: the video's path (absolute
and relative to the project, so a moved folder still opens), a content hash that
proves it is the same video, the decoded frame count and size, the tracker settings,
the labels to pick from, and per object its id, label, colour, name, hidden flag,
own tracker settings and, per annotated frame, its box, origin, score, absent and
occluded flags. Floats are written with ``repr`` precision, so a round trip is exact.

Version 2 holds a list of objects; a version 1 file (one trajectory: ``label`` and
``frames`` at the top) opens as one object with id 1.

The dict form (:func:`session_to_dict`, :func:`session_from_dict`) is shared with
the journal, which starts every autosave file with a snapshot.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from pathlib import Path
from typing import Any

from app.model.session import AnnotatedObject, AnnotationSession, TrackerSettings, default_colour
from trackers.formats.frames import MAX_FRAMES
from trackers.formats.writing import write_text_atomic
from trackers.sources import IMAGE_SUFFIXES, frame_sort_key
from trackers.trajectory import DEFAULT_LABEL, Entry, Origin, Trajectory
from trackers.types import Box

PROJECT_VERSION = 2
READABLE_VERSIONS = (1, 2)
PROJECT_FORMAT = "siamtrack-project"
PROJECT_SUFFIX = ".siamtrack.json"
_SAMPLE = 1 << 20


class ProjectError(ValueError):
    """A project file cannot be used; the message is one line for the user."""


# --------------------------------------------------------------------------- content hash


def _hash_file_samples(h: Any, path: Path) -> None:
    size = path.stat().st_size
    h.update(f"{size}\n".encode())
    with path.open("rb") as f:
        if size <= 3 * _SAMPLE:
            h.update(f.read())
            return
        for offset in (0, (size - _SAMPLE) // 2, size - _SAMPLE):
            f.seek(offset)
            h.update(f.read(_SAMPLE))


def content_hash(path: Path) -> str:
    """sha256 of the size and the first, middle and last MiB of a video.

    Reading 3 MiB instead of the whole file keeps opening a long video instant, and
    an edited or re-encoded video changes its size or those bytes anyway. For a
    folder of frames, the names and sizes of all frames and the first and last file.
    """
    path = Path(path)
    h = hashlib.sha256(b"siamtrack-content-v1\n")
    if path.is_dir():
        folder = path / "img" if (path / "img").is_dir() else path
        files = sorted(
            (p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()),
            key=frame_sort_key,
        )
        for p in files:
            h.update(f"{p.name}\t{p.stat().st_size}\n".encode())
        for p in files[:1] + files[-1:]:
            _hash_file_samples(h, p)
    else:
        _hash_file_samples(h, path)
    return h.hexdigest()


# --------------------------------------------------------------------------- entries


def entry_to_json(entry: Entry) -> dict[str, Any]:
    return {
        "box": None if entry.box is None else [entry.box.x, entry.box.y, entry.box.w, entry.box.h],
        "origin": entry.origin.value,
        "score": entry.score,
        "absent": entry.box is None,
        "occluded": entry.occluded,
    }


def _number(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{what} must be a finite number, got {value!r}")
    return float(value)


def entry_from_json(data: Any) -> Entry:
    """An Entry from its JSON form; ValueError naming what is wrong."""
    if not isinstance(data, dict):
        raise ValueError(f"a frame must be an object, got {type(data).__name__}")
    box_data = data.get("box")
    if box_data is None:
        box = None
    elif isinstance(box_data, list) and len(box_data) == 4:
        box = Box(*(_number(v, "a box value") for v in box_data))
    else:
        raise ValueError(f"a box must be [x, y, w, h] or null, got {box_data!r}")
    absent = data.get("absent", box is None)
    if absent is not (box is None):
        raise ValueError("'absent' must be true exactly when the box is null")
    try:
        origin = Origin(data.get("origin"))
    except ValueError:
        known = ", ".join(o.value for o in Origin)
        raise ValueError(f"origin must be one of {known}, got {data.get('origin')!r}") from None
    score = data.get("score")
    if score is not None:
        score = _number(score, "a score")
    occluded = data.get("occluded", False)
    if not isinstance(occluded, bool):
        raise ValueError(f"'occluded' must be true or false, got {occluded!r}")
    return Entry(box, origin, score, occluded)


# --------------------------------------------------------------------------- settings


def settings_to_json(settings: TrackerSettings) -> dict[str, Any]:
    return {
        "tracker": settings.tracker,
        "weights": None if settings.weights is None else str(settings.weights),
        "device": settings.device,
        "model_dir": None if settings.model_dir is None else str(settings.model_dir),
        "max_frames": settings.max_frames,
    }


def settings_from_json(data: Any) -> TrackerSettings:
    if not isinstance(data, dict):
        raise ValueError("'settings' must be an object")
    defaults = TrackerSettings()

    def text(key: str, default: str | None) -> str | None:
        value = data.get(key, default)
        if value is not None and not isinstance(value, str):
            raise ValueError(f"settings.{key} must be text, got {value!r}")
        return value

    max_frames = data.get("max_frames")
    if max_frames is not None and (isinstance(max_frames, bool) or not isinstance(max_frames, int)):
        raise ValueError(f"settings.max_frames must be a whole number or null, got {max_frames!r}")
    weights, model_dir = text("weights", None), text("model_dir", None)
    return TrackerSettings(
        tracker=text("tracker", defaults.tracker) or defaults.tracker,
        weights=None if weights is None else Path(weights),
        device=text("device", defaults.device) or defaults.device,
        model_dir=None if model_dir is None else Path(model_dir),
        max_frames=max_frames,
    )


# --------------------------------------------------------------------------- sessions


def object_to_dict(obj: AnnotatedObject) -> dict[str, Any]:
    return {
        "id": obj.id,
        "label": obj.label,
        "name": obj.name,
        "colour": obj.colour,
        "hidden": obj.hidden,
        "settings": None if obj.settings is None else settings_to_json(obj.settings),
        "frames": [{"index": i, **entry_to_json(e)} for i, e in obj.trajectory.annotated()],
    }


def session_to_dict(
    session: AnnotationSession,
    relative_to: Path | None = None,
    objects: tuple[AnnotatedObject, ...] | None = None,
) -> dict[str, Any]:
    """The project's JSON object; ``relative_to`` (the project's folder) adds a relative video path.

    ``objects`` (default: the session's now) lets another thread serialise a state it took earlier.
    """
    objects = session.objects if objects is None else objects
    video = Path(os.path.abspath(session.video))
    relative = None
    if relative_to is not None:
        try:
            relative = Path(os.path.relpath(video, os.path.abspath(relative_to))).as_posix()
        except ValueError:  # another drive on Windows: no relative path exists
            relative = None
    return {
        "format": PROJECT_FORMAT,
        "version": PROJECT_VERSION,
        "video": {
            "path": str(video),
            "relative_path": relative,
            "content_hash": session.content_hash,
            "frame_count": session.frame_count,
            "frame_size": list(session.frame_size),
        },
        "settings": settings_to_json(session.settings),
        "labels": list(session.labels),
        "selected": session.selected_id,
        "objects": [object_to_dict(o) for o in objects],
    }


def _whole(value: Any, what: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{what} must be a whole number >= {minimum}, got {value!r}")
    return value


def session_from_dict(data: Any, video: Path | None = None) -> AnnotationSession:
    """Build the session a project (or journal snapshot) describes; ValueError on bad content.

    ``video`` replaces the stored path (the caller has checked it is the same video).
    """
    if not isinstance(data, dict):
        raise ValueError("the file does not hold a JSON object")
    if data.get("format") != PROJECT_FORMAT:
        raise ValueError('not a siamtrack project (no "format": "siamtrack-project")')
    version = data.get("version")
    if isinstance(version, bool) or version not in READABLE_VERSIONS:
        raise ValueError(
            f"project version {version!r} is not supported (this siamtrack reads "
            f"{' and '.join(map(str, READABLE_VERSIONS))})"
        )
    info = data.get("video")
    if not isinstance(info, dict):
        raise ValueError("'video' must be an object")
    path = info.get("path")
    if not isinstance(path, str) or not path:
        raise ValueError("video.path must be a non-empty text")
    digest = info.get("content_hash")
    if not isinstance(digest, str) or not digest:
        raise ValueError("video.content_hash must be a non-empty text")
    count = _whole(info.get("frame_count"), "video.frame_count", 0)
    if count >= MAX_FRAMES:
        # A damaged or hostile count would build a list that size before anything else fails.
        raise ValueError(f"video.frame_count {count} is past the {MAX_FRAMES:,} frames siamtrack accepts")
    size = info.get("frame_size")
    if not isinstance(size, list) or len(size) != 2:
        raise ValueError(f"video.frame_size must be [width, height], got {size!r}")
    width, height = (_whole(v, "video.frame_size", 1) for v in size)
    settings = settings_from_json(data.get("settings", {}))
    if version == 1:
        objects = [_object_from_dict({**data, "id": 1, "settings": None}, count, (width, height))]
        labels: list[Any] = []
        selected = 1
    else:
        items = data.get("objects")
        if not isinstance(items, list) or not items:
            raise ValueError("'objects' must be a non-empty list")
        objects = [_object_from_dict(item, count, (width, height)) for item in items]
        labels = data.get("labels", [])
        if not isinstance(labels, list) or not all(isinstance(x, str) for x in labels):
            raise ValueError(f"'labels' must be a list of texts, got {labels!r}")
        selected = data.get("selected", objects[0].id)
    return AnnotationSession(
        video=Path(video) if video is not None else Path(path),
        frame_count=count,
        frame_size=(width, height),
        content_hash=digest,
        settings=settings,
        objects=objects,
        labels=[x for x in labels if x.strip()],
        selected=selected if isinstance(selected, int) and not isinstance(selected, bool) else None,
    )


def _object_from_dict(data: Any, count: int, size: tuple[int, int]) -> AnnotatedObject:
    if not isinstance(data, dict):
        raise ValueError("an object must be a JSON object")
    object_id = _whole(data.get("id"), "an object's id", 1)
    where = "" if data.get("version") == 1 else f"object {object_id}: "
    label = data.get("label", DEFAULT_LABEL)
    if not isinstance(label, str) or not label.strip():
        raise ValueError(f"{where}'label' must be a non-empty text, got {label!r}")
    frames = data.get("frames")
    if not isinstance(frames, list):
        raise ValueError(f"{where}'frames' must be a list")
    entries: list[Entry | None] = [None] * count
    for item in frames:
        index = _whole(item.get("index") if isinstance(item, dict) else None, f"{where}a frame's index", 0)
        if index >= count:
            raise ValueError(f"{where}frame {index} is past the video's {count} frames")
        if entries[index] is not None:
            raise ValueError(f"{where}frame {index} appears twice")
        try:
            entries[index] = entry_from_json(item)
        except ValueError as exc:
            raise ValueError(f"{where}frame {index}: {exc}") from None
    name = data.get("name", "")
    if not isinstance(name, str):
        raise ValueError(f"{where}'name' must be text, got {name!r}")
    hidden = data.get("hidden", False)
    if not isinstance(hidden, bool):
        raise ValueError(f"{where}'hidden' must be true or false, got {hidden!r}")
    settings = data.get("settings")
    colour = data.get("colour", default_colour(object_id))
    try:
        return AnnotatedObject(
            object_id,
            Trajectory(tuple(entries), size, label),
            colour,
            name,
            hidden,
            None if settings is None else settings_from_json(settings),
        )
    except ValueError as exc:
        raise ValueError(f"{where}{exc}") from None


# --------------------------------------------------------------------------- files


def _project_text(data: dict[str, Any]) -> str:
    """Indented JSON with one line per frame: readable, diffable, and compact for long videos."""
    head = {k: v for k, v in data.items() if k != "objects"}
    lines = [f"  {json.dumps(k)}: {json.dumps(v)}," for k, v in head.items()]
    blocks = []
    for obj in data["objects"]:
        meta = ", ".join(f"{json.dumps(k)}: {json.dumps(v)}" for k, v in obj.items() if k != "frames")
        frames = ",\n".join("      " + json.dumps(f, separators=(", ", ": ")) for f in obj["frames"])
        body = f'"frames": [\n{frames}\n    ]' if frames else '"frames": []'
        blocks.append(f"    {{{meta}, {body}}}")
    return "{\n" + "\n".join(lines) + '\n  "objects": [\n' + ",\n".join(blocks) + "\n  ]\n}\n"


def save_project(session: AnnotationSession, path: Path) -> None:
    """Write the project atomically: a crash leaves the old file or the new one, never half of one."""
    from app.model import project_lock

    path = Path(path)
    # Another siamtrack editing this project must not have its save overwritten: it is
    # refused here, naming the holder (app.model.project_lock).
    held = project_lock.is_held(path)
    project_lock.acquire(path)
    try:
        state = session.snapshot()
        data = session_to_dict(session, relative_to=path.parent, objects=state[0])
        write_text_atomic(path, _project_text(data))
        session.mark_saved(state)
    finally:
        if not held:  # an open document holds it for as long as it is open; this save alone, not
            project_lock.release(path)


def _fail(path: Path, problem: str) -> ProjectError:
    return ProjectError(f"Cannot open project {path}: {problem}".replace("\n", " "))


def _find_video(path: Path, data: dict[str, Any]) -> Path:
    info = data["video"]
    stored = Path(info["path"])
    candidates = [stored]
    relative = info.get("relative_path")
    if isinstance(relative, str) and relative:
        candidates.append(path.parent / relative)
    for candidate in candidates:
        if candidate.exists():
            return candidate
    raise _fail(
        path, f"its video {stored} is missing; open the project together with the video's new location"
    )


def load_project(path: Path, video: Path | None = None) -> AnnotationSession:
    """Read a project; ProjectError (one line) when it is unreadable, malformed or for another video.

    ``video`` overrides where the video is looked for (it moved); it must still be
    the same video, by content hash.
    """
    path = Path(path)
    if path.exists() and not path.is_file():  # a FIFO would block the read until a writer appears
        raise _fail(path, "not a regular file (a folder, a FIFO, a device or a socket)")
    try:
        # utf-8-sig: a byte order mark (Windows editors write one) is read past, as in
        # ground truth and CVAT files
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise _fail(path, "no such file") from None
    except UnicodeDecodeError:
        raise _fail(path, "not UTF-8 text") from None
    except OSError as exc:
        raise _fail(path, f"cannot be read ({exc.strerror})") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise _fail(path, f"not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})") from None
    except RecursionError:
        raise _fail(path, "not a project: its JSON is nested too deeply") from None
    try:
        session = session_from_dict(data)
    except ValueError as exc:
        raise _fail(path, str(exc)) from None
    except RecursionError:
        raise _fail(path, "not a project: its JSON is nested too deeply") from None
    located = Path(video) if video is not None else _find_video(path, data)
    if not located.exists():
        raise _fail(path, f"the video {located} does not exist")
    if not (located.is_file() or located.is_dir()):
        raise _fail(
            path, f"the video {located} is not a regular file or a folder (a FIFO, a device or a socket)"
        )
    try:
        digest = content_hash(located)
    except OSError as exc:
        raise _fail(path, f"the video {located} cannot be read ({exc.strerror})") from None
    if digest != session.content_hash:
        raise _fail(path, f"{located} is not the video this project was made for (its content differs)")
    session.video = located
    return session
