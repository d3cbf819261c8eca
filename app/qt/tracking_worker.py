"""Tracking off the GUI thread: a worker object in a QThread, owned by a controller.

The thread, the run ids, cancel, the stale-result filter and shutdown are the common
job pattern of :mod:`app.qt.jobs`; the work is the Qt-free loop
:func:`trackers.run.track_frames`. What this module adds:

* **A run's id is the session's run id**, so the results the controller forwards are
  those of the session's current run. Cancel is polled by ``track_frames`` between
  frames, so a run stops within one frame.
* **The tracker is built in the worker thread**: loading weights and moving them
  to the GPU is slow, and the GUI must never block on it. The last tracker is
  kept for the next run with the same settings.
* **Shutdown** delivers the results that were already mailed, so closing the window
  keeps every tracked frame.
* **Results are mailed, not queued one signal each**: the worker appends every result
  to a mailbox and wakes the GUI thread only when the mailbox was empty. The GUI thread
  takes the whole backlog at once and hands it on in slices of at most
  ``DELIVERY_BUDGET_S``, coming back to the event loop between slices, with one
  progress update per slice. However fast the tracker and however late the GUI
  thread, the event loop never sits behind a queue of per-frame events, and the
  window (which repaints on its own timer) shows the latest frame instead of
  replaying the backlog. Every frame's result is still delivered, in order, before
  its run's end.
* **The GUI thread comes first for the CPU**: on Linux the tracking thread runs at a
  lower priority (``WORKER_NICE``), and so do the compute threads it starts (torch's
  OpenMP team inherits it). With nothing else to do the tracker still gets every
  core; it just yields at once when the GUI thread wakes up, which on a two-core
  machine otherwise waits behind both of torch's threads.
* **GPU out of memory** (building the tracker or on a frame): the tracker is rebuilt
  on the CPU and the run goes on from the frame it reached, with a ``notice``. The
  CPU tracker is kept for later runs with the same settings, so one full GPU does not
  fail every run after it.
"""

from __future__ import annotations

import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Qt, QTimer, Signal, Slot

from app.qt.jobs import Job, JobController
from app.qt.mailbox import Item, Mailbox, RunEnd, RunFrame, RunNotice
from trackers.messages import one_line
from trackers.protocol import Tracker
from trackers.run import is_out_of_memory, run_frames, track_frames
from trackers.sources import FrameSource, open_source
from trackers.types import Frame

TrackerFactory = Callable[..., Tracker]

DELIVERY_BUDGET_S = 0.015
"""The longest the GUI thread spends handing results on before it serves its event loop again."""
DELIVERY_INTERVAL_S = 0.020
"""The GUI thread takes results at most this often (so a run costs it at most 50 wake-ups a second)."""
WORKER_NICE = 5
"""How much lower than the GUI the tracking thread runs (Linux nice: at 5 it gets about a
quarter of a core that the GUI thread also wants, and all of any core the GUI leaves idle)."""


def _lower_priority() -> None:
    """Give this thread (and threads it starts later) a lower CPU priority, where that is
    per thread: on Linux a thread is a task with its own nice value."""
    if not sys.platform.startswith("linux"):
        return
    import os

    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), WORKER_NICE)
    except OSError:
        pass


@dataclass
class RunGroup:
    """The runs of several objects tracked together (``AnnotationSession.begin_runs``): one
    decode per frame, and one batch through the network for trackers that share it.

    It travels as one run (``run_id`` = the first member's); each frame's result is a
    tuple of ``(member run_id, TrackResult)``. ``stopped`` holds the positions of members
    the GUI thread has stopped (rejoined, stale); the worker reads it before each frame.
    """

    requests: tuple[Any, ...]
    stopped: set[int] = field(default_factory=set)

    def __post_init__(self) -> None:
        if not self.requests:
            raise ValueError("a run group needs at least one run")
        first = self.requests[0]
        if any(r.start != first.start or r.direction != first.direction for r in self.requests):
            raise ValueError("the runs of a group start on one frame in one direction")

    @property
    def run_id(self) -> int:
        return self.requests[0].run_id

    @property
    def longest(self) -> Any:
        return max(self.requests, key=lambda r: abs(r.stop - r.start))

    def __getattr__(self, name: str) -> Any:
        # start, stop, direction, tracker, weights, device, model_dir: the longest run's
        if name in ("requests", "stopped"):
            raise AttributeError(name)
        return getattr(self.longest, name)


@dataclass(frozen=True)
class TrackerInfo:
    """What the GUI shows about the tracker a run (or a probe) built."""

    name: str
    device: str
    """The device it runs on, e.g. ``cuda`` when ``auto`` was asked for; ``-`` for the OpenCV peers."""
    untrained: bool


