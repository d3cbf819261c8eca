"""Tracking both ways between two keyframes: the one place its rule is written.

Between keyframes ``a < b`` of an object (``AnnotationSession.bidirectional_requests``):

1. track forward from ``a`` over the frames ``a .. b-1``, collecting every result;
2. only when the forward half completed (it reached every one of its frames), track
   backward from ``b`` over ``b .. a+1``; a forward half that was cancelled, failed or
   ran out of frames ends the two-way run there;
3. fuse what both halves got, also after a cancel or an error: per frame the result
   with the higher score, ties going forward, keyframes never overwritten, as one undo
   step (``AnnotationSession.fuse_bidirectional``).

Neither half is a session run: its results are collected here, not accepted one by one
(no rejoin, no stale check). The scores compared are the ones handed to :meth:`accept`:
the app hands in calibrated confidences (``trackers.confidence``), the Qt-free runner
the trackers' raw scores; both halves use the same tracker, whose calibration is
monotonic, so the pick is the same.

The app's annotator (``app.qt.annotator``) runs the halves on its worker thread and
the Qt-free runner (``app.model.session_runner.run_bidirectional``) in the caller's
thread; both follow this class.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from app.model.session import AnnotationSession, RunRequest, TrackerSettings
from trackers.types import TrackResult


@dataclass
class BidirectionalRun:
    """A forward-then-backward run between two keyframes, collected for fusion by score."""

    forward: RunRequest
    backward: RunRequest
    forward_results: dict[int, TrackResult] = field(default_factory=dict)
    backward_results: dict[int, TrackResult] = field(default_factory=dict)

    @classmethod
    def between(
        cls, session: AnnotationSession, a: int, b: int, settings: TrackerSettings | None = None
    ) -> BidirectionalRun:
        """The two-way run between keyframes ``a < b`` of the selected object."""
        return cls(*session.bidirectional_requests(a, b, settings))

    def owns(self, run_id: int) -> bool:
        """Whether ``run_id`` is one of the two halves."""
        return run_id in (self.forward.run_id, self.backward.run_id)

    def accept(self, run_id: int, index: int, result: TrackResult) -> None:
        """Collect one frame's result of the half ``run_id``."""
        (self.forward_results if run_id == self.forward.run_id else self.backward_results)[index] = result

    def next_after(self, run_id: int, reason: str) -> RunRequest | None:
        """The half to run once ``run_id`` ended for ``reason``: the backward one after a
        ``"completed"`` forward half; None when it is time to :meth:`fuse`."""
        if run_id == self.forward.run_id and reason == "completed":
            return self.backward
        return None

    def fuse(self, session: AnnotationSession) -> None:
        """Store what both halves got (see the module notes): one undo step, on the object the
        run was planned for, even if another object is selected by the time it ends."""
        session.fuse_bidirectional(
            self.forward_results, self.backward_results, object_id=self.forward.object_id
        )
