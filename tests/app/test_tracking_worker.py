"""The tracking worker: streaming, cancel, failures, stale runs and shutdown."""

from __future__ import annotations

import time

import pytest

import trackers.run
from app.model.session import RunRequest
from app.qt.tracking_worker import TrackerInfo, TrackingController
from trackers.sources import open_source
from trackers.types import Box, Frame, TrackResult

BOX = Box(20, 30, 40, 30)


def request(
    run_id: int, start: int = 0, stop: int = 30, direction: int = 1, tracker: str = "identity"
) -> RunRequest:
    return RunRequest(run_id, tracker, None, "cpu", start, BOX, stop, direction)


class SlowTracker:
    """Sleeps in update, counts its calls, and can fail on a given call."""

    name = "slow"

    def __init__(self, delay: float = 0.0, fail_at: int | None = None) -> None:
        self.delay, self.fail_at = delay, fail_at
        self.updates = 0
        self.frames: list[int] = []
        self.box = BOX

    def init(self, frame: Frame, box: Box) -> None:
        self.frames.append(int(frame.sum()))

    def update(self, frame: Frame) -> TrackResult:
        self.updates += 1
        if self.fail_at is not None and self.updates == self.fail_at:
            raise RuntimeError("the model exploded\nsecond line")
        self.frames.append(int(frame.sum()))
        time.sleep(self.delay)
        return TrackResult(self.box, score=0.5)


@pytest.fixture
def controller(qtbot):
    made: list[SlowTracker] = []
    settings = {"delay": 0.0, "fail_at": None}

    def make(name: str, **kwargs: object) -> SlowTracker:
        if name != "slow":
            from trackers.registry import create_tracker

            return create_tracker(name, **kwargs)
        tracker = SlowTracker(**settings)  # type: ignore[arg-type]
        made.append(tracker)
        return tracker

    ctrl = TrackingController(make)
    ctrl.made = made  # type: ignore[attr-defined]
    ctrl.tracker_settings = settings  # type: ignore[attr-defined]
    yield ctrl
    ctrl.shutdown()


def collect(ctrl: TrackingController) -> list[tuple[int, int, TrackResult]]:
    got: list[tuple[int, int, TrackResult]] = []
    ctrl.frame_tracked.connect(lambda run_id, index, result: got.append((run_id, index, result)))
    return got


def test_a_run_streams_every_frame_then_finishes(qtbot, controller, synthetic_clip):
    video, _ = synthetic_clip
    got = collect(controller)
    progress: list[tuple[int, int, int]] = []
    controller.progress.connect(lambda *args: progress.append(args))
    with qtbot.waitSignals(
        [controller.tracker_ready, controller.run_finished],
        order="strict",
        check_params_cbs=[
            lambda info: info == TrackerInfo("identity", "-", False),
            lambda rid, reason: reason == "completed",
        ],
        timeout=10_000,
    ):
        controller.start(request(1, 5, 20), video)
    assert [index for _, index, _ in got] == list(range(5, 20))
    assert all(result.box == BOX for _, _, result in got)
    assert progress[-1] == (1, 15, 15)
    assert not controller.running


def test_a_backward_run_sees_the_frames_in_reverse_order(qtbot, controller, synthetic_clip, monkeypatch):
    video, _ = synthetic_clip
    # A tiny read-ahead block, so the run crosses several blocks.
    monkeypatch.setattr(trackers.run, "BACKWARD_CHUNK_BYTES", 1)
    got = collect(controller)
    with qtbot.waitSignal(controller.run_finished, timeout=10_000):
        controller.start(request(1, 25, 2, -1, tracker="slow"), video)
    assert [index for _, index, _ in got] == list(range(25, 2, -1))
    with open_source(video) as source:
        expected = [int(source[i].sum()) for i in range(25, 2, -1)]
    assert controller.made[0].frames == expected


def test_cancel_keeps_the_frames_and_stops_within_a_frame(qtbot, controller, synthetic_clip):
    video, _ = synthetic_clip
    controller.tracker_settings["delay"] = 0.05
    got = collect(controller)
    reasons: list[str] = []
    controller.run_finished.connect(lambda rid, reason: reasons.append(reason))
    controller.start(request(1, tracker="slow"), video)
    qtbot.waitUntil(lambda: len(got) >= 3, timeout=10_000)
    updates_at_cancel = controller.made[0].updates
    cancelled_at = time.perf_counter()
    controller.cancel()
    qtbot.waitUntil(lambda: reasons == ["cancelled"], timeout=5_000)
    assert time.perf_counter() - cancelled_at < 0.5
    # at most the frame in progress is finished after the cancel
    assert controller.made[0].updates <= updates_at_cancel + 1
    # every tracked frame reached the GUI: the first step is the initial box
    assert len(got) == controller.made[0].updates + 1
    assert [index for _, index, _ in got] == list(range(len(got)))