def _tracker_key(request: Any) -> tuple[str, str, str, str]:
    return (request.tracker, str(request.weights), request.device, str(request.model_dir))


def _device_of(tracker: Tracker) -> str:
    device = getattr(tracker, "device", None)
    return "-" if device is None else str(getattr(device, "type", device))


def _frames_for(source: FrameSource, request: Any, cancel: threading.Event) -> Iterator[Frame]:
    # the same frame order as every run (trackers.run): backward over a video in chunks
    return run_frames(source, request.start, request.stop, request.direction, cancel)


class TrackingWorker(QObject):
    """Lives in the tracking thread; runs one request at a time."""

    mail = Signal()  # the mailbox was empty and now is not
    tracker_ready = Signal(object)  # TrackerInfo
    probe_failed = Signal(str)

    def __init__(self, make_tracker: TrackerFactory | None = None) -> None:
        super().__init__()
        self.mailbox = Mailbox()
        """Frames and ends of runs (see the module notes); read by the controller."""
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
            self._post(RunNotice(run_id, message))
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
            self.probe_failed.emit(one_line(exc))
            return
        self.tracker_ready.emit(self._info(request, tracker))

    def _post(self, item: Item) -> None:
        if self.mailbox.post(item):
            self.mail.emit()

    def _group_trackers(self, group: RunGroup, run_id: int) -> list[Tracker]:
        """The cached tracker for the first run; runs with the same settings share its network."""
        from trackers.batch import can_batch

        first_request = group.requests[0]
        first = self._tracker_for(first_request, run_id)
        trackers = [first]
        for request in group.requests[1:]:
            if _tracker_key(request) == _tracker_key(first_request) and can_batch(first):
                trackers.append(first.spawn())  # type: ignore[attr-defined]
            else:
                trackers.append(self._build(request, request.device))
        return trackers

    def _run_group(self, group: RunGroup, video: Path, cancel: threading.Event) -> None:
        from trackers.run import track_frames_multi

        run_id = group.run_id
        longest = group.longest
        total = abs(longest.stop - longest.start)
        done = 0
        frames: Iterator[Frame] | None = None
        try:
            trackers = self._group_trackers(group, run_id)
            self.tracker_ready.emit(self._info(group.requests[0], trackers[0]))
            frames = _frames_for(self._source_for(video), longest, cancel)
            steps = track_frames_multi(
                trackers, frames, [r.box for r in group.requests], cancel,
                lengths=[abs(r.stop - r.start) for r in group.requests],
                keep_going=lambda k: k not in group.stopped,
            )
            for step in steps:
                index = longest.start + longest.direction * step.index
                done = step.index + 1
                pairs = zip(group.requests, step.results)
                results = tuple((r.run_id, result) for r, result in pairs if result is not None)
                self.mailbox.wait_for_room(cancel)
                self._post(RunFrame(run_id, index, results, done, total, step.frame))
        except Exception as exc:  # noqa: BLE001 - as for one run: a message, frames kept
            self._tracker, self._tracker_key = None, None
            self._post(RunEnd(run_id, True, one_line(exc)))
            return
        finally:
            close = getattr(frames, "close", None)
            if close is not None:
                close()
        self._post(RunEnd(run_id, False, "completed" if done >= total else "cancelled"))

    @Slot(object)
    def run(self, job: Job) -> None:
        request, video = job.payload
        if isinstance(request, RunGroup) and not job.cancel.is_set():
            self._run_group(request, video, job.cancel)
            return
        run_id = request.run_id
        if job.cancel.is_set():  # cancelled while it waited in the queue
            self._post(RunEnd(run_id, False, "cancelled"))
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
            frames = _frames_for(self._source_for(video), request, job.cancel)
            on_oom = None if request.device == "cpu" else fallback
            steps = track_frames(tracker, frames, request.box, job.cancel, fallback=on_oom)
            for step in steps:
                index = request.start + request.direction * step.index
                done = step.index + 1
                self.mailbox.wait_for_room(job.cancel)
                self._post(RunFrame(run_id, index, step.result, done, total, step.frame))
        except Exception as exc:  # noqa: BLE001 - a tracker's exception becomes a message, frames kept
            # A tracker that raised may be in any state: build a fresh one next time.
            self._tracker, self._tracker_key = None, None
            self._post(RunEnd(run_id, True, one_line(exc)))
            return
        finally:
            # A stopped run leaves its frame stream half read: close it now, so its
            # decoder (and the decoder's threads) go at once, not whenever it is collected.
            close = getattr(frames, "close", None)
            if close is not None:
                close()
        self._post(RunEnd(run_id, False, "completed" if done >= total else "cancelled"))

    @Slot()
    def release(self) -> None:
        """Free the tracker and the decoder; runs in the worker thread as it finishes."""
        self._tracker, self._tracker_key = None, None
        if self._source is not None:
            self._source.close()
            self._source = None


