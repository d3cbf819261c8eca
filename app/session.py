"""The annotation session: the Qt-free model that the GUI and ``siamtrack effort`` both drive.

The session owns one immutable :class:`~trackers.trajectory.Trajectory` and
changes it only through edits. Every edit is one undo step and tells the
listeners which frames changed (:class:`ChangeEvent`), which is how the GUI
repaints and how the journal autosaves.

Tracking runs happen elsewhere (a worker thread, or :mod:`app.session_runner`);
the session plans them (:meth:`AnnotationSession.begin_run`) and takes their
results frame by frame (:meth:`AnnotationSession.accept`). Rules a run obeys:

* it never overwrites a keyframe, and stops before the next one;
* only the *current* run's results are taken: starting another run, or any
  user edit, makes the running one stale, and its late results are dropped;
* when re-tracking over frames an earlier run already tracked, the run stops
  once the new boxes agree with the old ones (IoU >= ``rejoin_iou``) for
  ``rejoin_frames`` frames in a row: the rest of the old track is as good as
  what the new run would produce, and it may hold work the user already checked;
* all frames of one run are one undo step.

Everything here is deterministic: no clocks, no randomness, so the simulated
annotator of ``siamtrack effort`` replays exactly.

The session is meant to be driven from one thread at a time; a lock makes the
odd call from a worker thread safe, and listeners are called outside it.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from trackers.geometry import iou
from trackers.trajectory import Entry, Origin, Trajectory
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
    ``fuse``, ``interpolate``, ``undo``, ``redo``, ``restore``.
    """

    frames: range | tuple[int, ...]
    kind: str


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

    @property
    def indices(self) -> range:
        """The frames the run visits, the keyframe first."""
        return range(self.start, self.stop, self.direction)


@dataclass(slots=True)
class _Step:
    """One undo step: the entries it replaced and the ones it wrote."""

    kind: str
    before: dict[int, Entry | None]
    after: dict[int, Entry | None]
    label: str = ""
    """What the Edit menu calls it ("correction at frame 287"); empty: said from kind and frames."""


@dataclass(slots=True)
class _Run:
    request: RunRequest
    before: dict[int, Entry | None] = field(default_factory=dict)
    after: dict[int, Entry | None] = field(default_factory=dict)
    streak: int = 0
    rejoined: bool = False
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
    return step.label or _describe(step.kind, step.after)


