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
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from trackers.evaluation.metrics import box_iou
from trackers.trajectory import DEFAULT_LABEL, Entry, Origin, Trajectory
from trackers.types import Box, TrackResult

REJOIN_IOU = 0.8
REJOIN_FRAMES = 3
UNDO_DEPTH = 500
"""Undo steps kept. A step holds only the entries it changed, so even long runs stay small."""

RUN_REASONS = ("completed", "cancelled", "rejoined", "failed")


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


@dataclass(frozen=True, slots=True)
class TrackerSettings:
    tracker: str = "siamfc"
    weights: Path | None = None
    device: str = "auto"
    model_dir: Path | None = None
    max_frames: int | None = None
    """Frames a run may track after its keyframe; None = to the next keyframe or the end."""

    def __post_init__(self) -> None:
        if self.max_frames is not None and self.max_frames < 1:
            raise ValueError(f"max_frames must be None or >= 1, got {self.max_frames}")


@dataclass(frozen=True, slots=True)
class RunRequest:
    """One planned tracking run; immutable, so it can cross into a worker thread."""

    run_id: int
    tracker: str
    weights: Path | None
    device: str
    start: int
    box: Box
    stop: int
    """Exclusive end in the run's direction (stop < start when backward)."""
    direction: int
    model_dir: Path | None = None
    object_id: int = 1
    """The object the run tracks."""

    @property
    def indices(self) -> range:
        """The frames the run visits, the keyframe first."""
        return range(self.start, self.stop, self.direction)


PALETTE = (
    "#e6194b", "#3cb44b", "#4363d8", "#f58231", "#911eb4",
    "#42d4f4", "#f032e6", "#bfef45", "#fabed4", "#469990",
)
"""Colours given to new objects in turn (Sasha Trubetskoy's distinct colours)."""


def default_colour(object_id: int) -> str:
    return PALETTE[(object_id - 1) % len(PALETTE)]


def _check_colour(colour: str) -> str:
    text = colour.strip().lower() if isinstance(colour, str) else ""
    if len(text) != 7 or text[0] != "#" or any(c not in "0123456789abcdef" for c in text[1:]):
        raise ValueError(f"a colour must be #rrggbb, got {colour!r}")
    return text


@dataclass(frozen=True, slots=True)
class AnnotatedObject:
    """One object of a video: immutable, like its trajectory; edits make new ones."""

    id: int
    trajectory: Trajectory
    colour: str = PALETTE[0]
    name: str = ""
    """Free text that tells two objects of one label apart ("left runner"); may be empty."""
    hidden: bool = False
    """Not drawn on the frames (still saved, exported and tracked)."""
    settings: TrackerSettings | None = None
    """This object's tracker settings; None = the session's."""

    def __post_init__(self) -> None:
        if isinstance(self.id, bool) or not isinstance(self.id, int) or self.id < 1:
            raise ValueError(f"an object id must be a whole number >= 1, got {self.id!r}")
        object.__setattr__(self, "colour", _check_colour(self.colour))
        if not isinstance(self.name, str):
            raise ValueError(f"an object's name must be text, got {self.name!r}")

    @property
    def label(self) -> str:
        """The class name; kept in the trajectory, so exports carry it."""
        return self.trajectory.label

    @property
    def title(self) -> str:
        """How lists show the object: ``3 car (left)``."""
        return f"{self.id} {self.label}" + (f" ({self.name})" if self.name else "")

    def same_meta(self, other: AnnotatedObject) -> bool:
        return (self.id, self.label, self.colour, self.name, self.hidden, self.settings) == (
            other.id, other.label, other.colour, other.name, other.hidden, other.settings
        )


@dataclass(slots=True)
class _Step:
    """One undo step: per object, the entries it replaced and the ones it wrote; and the
    objects it added, removed or changed (``(position, before, after)``, None = absent)."""

    kind: str
    frames: dict[int, tuple[dict[int, Entry | None], dict[int, Entry | None]]] = field(default_factory=dict)
    objects: list[tuple[int, AnnotatedObject | None, AnnotatedObject | None]] = field(default_factory=list)
    label: str = ""
    """What the Edit menu calls it ("correction at frame 287"); empty: said from kind and frames."""

    def changed_frames(self) -> set[int]:
        return {i for _, after in self.frames.values() for i in after}


