"""The annotation session: the Qt-free model that the GUI and ``siamtrack effort`` both drive.

The session owns a list of objects (:class:`AnnotatedObject`: a stable id, a
label, a colour, its own immutable :class:`~trackers.trajectory.Trajectory` and
tracker settings) and changes them only through edits. One object is *selected*;
every edit acts on it unless it names another (``object_id=``), so code written
for one trajectory (``session.trajectory``) keeps working. Every edit is one undo
step, whatever objects it touches, and tells the listeners which frames of which
object changed (:class:`ChangeEvent`), which is how the GUI repaints and how the
journal autosaves. Adding, deleting and relabelling objects are undo steps too.

Tracking runs happen elsewhere (a worker thread, or :mod:`app.model.session_runner`);
the session plans them (:meth:`AnnotationSession.begin_run`) and takes their
results frame by frame (:meth:`AnnotationSession.accept`). Rules a run obeys:

* it never overwrites a keyframe, and stops before the next one;
* only the *current* run's results are taken: starting another run, or any
  user edit, makes the running one stale, and its late results are dropped;
* when re-tracking over frames an earlier run already tracked, the run stops
  once the new boxes agree with the old ones (IoU >= ``rejoin_iou``) for
  ``rejoin_frames`` frames in a row: the rest of the old track is as good as
  what the new run would produce, and it may hold work the user already checked;
* all frames of one run are one undo step; so are all frames of the runs started
  together for several objects (:meth:`AnnotationSession.begin_runs`).

Everything here is deterministic: no clocks, no randomness, so the simulated
annotator of ``siamtrack effort`` replays exactly.

The session is meant to be driven from one thread at a time; a lock makes the
odd call from a worker thread safe, and listeners are called outside it.

The session's parts live beside it: the objects (:mod:`app.model.annotated_object`,
:mod:`app.model.session_objects`), the runs (:mod:`app.model.session_runs`) and the undo
history (:mod:`app.model.undo`).
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterable, Mapping
from dataclasses import replace
from pathlib import Path

from app.model.annotated_object import PALETTE, AnnotatedObject, TrackerSettings, default_colour
from app.model.session_objects import ObjectList
from app.model.session_runs import (
    REJOIN_FRAMES,
    REJOIN_IOU,
    RUN_REASONS,
    CurrentRun,
    RunPlanning,
    RunRequest,
    usable_box,
)
from app.model.undo import UNDO_DEPTH, ChangeEvent, Listener, UndoHistory, UndoStep
from trackers.trajectory import Entry, Origin, Trajectory
from trackers.types import Box, TrackResult

__all__ = [
    "PALETTE",
    "REJOIN_FRAMES",
    "REJOIN_IOU",
    "RUN_REASONS",
    "UNDO_DEPTH",
    "AnnotatedObject",
    "AnnotationSession",
    "ChangeEvent",
    "Listener",
    "RunRequest",
    "TrackerSettings",
    "default_colour",
]


def _frames_of(indices: Iterable[int]) -> range | tuple[int, ...]:
    """A range when the changed frames are contiguous (cheap for listeners), else a sorted tuple."""
    ordered = tuple(sorted(indices))
    if ordered and ordered[-1] - ordered[0] + 1 == len(ordered):
        return range(ordered[0], ordered[-1] + 1)
    return ordered


def _score(result: TrackResult) -> float:
    # A NaN score says nothing, so it loses against any real one.
    return result.score if math.isfinite(result.score) else -math.inf


class AnnotationSession(ObjectList, RunPlanning, UndoHistory):
    """One video's annotation: its objects, their trajectories, the undo history and the current runs."""

    def __init__(
        self,
        video: Path,
        frame_count: int,
        frame_size: tuple[int, int],
        content_hash: str,
        trajectory: Trajectory | None = None,
        settings: TrackerSettings = TrackerSettings(),  # noqa: B008 - frozen, so sharing is safe
        *,
        rejoin_iou: float = REJOIN_IOU,
        rejoin_frames: int = REJOIN_FRAMES,
        objects: Iterable[AnnotatedObject] | None = None,
        labels: Iterable[str] = (),
        selected: int | None = None,
    ) -> None:
        """``trajectory`` makes a session of one object (id 1); ``objects`` gives them all.

        With neither, the session holds one empty object, as a new video does.
        """
        if frame_count < 0:
            raise ValueError(f"frame_count must be >= 0, got {frame_count}")
        self.video = Path(video)
        self.frame_count = int(frame_count)
        self.frame_size = (int(frame_size[0]), int(frame_size[1]))
        self.content_hash = content_hash
        self.settings = settings
        self.rejoin_iou = rejoin_iou
        self.rejoin_frames = rejoin_frames
        if objects is not None and trajectory is not None:
            raise ValueError("give a trajectory or objects, not both")
        if objects is None:
            if trajectory is None:
                trajectory = Trajectory.empty(self.frame_count, self.frame_size)
            objects = [AnnotatedObject(1, trajectory, default_colour(1))]
        self._objects: dict[int, AnnotatedObject] = {}
        for obj in objects:
            if obj.id in self._objects:
                raise ValueError(f"object id {obj.id} appears twice")
            if obj.trajectory.frame_count != self.frame_count:
                raise ValueError(
                    f"object {obj.id}'s trajectory has {obj.trajectory.frame_count} frames "
                    f"but the video {self.frame_count}"
                )
            self._objects[obj.id] = obj
        if not self._objects:
            raise ValueError("a session holds at least one object")
        self._labels: list[str] = []
        for label in [*labels, *(o.label for o in self._objects.values())]:
            self._add_label(label)
        self._selected = selected if selected in self._objects else next(iter(self._objects))
        self._saved: tuple[tuple[AnnotatedObject, ...], tuple[str, ...]] | None = self._state()
        """The state a project file holds; a new or loaded session starts saved."""
        self._undo: list[UndoStep] = []
        self._redo: list[UndoStep] = []
        self._runs: dict[int, CurrentRun] = {}
        """The current runs (one, or one per object of a group), all one undo step."""
        self._next_run_id = 1
        self._listeners: list[Listener] = []
        self._lock = threading.RLock()

    # --- reading ----------------------------------------------------------------------
    @property
    def objects(self) -> tuple[AnnotatedObject, ...]:
        """Every object, in list order (immutable: safe to hand to another thread)."""
        return tuple(self._objects.values())

    @property
    def object_ids(self) -> list[int]:
        return list(self._objects)

    def object(self, object_id: int | None = None) -> AnnotatedObject:
        """The object with this id (default: the selected one); KeyError names a missing one."""
        key = self._selected if object_id is None else object_id
        try:
            return self._objects[key]
        except KeyError:
            raise KeyError(f"no object {key} in this session") from None

    @property
    def selected_id(self) -> int:
        return self._selected

    @property
    def labels(self) -> tuple[str, ...]:
        """The project's labels to pick from: every label ever given, in order."""
        return tuple(self._labels)

    @property
    def trajectory(self) -> Trajectory:
        """The selected object's trajectory."""
        return self._objects[self._selected].trajectory

    def trajectory_of(self, object_id: int | None = None) -> Trajectory:
        return self.object(object_id).trajectory

    def settings_of(self, object_id: int | None = None) -> TrackerSettings:
        """The tracker settings a run of this object uses: its own, else the session's."""
        return self.object(object_id).settings or self.settings

    def _state(self) -> tuple[tuple[AnnotatedObject, ...], tuple[str, ...]]:
        return self.objects, tuple(self._labels)

    @property
    def is_modified(self) -> bool:
        """Whether the objects differ from the last saved ones (undoing back to them counts as saved)."""
        saved = self._saved
        if saved is None:
            return True
        objects, labels = saved
        current = self.objects
        if labels != tuple(self._labels) or len(objects) != len(current):
            return True
        return any(a is not b and a != b for a, b in zip(objects, current))

    def mark_saved(self, state: tuple[tuple[AnnotatedObject, ...], tuple[str, ...]] | None = None) -> None:
        """``state`` (default: the current one, see :meth:`snapshot`) is what the project file holds."""
        self._saved = self._state() if state is None else state

    def snapshot(self) -> tuple[tuple[AnnotatedObject, ...], tuple[str, ...]]:
        """The current objects and labels, for :meth:`mark_saved` after a save made from them."""
        return self._state()

    def mark_modified(self) -> None:
        """No project file holds this state (a session restored from a journal)."""
        self._saved = None

    def low_confidence_frames(self, threshold: float, object_id: int | None = None) -> list[int]:
        """Tracked frames whose score is below ``threshold``: where a user should look first."""
        return [
            i
            for i, e in self.trajectory_of(object_id).annotated()
            if e.origin is Origin.TRACKED and e.score is not None and e.score < threshold
        ]

    # --- listeners --------------------------------------------------------------------
    def add_listener(self, fn: Listener) -> None:
        self._listeners.append(fn)

    def remove_listener(self, fn: Listener) -> None:
        if fn in self._listeners:
            self._listeners.remove(fn)

    def _notify(self, events: ChangeEvent | Iterable[ChangeEvent] | None) -> None:
        if events is None:
            return
        for event in [events] if isinstance(events, ChangeEvent) else list(events):
            for fn in list(self._listeners):
                fn(event)

    # --- edits ------------------------------------------------------------------------
    def set_keyframe(
        self, index: int, box: Box, occluded: bool = False, *, object_id: int | None = None
    ) -> None:
        """The user drew or fixed the box on ``index``."""
        self._check_index(index)
        if not box.is_valid():
            raise ValueError(f"a keyframe box needs a positive size and finite values, got {box}")
        self._edit("keyframe", {index: Entry(box, Origin.KEYFRAME, None, occluded)}, object_id)

    def set_absent(self, start: int, stop: int | None = None, *, object_id: int | None = None) -> None:
        """The target is not visible on frame ``start``, or on every frame of ``[start, stop)``."""
        frames = self._span(start, stop)
        absent = Entry(None, Origin.KEYFRAME)
        self._edit("absent", dict.fromkeys(frames, absent), object_id)

    def clear(self, start: int, stop: int | None = None, *, object_id: int | None = None) -> None:
        """Forget what is known about frame ``start``, or every frame of ``[start, stop)``."""
        self._edit("clear", dict.fromkeys(self._span(start, stop)), object_id)

    def interpolate(self, a: int, b: int, *, object_id: int | None = None) -> None:
        """Linear boxes on the frames between keyframes ``a < b`` (keyframes between stay)."""
        self._check_index(a)
        self._check_index(b)
        if not a < b:
            raise ValueError(f"interpolate needs a < b, got {a} and {b}")
        box_a, box_b = self._keyframe_box(a, object_id), self._keyframe_box(b, object_id)
        va, vb = box_a.as_array(), box_b.as_array()
        span = b - a
        changes: dict[int, Entry | None] = {}
        for i in range(a + 1, b):
            if self._is_keyframe(i, object_id):
                continue
            # (delta * k) / n rather than delta * (k / n): when the true value is a
            # representable number (integer motion, halves...), division rounds to it exactly.
            values = [float(va[c] + (vb[c] - va[c]) * (i - a) / span) for c in range(4)]
            changes[i] = Entry(Box(*values), Origin.INTERPOLATED)
        self._edit("interpolate", changes, object_id)

    def fuse_bidirectional(
        self,
        forward: Mapping[int, TrackResult],
        backward: Mapping[int, TrackResult],
        *,
        object_id: int | None = None,
    ) -> None:
        """Store, per frame, the forward or backward result with the higher score (one undo step).

        Meant for the frames between two keyframes, tracked forward from the first and
        backward from the second; keyframes are never overwritten. Ties go forward.
        """
        changes: dict[int, Entry | None] = {}
        for index in sorted(set(forward) | set(backward)):
            self._check_index(index)
            f, b = forward.get(index), backward.get(index)
            pick = f if b is None or (f is not None and _score(f) >= _score(b)) else b
            assert pick is not None
            if self._is_keyframe(index, object_id) or not usable_box(pick.box):
                continue
            changes[index] = Entry(pick.box, Origin.TRACKED, pick.score)
        self._edit("fuse", changes, object_id)

    def apply(
        self, changes: Mapping[int, Entry | None], kind: str = "restore", *, object_id: int | None = None
    ) -> None:
        """Write arbitrary entries as one undo step (journal replay, imports)."""
        for index in changes:
            self._check_index(index)
        self._edit(kind, dict(changes), object_id)

    def apply_many(self, changes: Mapping[int, Mapping[int, Entry | None]], kind: str = "restore") -> None:
        """Entries of several objects (object id -> frame -> entry) as one undo step."""
        for object_id, frames in changes.items():
            self.object(object_id)
            for index in frames:
                self._check_index(index)
        self._edit_many(kind, {k: dict(v) for k, v in changes.items()})

    # --- internals --------------------------------------------------------------------
    def _set_trajectory(self, object_id: int, trajectory: Trajectory) -> None:
        self._objects[object_id] = replace(self._objects[object_id], trajectory=trajectory)

    def _write(self, object_id: int, entries: Mapping[int, Entry | None], kind: str) -> ChangeEvent:
        """Write entries into an object's trajectory (caller holds the lock); the event to send."""
        self._set_trajectory(object_id, self._objects[object_id].trajectory.with_entries(entries))
        return ChangeEvent(_frames_of(entries), kind, object_id)

    def _edit(self, kind: str, changes: dict[int, Entry | None], object_id: int | None) -> None:
        self._edit_many(kind, {self.object(object_id).id: changes})

    def _edit_many(self, kind: str, changes: dict[int, dict[int, Entry | None]]) -> None:
        with self._lock:
            # Any edit supersedes running runs: their later results would be built on
            # a state the user has just changed.
            self._commit_runs()
            step = UndoStep(kind)
            events = []
            for object_id, frames in changes.items():
                current = self._objects[object_id].trajectory
                after = {i: e for i, e in frames.items() if current[i] != e}
                if not after:
                    continue
                step.frames[object_id] = ({i: current[i] for i in after}, after)
                events.append(self._write(object_id, after, kind))
            if not step.frames:
                return
            self._push(step)
        self._notify(events)

    def _check_index(self, index: int) -> None:
        if not 0 <= index < self.frame_count:
            raise IndexError(f"frame {index} is outside 0..{self.frame_count - 1}")

    def _span(self, start: int, stop: int | None) -> range:
        self._check_index(start)
        if stop is None:
            stop = start + 1
        if not start < stop <= self.frame_count:
            raise IndexError(f"frames [{start}, {stop}) are not a range inside 0..{self.frame_count}")
        return range(start, stop)

    def _is_keyframe(self, index: int, object_id: int | None = None) -> bool:
        entry = self.trajectory_of(object_id)[index]
        return entry is not None and entry.origin is Origin.KEYFRAME

    def _keyframe_box(self, index: int, object_id: int | None = None) -> Box:
        entry = self.trajectory_of(object_id)[index]
        if entry is None or entry.origin is not Origin.KEYFRAME or entry.box is None:
            raise ValueError(f"frame {index} is not a keyframe with a box")
        return entry.box
