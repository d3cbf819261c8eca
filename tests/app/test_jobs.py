"""app.qt.jobs: the one job pattern (thread, job id, cancel, stale filter, shutdown) of issue 19.6."""

from __future__ import annotations

import gc
import threading

import pytest
from PySide6.QtCore import QObject, Signal, Slot

from app.qt import heap_freeze
from app.qt.jobs import Job, JobController


class Worker(QObject):
    """Waits for its job's cancel or for ``go``, then says which."""

    done = Signal(int, str)

    def __init__(self) -> None:
        super().__init__()
        self.go = threading.Event()
        self.started = threading.Event()
        self.released = threading.Event()

    @Slot(object)
    def run(self, job: Job) -> None:
        self.started.set()
        while not (job.cancel.is_set() or self.go.is_set()):
            job.cancel.wait(0.01)
        self.done.emit(job.job_id, f"{job.payload}: {'cancelled' if job.cancel.is_set() else 'completed'}")

    @Slot()
    def release(self) -> None:
        self.released.set()


class Controller(JobController):
    ended = Signal(int, str)
    what = "test"

    def __init__(self) -> None:
        self.worker = Worker()
        super().__init__(self.worker, "siamtrack-test")
        self.worker.done.connect(self._on_done)
        self.never: list[int] = []

    def _on_done(self, job_id: int, text: str) -> None:
        if self.end(job_id):
            self.ended.emit(job_id, text)

    def _never_reported(self, job_id: int) -> None:
        self.never.append(job_id)


@pytest.fixture
def controller(qtbot):
    made = Controller()
    yield made
    made.shutdown()
    assert not made.worker_thread.isRunning()


def test_ids_count_up_and_a_finished_job_is_no_longer_current(qtbot, controller):
    ended: list[tuple[int, str]] = []
    controller.ended.connect(lambda job_id, text: ended.append((job_id, text)))
    controller.worker.go.set()
    with qtbot.waitSignal(controller.ended, timeout=5000):
        assert controller.submit("a") == 1
    assert ended == [(1, "a: completed")] and not controller.running
    with qtbot.waitSignal(controller.ended, timeout=5000):
        assert controller.submit("b", job_id=42) == 42
    assert ended[-1] == (42, "b: completed")


def test_a_new_job_cancels_the_old_one_and_drops_its_signals(qtbot, controller):
    ended: list[tuple[int, str]] = []
    controller.ended.connect(lambda job_id, text: ended.append((job_id, text)))
    controller.submit("old")
    assert controller.worker.started.wait(5)
    controller.submit("new")  # the old job is cancelled; its end is stale
    assert controller.current_job_id == 2
    controller.worker.go.set()
    qtbot.waitUntil(lambda: bool(ended), timeout=5000)
    qtbot.wait(50)
    assert ended == [(2, "new: completed")]


def test_shutdown_cancels_waits_delivers_and_releases(qtbot, controller):
    ended: list[tuple[int, str]] = []
    controller.ended.connect(lambda job_id, text: ended.append((job_id, text)))
    controller.submit("run")
    assert controller.worker.started.wait(5)
    worker = controller.worker
    controller.shutdown()
    assert not controller.worker_thread.isRunning() and worker.released.is_set()
    assert ended == [(1, "run: cancelled")]  # its last signal is delivered, not lost
    assert controller.never == []
    with pytest.raises(RuntimeError, match="the test controller has been shut down"):
        controller.submit("late")


def test_a_job_shut_down_before_it_reported_is_ended_by_the_subclass(qtbot, controller):
    controller.worker.done.disconnect()  # as if the job never got to say anything
    controller.submit("queued")
    controller.shutdown()
    assert controller.never == [1] and not controller.running


def test_the_dataset_export_is_a_job_and_a_closed_one_says_nothing(qtbot, tmp_path, monkeypatch):
    import time

    import cv2

    from app.qt.dataset_export import DatasetExport
    from tests.media import write_clip
    from trackers.trajectory import Entry, Origin, Trajectory

    video = tmp_path / "clip.avi"
    boxes = write_clip(video, 12)
    trajectory = Trajectory.empty(12, frame_size=(160, 120))
    trajectory = trajectory.with_entries({i: Entry(b, Origin.KEYFRAME) for i, b in enumerate(boxes)})
    job = DatasetExport(trajectory, video, tmp_path / "out", "clip")
    with qtbot.waitSignal(job.finished, timeout=20_000):
        job.start()
    assert job.done == (12, 12) and not job.running and not job.worker_thread.isRunning()

    encode = cv2.imencode

    def slow_encode(*args, **kwargs):
        time.sleep(0.05)
        return encode(*args, **kwargs)

    monkeypatch.setattr(cv2, "imencode", slow_encode)
    job = DatasetExport(trajectory, video, tmp_path / "second", "clip")
    said: list[str] = []
    job.failed.connect(said.append)
    job.finished.connect(said.append)
    job.start()
    qtbot.waitUntil(lambda: job.done[0] >= 1, timeout=5000)
    job.join()  # the window closes
    qtbot.wait(50)
    assert said == [] and not job.running and not job.worker_thread.isRunning()
    assert not (tmp_path / "second").exists() or list((tmp_path / "second").iterdir()) == []


# --- the heap is frozen while a job is current (app.qt.heap_freeze) -------------------------
def test_the_heap_is_frozen_from_a_jobs_start_to_its_end(qtbot, controller):
    assert heap_freeze.holders() == 0 and gc.get_freeze_count() == 0
    before = [object()]  # a container made before the job
    controller.submit("a")
    assert controller.worker.started.wait(5)
    assert heap_freeze.holders() == 1 and gc.get_freeze_count() > 0
    assert gc.is_tracked(before)
    controller.submit("b")  # supersedes a: still one job current, one hold
    assert heap_freeze.holders() == 1
    controller.worker.go.set()
    with qtbot.waitSignal(controller.ended, timeout=5000):
        pass
    assert not controller.running
    assert heap_freeze.holders() == 0 and gc.get_freeze_count() == 0


def test_shutting_down_with_a_job_going_unfreezes_the_heap(qtbot):
    made = Controller()
    made.submit("a")
    assert made.worker.started.wait(5)
    assert heap_freeze.holders() == 1
    made.shutdown()
    assert heap_freeze.holders() == 0 and gc.get_freeze_count() == 0


def test_two_controllers_hold_the_heap_until_the_last_job_ends(qtbot):
    first, second = Controller(), Controller()
    try:
        first.submit("a")
        second.submit("b")
        assert heap_freeze.holders() == 2
        first.shutdown()
        assert heap_freeze.holders() == 1 and gc.get_freeze_count() > 0
    finally:
        first.shutdown()
        second.shutdown()
    assert heap_freeze.holders() == 0 and gc.get_freeze_count() == 0


def test_an_unmatched_release_is_ignored():
    heap_freeze.release()
    assert heap_freeze.holders() == 0 and gc.get_freeze_count() == 0
    heap_freeze.hold()
    try:
        assert gc.get_freeze_count() > 0
        garbage = [None]
        garbage[0] = garbage  # a cycle made while frozen is still collected
        del garbage
        assert gc.collect() >= 1
    finally:
        heap_freeze.release()
    assert gc.get_freeze_count() == 0
