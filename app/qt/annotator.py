"""Annotator: what the keys and buttons do to the open document, without drawing anything.

It turns user commands into session edits and tracking runs, and worker results
into session updates. The rules themselves live in the session (what a run
covers, what it may overwrite, when it has rejoined the old track); this class
applies them in order:

* an edit makes a running run stale, so the worker is told to stop;
* editing a box that corrected tracked work re-tracks forward from it, after a
  short pause so that a burst of nudges starts one run, not ten;
* a run that rejoined the earlier track, or went stale, is cancelled at once.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace

from PySide6.QtCore import QObject, QTimer, Signal

from app.model.bidirectional import BidirectionalRun
from app.model.document import VideoDocument
from app.model.session import TrackerSettings
from app.qt.tracking_worker import RunGroup, TrackingController
from trackers.confidence import confidence
from trackers.trajectory import Entry, Origin
from trackers.types import Box, TrackResult

RETRACK_DELAY_MS = 400


class Annotator(QObject):
    changed = Signal()  # the trajectory or the run state changed: time to repaint
    frame_tracked = Signal(int, object)  # frame index, TrackResult (accepted into the session)
    run_started = Signal(int)  # run_id
    run_ended = Signal(int, str)  # run_id, "completed" | "cancelled" | "rejoined" | "failed"
    run_failed = Signal(str)  # one-line message
    progress = Signal(int, int, float)  # frames done, frames in the run, frames per second
    message = Signal(str)  # a hint for the status bar

    def __init__(
        self,
        controller: TrackingController,
        settings: Callable[[], TrackerSettings],
        retrack_enabled: Callable[[], bool],
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.controller = controller
        self.document: VideoDocument | None = None
        self._settings = settings
        self._retrack_enabled = retrack_enabled
        self._retrack_from: int | None = None
        self._fusion: BidirectionalRun | None = None
        self._group: RunGroup | None = None
        self._run_started = 0.0
        self._run_trackers: dict[int, str] = {}
        """run id -> tracker name: whose calibration turns the run's raw scores into confidences."""
        self._retrack_timer = QTimer(self)
        self._retrack_timer.setSingleShot(True)
        self._retrack_timer.setInterval(RETRACK_DELAY_MS)
        self._retrack_timer.timeout.connect(self._retrack)
        controller.frame_tracked.connect(self._on_frame_tracked)
        controller.run_finished.connect(self._on_run_finished)
        controller.run_failed.connect(self._on_run_failed)
        controller.progress.connect(self._on_progress)

    @property
    def running(self) -> bool:
        return self.controller.running

    @property
    def run_tracker(self) -> str:
        """The tracker of the current (or last) run."""
        return next(iter(self._run_trackers.values()), "")

    def set_document(self, document: VideoDocument | None) -> None:
        self.controller.cancel()
        self._retrack_timer.stop()
        self.document = document
        # the frames a run decodes go to the viewer's cache: showing them costs no decode
        self.controller.frame_sink = document.cache.offer if document is not None else None

    # --- edits --------------------------------------------------------------------------
    def _edited(self) -> None:
        # The session has made a running run stale; stop the worker as well.
        if self.controller.running:
            self.controller.cancel()
        self.changed.emit()

    def box(self, index: int) -> Box | None:
        if self.document is None:
            return None
        entry = self.document.session.trajectory[index]
        return None if entry is None else entry.box

    def set_keyframe(self, index: int, box: Box) -> None:
        """Make ``box`` the keyframe on ``index``; re-track after it if it corrected tracked work."""
        document = self.document
        if document is None:
            return
        trajectory = document.session.trajectory
        old = trajectory[index]
        after = trajectory[index + 1] if index + 1 < trajectory.frame_count else None
        corrects_tracking = (old is not None and old.origin in (Origin.TRACKED, Origin.INTERPOLATED)) or (
            after is not None and after.origin is Origin.TRACKED
        )
        document.rejected.discard(index)
        document.session.set_keyframe(index, box)
        self._edited()
        if corrects_tracking and self._retrack_enabled():
            self._retrack_from = index
            self._retrack_timer.start()

    def nudge(self, index: int, dx: float, dy: float, dw: float, dh: float) -> None:
        box = self.box(index)
        if box is None or self.document is None:
            return
        moved = Box(box.x + dx, box.y + dy, max(1.0, box.w + dw), max(1.0, box.h + dh))
        moved = moved.clipped(*self.document.session.frame_size)
        if moved.is_valid():
            self.set_keyframe(index, moved)

    def make_keyframe(self, index: int) -> None:
        box = self.box(index)
        if box is not None:
            self.set_keyframe(index, box)

    def delete(self, index: int) -> None:
        if self.document is not None and self.document.session.trajectory[index] is not None:
            self.document.session.clear(index)
            self._edited()

    def mark_absent(self, index: int) -> None:
        if self.document is not None:
            self.document.session.set_absent(index)
            self._edited()

    def mark_absent_to_next_keyframe(self, index: int) -> None:
        """The target is gone from ``index`` until the next keyframe (or the end): one edit."""
        if self.document is None:
            return
        session = self.document.session
        stop = next((k for k in session.trajectory.keyframes() if k > index), session.frame_count)
        session.set_absent(index, stop)
        self._edited()

    def interpolate_around(self, index: int) -> None:
        """Fill the frames between the keyframes with boxes on either side of ``index``."""
        document = self.document
        if document is None:
            return
        trajectory = document.session.trajectory
        keys = [k for k in trajectory.keyframes() if trajectory[k].box is not None]
        before = [k for k in keys if k <= index]
        after = [k for k in keys if k > index]
        if not before or not after:
            self.message.emit("Interpolation needs a keyframe with a box before and after this frame")
            return
        document.session.interpolate(before[-1], after[0])
        self._edited()

    def undo(self) -> None:
        if self.document is not None and self.document.session.undo():
            self._edited()

    def redo(self) -> None:
        if self.document is not None and self.document.session.redo():
            self._edited()

    # --- low-confidence suggestions ------------------------------------------------------
    def suggestions(self, threshold: float | None) -> list[int]:
        """Tracked frames scoring under ``threshold`` that the user has not rejected."""
        document = self.document
        if document is None or threshold is None:
            return []
        return [i for i in document.session.low_confidence_frames(threshold) if i not in document.rejected]

    def reject(self, index: int) -> None:
        """The box is right despite its low score: stop suggesting the frame (this session)."""
        if self.document is not None:
            self.document.rejected.add(index)
            self.changed.emit()

    # --- runs -----------------------------------------------------------------------------
    def track(self, index: int, direction: int) -> bool:
        """Track from ``index``; its box becomes a keyframe if it was not one."""
        document = self.document
        if document is None:
            return False
        entry = document.session.trajectory[index]
        if entry is None or entry.box is None:
            self.message.emit("Draw a box on this frame first (left-drag on the frame)")
            return False
        if entry.origin is Origin.KEYFRAME:
            return self._start_run(index, direction)
        # Tracking from a tracked (or interpolated) box accepts it as a keyframe first:
        # say so, and make both one undo step.
        document.session.set_keyframe(index, entry.box)
        self.message.emit(
            f"Frame {index} was {entry.origin.value}: its box is now a keyframe and tracking restarts "
            "from it (Ctrl+Z takes back both)"
        )
        return self._start_run(index, direction, join=f"keyframe and tracking from frame {index}")

    def track_between(self, index: int) -> bool:
        """Track forward from the keyframe at or before ``index`` and backward from the next
        keyframe, then keep per frame the result with the higher score (one undo step)."""
        document = self.document
        if document is None:
            return False
        session = document.session
        keyframes = session.trajectory.keyframes()
        before = [k for k in keyframes if k <= index]
        after = [k for k in keyframes if k > index]
        if not before or not after:
            self.message.emit("Tracking both ways needs a keyframe before this frame and one after it")
            return False
        a, b = before[-1], after[0]
        if session.trajectory[a].box is None or session.trajectory[b].box is None:
            self.message.emit("Both keyframes around this frame need a box (one of them is absent)")
            return False
        if b - a < 2:
            self.message.emit("No frames between these two keyframes")
            return False
        settings = self._settings()
        session.settings = settings
        self._fusion = run = BidirectionalRun.between(session, a, b, settings)
        forward, backward = run.forward, run.backward
        self._run_trackers = {forward.run_id: forward.tracker, backward.run_id: backward.tracker}
        self._run_started = time.perf_counter()
        self.controller.start(forward, document.path)
        self.run_started.emit(forward.run_id)
        self.changed.emit()
        return True

    def _calibrated(self, run_id: int, result: TrackResult) -> TrackResult:
        """``result`` with its raw score replaced by the tracker's confidence in [0, 1]
        (trackers/confidence.py): the trajectory, the timeline, its threshold and the
        suggestions all read that; the raw score stays with the score maps."""
        value = confidence(self._run_trackers.get(run_id, ""), result.score)
        return result if value is None else replace(result, score=value)

    def _fusion_frame(self, run_id: int, index: int, result: TrackResult) -> bool:
        fusion = self._fusion
        if fusion is None or not fusion.owns(run_id):
            return False
        fusion.accept(run_id, index, result)
        return True

    def _fusion_finished(self, run_id: int, reason: str) -> bool:
        """The next half of a two-way run, or its fusion (the rule: app.model.bidirectional)."""
        fusion = self._fusion
        if fusion is None or not fusion.owns(run_id):
            return False
        document = self.document
        following = fusion.next_after(run_id, reason)
        if following is not None and document is not None:
            self.controller.start(following, document.path)
            return True
        self._fusion = None
        if document is not None:
            fusion.fuse(document.session)
        self.changed.emit()
        self.run_ended.emit(run_id, reason)
        return True

    def stop(self) -> None:
        self.controller.cancel()

    # --- several objects -------------------------------------------------------------------
    def new_object(self) -> int | None:
        """A new, empty object, selected: the next box drawn is its first keyframe."""
        if self.document is None:
            return None
        object_id = self.document.session.add_object()
        self._edited()
        self.message.emit(f"New object {object_id}: draw its box (left-drag on the frame)")
        return object_id

    def select_object(self, object_id: int) -> None:
        if self.document is not None and object_id in self.document.session.object_ids:
            self.document.session.select(object_id)
            self.changed.emit()

    def select_next_object(self, step: int) -> None:
        if self.document is None:
            return
        session = self.document.session
        ids = session.object_ids
        self.select_object(ids[(ids.index(session.selected_id) + step) % len(ids)])

    def track_all(self, index: int, direction: int) -> bool:
        """Track every object with a box on ``index`` (each box becomes a keyframe): one decode
        per frame for all of them, one undo step."""
        document = self.document
        if document is None:
            return False
        session = document.session
        promote = {
            obj.id: {index: Entry(entry.box, Origin.KEYFRAME)}
            for obj in session.objects
            if (entry := obj.trajectory[index]) is not None
            and entry.box is not None
            and entry.origin is not Origin.KEYFRAME
        }
        if promote:
            session.apply_many(promote, kind="keyframe")
        settings = self._settings()
        session.settings = settings
        requests = [r for r in session.begin_runs(index, direction) if len(r.indices) >= 2]
        if not requests:
            self.message.emit(
                "No object has a box to track from on this frame (or the next frame is a keyframe)"
            )
            self.changed.emit()
            return False
        self._group = RunGroup(tuple(requests))
        # each object's confidence is its own tracker's calibration (see _calibrated)
        self._run_trackers = {r.run_id: r.tracker for r in requests}
        self._run_started = time.perf_counter()
        self.controller.start(self._group, document.path)
        self.run_started.emit(self._group.run_id)
        self.changed.emit()
        return True

    def _group_frame(self, run_id: int, index: int, results: object) -> bool:
        group = self._group
        if group is None or run_id != group.run_id or self.document is None:
            return False
        session = self.document.session
        positions = {r.run_id: k for k, r in enumerate(group.requests)}
        for member_id, result in results:  # type: ignore[attr-defined]
            accepted = session.accept(member_id, index, self._calibrated(member_id, result))
            if accepted and group.requests[positions[member_id]].object_id == session.selected_id:
                self.frame_tracked.emit(index, result)  # the score maps follow the selected object
            if session.run_should_stop(member_id):
                group.stopped.add(positions[member_id])
        if len(group.stopped) == len(group.requests):
            self.controller.cancel()
        self.changed.emit()
        return True

    def _group_finished(self, run_id: int, reason: str) -> bool:
        group = self._group
        if group is None or run_id != group.run_id:
            return False
        self._group = None
        if self.document is not None:
            session = self.document.session
            for request in group.requests:
                why = "rejoined" if session.run_stop_reason(request.run_id) == "rejoined" else reason
                session.end_run(request.run_id, why)
        self.changed.emit()
        self.run_ended.emit(run_id, reason)
        return True

    def _retrack(self) -> None:
        index, self._retrack_from = self._retrack_from, None
        if index is None or self.document is None:
            return
        entry = self.document.session.trajectory[index]
        if entry is not None and entry.origin is Origin.KEYFRAME and entry.box is not None:
            # the drag and the re-track it started are one user action: one undo step
            self._start_run(index, +1, join=f"correction at frame {index}")

    def _start_run(self, start: int, direction: int, join: str | None = None) -> bool:
        document = self.document
        assert document is not None
        settings = self._settings()
        document.session.settings = settings  # a saved project remembers the tracker
        own = document.session.object().settings  # an object with its own tracker keeps it
        request = document.session.begin_run(start, direction, own or settings, join_last_edit=join)
        if len(request.indices) < 2:
            document.session.end_run(request.run_id, "completed")
            self.message.emit("Nothing to track that way: the next frame is a keyframe or the end")
            return False
        self._run_started = time.perf_counter()
        self._run_trackers = {request.run_id: request.tracker}
        self.controller.start(request, document.path)
        self.run_started.emit(request.run_id)
        self.changed.emit()
        return True

    def _on_frame_tracked(self, run_id: int, index: int, result: TrackResult) -> None:
        if self.document is None:
            return
        if self._group_frame(run_id, index, result):  # several objects: (object run, result) pairs
            return
        calibrated = self._calibrated(run_id, result)
        if self._fusion_frame(run_id, index, calibrated):
            self.frame_tracked.emit(index, result)
            return
        session = self.document.session
        if session.accept(run_id, index, calibrated):
            self.frame_tracked.emit(index, result)
        if session.run_should_stop(run_id):
            # rejoined the earlier track, or superseded by an edit: no use going on
            self.controller.cancel()
        self.changed.emit()

    def _on_progress(self, run_id: int, done: int, total: int) -> None:
        elapsed = time.perf_counter() - self._run_started
        self.progress.emit(done, total, done / elapsed if elapsed > 0 else 0.0)

    def _on_run_finished(self, run_id: int, reason: str) -> None:
        if self._fusion_finished(run_id, reason) or self._group_finished(run_id, reason):
            return
        if self.document is not None and self.document.session.run_stop_reason(run_id) == "rejoined":
            reason = "rejoined"
        self._end_run(run_id, reason)

    def _on_run_failed(self, run_id: int, message: str) -> None:
        self.run_failed.emit(message)  # first, so that whoever hears run_ended knows why
        if self._fusion_finished(run_id, "failed") or self._group_finished(run_id, "failed"):
            return
        self._end_run(run_id, "failed")

    def _end_run(self, run_id: int, reason: str) -> None:
        if self.document is not None:
            self.document.session.end_run(run_id, reason)
        self.changed.emit()
        self.run_ended.emit(run_id, reason)

