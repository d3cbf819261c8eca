"""Run a session's tracking requests without Qt: for tests and ``siamtrack effort``.

The GUI runs the same loop in a worker thread; here it runs in the caller's
thread. Either way :func:`trackers.run.track_frames` polls the cancel token
between frames, so cancelling costs at most one frame.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from app.model.bidirectional import BidirectionalRun
from app.model.session import AnnotationSession, RunRequest, TrackerSettings
from trackers.protocol import Tracker
from trackers.registry import create_tracker
from trackers.run import CancelToken, Frames, run_frames, track_frames, track_frames_multi
from trackers.types import Frame, TrackResult

MakeTracker = Callable[..., Tracker]


def _cancelled(cancel: CancelToken | None) -> bool:
    return cancel is not None and cancel.is_set()


def _end_reason(session: AnnotationSession, run_id: int, cancel: CancelToken | None) -> str:
    """How a run that raised nothing ended: rejoined (a re-track that met the old track
    again and stopped there), cancelled (stopped by the session or the token), or
    completed."""
    stop = session.run_stop_reason(run_id)
    if stop == "rejoined":
        return "rejoined"
    if stop is not None or _cancelled(cancel):
        return "cancelled"
    return "completed"


def _frames_of(frames: Frames, request: RunRequest, cancel: CancelToken | None) -> Iterator[Frame]:
    """The frames of ``request.indices`` in the run's order (:func:`trackers.run.run_frames`)."""
    return run_frames(frames, request.start, request.stop, request.direction, cancel)


def _make(request: RunRequest, make_tracker: MakeTracker) -> Tracker:
    kwargs: dict[str, Any] = {"weights": request.weights, "device": request.device}
    if request.model_dir is not None:
        kwargs["model_dir"] = request.model_dir
    return make_tracker(request.tracker, **kwargs)


def run_request(
    session: AnnotationSession,
    request: RunRequest,
    frames: Frames,
    make_tracker: MakeTracker = create_tracker,
    cancel: CancelToken | None = None,
) -> str:
    """Track ``request`` into ``session``; return why it ended.

    ``"completed"``, ``"rejoined"`` or ``"cancelled"`` (also when the run went stale).
    If the tracker or the decoder raises, the run is ended as ``"failed"`` and the
    exception propagates: the caller decides how to show it; what was tracked stays.
    """
    try:
        tracker = _make(request, make_tracker)
        for step in track_frames(tracker, _frames_of(frames, request, cancel), request.box, cancel):
            session.accept(request.run_id, request.start + request.direction * step.index, step.result)
            if session.run_should_stop(request.run_id):
                break
    except BaseException:
        session.end_run(request.run_id, "failed")
        raise
    reason = _end_reason(session, request.run_id, cancel)
    session.end_run(request.run_id, reason)
    return reason


def collect(
    request: RunRequest,
    frames: Frames,
    make_tracker: MakeTracker = create_tracker,
    cancel: CancelToken | None = None,
) -> dict[int, TrackResult]:
    """Track ``request`` without touching any session: frame index -> result, keyframe excluded."""
    tracker = _make(request, make_tracker)
    results: dict[int, TrackResult] = {}
    for step in track_frames(tracker, _frames_of(frames, request, cancel), request.box, cancel):
        if step.index:
            results[request.start + request.direction * step.index] = step.result
    return results


def _collect_into(
    run: BidirectionalRun,
    request: RunRequest,
    frames: Frames,
    make_tracker: MakeTracker,
    cancel: CancelToken | None,
) -> str:
    """Track one half of ``run`` into it; ``"completed"`` when it reached all its frames."""
    tracker = _make(request, make_tracker)
    done = 0
    for step in track_frames(tracker, _frames_of(frames, request, cancel), request.box, cancel):
        run.accept(request.run_id, request.start + request.direction * step.index, step.result)
        done = step.index + 1
    return "completed" if done >= len(request.indices) else "cancelled"


def run_bidirectional(
    session: AnnotationSession,
    a: int,
    b: int,
    frames: Frames,
    settings: TrackerSettings | None = None,
    make_tracker: MakeTracker = create_tracker,
    cancel: CancelToken | None = None,
) -> str:
    """Track forward from keyframe ``a`` and backward from keyframe ``b``; fuse per frame by score.

    The rule is :mod:`app.model.bidirectional`'s, as in the app: the backward half runs
    only after a completed forward half, and what both got is fused (one undo step), also
    after a cancel or an error (which then propagates). Returns why the last half ended:
    ``"completed"`` or ``"cancelled"``.
    """
    run = BidirectionalRun.between(session, a, b, settings)
    request: RunRequest | None = run.forward
    reason = "completed"
    try:
        while request is not None:
            reason = _collect_into(run, request, frames, make_tracker, cancel)
            request = run.next_after(request.run_id, reason)
    finally:
        run.fuse(session)
    return reason


def _request_key(request: RunRequest) -> tuple[str, str, str, str]:
    return (request.tracker, str(request.weights), request.device, str(request.model_dir))


def make_group_trackers(
    requests: list[RunRequest], make_tracker: MakeTracker = create_tracker
) -> list[Tracker]:
    """One tracker per request; requests with the same settings share one network where the
    tracker allows it (``trackers.batch``), so their search regions run as one batch."""
    from trackers.batch import can_batch

    trackers: list[Tracker] = []
    shared: dict[tuple[str, str, str, str], Tracker] = {}
    for request in requests:
        key = _request_key(request)
        first = shared.get(key)
        if first is not None and can_batch(first):
            trackers.append(first.spawn())  # type: ignore[attr-defined]
            continue
        tracker = _make(request, make_tracker)
        shared.setdefault(key, tracker)
        trackers.append(tracker)
    return trackers


def run_group(
    session: AnnotationSession,
    requests: list[RunRequest],
    frames: Frames,
    make_tracker: MakeTracker = create_tracker,
    cancel: CancelToken | None = None,
) -> dict[int, str]:
    """Track the runs of :meth:`AnnotationSession.begin_runs` together: one decode per frame.

    Every run keeps its own bounds and rejoin rule; the frames are those of the longest
    run. Returns run id -> why it ended (as :func:`run_request`).
    """
    if not requests:
        return {}
    start, direction = requests[0].start, requests[0].direction
    if any(r.start != start or r.direction != direction for r in requests):
        raise ValueError("the runs of a group start on one frame in one direction")
    lengths = [abs(r.stop - r.start) for r in requests]
    longest = requests[lengths.index(max(lengths))]
    reasons: dict[int, str] = {}
    try:
        trackers = make_group_trackers(requests, make_tracker)
        steps = track_frames_multi(
            trackers,
            _frames_of(frames, longest, cancel),
            [r.box for r in requests],
            cancel,
            lengths=lengths,
            keep_going=lambda k: not session.run_should_stop(requests[k].run_id),
        )
        for step in steps:
            index = start + direction * step.index
            for request, result in zip(requests, step.results):
                if result is not None:
                    session.accept(request.run_id, index, result)
    except BaseException:
        for request in requests:
            session.end_run(request.run_id, "failed")
        raise
    for request in requests:
        reason = reasons[request.run_id] = _end_reason(session, request.run_id, cancel)
        session.end_run(request.run_id, reason)
    return reasons
