"""The GOT-10k training-set export as a background job (the pattern of :mod:`app.qt.jobs`)."""

from __future__ import annotations

import time
from pathlib import Path

from PySide6.QtCore import QObject, Signal, Slot

from app.model.files import follow_umask
from app.qt.jobs import Job, JobController
from trackers.formats import export_got10k_dataset
from trackers.messages import first_line
from trackers.trajectory import Trajectory

PROGRESS_INTERVAL_S = 0.1
"""The export reports its progress at most this often (and on its last frame)."""


class _Cancelled(Exception):
    pass


class _ExportWorker(QObject):
    """Lives in the export thread; runs ``export_got10k_dataset`` for one job."""

    progress = Signal(int, int, int)  # job id, frames done, frames in all
    finished = Signal(int, str)  # job id, the sequence folder
    failed = Signal(int, str)  # job id, one line ("cancelled" when it was)

    @Slot(object)
    def run(self, job: Job) -> None:
        trajectory, video, out_dir, name = job.payload
        reported = 0.0

        def progress(done: int, total: int) -> None:
            nonlocal reported
            if job.cancel.is_set():
                raise _Cancelled
            now = time.monotonic()
            if done >= total or now - reported >= PROGRESS_INTERVAL_S:
                reported = now
                self.progress.emit(job.job_id, done, total)

        try:
            result = export_got10k_dataset(trajectory, video, out_dir, name, progress=progress)
            follow_umask(Path(result))
        except _Cancelled:
            self.failed.emit(job.job_id, "cancelled")
            return
        except Exception as exc:  # noqa: BLE001 - shown to the user as one line
            self.failed.emit(job.job_id, first_line(exc))
            return
        self.finished.emit(job.job_id, str(result))


class DatasetExport(JobController):
    """One export of ``trajectory``'s frames of ``video`` into ``out_dir/name``.

    The export reads every frame and writes a JPEG per frame: seconds to minutes,
    so it must not run on the GUI thread. It opens its own source (sources are not
    shared between threads). Cancel makes the progress callback raise, which the
    exporter documents as the way to stop; the output folder is then left as it was.
    """

    progress = Signal(int, int)
    finished = Signal(str)  # the sequence folder
    failed = Signal(str)

    _worker: _ExportWorker
    what = "dataset export"

    def __init__(
        self, trajectory: Trajectory, video: Path, out_dir: Path, name: str, parent: QObject | None = None
    ):
        super().__init__(_ExportWorker(), "siamtrack-export", parent)
        self._args = (trajectory, Path(video), Path(out_dir), name)
        self.done: tuple[int, int] = (0, trajectory.frame_count)
        """Frames exported so far and in all, as last reported."""
        self._worker.progress.connect(self._on_progress)
        self._worker.finished.connect(self._on_finished)
        self._worker.failed.connect(self._on_failed)

    def start(self) -> None:
        self.submit(self._args)

    def join(self) -> None:
        """Cancel and wait, with no signal after it: used when the window closes."""
        if self._current is not None:
            self.cancel()
            self.end(self._current)
        self.shutdown()

    @Slot(int, int, int)
    def _on_progress(self, job_id: int, done: int, total: int) -> None:
        if self.is_current(job_id):
            self.done = (done, total)
            self.progress.emit(done, total)

    @Slot(int, str)
    def _on_finished(self, job_id: int, folder: str) -> None:
        if self.end(job_id):
            self._stop_thread()
            self.finished.emit(folder)

    @Slot(int, str)
    def _on_failed(self, job_id: int, message: str) -> None:
        if self.end(job_id):
            self._stop_thread()
            self.failed.emit(message)

    def _stop_thread(self) -> None:
        """One export per object: its thread ends with it (the worker has sent its last
        signal, so the wait is for the few lines after it)."""
        self._thread.quit()
        self._thread.wait()
