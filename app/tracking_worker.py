"""Tracking off the GUI thread: a worker object in a QThread, owned by a controller.

The design follows the Qt docs' worker-object pattern (``moveToThread``) and
Orange3's ``concurrent`` module: the work is the Qt-free loop
:func:`trackers.run.track_frames`; this module only carries its results across
the thread boundary.

* **Cancel** is a ``threading.Event`` per run, set by a direct call from the GUI
  thread. A queued "cancel" signal would arrive only after the run's loop had
  returned, because that loop blocks the worker thread's event loop; the event
  is polled by ``track_frames`` between frames, so a run stops within one frame.
* **Stale results**: every run has an id. The controller forwards only the
  signals of the current run, so results of a superseded run that are still in
  the event queue are dropped (napari's layer slicer does the same).
* **The tracker is built in the worker thread**: loading weights and moving them
  to the GPU is slow, and the GUI must never block on it. The last tracker is
  kept for the next run with the same settings.
* **Shutdown** = cancel + ``quit()`` + ``wait()``, then the results that were
  already queued are delivered, so closing the window keeps every tracked frame.
* **GPU out of memory** (building the tracker or on a frame): the tracker is rebuilt
  on the CPU and the run goes on from the frame it reached, with a ``notice``. The
  CPU tracker is kept for later runs with the same settings, so one full GPU does not
  fail every run after it.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from PySide6.QtCore import QCoreApplication, QEvent, QObject, Qt, QThread, Signal, Slot

# The same frame order as the Qt-free runner: backward runs over a video decode
# forward in bounded chunks (see app.session_runner).
from app.session_runner import request_frames
from trackers.protocol import Tracker
from trackers.run import is_out_of_memory, track_frames
from trackers.sources import FrameSource, open_source
from trackers.types import Box, Frame

TrackerFactory = Callable[..., Tracker]


class RunRequestLike(Protocol):
    """What the worker reads of ``app.session.RunRequest`` (kept structural so the
    worker does not depend on the session module)."""

    run_id: int
    tracker: str
    weights: Path | None
    device: str
    start: int
    box: Box
    stop: int
    direction: int
    model_dir: Path | None


@dataclass(frozen=True)
class TrackerInfo:
    """What the GUI shows about the tracker a run (or a probe) built."""

    name: str
    device: str
    """The device it runs on, e.g. ``cuda`` when ``auto`` was asked for; ``-`` for the OpenCV peers."""
    untrained: bool


@dataclass(frozen=True)
class _Job:
    request: Any  # RunRequestLike; Any because Protocol attributes are not runtime-checkable
    video: Path
    cancel: threading.Event


def _tracker_key(request: Any) -> tuple[str, str, str, str]:
    return (request.tracker, str(request.weights), request.device, str(request.model_dir))


def _device_of(tracker: Tracker) -> str:
    device = getattr(tracker, "device", None)
    return "-" if device is None else str(getattr(device, "type", device))


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip()
    first = text.splitlines()[0] if text else ""
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__


class TrackingWorker(QObject):
    """Lives in the tracking thread; runs one request at a time."""

    frame_tracked = Signal(int, int, object)  # run_id, frame index, TrackResult
    run_finished = Signal(int, str)  # run_id, "completed" | "cancelled"
    run_failed = Signal(int, str)  # run_id, one-line message
    progress = Signal(int, int, int)  # run_id, frames done, frames in the run
    tracker_ready = Signal(object)  # TrackerInfo
    probe_failed = Signal(str)
    notice = Signal(int, str)  # run_id, one line for the user (e.g. "went on on the CPU")

    def __init__(self, make_tracker: TrackerFactory | None = None) -> None:
        super().__init__()
        self._make_tracker = make_tracker
        self._tracker: Tracker | None = None
        self._tracker_key: tuple[str, str, str, str] | None = None
        self._source: FrameSource | None = None

    def _factory(self) -> TrackerFactory:
        if self._make_tracker is not None:
            return self._make_tracker
        # Looked up at call time so tests can monkeypatch the registry.
        from trackers import registry

        return registry.create_tracker

    def _build(self, request: Any, device: str) -> Tracker:
        return self._factory()(
            request.tracker, weights=request.weights, device=device, model_dir=request.model_dir
        )

    def _tracker_for(self, request: Any, run_id: int | None = None) -> Tracker:
        key = _tracker_key(request)
        if self._tracker is None or self._tracker_key != key:
            self._tracker = None  # free the old model before loading the next one
            try:
                self._tracker = self._build(request, request.device)
            except Exception as exc:
                if request.device == "cpu" or not is_out_of_memory(exc):
                    raise
                self._tracker = self._on_the_cpu(request, run_id, "while loading")
            self._tracker_key = key
        return self._tracker

    def _on_the_cpu(self, request: Any, run_id: int | None, where: str) -> Tracker:
        """The CPU tracker after the GPU ran out of memory, announced to the user."""
        self._tracker = None  # drop the GPU model before building the CPU one
        torch = sys.modules.get("torch")
        if torch is not None and torch.cuda.is_available():
            torch.cuda.empty_cache()
        tracker = self._build(request, "cpu")
        message = f"{request.tracker} ran out of GPU memory {where}; tracking goes on on the CPU (slower)"
        if run_id is not None:
            self.notice.emit(run_id, message)
        else:
            self.probe_failed.emit(message)
        return tracker

    def _source_for(self, video: Path) -> FrameSource:
        # The worker opens its own source: sources are not shared between threads.
        if self._source is None or self._source.path != Path(video):
            if self._source is not None:
                self._source.close()
            self._source = open_source(video)
        return self._source

    def _info(self, request: Any, tracker: Tracker) -> TrackerInfo:
        return TrackerInfo(request.tracker, _device_of(tracker), bool(getattr(tracker, "untrained", False)))

    @Slot(object)
    def probe(self, request: Any) -> None:
        """Build the tracker a run with these settings would use, and say what it is."""
        try:
            tracker = self._tracker_for(request)
        except Exception as exc:  # noqa: BLE001 - any failure is a message for the panel
            self._tracker, self._tracker_key = None, None
            self.probe_failed.emit(_one_line(exc))
            return
        self.tracker_ready.emit(self._info(request, tracker))

    @Slot(object)
    def run(self, job: _Job) -> None:
        request = job.request
        run_id = request.run_id
        if job.cancel.is_set():  # cancelled while it waited in the queue
            self.run_finished.emit(run_id, "cancelled")
            return
        total = abs(request.stop - request.start)
        done = 0
        frames: Iterator[Frame] | None = None

        def fallback(exc: BaseException) -> Tracker:
            index = request.start + request.direction * done
            tracker = self._on_the_cpu(request, run_id, f"at frame {index}")
            self._tracker, self._tracker_key = tracker, _tracker_key(request)
            self.tracker_ready.emit(self._info(request, tracker))
            return tracker

        try:
            tracker = self._tracker_for(request, run_id)
            self.tracker_ready.emit(self._info(request, tracker))
            frames = request_frames(self._source_for(job.video), request, job.cancel)
            on_oom = None if request.device == "cpu" else fallback
            steps = track_frames(tracker, frames, request.box, job.cancel, fallback=on_oom)
            for step in steps:
                index = request.start + request.direction * step.index
                self.frame_tracked.emit(run_id, index, step.result)
                done = step.index + 1
                self.progress.emit(run_id, done, total)
        except Exception as exc:  # noqa: BLE001 - a tracker's exception becomes a message, frames kept
            # A tracker that raised may be in any state: build a fresh one next time.
            self._tracker, self._tracker_key = None, None
            self.run_failed.emit(run_id, _one_line(exc))
            return
        finally:
            # A stopped run leaves its frame stream half read: close it now, so its
            # decoder (and the decoder's threads) go at once, not whenever it is collected.
            close = getattr(frames, "close", None)
            if close is not None:
                close()
        self.run_finished.emit(run_id, "completed" if done >= total else "cancelled")

    @Slot()
    def release(self) -> None:
        """Free the tracker and the decoder; runs in the worker thread as it finishes."""
        self._tracker, self._tracker_key = None, None
        if self._source is not None:
            self._source.close()
            self._source = None


class TrackingController(QObject):
    """Owned by the GUI thread: starts, cancels and shuts down runs on one worker thread.

    Its signals repeat the worker's, for the current run only.
    """

    frame_tracked = Signal(int, int, object)
    run_finished = Signal(int, str)
    run_failed = Signal(int, str)
    progress = Signal(int, int, int)
    tracker_ready = Signal(object)
    probe_failed = Signal(str)
    notice = Signal(int, str)

    _start_run = Signal(object)
    _start_probe = Signal(object)

    def __init__(self, make_tracker: TrackerFactory | None = None, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._thread = QThread()
        self._thread.setObjectName("siamtrack-tracking")
        self._worker = TrackingWorker(make_tracker)
        self._worker.moveToThread(self._thread)
        # finished is emitted in the worker thread after its event loop has stopped:
        # a direct connection frees the model and decoder there, then the worker is deleted.
        self._thread.finished.connect(self._worker.release, Qt.ConnectionType.DirectConnection)
        self._thread.finished.connect(self._worker.deleteLater)
        self._start_run.connect(self._worker.run)
        self._start_probe.connect(self._worker.probe)
        self._worker.frame_tracked.connect(self._on_frame_tracked)
        self._worker.run_finished.connect(self._on_run_finished)
        self._worker.run_failed.connect(self._on_run_failed)
        self._worker.progress.connect(self._on_progress)
        self._worker.tracker_ready.connect(self.tracker_ready)
        self._worker.probe_failed.connect(self.probe_failed)
        self._worker.notice.connect(self._on_notice)
        self._current: int | None = None
        self._cancel: threading.Event | None = None
        self._shut_down = False

    # --- state ----------------------------------------------------------------------
    @property
    def current_run_id(self) -> int | None:
        """The run whose results are forwarded; None when no run is going."""
        return self._current

    @property
    def running(self) -> bool:
        return self._current is not None

    @property
    def worker_thread(self) -> QThread:
        """The tracking thread, for tests and diagnostics."""
        return self._thread

    # --- commands -------------------------------------------------------------------
    def start(self, request: Any, video: Path) -> None:
        """Start ``request`` on ``video``; a run still going is cancelled and its results dropped."""
        if self._shut_down:
            raise RuntimeError("the tracking controller has been shut down")
        self.cancel()
        self._cancel = threading.Event()
        self._current = request.run_id
        self._ensure_thread()
        self._start_run.emit(_Job(request, Path(video), self._cancel))

    def probe(self, request: Any) -> None:
        """Build the tracker for these settings in the background; answers with tracker_ready/probe_failed."""
        if self._shut_down:
            return
        self._ensure_thread()
        self._start_probe.emit(request)

    def cancel(self) -> None:
        """Ask the current run to stop after the frame it is on; its run_finished follows."""
        if self._cancel is not None:
            self._cancel.set()

    def shutdown(self) -> None:
        """Cancel, quit and wait: no thread is left running. Results already sent are delivered."""
        if self._shut_down:
            return
        self._shut_down = True
        self.cancel()
        self._thread.quit()
        self._thread.wait()
        # The worker's last signals sit in this thread's queue: deliver them now, so
        # the frames tracked before the close reach the session.
        QCoreApplication.sendPostedEvents(self, int(QEvent.Type.MetaCall.value))
        if self._current is not None:  # the run never got to report (e.g. shut down while queued)
            run_id, self._current = self._current, None
            self.run_finished.emit(run_id, "cancelled")

    def _ensure_thread(self) -> None:
        if not self._thread.isRunning():
            self._thread.start()

    # --- worker signals, current run only ----------------------------------------------
    @Slot(int, int, object)
    def _on_frame_tracked(self, run_id: int, index: int, result: object) -> None:
        if run_id == self._current:
            self.frame_tracked.emit(run_id, index, result)

    @Slot(int, int, int)
    def _on_progress(self, run_id: int, done: int, total: int) -> None:
        if run_id == self._current:
            self.progress.emit(run_id, done, total)

    @Slot(int, str)
    def _on_run_finished(self, run_id: int, reason: str) -> None:
        if run_id == self._current:
            self._current = None
            self.run_finished.emit(run_id, reason)

    @Slot(int, str)
    def _on_notice(self, run_id: int, message: str) -> None:
        if run_id == self._current:
            self.notice.emit(run_id, message)

    @Slot(int, str)
    def _on_run_failed(self, run_id: int, message: str) -> None:
        if run_id == self._current:
            self._current = None
            self.run_failed.emit(run_id, message)
