"""RunDisplay: a tracking run as the window shows it.

The tracker panel's status and progress, the score maps of each tracked frame, and the
rule that the view follows the newest tracked frame until the user navigates. Results
stream in per frame; the window draws them at its next repaint (``MainWindow.repaint_now``),
which asks :meth:`RunDisplay.frame_to_show` and :meth:`RunDisplay.tick`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from app.model.session import TrackerSettings
from app.qt.tracking_worker import TrackerInfo
from trackers.types import TrackResult

if TYPE_CHECKING:
    from app.qt.main_window import MainWindow

RUN_MAPS_EVERY = 2
"""While a run goes on, the score maps are redrawn on every 2nd repaint (12 a second)."""
RUN_PLOT_EVERY = 8
"""... and the timeline plot on every 8th (3 a second), a tick apart from the maps.

Each redraw costs the GUI thread 5-20 ms of pyqtgraph painting; all three on one tick,
25 times a second, left the event loop stalled 45-64 ms at times on two busy cores
(tests/app/test_responsiveness.py). The frame and its box stay at 25 a second."""
MESSAGES = {
    "completed": "Tracking finished",
    "cancelled": "Tracking stopped; the frames tracked so far are kept",
    "rejoined": "Tracking rejoined the earlier track and stopped",
}
"""The panel's status when a run ends, by reason."""


class RunDisplay:
    def __init__(self, window: MainWindow) -> None:
        self.window = window
        self.following = False
        """The view jumps to each newly tracked frame until the user navigates."""
        self.latest_tracked: int | None = None
        self._ticks = 0  # repaints since the run started: staggers the docks

    def connect(self) -> None:
        window = self.window
        annotator, controller = window.annotator, window.controller
        annotator.frame_tracked.connect(self._on_frame_tracked)
        annotator.run_started.connect(self._on_run_started)
        annotator.run_ended.connect(self._on_run_ended)
        annotator.run_failed.connect(self._on_run_failed)
        annotator.progress.connect(self._on_progress)
        window.panel.settings_changed.connect(self._on_settings_changed)
        controller.tracker_ready.connect(self._on_tracker_ready)
        controller.probe_failed.connect(window.panel.show_problem)
        controller.notice.connect(lambda _run_id, text: window.notice(text))

    def frame_to_show(self) -> int | None:
        """The newest tracked frame while the view follows the run (and "follow" is on)."""
        if self.following and self.window.panel.follow_box.isChecked() and self.latest_tracked is not None:
            return self.latest_tracked
        return None

    def tick(self) -> tuple[bool, bool]:
        """A repaint: whether it redraws the score maps and the plot (both, when no run goes on)."""
        running = self.following and self.latest_tracked is not None
        tick = self._ticks
        self._ticks += 1
        return not running or tick % RUN_MAPS_EVERY == 0, not running or tick % RUN_PLOT_EVERY == 1

    def _on_run_started(self, run_id: int) -> None:
        self.following, self.latest_tracked = True, None
        self._ticks = 0
        panel = self.window.panel
        panel.set_status(f"tracking with {panel.tracker_name}…")
        self.window.run_started.emit(run_id)

    def _on_frame_tracked(self, index: int, result: TrackResult) -> None:
        self.window.score_view.remember(
            index, result.score_maps, score=result.score, box=result.box,
            tracker=self.window.annotator.run_tracker,
        )
        self.latest_tracked = index

    def _on_progress(self, done: int, total: int, fps: float) -> None:
        self.window.panel.set_progress(done, total)
        if done > 10:
            self.window.panel.set_status(f"tracking: {done}/{total} frames, {fps:.1f} fps")

    def _on_run_failed(self, message: str) -> None:
        self.window.panel.show_problem(f"Tracking failed: {message}")
        self.window.report(
            f"The tracker failed: {message}\nThe frames tracked before the error are kept.",
            title="Tracking failed",
        )

    def _on_run_ended(self, run_id: int, reason: str) -> None:
        window = self.window
        last = self.frame_to_show()
        if last is not None:
            window.index = last  # stay on the last frame the run reached
        self.following, self.latest_tracked = False, None
        if reason in MESSAGES:
            window.panel.set_status(MESSAGES[reason])
        window.update_actions()
        window.schedule_repaint()
        window.run_ended.emit(run_id, reason)

    def _on_tracker_ready(self, info: TrackerInfo) -> None:
        self.window.panel.show_tracker(info.name, info.device, info.untrained)

    def _on_settings_changed(self, settings: TrackerSettings) -> None:
        app_settings = self.window.settings
        app_settings.tracker = settings.tracker
        app_settings.weights = "" if settings.weights is None else str(settings.weights)
        app_settings.device = settings.device
        # Build the tracker now, in the worker: the device "auto" picks and an
        # untrained-weights warning show before the first run, and the run starts sooner.
        self.window.controller.probe(settings)
