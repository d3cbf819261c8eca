"""The GOT-10k training-set export as a background job the main window polls."""

from __future__ import annotations

import threading
from pathlib import Path

from PySide6.QtCore import QObject, QTimer, Signal

from app.model.files import follow_umask
from trackers.formats import export_got10k_dataset
from trackers.sources import FrameSource
from trackers.trajectory import Trajectory


class _Cancelled(Exception):
    pass


class DatasetExport(QObject):
    """``export_got10k_dataset`` on a plain thread, polled by a timer.

    The export reads every frame and writes a JPEG per frame: seconds to minutes,
    so it must not run on the GUI thread. It gets its own source (sources are not
    shared between threads). Cancel makes the progress callback raise, which the
    exporter documents as the way to stop; the output folder is then left as it was.
    """

    progress = Signal(int, int)
    finished = Signal(str)  # the sequence folder
    failed = Signal(str)

    def __init__(
        self, trajectory: Trajectory, video: Path, out_dir: Path, name: str, parent: QObject | None = None
    ):
        super().__init__(parent)
        self._args = (trajectory, video, out_dir, name)
        self._cancel = threading.Event()
        self._state: tuple[int, int] = (0, trajectory.frame_count)
        self._result: str | None = None
        self._error: str | None = None
        self._thread = threading.Thread(target=self._run, name="dataset-export", daemon=True)
        self._timer = QTimer(self)
        self._timer.setInterval(100)
        self._timer.timeout.connect(self._poll)

    def start(self) -> None:
        self._thread.start()
        self._timer.start()

    def cancel(self) -> None:
        self._cancel.set()

    def join(self) -> None:
        """Cancel and wait: used when the window closes."""
        self.cancel()
        if self._thread.is_alive():
            self._thread.join()
        self._timer.stop()

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def _run(self) -> None:
        trajectory, video, out_dir, name = self._args

        def progress(done: int, total: int) -> None:
            if self._cancel.is_set():
                raise _Cancelled
            self._state = (done, total)

        try:
            source: FrameSource | Path = video
            result = export_got10k_dataset(trajectory, source, out_dir, name, progress=progress)
            follow_umask(Path(result))
            self._result = str(result)
        except _Cancelled:
            self._error = "cancelled"
        except Exception as exc:  # noqa: BLE001 - shown to the user as one line
            self._error = str(exc).splitlines()[0] if str(exc) else type(exc).__name__

    def _poll(self) -> None:
        self.progress.emit(*self._state)
        if self._thread.is_alive():
            return
        self._timer.stop()
        if self._result is not None:
            self.finished.emit(self._result)
        else:
            self.failed.emit(self._error or "failed")
