"""The session's edit history: what an edit changed (:class:`ChangeEvent`), one undo step
(:class:`UndoStep`), and the undo and redo stacks (:class:`UndoHistory`).

A step holds, per object, only the entries it replaced and the ones it wrote, and the
objects it added, removed or changed; undo writes the first back, redo the second.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from app.model.annotated_object import AnnotatedObject
from trackers.trajectory import Entry

if TYPE_CHECKING:
    from app.model.session_runs import CurrentRun

UNDO_DEPTH = 500
"""Undo steps kept. A step holds only the entries it changed, so even long runs stay small."""


@dataclass(frozen=True, slots=True)
class ChangeEvent:
    """Which frames an edit changed, and what kind of edit it was.

    Kinds: ``keyframe``, ``absent``, ``clear``, ``tracked`` (one frame of a run),
    ``run_ended`` (no frames; the run's frames were reported as they came),
    ``fuse``, ``interpolate``, ``undo``, ``redo``, ``restore``; and, with no frames,
    ``objects`` (the object list or an object's label, colour, ... changed) and
    ``select`` (another object is selected; not an edit).
    """

    frames: range | tuple[int, ...]
    kind: str
    object_id: int | None = field(default=None, compare=False)
    """The object whose frames changed (None for ``run_ended``, ``objects``, ``select``)."""


@dataclass(slots=True)
class UndoStep:
    """One undo step: per object, the entries it replaced and the ones it wrote; and the
    objects it added, removed or changed (``(position, before, after)``, None = absent)."""

    kind: str
    frames: dict[int, tuple[dict[int, Entry | None], dict[int, Entry | None]]] = field(default_factory=dict)
    objects: list[tuple[int, AnnotatedObject | None, AnnotatedObject | None]] = field(default_factory=list)
    label: str = ""
    """What the Edit menu calls it ("correction at frame 287"); empty: said from kind and frames."""

    def changed_frames(self) -> set[int]:
        return {i for _, after in self.frames.values() for i in after}


Listener = Callable[[ChangeEvent], None]

_KIND_TEXT = {
    "keyframe": "box",
    "absent": "absent",
    "clear": "delete",
    "run": "tracking",
    "fuse": "tracking both ways",
    "interpolate": "interpolation",
    "restore": "restore",
    "add_object": "new object",
    "delete_object": "delete object",
    "update_object": "object's label, colour or name",
}


def _describe(kind: str, frames: Iterable[int]) -> str:
    ordered = sorted(frames)
    text = _KIND_TEXT.get(kind, kind)
    if not ordered:
        return text
    if len(ordered) == 1:
        return f"{text} at frame {ordered[0]}"
    return f"{text}, frames {ordered[0]}-{ordered[-1]}"


def _step_text(step: UndoStep) -> str:
    if step.label:
        return step.label
    if step.objects and step.kind in ("add_object", "delete_object", "update_object"):
        obj = step.objects[0][2] or step.objects[0][1]
        return f"{_KIND_TEXT[step.kind]} {obj.id}" if obj is not None else _KIND_TEXT[step.kind]
    return _describe(step.kind, step.changed_frames())


class UndoHistory:
    """The undo and redo stacks of :class:`~app.model.session.AnnotationSession` (a mixin).

    Undo and redo first close the current runs: the frames they tracked so far are
    one step, the last one."""

    # What the session holds (set by its __init__):
    _undo: list[UndoStep]
    _redo: list[UndoStep]
    _runs: dict[int, CurrentRun]
    _objects: dict[int, AnnotatedObject]
    _lock: threading.RLock

    @property
    def can_undo(self) -> bool:
        return bool(self._undo) or any(r.after for r in self._runs.values())

    @property
    def can_redo(self) -> bool:
        return bool(self._redo)

    @property
    def undo_text(self) -> str:
        """What Undo would take back, for the Edit menu ("correction at frame 287"); "" if nothing."""
        tracked = [r for r in self._runs.values() if r.after]
        if tracked:
            run = tracked[0]
            joined = run.join is not None and bool(self._undo) and self._undo[-1] is run.join
            if not joined:
                return run.label or _describe("run", {i for r in tracked for i in r.after})
        return _step_text(self._undo[-1]) if self._undo else ""

    @property
    def redo_text(self) -> str:
        return _step_text(self._redo[-1]) if self._redo else ""

    def undo(self) -> bool:
        """Undo the last edit (running runs count as one and are stopped); False if none."""
        return self._travel(self._undo, self._redo, "undo")

    def redo(self) -> bool:
        return self._travel(self._redo, self._undo, "redo")

    def _push(self, step: UndoStep) -> None:
        self._undo.append(step)
        del self._undo[:-UNDO_DEPTH]
        self._redo.clear()

    def _travel(self, source: list[UndoStep], target: list[UndoStep], kind: str) -> bool:
        with self._lock:
            self._commit_runs()
            if not source:
                return False
            step = source.pop()
            target.append(step)
            events: list[ChangeEvent] = []
            if kind == "redo" and step.objects:
                events.append(self._apply_objects(step.objects, after=True))
            for object_id, (before, after) in step.frames.items():
                entries = before if kind == "undo" else after
                if object_id in self._objects:
                    events.append(self._write(object_id, entries, kind))
            if kind == "undo" and step.objects:
                events.append(self._apply_objects(step.objects, after=False))
        self._notify(events)
        return True