@dataclass(slots=True)
class _Run:
    request: RunRequest
    before: dict[int, Entry | None] = field(default_factory=dict)
    after: dict[int, Entry | None] = field(default_factory=dict)
    streak: int = 0
    rejoined: bool = False
    ended: bool = False
    join: _Step | None = None
    """The edit this run follows on from: its frames join that undo step (see begin_run)."""
    label: str = ""


def _frames_of(indices: Iterable[int]) -> range | tuple[int, ...]:
    """A range when the changed frames are contiguous (cheap for listeners), else a sorted tuple."""
    ordered = tuple(sorted(indices))
    if ordered and ordered[-1] - ordered[0] + 1 == len(ordered):
        return range(ordered[0], ordered[-1] + 1)
    return ordered


def _score(result: TrackResult) -> float:
    # A NaN score says nothing, so it loses against any real one.
    return result.score if math.isfinite(result.score) else -math.inf


def _usable(box: Box) -> bool:
    """A box that can be stored: finite with non-negative size (trackers may emit garbage)."""
    return box.is_finite() and box.w >= 0 and box.h >= 0


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


def _step_text(step: _Step) -> str:
    if step.label:
        return step.label
    if step.objects and step.kind in ("add_object", "delete_object", "update_object"):
        obj = step.objects[0][2] or step.objects[0][1]
        return f"{_KIND_TEXT[step.kind]} {obj.id}" if obj is not None else _KIND_TEXT[step.kind]
    return _describe(step.kind, step.changed_frames())