class TrackingController(JobController):
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

    _start_probe = Signal(object)
    _worker: TrackingWorker
    what = "tracking"

    def __init__(self, make_tracker: TrackerFactory | None = None, parent: QObject | None = None) -> None:
        super().__init__(TrackingWorker(make_tracker), "siamtrack-tracking", parent)
        # first thing in the new thread, before it builds a tracker or starts compute threads
        self._thread.started.connect(_lower_priority, Qt.ConnectionType.DirectConnection)
        self._start_probe.connect(self._worker.probe)
        self._worker.mail.connect(self._wake)
        self._worker.tracker_ready.connect(self.tracker_ready)
        self._worker.probe_failed.connect(self.probe_failed)
        self._backlog: deque[Item] = deque()
        """Taken from the mailbox, not yet handed on (only while a delivery is cut short)."""
        self._delivered_at = 0.0
        self._more = QTimer(self)
        self._more.setSingleShot(True)
        self._more.timeout.connect(self._deliver)
        self.frame_sink: Callable[[int, Frame], None] | None = None
        """Given ``(index, frame)`` for results handed on with their decoded frame (the
        newest at least), e.g. the viewer's frame cache: the frame the window shows next
        was decoded by the worker already, so the GUI thread need not decode it again."""

    @property
    def current_run_id(self) -> int | None:
        """The run whose results are forwarded; None when no run is going."""
        return self.current_job_id

    def start(self, request: Any, video: Path) -> None:
        """Start ``request`` on ``video``; a run still going is cancelled and its results dropped."""
        self.submit((request, Path(video)), job_id=request.run_id)

    def probe(self, request: Any) -> None:
        """Build the tracker for these settings in the background; answers with tracker_ready/probe_failed."""
        if self._shut_down:
            return
        self._ensure_thread()
        self._start_probe.emit(request)

    def _after_shutdown(self) -> None:
        # the worker's last results sit in the mailbox: the frames tracked before the
        # close reach the session
        self._deliver(budget=None)

    def _never_reported(self, job_id: int) -> None:
        self.run_finished.emit(job_id, "cancelled")

    # --- worker results, current run only ----------------------------------------------
    @Slot()
    def _wake(self) -> None:
        """The mailbox has results: take them now, or once ``DELIVERY_INTERVAL_S`` has
        passed since the last delivery, so that one wake-up takes many results."""
        if self._more.isActive():
            return
        wait = self._delivered_at + DELIVERY_INTERVAL_S - time.perf_counter()
        if wait > 0:
            self._more.start(int(wait * 1000) + 1)
        else:
            self._deliver()

    @Slot()
    def _deliver(self, budget: float | None = DELIVERY_BUDGET_S) -> None:
        """Hand the mailbox's results on, in order, for about ``budget`` seconds.

        What is left waits for the next turn of the event loop (a zero timer), so timers,
        input and paints run between slices. A slice ends on a result that carries its
        frame, which goes to ``frame_sink`` first: whatever frame the window shows after
        a slice is one the worker decoded. Progress is reported once per slice, for the
        last frame handed on: a late GUI skips the counts in between, never a frame.
        """
        self._more.stop()
        self._delivered_at = time.perf_counter()
        self._backlog.extend(self._worker.mailbox.take())
        deadline = None if budget is None else self._delivered_at + budget
        progress: tuple[int, int, int] | None = None
        while self._backlog:
            item = self._backlog.popleft()
            if isinstance(item, RunFrame):
                if not self.is_current(item.run_id):
                    continue
                frame, item.frame = item.frame, None
                if frame is not None and self.frame_sink is not None:
                    self.frame_sink(item.index, frame)
                self.frame_tracked.emit(item.run_id, item.index, item.result)
                progress = (item.run_id, item.done, item.total)
                if frame is not None and deadline is not None and time.perf_counter() > deadline:
                    break
            elif isinstance(item, RunNotice):
                if self.is_current(item.run_id):
                    self.notice.emit(item.run_id, item.text)
            else:
                if progress is not None:
                    self._emit_progress(progress)
                    progress = None
                self._on_end(item)
        if progress is not None:
            self._emit_progress(progress)
        if self._backlog:
            self._more.start(0)

    def _emit_progress(self, progress: tuple[int, int, int]) -> None:
        if self.is_current(progress[0]):
            self.progress.emit(*progress)

    def _on_end(self, end: RunEnd) -> None:
        if not self.end(end.run_id):
            return
        if end.failed:
            self.run_failed.emit(end.run_id, end.text)
        else:
            self.run_finished.emit(end.run_id, end.text)

