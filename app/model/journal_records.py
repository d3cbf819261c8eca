"""The journal's record format: JSON lines, their encoding, and replaying them onto a snapshot.

The first line is a header (``"type": "header"``, ``version``, ``pid``, ``created``,
``project``, ``unsaved`` and the ``session`` snapshot in the project's dict form, see
:mod:`app.model.project`). An edit line (``"type": "edit"``) holds the entries it left on
the frames of one object (``"object"``): ``"frames": [[index, entry], ...]``, or, for one
entry over a stretch, ``"range": [start, stop]`` and ``"entry"``. An ``"objects"`` line holds a
new full snapshot. Readers stop at the first damaged line and ignore a last line without
its newline (a crash can cut it short). The writer and the recovery are in
:mod:`app.model.journal`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

from app.model.project import entry_from_json, entry_to_json, session_from_dict
from app.model.session import AnnotatedObject
from trackers.trajectory import Entry, Trajectory

JOURNAL_VERSION = 2
"""2: edit records name their object, and "objects" records snapshot the object list."""
READABLE_JOURNALS = (1, 2)


class JournalError(ValueError):
    """A journal cannot be used; the message is one line for the user."""



def edit_record(
    kind: str, stamp: float, trajectory: Trajectory, frames: range | tuple[int, ...], object_id: int = 1
) -> dict[str, Any]:
    entries = [trajectory[i] for i in frames]
    record: dict[str, Any] = {"type": "edit", "kind": kind, "t": stamp, "object": object_id}
    if isinstance(frames, range) and len(frames) > 1 and all(e == entries[0] for e in entries):
        # Marking a long stretch absent is one line, not one per frame.
        record["range"] = [frames.start, frames.stop]
        record["entry"] = None if entries[0] is None else entry_to_json(entries[0])
    else:
        record["frames"] = [[i, None if e is None else entry_to_json(e)] for i, e in zip(frames, entries)]
    return record


def record_line(record: dict[str, Any]) -> bytes:
    return (json.dumps(record, separators=(",", ":")) + "\n").encode("utf-8")


def read_records(path: Path) -> Iterator[dict[str, Any]]:
    """The complete, parseable lines of a journal, in order; stops at the first damaged one."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise JournalError(f"Cannot read journal {path}: no such file") from None
    except OSError as exc:
        raise JournalError(f"Cannot read journal {path}: {exc.strerror}") from None
    for raw in data.split(b"\n")[:-1]:  # the piece after the last newline is unfinished
        try:
            record = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError):
            return
        if not isinstance(record, dict):
            return
        yield record


def read_header(path: Path) -> dict[str, Any]:
    for record in read_records(path):
        if record.get("type") == "header" and record.get("version") in READABLE_JOURNALS:
            return record
        break
    raise JournalError(f"Cannot read journal {path}: it has no valid header")


def _frame_index(value: Any, frame_count: int, stop: bool = False) -> int:
    """A frame index (or, with ``stop``, an exclusive end) of a record; ValueError otherwise."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"a frame index must be a whole number, got {value!r}")
    if not 0 <= value < frame_count + (1 if stop else 0):
        raise ValueError(f"frame {value} is outside 0..{frame_count - 1}")
    return value


def record_changes(record: dict[str, Any], frame_count: int) -> dict[int, Entry | None]:
    """The entries an edit record sets; ValueError (or KeyError, TypeError) on a damaged one.

    Indices are checked against ``frame_count`` before anything is built: a damaged
    ``range`` of a billion frames must not become a billion-entry dict.
    """

    def entry(data: Any) -> Entry | None:
        return None if data is None else entry_from_json(data)

    if "range" in record:
        start, stop = record["range"]
        start = _frame_index(start, frame_count)
        stop = _frame_index(stop, frame_count, stop=True)
        value = entry(record["entry"])
        return dict.fromkeys(range(start, stop), value)
    return {_frame_index(i, frame_count): entry(data) for i, data in record["frames"]}


def snapshot_video(path: Path, header: dict[str, Any]) -> dict[str, Any]:
    session = header.get("session")
    video = session.get("video") if isinstance(session, dict) else None
    if not isinstance(video, dict):
        raise JournalError(f"Cannot read journal {path}: its snapshot names no video")
    return video


def replayed(path: Path, frame_count: int) -> tuple[list[AnnotatedObject], tuple[str, ...], int]:
    """The snapshot with every complete record applied: the objects, the labels, and how many edits."""
    header = read_header(path)
    try:
        snapshot = session_from_dict(header["session"])
    except (KeyError, ValueError) as exc:
        raise JournalError(f"Cannot read journal {path}: bad snapshot ({exc})") from None
    if snapshot.frame_count != frame_count:
        raise JournalError(
            f"Cannot replay journal {path}: it is for {snapshot.frame_count} frames, "
            f"the session has {frame_count}"
        )
    objects = {o.id: o for o in snapshot.objects}
    labels = snapshot.labels
    count = 0
    for record in read_records(path):
        kind = record.get("type")
        try:
            if kind == "edit":
                object_id = record.get("object", next(iter(objects)))
                obj = objects[object_id]
                changes = record_changes(record, frame_count)
                objects[object_id] = replace(obj, trajectory=obj.trajectory.with_entries(changes))
            elif kind == "objects":
                state = session_from_dict(record["session"])
                if state.frame_count != frame_count:
                    raise ValueError("a snapshot for another frame count")
                objects = {o.id: o for o in state.objects}
                labels = state.labels
            else:
                continue
        except (KeyError, TypeError, ValueError, IndexError, OverflowError, StopIteration):
            break  # a damaged line: everything before it is still good
        count += 1
    return list(objects.values()), labels, count
