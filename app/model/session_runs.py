"""Tracking runs as the session plans and takes them (see :mod:`app.model.session` for the rules).

:class:`RunRequest` is what a worker thread gets; :class:`RunPlanning` (a mixin of
:class:`~app.model.session.AnnotationSession`) plans runs, takes their results frame by
frame, stops a re-track where it rejoins the old track, and makes the frames of the
current runs one undo step when they end.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from app.model.annotated_object import AnnotatedObject, TrackerSettings
from app.model.undo import ChangeEvent, UndoStep
from trackers.evaluation.metrics import box_iou
from trackers.trajectory import Entry, Origin
from trackers.types import Box, TrackResult

REJOIN_IOU = 0.8
REJOIN_FRAMES = 3
"""A re-track stops once its boxes agree with the old track (IoU >= REJOIN_IOU) this many frames in a row."""

RUN_REASONS = ("completed", "cancelled", "rejoined", "failed")


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


@dataclass(slots=True)
class CurrentRun:
    """A run the session takes results of: the entries it replaced and wrote, and its rejoin streak."""

    request: RunRequest
    before: dict[int, Entry | None] = field(default_factory=dict)
    after: dict[int, Entry | None] = field(default_factory=dict)
    streak: int = 0
    rejoined: bool = False
    ended: bool = False
    join: UndoStep | None = None
    """The edit this run follows on from: its frames join that undo step (see begin_run)."""
    label: str = ""


def usable_box(box: Box) -> bool:
    """A box that can be stored: finite with non-negative size (trackers may emit garbage)."""
    return box.is_finite() and box.w >= 0 and box.h >= 0


class RunPlanning:
    """Plans the runs of :class:`~app.model.session.AnnotationSession` and takes their results (a mixin)."""

    # What the session holds (set by its __init__):
    frame_count: int
    rejoin_iou: float
    rejoin_frames: int
    _objects: dict[int, AnnotatedObject]
    _runs: dict[int, CurrentRun]
    _next_run_id: int
    _undo: list[UndoStep]
    _lock: threading.RLock

    @property
    def current_run_id(self) -> int | None:
        """The first current run's id (the only one unless a group of runs is going)."""
        live = [r for r in self._runs.values() if not r.ended]
        return live[0].request.run_id if live else None

    @property
    def current_run_ids(self) -> list[int]:
        return [r.request.run_id for r in self._runs.values() if not r.ended]

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
            run = CurrentRun(request)
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
            self._runs = {r.run_id: CurrentRun(r) for r in requests}
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
            if (old is not None and old.origin is Origin.KEYFRAME) or not usable_box(result.box):
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

    def _commit_runs(self) -> None:
        """Close the current runs (caller holds the lock): their frames become one undo step."""
        runs, self._runs = self._runs, {}
        step = UndoStep("run", label=next((r.label for r in runs.values() if r.label), ""))
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