class AnnotationSession:
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
        self._undo: list[_Step] = []
        self._redo: list[_Step] = []
        self._runs: dict[int, _Run] = {}
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

    @property
    def current_run_id(self) -> int | None:
        """The first current run's id (the only one unless a group of runs is going)."""
        live = [r for r in self._runs.values() if not r.ended]
        return live[0].request.run_id if live else None

    @property
    def current_run_ids(self) -> list[int]:
        return [r.request.run_id for r in self._runs.values() if not r.ended]

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

    # --- objects ----------------------------------------------------------------------
    def select(self, object_id: int) -> None:
        """Make ``object_id`` the object edits act on (not an undo step)."""
        self.object(object_id)
        if object_id == self._selected:
            return
        self._selected = object_id
        self._notify(ChangeEvent((), "select", object_id))

    def add_object(
        self,
        label: str | None = None,
        *,
        box: tuple[int, Box] | None = None,
        colour: str | None = None,
        name: str = "",
        select: bool = True,
        settings: TrackerSettings | None = None,
    ) -> int:
        """A new object (the next free id), optionally with a keyframe ``(frame, box)``: one undo step."""
        if box is not None:
            self._check_index(box[0])
            if not box[1].is_valid():
                raise ValueError(f"a keyframe box needs a positive size and finite values, got {box[1]}")
        with self._lock:
            # Runs going on go on: a new object touches none of their frames.
            object_id = max(self._objects, default=0) + 1
            trajectory = Trajectory.empty(self.frame_count, self.frame_size, label or self._default_label())
            colour = colour or default_colour(object_id)
            obj = AnnotatedObject(object_id, trajectory, colour, name, False, settings)
            step = _Step("add_object", objects=[(len(self._objects), None, obj)])
            events = [self._apply_objects(step.objects, after=True)]
            if box is not None:
                entry = Entry(box[1], Origin.KEYFRAME)
                step.frames[object_id] = ({box[0]: None}, {box[0]: entry})
                events.append(self._write(object_id, {box[0]: entry}, "keyframe"))
            self._push(step)
            if select:
                self._selected = object_id
                events.append(ChangeEvent((), "select", object_id))
        self._notify(events)
        return object_id

    def delete_object(self, object_id: int | None = None) -> None:
        """Remove an object and its trajectory (one undo step); the last object cannot go."""
        obj = self.object(object_id)
        with self._lock:
            if len(self._objects) == 1:
                raise ValueError("a session keeps at least one object; clear its frames instead")
            self._commit_runs()
            position = list(self._objects).index(obj.id)
            step = _Step("delete_object", objects=[(position, obj, None)])
            events = [self._apply_objects(step.objects, after=True)]
            self._push(step)
            if self._selected == obj.id:
                ids = list(self._objects)
                self._selected = ids[min(position, len(ids) - 1)]
                events.append(ChangeEvent((), "select", self._selected))
        self._notify(events)

    def update_object(
        self,
        object_id: int | None = None,
        *,
        label: str | None = None,
        colour: str | None = None,
        name: str | None = None,
        hidden: bool | None = None,
        settings: TrackerSettings | None = None,
        clear_settings: bool = False,
    ) -> None:
        """Relabel, recolour, rename, hide or show an object, or set its tracker settings: one undo step."""
        obj = self.object(object_id)
        trajectory = obj.trajectory
        if label is not None:
            if not label.strip():
                raise ValueError("a label must be non-empty text")
            trajectory = replace(trajectory, label=label.strip())
        new = replace(
            obj,
            trajectory=trajectory,
            colour=obj.colour if colour is None else colour,
            name=obj.name if name is None else name,
            hidden=obj.hidden if hidden is None else bool(hidden),
            settings=None if clear_settings else (obj.settings if settings is None else settings),
        )
        if new.same_meta(obj):
            return
        with self._lock:
            # Runs going on go on: a label, colour or name changes none of their frames.
            position = list(self._objects).index(obj.id)
            step = _Step("update_object", objects=[(position, obj, new)])
            event = self._apply_objects(step.objects, after=True)
            self._push(step)
        self._notify(event)

    def add_label(self, label: str) -> None:
        """Offer ``label`` in the project's list (not an undo step; it is saved with the project)."""
        if not label.strip():
            raise ValueError("a label must be non-empty text")
        with self._lock:
            self._add_label(label)
        self._notify(ChangeEvent((), "objects"))

    def _add_label(self, label: str) -> None:
        label = label.strip()
        if label and label not in self._labels:
            self._labels.append(label)

    def _default_label(self) -> str:
        return self.object().label if self._objects else DEFAULT_LABEL

    def _apply_objects(
        self, changes: list[tuple[int, AnnotatedObject | None, AnnotatedObject | None]], after: bool
    ) -> ChangeEvent:
        """Put the objects of a step's object changes in place (caller holds the lock).

        A change with an object on both sides changes only what :meth:`AnnotatedObject.same_meta`
        compares: the frames stay as they are now.
        """
        ordered = changes if after else list(reversed(changes))
        for position, before, later in ordered:
            old, new = (before, later) if after else (later, before)
            items = list(self._objects.items())
            if old is not None and new is not None:
                current = self._objects[new.id]
                trajectory = replace(current.trajectory, label=new.label)
                self._objects[new.id] = replace(new, trajectory=trajectory)
            elif new is None and old is not None:
                del self._objects[old.id]
            elif new is not None:
                items.insert(min(position, len(items)), (new.id, new))
                self._objects = dict(items)
            self._add_label(new.label if new is not None else "")
        if self._selected not in self._objects and self._objects:
            # (the list is empty only for a moment, inside a step that replaces every object)
            self._selected = next(iter(self._objects))
        return ChangeEvent((), "objects")

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
            if self._is_keyframe(index, object_id) or not _usable(pick.box):
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

    def restore_objects(self, objects: Iterable[AnnotatedObject], kind: str = "restore") -> None:
        """Make the object list exactly ``objects`` (journal restore, imports): one undo step."""
        target = list(objects)
        for obj in target:
            if obj.trajectory.frame_count != self.frame_count:
                count = obj.trajectory.frame_count
                raise ValueError(f"object {obj.id} has {count} frames, the video {self.frame_count}")
        with self._lock:
            self._commit_runs()
            step = _Step(kind)
            events: list[ChangeEvent] = []
            wanted = {o.id: o for o in target}
            removed = [(i, o, None) for i, o in enumerate(self._objects.values()) if o.id not in wanted]
            for change in reversed(removed):
                step.objects.append(change)
            if step.objects:
                events.append(self._apply_objects(step.objects, after=True))
            for position, obj in enumerate(target):
                current = self._objects.get(obj.id)
                if current is None:
                    nothing = Trajectory.empty(self.frame_count, self.frame_size, obj.label)
                    empty = replace(obj, trajectory=nothing)
                    change = (position, None, empty)
                elif not current.same_meta(obj):
                    change = (position, current, obj)
                else:
                    continue
                step.objects.append(change)
                events.append(self._apply_objects([change], after=True))
            for obj in target:
                now = self._objects[obj.id].trajectory
                after = {i: e for i, e in enumerate(obj.trajectory.entries) if now[i] != e}
                if after:
                    step.frames[obj.id] = ({i: now[i] for i in after}, after)
                    events.append(self._write(obj.id, after, kind))
            if step.objects or step.frames:
                self._push(step)
        self._notify(events)

    def undo(self) -> bool:
        """Undo the last edit (running runs count as one and are stopped); False if none."""
        return self._travel(self._undo, self._redo, "undo")

    def redo(self) -> bool:
        return self._travel(self._redo, self._undo, "redo")

    # --- runs -------------------------------------------------------------------------
    def begin_run(
        self,
        start: int,
        direction: int = +1,
        settings: TrackerSettings | None = None,
        *,
        object_id: int | None = None,
        join_last_edit: str | None = None,
    ) -> RunRequest:
        """Plan a run of one object from its keyframe ``start`` and make it the current one.

        The run ends before the object's next keyframe in its direction, after
        ``settings.max_frames`` frames, or at the video's end, whichever comes first.
        Runs already going become stale.

        ``join_last_edit`` (a label such as ``"correction at frame 287"``): the run
        follows on from the last edit (a drag that re-tracks, T on a tracked frame),
        so the user did one thing: the run's frames join that edit's undo step, which
        takes the label, and one Undo takes back both.
        """
        with self._lock:
            self._commit_runs()
            request = self._plan(start, direction, settings, self.object(object_id).id)
            run = _Run(request)
            if join_last_edit is not None:
                run.label = join_last_edit
                if self._undo:
                    run.join = self._undo[-1]
                    run.join.label = join_last_edit
            self._runs = {request.run_id: run}
            return request

    def begin_runs(
        self,
        start: int,
        direction: int = +1,
        object_ids: Iterable[int] | None = None,
        settings: TrackerSettings | None = None,
    ) -> list[RunRequest]:
        """One run per object (default: every object) with a keyframe box on ``start``.

        They are current together and become one undo step; each obeys the rules of
        :meth:`begin_run` on its own trajectory. Objects without a keyframe box on
        ``start`` get no run. Runs already going become stale.
        """
        if direction not in (1, -1):
            raise ValueError(f"direction must be +1 or -1, got {direction}")
        self._check_index(start)
        with self._lock:
            self._commit_runs()
            ids = list(self._objects) if object_ids is None else [self.object(i).id for i in object_ids]
            requests = []
            for object_id in ids:
                entry = self._objects[object_id].trajectory[start]
                if entry is None or entry.origin is not Origin.KEYFRAME or entry.box is None:
                    continue
                requests.append(self._plan(start, direction, settings, object_id))
            self._runs = {r.run_id: _Run(r) for r in requests}
            return requests

    def _plan(
        self, start: int, direction: int, settings: TrackerSettings | None, object_id: int
    ) -> RunRequest:
        settings = settings or self.settings_of(object_id)
        if direction not in (1, -1):
            raise ValueError(f"direction must be +1 or -1, got {direction}")
        self._check_index(start)
        box = self._keyframe_box(start, object_id)
        keyframes = self._objects[object_id].trajectory.keyframes()
        if direction > 0:
            stop = next((k for k in keyframes if k > start), self.frame_count)
        else:
            stop = next((k for k in reversed(keyframes) if k < start), -1)
        if settings.max_frames is not None:
            bound = start + direction * (settings.max_frames + 1)
            stop = min(stop, bound) if direction > 0 else max(stop, bound)
        return self._request(settings, start, box, stop, direction, object_id)

    def bidirectional_requests(
        self, a: int, b: int, settings: TrackerSettings | None = None, *, object_id: int | None = None
    ) -> tuple[RunRequest, RunRequest]:
        """Runs forward from keyframe ``a`` and backward from keyframe ``b``, for :meth:`fuse_bidirectional`.

        Neither becomes the current run: their results are collected by the caller,
        not passed to :meth:`accept`.
        """
        object_id = self.object(object_id).id
        settings = settings or self.settings_of(object_id)
        self._check_index(a)
        self._check_index(b)
        if not a < b:
            raise ValueError(f"a bidirectional run needs a < b, got {a} and {b}")
        box_a, box_b = self._keyframe_box(a, object_id), self._keyframe_box(b, object_id)
        with self._lock:
            return (
                self._request(settings, a, box_a, b, +1, object_id),
                self._request(settings, b, box_b, a, -1, object_id),
            )

    def accept(self, run_id: int, index: int, result: TrackResult) -> bool:
        """Store one frame of a current run; False when the result is dropped.

        Dropped: results of stale runs, of a run that already rejoined, frames outside
        the run, keyframes, and boxes that are not finite.
        """
        with self._lock:
            run = self._runs.get(run_id)
            if run is None or run.ended or run.rejoined:
                return False
            if index not in run.request.indices or index == run.request.start:
                return False
            object_id = run.request.object_id
            if object_id not in self._objects:
                return False
            trajectory = self._objects[object_id].trajectory
            old = trajectory[index]
            if (old is not None and old.origin is Origin.KEYFRAME) or not _usable(result.box):
                return False
            entry = Entry(result.box, Origin.TRACKED, result.score)
            if (
                old is not None
                and old.origin is Origin.TRACKED
                and old.box is not None
                and index not in run.before
                and box_iou(old.box, result.box) >= self.rejoin_iou
            ):
                run.streak += 1
            else:
                run.streak = 0
            run.before.setdefault(index, old)
            run.after[index] = entry
            self._set_trajectory(object_id, trajectory.with_entry(index, entry))
            if run.streak >= self.rejoin_frames:
                run.rejoined = True
            event = ChangeEvent((index,), "tracked", object_id)
        self._notify(event)
        return True

    def run_should_stop(self, run_id: int) -> bool:
        """True once the run has rejoined the old track or is no longer a current run."""
        return self.run_stop_reason(run_id) is not None

    def run_stop_reason(self, run_id: int) -> str | None:
        """``"rejoined"``, ``"stale"`` (superseded or ended), or None while the run should go on."""
        run = self._runs.get(run_id)
        if run is None or run.ended:
            return "stale"
        return "rejoined" if run.rejoined else None

    def end_run(self, run_id: int, reason: str) -> None:
        """The run is over (``completed``, ``cancelled``, ``rejoined`` or ``failed``); what it tracked stays.

        Ending a stale run does nothing. The frames of a group of runs become one undo
        step once the last of them ends.
        """
        if reason not in RUN_REASONS:
            raise ValueError(f"reason must be one of {RUN_REASONS}, got {reason!r}")
        with self._lock:
            run = self._runs.get(run_id)
            if run is None or run.ended:
                return
            run.ended = True
            if all(r.ended for r in self._runs.values()):
                self._commit_runs()
        self._notify(ChangeEvent((), "run_ended"))

    # --- internals --------------------------------------------------------------------
    def _request(
        self, settings: TrackerSettings, start: int, box: Box, stop: int, direction: int, object_id: int
    ) -> RunRequest:
        run_id = self._next_run_id
        self._next_run_id += 1
        return RunRequest(
            run_id=run_id,
            tracker=settings.tracker,
            weights=settings.weights,
            device=settings.device,
            start=start,
            box=box,
            stop=stop,
            direction=direction,
            model_dir=settings.model_dir,
            object_id=object_id,
        )

    def _set_trajectory(self, object_id: int, trajectory: Trajectory) -> None:
        self._objects[object_id] = replace(self._objects[object_id], trajectory=trajectory)

    def _write(self, object_id: int, entries: Mapping[int, Entry | None], kind: str) -> ChangeEvent:
        """Write entries into an object's trajectory (caller holds the lock); the event to send."""
        self._set_trajectory(object_id, self._objects[object_id].trajectory.with_entries(entries))
        return ChangeEvent(_frames_of(entries), kind, object_id)

    def _commit_runs(self) -> None:
        """Close the current runs (caller holds the lock): their frames become one undo step."""
        runs, self._runs = self._runs, {}
        step = _Step("run", label=next((r.label for r in runs.values() if r.label), ""))
        joins = {id(r.join) for r in runs.values()}
        join = next(iter(runs.values())).join if runs and len(joins) == 1 else None
        if join is not None and self._undo and self._undo[-1] is join:
            step = join  # still the last edit: one user action, one undo step
        for run in runs.values():
            changed = {i: e for i, e in run.after.items() if run.before[i] != e}
            if not changed:
                continue
            before, after = step.frames.setdefault(run.request.object_id, ({}, {}))
            for i, e in changed.items():
                before.setdefault(i, run.before[i])
                after[i] = e
        if step.frames and step is not join:
            self._push(step)

    def _push(self, step: _Step) -> None:
        self._undo.append(step)
        del self._undo[:-UNDO_DEPTH]
        self._redo.clear()

    def _edit(self, kind: str, changes: dict[int, Entry | None], object_id: int | None) -> None:
        self._edit_many(kind, {self.object(object_id).id: changes})

    def _edit_many(self, kind: str, changes: dict[int, dict[int, Entry | None]]) -> None:
        with self._lock:
            # Any edit supersedes running runs: their later results would be built on
            # a state the user has just changed.
            self._commit_runs()
            step = _Step(kind)
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

    def _travel(self, source: list[_Step], target: list[_Step], kind: str) -> bool:
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