def test_a_tracker_exception_becomes_a_message_and_keeps_the_frames(qtbot, controller, synthetic_clip):
    video, _ = synthetic_clip
    controller.tracker_settings["fail_at"] = 5
    got = collect(controller)
    with qtbot.waitSignal(controller.run_failed, timeout=10_000) as blocker:
        controller.start(request(7, tracker="slow"), video)
    assert blocker.args == [7, "RuntimeError: the model exploded"]
    assert [index for _, index, _ in got] == [0, 1, 2, 3, 4]
    assert not controller.running
    # the failed tracker is not reused: the next run builds a fresh one and completes
    controller.tracker_settings["fail_at"] = None
    with qtbot.waitSignal(controller.run_finished, timeout=10_000):
        controller.start(request(8, tracker="slow"), video)
    assert len(controller.made) == 2


def test_a_failing_factory_in_the_registry_reports_run_failed(qtbot, synthetic_clip, monkeypatch):
    video, _ = synthetic_clip
    from trackers import registry

    def broken(**kwargs: object) -> None:
        raise registry.TrackerError("no weights for you")

    monkeypatch.setitem(registry.TRACKERS, "identity", broken)
    ctrl = TrackingController()
    try:
        with qtbot.waitSignal(ctrl.run_failed, timeout=10_000) as blocker:
            ctrl.start(request(1), video)
        assert blocker.args == [1, "TrackerError: no weights for you"]
    finally:
        ctrl.shutdown()


def test_results_of_a_superseded_run_are_dropped(qtbot, controller, synthetic_clip):
    video, _ = synthetic_clip
    controller.tracker_settings["delay"] = 0.01
    got = collect(controller)
    finished: list[tuple[int, str]] = []
    controller.run_finished.connect(lambda rid, reason: finished.append((rid, reason)))
    controller.start(request(1, tracker="slow"), video)
    qtbot.waitUntil(lambda: len(got) >= 2, timeout=10_000)
    controller.start(request(2, 10, 20, tracker="slow"), video)
    qtbot.waitUntil(lambda: finished != [], timeout=10_000)
    assert finished == [(2, "completed")]
    late = [(rid, index) for rid, index, _ in got if rid == 1]
    fresh = [index for rid, index, _ in got if rid == 2]
    assert fresh == list(range(10, 20))
    assert all(index < 10 for _, index in late)
    # run 1 was really stopped, not left to finish its 30 frames
    assert controller.made[0].updates < 29


def test_shutdown_during_a_run_delivers_the_tracked_frames_and_stops_the_thread(qtbot, synthetic_clip):
    video, _ = synthetic_clip
    trackers: list[SlowTracker] = []

    def make(name: str, **kwargs: object) -> SlowTracker:
        trackers.append(SlowTracker(delay=0.03))
        return trackers[-1]

    ctrl = TrackingController(make)
    got = collect(ctrl)
    finished: list[tuple[int, str]] = []
    ctrl.run_finished.connect(lambda rid, reason: finished.append((rid, reason)))
    ctrl.start(request(3, tracker="slow"), video)
    qtbot.waitUntil(lambda: len(got) >= 2, timeout=10_000)
    ctrl.shutdown()
    assert not ctrl.worker_thread.isRunning()
    assert finished == [(3, "cancelled")]
    assert len(got) == trackers[0].updates + 1  # nothing tracked was lost
    with pytest.raises(RuntimeError):
        ctrl.start(request(4), video)
    ctrl.shutdown()  # twice is harmless


def test_shutdown_of_an_idle_controller_never_started_a_thread(qtbot):
    ctrl = TrackingController()
    ctrl.shutdown()
    assert not ctrl.worker_thread.isRunning()


def test_probe_reports_the_tracker_or_the_reason_it_cannot_be_built(qtbot, controller):
    with qtbot.waitSignal(controller.tracker_ready, timeout=10_000) as ready:
        controller.probe(request(0))
    assert ready.args == [TrackerInfo("identity", "-", False)]
    with qtbot.waitSignal(controller.probe_failed, timeout=10_000) as failed:
        controller.probe(request(0, tracker="no-such-tracker"))
    assert "unknown tracker 'no-such-tracker'" in failed.args[0]


def test_a_notice_sent_before_the_end_of_its_run_is_never_dropped(qtbot):
    """The worker's "went on on the CPU" line travels in the mailbox with the frames. Sent as
    a signal of its own it raced the run's end: under load the end could be delivered first,
    the run was over, and the notice was dropped as belonging to no current run."""
    from app.qt.mailbox import RunEnd, RunNotice

    ctrl = TrackingController()
    events: list[tuple[str, str]] = []
    ctrl.notice.connect(lambda run_id, text: events.append(("notice", text)))
    ctrl.run_finished.connect(lambda run_id, reason: events.append(("end", reason)))
    ctrl._current = 7
    ctrl._worker.mailbox.post(RunNotice(7, "ran out of GPU memory"))
    ctrl._worker.mailbox.post(RunEnd(7, False, "completed"))
    ctrl._worker.mailbox.post(RunNotice(7, "too late: the run is over"))
    ctrl._deliver()
    assert events == [("notice", "ran out of GPU memory"), ("end", "completed")]
    ctrl.shutdown()