class AnnotationSession:
    """One video's annotation: the trajectory, its undo history and the current run."""

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
    ) -> None:
        if frame_count < 0:
            raise ValueError(f"frame_count must be >= 0, got {frame_count}")
        self.video = Path(video)
        self.frame_count = int(frame_count)
        self.frame_size = (int(frame_size[0]), int(frame_size[1]))
        self.content_hash = content_hash
        self.settings = settings
        self.rejoin_iou = rejoin_iou
        self.rejoin_frames = rejoin_frames
        if trajectory is None:
            trajectory = Trajectory.empty(self.frame_count, self.frame_size)
        elif trajectory.frame_count != self.frame_count:
            raise ValueError(
                f"the trajectory has {trajectory.frame_count} frames but the video {self.frame_count}"
            )
        self._trajectory = trajectory
        self._saved: Trajectory | None = trajectory
        """The state a project file holds; a new or loaded session starts saved."""
        self._undo: list[_Step] = []
        self._redo: list[_Step] = []
        self._run: _Run | None = None
        self._next_run_id = 1
        self._listeners: list[Listener] = []
        self._lock = threading.RLock()

    # --- reading ----------------------------------------------------------------------
    @property
    def trajectory(self) -> Trajectory:
        return self._trajectory

    @property
    def current_run_id(self) -> int | None:
        run = self._run
        return None if run is None else run.request.run_id

    @property
    def can_undo(self) -> bool:
        return bool(self._undo) or (self._run is not None and bool(self._run.after))

    @property
    def can_redo(self) -> bool:
        return bool(self._redo)

    @property
    def undo_text(self) -> str:
        """What Undo would take back, for the Edit menu ("correction at frame 287"); "" if nothing."""
        run = self._run
        joined = run is not None and run.join is not None and bool(self._undo) and self._undo[-1] is run.join
        if run is not None and run.after and not joined:
            return run.label or _describe("run", run.after)
        return _step_text(self._undo[-1]) if self._undo else ""

    @property
    def redo_text(self) -> str:
        return _step_text(self._redo[-1]) if self._redo else ""

    @property
    def is_modified(self) -> bool:
        """Whether the trajectory differs from the last saved one (undoing back to it counts as saved)."""
        saved = self._saved
        return saved is None or (self._trajectory is not saved and self._trajectory != saved)

    def mark_saved(self, trajectory: Trajectory | None = None) -> None:
        """``trajectory`` (default: the current one) is what the project file now holds."""
        self._saved = self._trajectory if trajectory is None else trajectory

    def mark_modified(self) -> None:
        """No project file holds this state (a session restored from a journal)."""
        self._saved = None

    def low_confidence_frames(self, threshold: float) -> list[int]:
        """Tracked frames whose score is below ``threshold``: where a user should look first."""
        return [
            i
            for i, e in self._trajectory.annotated()
            if e.origin is Origin.TRACKED and e.score is not None and e.score < threshold
        ]

    # --- listeners --------------------------------------------------------------------
    def add_listener(self, fn: Listener) -> None:
        self._listeners.append(fn)

    def remove_listener(self, fn: Listener) -> None:
        if fn in self._listeners:
            self._listeners.remove(fn)

    def _notify(self, event: ChangeEvent | None) -> None:
        if event is None:
            return
        for fn in list(self._listeners):
            fn(event)

    # --- edits ------------------------------------------------------------------------
    def set_keyframe(self, index: int, box: Box, occluded: bool = False) -> None:
        """The user drew or fixed the box on ``index``."""
        self._check_index(index)
        if not box.is_valid():
            raise ValueError(f"a keyframe box needs a positive size and finite values, got {box}")
        self._edit("keyframe", {index: Entry(box, Origin.KEYFRAME, None, occluded)})

    def set_absent(self, start: int, stop: int | None = None) -> None:
        """The target is not visible on frame ``start``, or on every frame of ``[start, stop)``."""
        frames = self._span(start, stop)
        absent = Entry(None, Origin.KEYFRAME)
        self._edit("absent", dict.fromkeys(frames, absent))

    def clear(self, start: int, stop: int | None = None) -> None:
        """Forget what is known about frame ``start``, or every frame of ``[start, stop)``."""
        self._edit("clear", dict.fromkeys(self._span(start, stop)))

    def interpolate(self, a: int, b: int) -> None:
        """Linear boxes on the frames between keyframes ``a < b`` (keyframes between stay)."""
        self._check_index(a)
        self._check_index(b)
        if not a < b:
            raise ValueError(f"interpolate needs a < b, got {a} and {b}")
        box_a, box_b = self._keyframe_box(a), self._keyframe_box(b)
        va, vb = box_a.as_array(), box_b.as_array()
        span = b - a
        changes: dict[int, Entry | None] = {}
        for i in range(a + 1, b):
            if self._is_keyframe(i):
                continue
            # (delta * k) / n rather than delta * (k / n): when the true value is a
            # representable number (integer motion, halves...), division rounds to it exactly.
            values = [float(va[c] + (vb[c] - va[c]) * (i - a) / span) for c in range(4)]
            changes[i] = Entry(Box(*values), Origin.INTERPOLATED)
        self._edit("interpolate", changes)

    def fuse_bidirectional(
        self, forward: Mapping[int, TrackResult], backward: Mapping[int, TrackResult]
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
            if self._is_keyframe(index) or not _usable(pick.box):
                continue
            changes[index] = Entry(pick.box, Origin.TRACKED, pick.score)
        self._edit("fuse", changes)

    def apply(self, changes: Mapping[int, Entry | None], kind: str = "restore") -> None:
        """Write arbitrary entries as one undo step (journal replay, imports)."""
        for index in changes:
            self._check_index(index)
        self._edit(kind, dict(changes))

    def undo(self) -> bool:
        """Undo the last edit (a running run counts as one and is stopped); False if none."""
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
        join_last_edit: str | None = None,
    ) -> RunRequest:
        """Plan a run from keyframe ``start`` and make it the current one.

        The run ends before the next keyframe in its direction, after
        ``settings.max_frames`` frames, or at the video's end, whichever comes first.
        A run already going becomes stale.

        ``join_last_edit`` (a label such as ``"correction at frame 287"``): the run
        follows on from the last edit (a drag that re-tracks, T on a tracked frame),
        so the user did one thing: the run's frames join that edit's undo step, which
        takes the label, and one Undo takes back both.
        """
        settings = settings or self.settings
        if direction not in (1, -1):
            raise ValueError(f"direction must be +1 or -1, got {direction}")
        self._check_index(start)
        box = self._keyframe_box(start)
        with self._lock:
            self._commit_run()
            keyframes = self._trajectory.keyframes()
            if direction > 0:
                stop = next((k for k in keyframes if k > start), self.frame_count)
            else:
                stop = next((k for k in reversed(keyframes) if k < start), -1)
            if settings.max_frames is not None:
                bound = start + direction * (settings.max_frames + 1)
                stop = min(stop, bound) if direction > 0 else max(stop, bound)
            request = self._request(settings, start, box, stop, direction)
            self._run = _Run(request)
            if join_last_edit is not None:
                self._run.label = join_last_edit
                if self._undo:
                    self._run.join = self._undo[-1]
                    self._run.join.label = join_last_edit
            return request

    def bidirectional_requests(
        self, a: int, b: int, settings: TrackerSettings | None = None
    ) -> tuple[RunRequest, RunRequest]:
        """Runs forward from keyframe ``a`` and backward from keyframe ``b``, for :meth:`fuse_bidirectional`.

        Neither becomes the current run: their results are collected by the caller,
        not passed to :meth:`accept`.
        """
        settings = settings or self.settings
        self._check_index(a)
        self._check_index(b)
        if not a < b:
            raise ValueError(f"a bidirectional run needs a < b, got {a} and {b}")
        box_a, box_b = self._keyframe_box(a), self._keyframe_box(b)
        with self._lock:
            return (
                self._request(settings, a, box_a, b, +1),
                self._request(settings, b, box_b, a, -1),
            )

    def accept(self, run_id: int, index: int, result: TrackResult) -> bool:
        """Store one frame of the current run; False when the result is dropped.

        Dropped: results of stale runs, of a run that already rejoined, frames outside
        the run, keyframes, and boxes that are not finite.
        """
        with self._lock:
            run = self._run
            if run is None or run.request.run_id != run_id or run.rejoined:
                return False
            if index not in run.request.indices or index == run.request.start:
                return False
            old = self._trajectory[index]
            if (old is not None and old.origin is Origin.KEYFRAME) or not _usable(result.box):
                return False
            entry = Entry(result.box, Origin.TRACKED, result.score)
            if (
                old is not None
                and old.origin is Origin.TRACKED
                and old.box is not None
                and index not in run.before
                and iou(old.box, result.box) >= self.rejoin_iou
            ):
                run.streak += 1
            else:
                run.streak = 0
            run.before.setdefault(index, old)
            run.after[index] = entry
            self._trajectory = self._trajectory.with_entry(index, entry)
            if run.streak >= self.rejoin_frames:
                run.rejoined = True
            event = ChangeEvent((index,), "tracked")
        self._notify(event)
        return True

    def run_should_stop(self, run_id: int) -> bool:
        """True once the run has rejoined the old track or is no longer the current run."""
        return self.run_stop_reason(run_id) is not None

    def run_stop_reason(self, run_id: int) -> str | None:
        """``"rejoined"``, ``"stale"`` (superseded or ended), or None while the run should go on."""
        run = self._run
        if run is None or run.request.run_id != run_id:
            return "stale"
        return "rejoined" if run.rejoined else None

    def end_run(self, run_id: int, reason: str) -> None:
        """The run is over (``completed``, ``cancelled``, ``rejoined`` or ``failed``); what it tracked stays.

        Ending a stale run does nothing.
        """
        if reason not in RUN_REASONS:
            raise ValueError(f"reason must be one of {RUN_REASONS}, got {reason!r}")
        with self._lock:
            if self._run is None or self._run.request.run_id != run_id:
                return
            self._commit_run()
        self._notify(ChangeEvent((), "run_ended"))

    # --- internals --------------------------------------------------------------------
    def _request(
        self, settings: TrackerSettings, start: int, box: Box, stop: int, direction: int
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
        )

    def _commit_run(self) -> None:
        """Close the current run (caller holds the lock): its frames become one undo step."""
        run, self._run = self._run, None
        if run is not None and run.after:
            changed = {i: e for i, e in run.after.items() if run.before[i] != e}
            if changed and run.join is not None and self._undo and self._undo[-1] is run.join:
                step = run.join  # still the last edit: one user action, one undo step
                for i, entry in changed.items():
                    step.before.setdefault(i, run.before[i])
                    step.after[i] = entry
            elif changed:
                self._push(_Step("run", {i: run.before[i] for i in changed}, changed, run.label))

    def _push(self, step: _Step) -> None:
        self._undo.append(step)
        del self._undo[:-UNDO_DEPTH]
        self._redo.clear()

    def _edit(self, kind: str, changes: dict[int, Entry | None]) -> None:
        with self._lock:
            # Any edit supersedes a running run: its later results would be built on
            # a state the user has just changed.
            self._commit_run()
            current = self._trajectory
            after = {i: e for i, e in changes.items() if current[i] != e}
            if not after:
                return
            self._push(_Step(kind, {i: current[i] for i in after}, after))
            self._trajectory = current.with_entries(after)
            event = ChangeEvent(_frames_of(after), kind)
        self._notify(event)

    def _travel(self, source: list[_Step], target: list[_Step], kind: str) -> bool:
        with self._lock:
            self._commit_run()
            if not source:
                return False
            step = source.pop()
            target.append(step)
            entries = step.before if kind == "undo" else step.after
            self._trajectory = self._trajectory.with_entries(entries)
            event = ChangeEvent(_frames_of(entries), kind)
        self._notify(event)
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

    def _is_keyframe(self, index: int) -> bool:
        entry = self._trajectory[index]
        return entry is not None and entry.origin is Origin.KEYFRAME

    def _keyframe_box(self, index: int) -> Box:
        entry = self._trajectory[index]
        if entry is None or entry.origin is not Origin.KEYFRAME or entry.box is None:
            raise ValueError(f"frame {index} is not a keyframe with a box")
        return entry.box
