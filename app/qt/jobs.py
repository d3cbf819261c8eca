"""One pattern for work off the GUI thread: a worker object in a QThread, owned by a controller.

The design follows the Qt docs' worker-object pattern (``moveToThread``) and Orange3's
``concurrent`` module. Tracking (:mod:`app.qt.tracking_worker`), fine-tuning
(:mod:`app.qt.finetune_worker`) and the training-set export (:mod:`app.qt.dataset_export`)
each subclass :class:`JobController`, which holds what they share:

* **One thread, one worker**: the worker lives in the controller's QThread and runs one
  :class:`Job` at a time in its ``run`` slot; the thread starts with the first job.
* **Job id**: every job has one (given, e.g. a session's run id, or counted here).
* **Cancel** is a ``threading.Event`` per job, set by a direct call from the GUI thread:
  a queued "cancel" signal would arrive only after the job had returned, because the
  job blocks the worker thread's event loop. The work polls the event.
* **Stale results**: a subclass forwards a worker signal only when its job id is
  :meth:`JobController.is_current`, so signals of a superseded job still in the event
  queue are dropped (napari's layer slicer does the same). :meth:`JobController.end`
  says whether an ending job was the current one, and clears it.
* **Shutdown** = cancel + ``quit()`` + ``wait()``: no thread is left running. Then the
  signals the worker had already sent are delivered (``_after_shutdown`` may deliver
  more), and a job that never got to report is ended by ``_never_reported``.
* **No full garbage collection of the old heap while a job runs**: from the moment a
  controller has a current job until it has none, the heap from before is frozen
  (:mod:`app.qt.heap_freeze`), so the GUI thread never waits behind a collection of it.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import QCoreApplication, QEvent, QObject, Qt, QThread, Signal

from app.qt import heap_freeze


@dataclass(frozen=True)
class Job:
    """One job as it crosses into the worker thread."""

    job_id: int
    payload: Any
    """What the worker needs (immutable, or not touched by the GUI thread while it runs)."""
    cancel: threading.Event


class JobController(QObject):
    """Owned by the GUI thread: starts, cancels and shuts down jobs on one worker thread.

    ``worker`` is a QObject with a ``run(job: Job)`` slot and, optionally, a ``release()``
    slot that frees what it holds; it is called in the worker thread as the thread ends.
    """

    _submit = Signal(object)  # Job
    what = "job"
    """What the jobs are, for messages ("the tracking controller has been shut down")."""

    def __init__(self, worker: QObject, thread_name: str, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._thread = QThread()
        self._thread.setObjectName(thread_name)
        self._worker = worker
        worker.moveToThread(self._thread)
        release = getattr(worker, "release", None)
        if release is not None:
            # finished is emitted in the worker thread after its event loop has stopped:
            # a direct connection frees what the worker holds there, then it is deleted.
            self._thread.finished.connect(release, Qt.ConnectionType.DirectConnection)
        self._thread.finished.connect(worker.deleteLater)
        self._submit.connect(worker.run)  # type: ignore[attr-defined]
        self._next_id = 1
        self._current_id: int | None = None
        self._cancel: threading.Event | None = None
        self._shut_down = False

    # --- state ----------------------------------------------------------------------
    @property
    def _current(self) -> int | None:
        return self._current_id

    @_current.setter
    def _current(self, job_id: int | None) -> None:
        # a job going (whichever) holds the heap frozen; none going releases it
        if self._current_id is None and job_id is not None:
            heap_freeze.hold()
        elif self._current_id is not None and job_id is None:
            heap_freeze.release()
        self._current_id = job_id

    @property
    def current_job_id(self) -> int | None:
        """The job whose signals are forwarded; None when no job is going."""
        return self._current

    @property
    def running(self) -> bool:
        return self._current is not None

    @property
    def worker_thread(self) -> QThread:
        """The worker's thread, for tests and diagnostics."""
        return self._thread

    def is_current(self, job_id: int) -> bool:
        return job_id == self._current

    def end(self, job_id: int) -> bool:
        """``job_id`` has reported its end: True (and no job is current) if it was the current one."""
        if job_id != self._current:
            return False
        self._current = None
        return True

    # --- commands -------------------------------------------------------------------
    def submit(self, payload: Any, job_id: int | None = None) -> int:
        """Start a job on ``payload``; one still going is cancelled and its signals dropped.

        Returns the job id: ``job_id`` when given, else the next of this controller's count.
        """
        if self._shut_down:
            raise RuntimeError(f"the {self.what} controller has been shut down")
        self.cancel()
        if job_id is None:
            job_id, self._next_id = self._next_id, self._next_id + 1
        self._cancel = threading.Event()
        self._current = job_id
        self._ensure_thread()
        self._submit.emit(Job(job_id, payload, self._cancel))
        return job_id

    def cancel(self) -> None:
        """Ask the current job to stop at its next check; its end signal follows."""
        if self._cancel is not None:
            self._cancel.set()

    def shutdown(self) -> None:
        """Cancel, quit and wait: no thread is left running. Signals already sent are delivered."""
        if self._shut_down:
            return
        self._shut_down = True
        self.cancel()
        self._thread.quit()
        self._thread.wait()
        # The worker's last signals sit in this thread's queue: deliver them now, so
        # whatever the job did before the close reaches its receivers.
        QCoreApplication.sendPostedEvents(self, int(QEvent.Type.MetaCall.value))
        self._after_shutdown()
        if self._current is not None:  # the job never got to report (e.g. shut down while queued)
            job_id, self._current = self._current, None
            self._never_reported(job_id)

    def _ensure_thread(self) -> None:
        if not self._thread.isRunning():
            self._thread.start()

    # --- for subclasses -----------------------------------------------------------------
    def _after_shutdown(self) -> None:
        """Deliver what the worker left besides queued signals (e.g. a mailbox)."""

    def _never_reported(self, job_id: int) -> None:
        """End ``job_id``, which was shut down before it reported its end."""
