"""MainWindow: assembles the widgets and actions and wires them to the session and the worker.

No tracking logic lives here: the session (:mod:`app.model.session`) decides what a run
covers and what it may overwrite, the controller (:mod:`app.qt.tracking_worker`)
runs it off the GUI thread, the annotator (:mod:`app.qt.annotator`) turns
commands into edits and runs, and the widgets draw. What is left is wiring, and
one rule of display: results stream in per frame but the window repaints on a
timer, showing only the latest state, so a fast tracker never builds a backlog
of paints.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

from PySide6.QtCore import QByteArray, QPointF, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QCloseEvent, QDragEnterEvent, QDropEvent, QKeySequence, QShowEvent
from PySide6.QtWidgets import (
    QApplication,
    QDockWidget,
    QFileDialog,
    QLabel,
    QMainWindow,
    QMessageBox,
    QVBoxLayout,
    QWidget,
)

from app.model.document import VideoDocument
from app.model.frame_cache import cache_usage, clear_cache, default_cache_dir
from app.model.journal import discard, find_recoverable, read_info
from app.model.session import ChangeEvent, TrackerSettings
from app.model.settings import AppSettings, load_settings, save_settings
from app.qt.annotator import Annotator
from app.qt.dataset_export import DatasetExport
from app.qt.tracking_worker import TrackerFactory, TrackerInfo, TrackingController
from app.qt.widgets.export_dialog import ExportDialog, finetune_instructions
from app.qt.widgets.finetune_dialog import FinetuneDialog
from app.qt.widgets.frame_view import FrameView
from app.qt.widgets.help_dialog import HelpDialog
from app.qt.widgets.object_list import ObjectLanes, ObjectList
from app.qt.widgets.restore_dialog import ask_restore
from app.qt.widgets.score_map_view import ScoreMapView
from app.qt.widgets.timeline import ConfidencePlot, Transport, format_time
from app.qt.widgets.tracker_panel import TrackerPanel
from trackers.sources import IMAGE_SUFFIXES, VIDEO_SUFFIXES
from trackers.trajectory import Origin
from trackers.types import Box, TrackResult

REPAINT_MS = 40
"""At most 25 repaints a second, however fast results arrive."""
RUN_MAPS_EVERY = 2
"""While a run goes on, the score maps are redrawn on every 2nd repaint (12 a second)."""
RUN_PLOT_EVERY = 8
"""... and the timeline plot on every 8th (3 a second), a tick apart from the maps.

Each redraw costs the GUI thread 5-20 ms of pyqtgraph painting; all three on one tick,
25 times a second, left the event loop stalled 45-64 ms at times on two busy cores
(tests/app/test_responsiveness.py). The frame and its box stay at 25 a second."""
EMPTY_HINT = (
    "Open a video or image folder (Ctrl+O, File › Open recent), or drop one here.\n"
    "Then drag a box around the object and press T to track it."
)
DRAW_HINT = "Drag a box around the object on this frame, then press T (Track forward)."
TRAIL_FRAMES = 60
MENU_TITLES = {
    "File": "&File", "Edit": "&Edit", "Navigate": "&Navigate",
    # not Alt+T: that is "Track all objects", and a menu's Alt key that is also an
    # action's shortcut makes Qt run neither ("Ambiguous shortcut overload")
    "Track": "Trac&k", "View": "&View", "Tools": "T&ools", "Help": "&Help",
}
NUDGE_BIG = 10
VIDEO_FILTER = "Videos and projects ({});;All files (*)".format(
    " ".join(f"*{s}" for s in sorted(VIDEO_SUFFIXES)) + " *.siamtrack.json"
)


class MainWindow(QMainWindow):
    run_started = Signal(int)  # run_id
    run_ended = Signal(int, str)  # run_id, "completed" | "cancelled" | "rejoined" | "failed"
    document_changed = Signal()

    def __init__(
        self,
        settings: AppSettings | None = None,
        *,
        make_tracker: TrackerFactory | None = None,
        prompts: bool = True,
        persist_settings: bool = True,
    ) -> None:
        """``prompts=False`` (tests, ``--exit-when-done``) skips every modal question:
        no journal-restore offer, no "save changes?" on close."""
        super().__init__()
        self.settings = settings if settings is not None else load_settings()
        VideoDocument.cache_limit_bytes = max(0, self.settings.cache_limit_mb) * 1024**2
        self.prompts = prompts
        self.persist_settings = persist_settings
        self.document: VideoDocument | None = None
        self.index = 0
        self.last_error: str | None = None
        self.last_notice: str | None = None
        self._dirty = False
        self._latest_tracked: int | None = None
        self._following = False
        """The view jumps to each newly tracked frame until the user navigates."""
        self._plot_dirty = True
        self._run_ticks = 0  # repaints since the run started: staggers the docks
        self._export: DatasetExport | None = None
        self._finetune: FinetuneDialog | None = None
        self._message_box: QMessageBox | None = None
        self._running_shown = False

        self.setWindowTitle("siamtrack")
        self.setAcceptDrops(True)
        self.controller = TrackingController(make_tracker, self)
        self._build_widgets()
        self.annotator = Annotator(
            self.controller, self.panel.settings, self.panel.retrack_box.isChecked, self
        )
        self._build_actions()
        self._connect()
        self.panel.set_settings(self._initial_tracker_settings())
        self.transport.step_box.setValue(self.settings.step)
        self.blend_action.setChecked(self.settings.blend)
        self.trail_action.setChecked(self.settings.trail)
        self._restore_geometry()
        self._update_actions()

    # ================================================================== building
    def _build_widgets(self) -> None:
        self.view = FrameView()
        self.setCentralWidget(self.view)
        self.panel = TrackerPanel()
        self.score_view = ScoreMapView()
        self.transport = Transport()
        self.plot = ConfidencePlot()
        timeline = QWidget()
        layout = QVBoxLayout(timeline)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.transport)
        layout.addWidget(self.plot, 1)
        self.lanes = ObjectLanes()  # one lane per object: its suggestions and absent spans
        layout.addWidget(self.lanes)
        self.tracker_dock = self._dock("Tracker", self.panel, Qt.DockWidgetArea.RightDockWidgetArea)
        self.score_dock = self._dock("Score maps", self.score_view, Qt.DockWidgetArea.RightDockWidgetArea)
        self.timeline_dock = self._dock(
            "Timeline and confidence", timeline, Qt.DockWidgetArea.BottomDockWidgetArea
        )
        self.object_list = ObjectList()
        self.objects_dock = self._dock("Objects", self.object_list, Qt.DockWidgetArea.LeftDockWidgetArea)
        self.autosave_label = QLabel()
        self.statusBar().addPermanentWidget(self.autosave_label)
        self._repaint_timer = QTimer(self)
        self._repaint_timer.setSingleShot(True)
        self._repaint_timer.setInterval(REPAINT_MS)
        self._repaint_timer.timeout.connect(self.repaint_now)
        screen = QApplication.primaryScreen()
        room = screen.availableGeometry() if screen is not None else None
        width, height = 1440, 900
        # the offscreen platform's pretend screen is 800x600; screenshots want the real size
        if room is not None and room.width() > 0 and QApplication.platformName() != "offscreen":
            width, height = min(width, room.width()), min(height, room.height())
        self.resize(width, height)
        self._docks_sized = False

    def _dock(self, title: str, widget: QWidget, area: Qt.DockWidgetArea) -> QDockWidget:
        dock = QDockWidget(title, self)
        dock.setObjectName(title)  # saveState needs names
        dock.setWidget(widget)
        self.addDockWidget(area, dock)
        return dock

    def _action(
        self,
        menu_name: str,
        text: str,
        keys: str | Sequence[str],
        slot: Callable[[], object],
        checkable: bool = False,
    ) -> QAction:
        action = QAction(text, self)
        sequences = [keys] if isinstance(keys, str) else list(keys)
        action.setShortcuts([QKeySequence(k) for k in sequences])
        action.setCheckable(checkable)
        # Window-wide: the keys work wherever the focus is, except in widgets
        # that need the key themselves (text fields take letters and arrows).
        action.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
        action.triggered.connect(lambda checked=False: slot())
        self.addAction(action)
        self._menus[menu_name].addAction(action)
        self._groups.setdefault(menu_name, []).append(action)
        return action

    def _build_actions(self) -> None:
        bar = self.menuBar()
        self._menus = {name: bar.addMenu(title) for name, title in MENU_TITLES.items()}
        self._groups: dict[str, list[QAction]] = {}
        a = self._action
        a("File", "Open video or project…", "Ctrl+O", self.open_dialog)
        a("File", "Open image folder…", "Ctrl+Shift+O", self.open_folder_dialog)
        self.recent_menu = self._menus["File"].addMenu("Open recent")
        self.recent_actions = []
        for i in range(9):
            action = QAction(self)
            action.setShortcut(QKeySequence(f"Ctrl+{i + 1}"))
            action.triggered.connect(lambda checked=False, i=i: self._open_recent(i))
            self.addAction(action)
            self.recent_menu.addAction(action)
            self.recent_actions.append(action)
        self.save_action = a("File", "Save project", "Ctrl+S", self.save)
        self.save_as_action = a("File", "Save project as…", "Ctrl+Shift+S", self.save_as)
        self.export_action = a("File", "Export trajectory…", "Ctrl+E", self.export_dialog)
        self.dataset_action = a(
            "File", "Export as training dataset (GOT-10k)…", "Ctrl+Shift+E", self.export_dataset_dialog
        )
        self.export_objects_action = a(
            "File", "Export all objects…", "Ctrl+Alt+E", self.export_objects_dialog
        )
        self.close_action = a("File", "Close video", "Ctrl+W", self.close_document)
        a("File", "Quit", "Ctrl+Q", self.close)

        n = self.annotator
        self.undo_action = a("Edit", "Undo", "Ctrl+Z", lambda: self._travel(n.undo))
        self.redo_action = a("Edit", "Redo", ["Ctrl+Shift+Z", "Ctrl+Y"], lambda: self._travel(n.redo))
        a("Edit", "Delete box", ["Del", "Backspace"], lambda: n.delete(self.index))
        a("Edit", "Mark target absent", "A", lambda: n.mark_absent(self.index))
        a(
            "Edit", "Mark target absent up to the next keyframe", "Shift+A",
            lambda: n.mark_absent_to_next_keyframe(self.index),
        )
        a("Edit", "Make keyframe (accept this box)", "K", lambda: n.make_keyframe(self.index))
        a("Edit", "Interpolate between keyframes around here", "I", lambda: n.interpolate_around(self.index))
        for text, key, move in (
            ("left", "Left", (-1, 0, 0, 0)),
            ("right", "Right", (1, 0, 0, 0)),
            ("up", "Up", (0, -1, 0, 0)),
            ("down", "Down", (0, 1, 0, 0)),
        ):
            a("Edit", f"Nudge box {text}", f"Ctrl+{key}", lambda m=move: self.nudge(*m))
            a(
                "Edit",
                f"Nudge box {text} by {NUDGE_BIG}",
                f"Ctrl+Shift+{key}",
                lambda m=move: self.nudge(*(NUDGE_BIG * v for v in m)),
            )
        for text, key, grow in (
            ("wider", "Alt+Right", (0, 0, 1, 0)),
            ("narrower", "Alt+Left", (0, 0, -1, 0)),
            ("taller", "Alt+Down", (0, 0, 0, 1)),
            ("shorter", "Alt+Up", (0, 0, 0, -1)),
        ):
            a("Edit", f"Make box {text}", key, lambda g=grow: self.nudge(*g))

        t = self.transport
        a("Navigate", "Play / pause", "Space", t.toggle_play)
        a("Navigate", "Next frame", ["Right", "."], lambda: t.step(1))
        a("Navigate", "Previous frame", ["Left", ","], lambda: t.step(-1))
        a("Navigate", "Forward N frames", "Shift+Right", lambda: t.step(t.big_step))
        a("Navigate", "Back N frames", "Shift+Left", lambda: t.step(-t.big_step))
        a("Navigate", "First frame", "Home", t.home)
        a("Navigate", "Last frame", "End", t.end)
        a("Navigate", "Next keyframe", "PgDown", lambda: self.jump_keyframe(1))
        a("Navigate", "Previous keyframe", "PgUp", lambda: self.jump_keyframe(-1))
        a("Navigate", "Next low-confidence frame", "N", lambda: self.jump_suggestion(1))
        a("Navigate", "Previous low-confidence frame", "Shift+N", lambda: self.jump_suggestion(-1))
        a("Navigate", "Confirm suggestion: target absent here", "C", self.confirm_suggestion)
        a("Navigate", "Reject suggestion: the box is right", "R", self.reject_suggestion)

        self.forward_action = a("Track", "Track forward", "T", lambda: self.track(+1))
        self.backward_action = a("Track", "Track backward", "Shift+T", lambda: self.track(-1))
        self.between_action = a(
            "Track", "Track both ways between keyframes (fused by score)", "Ctrl+T",
            lambda: self.annotator.track_between(self.index),
        )
        self.stop_action = a("Track", "Stop tracking", "Esc", self.stop)
        self.track_all_action = a(
            "Track", "Track all objects forward", "Alt+T", lambda: self.annotator.track_all(self.index, +1)
        )
        back = "Track all objects backward"
        a("Track", back, "Alt+Shift+T", lambda: self.annotator.track_all(self.index, -1))
        a("Edit", "New object (draw its box next)", "Ctrl+N", self.annotator.new_object)
        a("Edit", "Delete the selected object", "Ctrl+Shift+Del", self.object_list.delete_selected)
        a("Navigate", "Next object", "]", lambda: self.annotator.select_next_object(1))
        a("Navigate", "Previous object", "[", lambda: self.annotator.select_next_object(-1))

        a("View", "Zoom in", ["+", "="], lambda: self.view.zoom(1.25))
        a("View", "Zoom out", "-", lambda: self.view.zoom(0.8))
        a("View", "Fit frame", "0", self.view.fit)
        self.blend_action = a("View", "Blend score map onto frame", "B", self._blend_changed, checkable=True)
        self.trail_action = a("View", "Show trajectory trail", "L", self.schedule_repaint, checkable=True)
        for dock, key in (
            (self.tracker_dock, "F6"),
            (self.score_dock, "F7"),
            (self.timeline_dock, "F8"),
            (self.objects_dock, "F9"),
        ):
            toggle = dock.toggleViewAction()
            toggle.setShortcut(QKeySequence(key))
            self._menus["View"].addAction(toggle)
            self._groups["View"].append(toggle)

        # what does nothing without a video: disabled until one is open
        self._needs_video = [
            action
            for name in ("Edit", "Navigate")
            for action in self._groups[name]
            if action not in (self.undo_action, self.redo_action)
        ] + [self.close_action, self.save_as_action]
        self.finetune_action = a(
            "Tools", "Fine-tune on this project's trajectories…", "Ctrl+Shift+F", self.show_finetune_dialog
        )
        # no key for this one: it is not in the shortcut list
        self.clear_cache_action = QAction("Clear the frame cache", self)
        self.clear_cache_action.triggered.connect(lambda checked=False: self.clear_frame_cache())
        self._menus["Tools"].addAction(self.clear_cache_action)
        a("Help", "Keyboard shortcuts", "F1", self.show_help)
        self._update_recent_menu()

    def shortcut_groups(self) -> list[tuple[str, list[QAction]]]:
        """Every action with a shortcut, by menu: what the help dialog lists."""
        groups = [(name, list(actions)) for name, actions in self._groups.items()]
        groups.insert(1, ("File › Open recent", [a for a in self.recent_actions if a.isVisible()]))
        return groups

    def _connect(self) -> None:
        self.view.box_drawn.connect(lambda box: self.annotator.set_keyframe(self.index, box))
        self.view.box_edited.connect(lambda box: self.annotator.set_keyframe(self.index, box))
        self.transport.frame_requested.connect(self.go_to)
        self.plot.frame_requested.connect(self.go_to)
        self.plot.threshold_changed.connect(lambda _: self._mark_plot_dirty())
        self.score_view.blend_toggled.connect(self.blend_action.setChecked)
        self.score_view.blend_toggled.connect(lambda _: self._blend_changed())
        self.panel.track_requested.connect(self.track)
        self.panel.stop_requested.connect(self.stop)
        self.panel.settings_changed.connect(self._on_settings_changed)
        n = self.annotator
        n.changed.connect(self._on_changed)
        n.frame_tracked.connect(self._on_frame_tracked)
        n.run_started.connect(self._on_run_started)
        n.run_ended.connect(self._on_run_ended)
        n.run_failed.connect(self._on_run_failed)
        n.progress.connect(self._on_progress)
        n.message.connect(lambda text: self.statusBar().showMessage(text, 5000))
        self.object_list.settings_source = self.panel.settings
        self.object_list.frame_requested.connect(self.go_to)
        self.object_list.new_object_requested.connect(n.new_object)
        # a text field keeps letters and arrows: after Enter they navigate and track again
        self.object_list.editing_done.connect(lambda: self.view.setFocus(Qt.FocusReason.OtherFocusReason))
        self.lanes.frame_requested.connect(self.go_to)
        self.lanes.frame_x = self._plot_x
        self.plot.getViewBox().sigRangeChanged.connect(lambda *_: self.lanes.update())
        self.plot.getViewBox().sigResized.connect(lambda *_: self.lanes.update())
        self.lanes.object_requested.connect(n.select_object)
        self.view.object_clicked.connect(n.select_object)
        self.controller.tracker_ready.connect(self._on_tracker_ready)
        self.controller.probe_failed.connect(self.panel.show_problem)
        self.controller.notice.connect(lambda _run_id, text: self._notice(text))

    def _initial_tracker_settings(self) -> TrackerSettings:
        weights = Path(self.settings.weights) if self.settings.weights else None
        return TrackerSettings(tracker=self.settings.tracker, weights=weights, device=self.settings.device)

    # ================================================================== documents
    def open_path(self, path: Path) -> bool:
        """Open a video, image folder or project; False (and a message) when it cannot be opened."""
        path = Path(path)
        if not self.close_document():
            return False
        QApplication.setOverrideCursor(Qt.CursorShape.WaitCursor)
        try:
            document = VideoDocument.open(path)
        except Exception as exc:  # noqa: BLE001 - any failure to open is a message, the app stays up
            text = str(exc).strip() or type(exc).__name__
            # sources and projects already say "Cannot open <path>: ..."
            self._report(
                text if text.startswith("Cannot") else f"Cannot open {path}: {text}", title="Open failed"
            )
            return False
        finally:
            QApplication.restoreOverrideCursor()
        self._set_document(document)
        self.settings.add_recent(path)
        self.settings.last_dir = str(path.parent)
        self._update_recent_menu()
        project = document.find_project(self.settings.recent)
        if project is not None:
            self._offer_project(project)
        return True

    def _offer_project(self, project: Path) -> None:
        """This video has a saved project: offer it instead of an empty annotation."""
        question = f"This video has a saved project:\n{project}\n\nOpen the project instead?"
        if self.prompts:
            answer = QMessageBox.question(
                self, "Open the project?", question,
                QMessageBox.StandardButton.Open | QMessageBox.StandardButton.Ignore,
                QMessageBox.StandardButton.Open,
            )
            if answer == QMessageBox.StandardButton.Open:
                self.open_path(project)
                return
        self.statusBar().showMessage(f"This video has a saved project: {project} (Ctrl+O to open it)", 15000)

    def _set_document(self, document: VideoDocument) -> None:
        self.document = document
        self.index = 0
        self._dirty = False
        self._latest_tracked = None
        session = document.session
        session.add_listener(self._on_session_changed)
        self.annotator.set_document(document)
        self.object_list.set_session(session)
        if document.project_path is not None:
            self.panel.set_settings(session.settings)  # a project remembers its tracker
        self.score_view.forget()
        self.panel.clear_status()  # the last video's "Tracking finished" is not about this one
        self.transport.set_frame_count(document.frame_count, document.fps)
        self.autosave_label.setText(document.journal_problem or "autosave on")
        if document.note:
            self._notice(document.note, title="About this video")
        self._mark_plot_dirty()
        self.view.set_frame(document.frame(0))
        self.view.fit()
        self.repaint_now()
        self._update_title()
        self.document_changed.emit()

    def close_document(self) -> bool:
        """Close the open video (asking to save unsaved work); False if the user cancelled."""
        document = self.document
        if document is None:
            return True
        if not self._confirm_unsaved():
            return False
        self.annotator.set_document(None)
        if self._export is not None:
            self._export.join()
            self._export = None
        document.session.remove_listener(self._on_session_changed)
        self.object_list.set_session(None)
        self.view.set_others([])
        document.close()
        self.document = None
        self.view.set_frame(None)
        self.view.set_entry(None)
        self.score_view.forget()
        self.panel.clear_status()
        self.plot.clear_data()
        self.transport.set_frame_count(0, 30.0)
        self.repaint_now()
        self._update_title()
        self._update_actions()
        self.document_changed.emit()
        return True

    def _confirm_unsaved(self) -> bool:
        if not self._dirty or not self.prompts:
            return True
        answer = QMessageBox.question(
            self,
            "Unsaved annotation",
            "Save the annotation before closing?",
            QMessageBox.StandardButton.Save
            | QMessageBox.StandardButton.Discard
            | QMessageBox.StandardButton.Cancel,
        )
        if answer == QMessageBox.StandardButton.Cancel:
            return False
        if answer == QMessageBox.StandardButton.Save:
            return self.save()
        return True

    def open_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, "Open video or project", self.settings.last_dir, VIDEO_FILTER
        )
        if path:
            self.open_path(Path(path))

    def open_folder_dialog(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Open a folder of frames", self.settings.last_dir)
        if path:
            self.open_path(Path(path))

    def _open_recent(self, i: int) -> None:
        if i < len(self.settings.recent):
            self.open_path(Path(self.settings.recent[i]))

    def _update_recent_menu(self) -> None:
        for i, action in enumerate(self.recent_actions):
            if i < len(self.settings.recent):
                action.setText(f"&{i + 1} {self.settings.recent[i]}")
                action.setVisible(True)
            else:
                action.setVisible(False)
        self.recent_menu.setEnabled(bool(self.settings.recent))

    def save(self) -> bool:
        document = self.document
        if document is None:
            return False
        if document.project_path is None:
            return self.save_as()
        return self._save_to(None)

    def save_as(self) -> bool:
        document = self.document
        if document is None:
            return False
        start = str(document.project_path or document.default_project_path())
        path, _ = QFileDialog.getSaveFileName(
            self, "Save project", start, "siamtrack projects (*.siamtrack.json)"
        )
        return bool(path) and self._save_to(Path(path))

    def _save_to(self, path: Path | None) -> bool:
        assert self.document is not None
        try:
            saved = self.document.save(path)
        except (OSError, ValueError) as exc:
            self._report(f"Cannot save: {exc}", title="Save failed")
            return False
        self._dirty = False
        self.statusBar().showMessage(f"Saved {saved}", 5000)
        self.settings.add_recent(saved)  # Save As too: the project is where the work is now
        self._update_recent_menu()
        self._update_title()
        return True

    def offer_restore(self) -> None:
        """Offer the work a crashed siamtrack left in its journals (newest first)."""
        if not self.prompts:
            return
        for path in find_recoverable():
            try:
                info = read_info(path)
            except (OSError, ValueError):
                continue
            answer = ask_restore(self, info)
            if answer == "restore":
                if self.close_document():
                    try:
                        self._set_document(VideoDocument.restore_journal(path))
                        self._dirty = True
                        self._update_title()
                    except Exception as exc:  # noqa: BLE001
                        self._report(f"Cannot restore {path}: {exc}", title="Restore failed")
                return  # one document at a time; the others are offered next start
            if answer == "discard":
                discard(path)

    # ================================================================== drawing
    def schedule_repaint(self) -> None:
        if not self._repaint_timer.isActive():
            self._repaint_timer.start()

    def _mark_plot_dirty(self) -> None:
        self._plot_dirty = True
        self.schedule_repaint()

    def repaint_now(self) -> None:
        """Draw the current state once: the frame, its box and maps, the timeline."""
        self._repaint_timer.stop()
        document = self.document
        if document is None:
            self.view.set_info("no video")
            self.view.set_hint(EMPTY_HINT)
            return
        if self._following and self.panel.follow_box.isChecked() and self._latest_tracked is not None:
            self.index = self._latest_tracked
        index = self.index
        trajectory = document.session.trajectory
        running = self._following and self._latest_tracked is not None
        tick = self._run_ticks
        self._run_ticks += 1
        maps_now = not running or tick % RUN_MAPS_EVERY == 0
        plot_now = not running or tick % RUN_PLOT_EVERY == 1
        try:
            self.view.set_frame(document.frame(index))
        except Exception as exc:  # noqa: BLE001 - a damaged frame must not take the window down
            self.statusBar().showMessage(f"Cannot decode frame {index}: {exc}", 5000)
        entry = trajectory[index]
        self.view.set_entry(entry)
        self._show_other_objects(index)
        if not trajectory.keyframes():
            self.view.set_hint(DRAW_HINT, centred=False)  # what to do first on a new video
        else:
            self.view.set_hint(None)
        # only the maps of the run that made this frame's box (not an undone or older run's)
        tracked_box = entry.box if entry is not None and entry.origin is Origin.TRACKED else None
        about = self.score_view.about(index, tracked_box) if tracked_box is not None else None
        maps = about.maps if about is not None else ()
        if maps_now:
            self.score_view.show_maps(maps, about)
        self.view.set_score_map(maps[0] if maps else None)
        self.view.set_info(self._info_text(index))
        self.transport.set_frame(index)
        if plot_now:
            self.plot.set_cursor(index)
        if self.trail_action.isChecked():
            boxes = trajectory.to_arrays().boxes[max(0, index - TRAIL_FRAMES) : index + 1]
            self.view.set_trail(boxes[:, :2] + boxes[:, 2:] / 2)
        else:
            self.view.set_trail(None)
        if self._plot_dirty and plot_now:
            self._plot_dirty = False
            arrays = trajectory.to_arrays()
            self.plot.set_data(arrays.scores, trajectory.keyframes(), arrays.absent)
            self.plot.set_suggestions(self.suggestions())
            self._show_lanes()
        self._update_actions()

    def _info_text(self, index: int) -> str:
        assert self.document is not None
        document = self.document
        text = f"frame {index} / {document.frame_count - 1}   {format_time(index, document.fps)}"
        entry = document.session.trajectory[index]
        if entry is None:
            return text + "   no box"
        if entry.box is None:
            return text + "   ABSENT"
        text += f"   {entry.origin.value}"
        if entry.score is not None:
            text += f"   confidence {entry.score:.2f}"
            about = self.score_view.about(index, entry.box)
            if about is not None and about.score is not None:
                text += f" (raw {about.tracker} score {about.score:.3g})"
        return text

    def go_to(self, index: int) -> None:
        if self.document is None:
            return
        self.index = min(max(int(index), 0), self.document.frame_count - 1)
        # The slider now, the frame at the repaint: steps taken before it count from here.
        self.transport.set_frame(self.index)
        # Navigating by hand while a run goes on stops following it.
        self._following = False
        self.schedule_repaint()

    def _blend_changed(self) -> None:
        on = self.blend_action.isChecked()
        self.view.set_blend(on)
        self.score_view.blend_box.blockSignals(True)
        self.score_view.blend_box.setChecked(on)
        self.score_view.blend_box.blockSignals(False)

    def _update_title(self) -> None:
        name = self.document.title if self.document is not None else ""
        star = " *" if self._dirty else ""
        self.setWindowTitle(f"siamtrack — {name}{star}" if name else "siamtrack")

    def _update_actions(self) -> None:
        has = self.document is not None
        running = self.controller.running
        session = self.document.session if has else None
        self.undo_action.setEnabled(bool(session and session.can_undo))
        self.redo_action.setEnabled(bool(session and session.can_redo))
        undo_text = session.undo_text if session is not None else ""
        redo_text = session.redo_text if session is not None else ""
        self.undo_action.setText(f"Undo {undo_text}" if undo_text else "Undo")
        self.redo_action.setText(f"Redo {redo_text}" if redo_text else "Redo")
        for action in (self.save_action, self.export_action, self.dataset_action, self.export_objects_action,
                       *self._needs_video):
            action.setEnabled(has)
        self.forward_action.setEnabled(has and not running)
        self.backward_action.setEnabled(has and not running)
        self.between_action.setEnabled(has and not running)
        self.panel.set_available(has)
        self.stop_action.setEnabled(running)
        if running != self._running_shown:
            self._running_shown = running
            self.panel.set_running(running)

    # ================================================================== commands
    def _on_session_changed(self, event: ChangeEvent) -> None:
        if event.frames or event.kind in ("run_ended", "objects"):
            self._dirty = True
        self._plot_dirty = True
        if event.kind == "select":
            self.score_view.forget()  # the maps shown are the selected object's
        if event.kind in ("select", "objects"):
            self._update_title()
            self.schedule_repaint()

    def _on_changed(self) -> None:
        self._update_title()
        self._update_actions()  # now, not at the repaint: the next key may be Redo
        self.schedule_repaint()

    def _travel(self, step: Callable[[], None]) -> None:
        """Undo or redo; the last run's "Tracking finished" no longer describes what is shown."""
        step()
        self.panel.clear_status()

    def set_keyframe(self, index: int, box: Box) -> None:
        self.annotator.set_keyframe(index, box)

    def nudge(self, dx: float, dy: float, dw: float, dh: float) -> None:
        self.annotator.nudge(self.index, dx, dy, dw, dh)

    def track(self, direction: int) -> bool:
        return self.annotator.track(self.index, direction)

    def stop(self) -> None:
        self.annotator.stop()

    def jump_keyframe(self, direction: int) -> None:
        if self.document is None:
            return
        keys = self.document.session.trajectory.keyframes()
        targets = [k for k in keys if (k - self.index) * direction > 0]
        if targets:
            self.go_to(targets[0] if direction > 0 else targets[-1])

    def suggestions(self) -> list[int]:
        """Low-confidence frames not yet looked at: tracked, under the plot's threshold, not rejected."""
        return self.annotator.suggestions(self.plot.threshold)

    def jump_suggestion(self, direction: int) -> None:
        """To the next low-confidence frame of any object; its object becomes the selected one."""
        per_object = self._object_suggestions()
        ahead = {i for found in per_object.values() for i in found if (i - self.index) * direction > 0}
        frames = sorted(ahead)
        if frames:
            target = frames[0] if direction > 0 else frames[-1]
            session = self.document.session if self.document is not None else None
            if session is not None and target not in per_object.get(session.selected_id, []):
                self.annotator.select_object(next(k for k, found in per_object.items() if target in found))
            self.go_to(target)
        else:
            self.statusBar().showMessage("No more low-confidence frames that way", 3000)

    def confirm_suggestion(self) -> None:
        """The target really is absent or lost here: mark the frame absent, go to the next."""
        if self.index in self.suggestions():
            self.annotator.mark_absent(self.index)
            self.jump_suggestion(1)

    def reject_suggestion(self) -> None:
        """The box is right despite the low score: stop suggesting this frame, go to the next."""
        if self.index in self.suggestions():
            self.annotator.reject(self.index)
            self._mark_plot_dirty()  # its red circle goes
            self.jump_suggestion(1)

    # ================================================================== several objects
    def _object_suggestions(self) -> dict[int, list[int]]:
        """Per object, its low-confidence frames not yet rejected."""
        document, threshold = self.document, self.plot.threshold
        if document is None or threshold is None:
            return {}
        session = document.session
        return {
            obj.id: [
                i for i in session.low_confidence_frames(threshold, obj.id) if i not in document.rejected
            ]
            for obj in session.objects
        }

    def _show_other_objects(self, index: int) -> None:
        """The boxes of the visible objects other than the selected one, in their colours."""
        document = self.document
        if document is None:
            self.view.set_others([])
            return
        session = document.session
        others = []
        for obj in session.objects:
            entry = obj.trajectory[index]
            shown = obj.id != session.selected_id and not obj.hidden
            if shown and entry is not None and entry.box is not None:
                others.append((obj.id, entry.box, obj.colour))
        self.view.set_others(others)

    def _plot_x(self, frame: float) -> float:
        """The x of ``frame`` on the confidence plot, in the lanes' coordinates (they lie under it)."""
        scene = self.plot.getViewBox().mapViewToScene(QPointF(frame, 0.0))
        return self.lanes.mapFromGlobal(self.plot.mapToGlobal(self.plot.mapFromScene(scene))).x()

    def _show_lanes(self) -> None:
        document = self.document
        if document is None:
            return
        session = document.session
        suggestions = self._object_suggestions()
        lanes = [
            (obj.id, obj.colour, obj.trajectory.absent_spans(), suggestions.get(obj.id, []))
            for obj in session.objects
        ]
        self.lanes.set_lanes(document.frame_count, lanes, session.selected_id)

    # ================================================================== runs, as the window shows them
    def _on_run_started(self, run_id: int) -> None:
        self._following, self._latest_tracked = True, None
        self._run_ticks = 0
        self.panel.set_status(f"tracking with {self.panel.tracker_name}…")
        self.run_started.emit(run_id)

    def _on_frame_tracked(self, index: int, result: TrackResult) -> None:
        self.score_view.remember(
            index, result.score_maps, score=result.score, box=result.box, tracker=self.annotator.run_tracker
        )
        self._latest_tracked = index

    def _on_progress(self, done: int, total: int, fps: float) -> None:
        self.panel.set_progress(done, total)
        if done > 10:
            self.panel.set_status(f"tracking: {done}/{total} frames, {fps:.1f} fps")

    def _on_run_failed(self, message: str) -> None:
        self.panel.show_problem(f"Tracking failed: {message}")
        self._report(
            f"The tracker failed: {message}\nThe frames tracked before the error are kept.",
            title="Tracking failed",
        )

    def _on_run_ended(self, run_id: int, reason: str) -> None:
        if self._following and self.panel.follow_box.isChecked() and self._latest_tracked is not None:
            self.index = self._latest_tracked  # stay on the last frame the run reached
        self._following, self._latest_tracked = False, None
        messages = {
            "completed": "Tracking finished",
            "cancelled": "Tracking stopped; the frames tracked so far are kept",
            "rejoined": "Tracking rejoined the earlier track and stopped",
        }
        if reason in messages:
            self.panel.set_status(messages[reason])
        self._update_actions()
        self.schedule_repaint()
        self.run_ended.emit(run_id, reason)

    def _on_tracker_ready(self, info: TrackerInfo) -> None:
        self.panel.show_tracker(info.name, info.device, info.untrained)

    def _on_settings_changed(self, settings: TrackerSettings) -> None:
        self.settings.tracker = settings.tracker
        self.settings.weights = "" if settings.weights is None else str(settings.weights)
        self.settings.device = settings.device
        # Build the tracker now, in the worker: the device "auto" picks and an
        # untrained-weights warning show before the first run, and the run starts sooner.
        self.controller.probe(settings)

    # ================================================================== menus: export, tools, help
    def export_dialog(self) -> None:
        document = self.document
        if document is None:
            return
        dialog = ExportDialog(document.session.trajectory, document.default_export_base(), self)
        if dialog.exec():
            try:
                dialog.write()
            except (OSError, ValueError) as exc:
                self._report(f"Export failed: {exc}", title="Export failed")
                return
            self.statusBar().showMessage(f"Exported {dialog.format} to {dialog.path}", 5000)

    def export_objects(self, path: Path, format: str) -> None:
        """Every object, with its id and label, to ``path`` as ``format`` (``trackers.formats``'
        several-object writer); OSError or ValueError on failure."""
        from app.model.project_tracks import session_tracks
        from trackers.formats import write_tracks  # type: ignore[attr-defined]

        assert self.document is not None
        write_tracks(session_tracks(self.document.session), path, format)

    def export_objects_dialog(self) -> None:
        from PySide6.QtWidgets import QInputDialog

        document = self.document
        if document is None:
            return
        try:
            from trackers.formats import FORMATS, write_tracks  # type: ignore[attr-defined]  # noqa: F401
        except ImportError:
            self._report("This siamtrack cannot write several objects to one file yet", title="Export")
            return
        name, ok = QInputDialog.getItem(self, "Export all objects", "Format:", list(FORMATS), 0, False)
        if not ok:
            return
        path, _ = QFileDialog.getSaveFileName(
            self, "Export all objects", str(document.default_project_path().with_name(document.path.stem))
        )
        if not path:
            return
        try:
            self.export_objects(Path(path), name)
        except (OSError, ValueError) as exc:
            self._report(f"Export failed: {exc}", title="Export failed")
            return
        count = len(document.session.objects)
        self.statusBar().showMessage(f"Exported {count} objects as {name} to {path}", 5000)

    def export_dataset_dialog(self) -> None:
        document = self.document
        if document is None or (self._export is not None and self._export.running):
            return
        folder = QFileDialog.getExistingDirectory(
            self, "Export a GOT-10k training set into", self.settings.last_dir
        )
        if folder:
            self.export_dataset(Path(folder))

    def export_dataset(self, folder: Path) -> DatasetExport | None:
        document = self.document
        if document is None:
            return None
        name = document.path.stem if document.path.is_file() else document.path.name
        job = DatasetExport(document.session.trajectory, document.path, folder, name, self)
        job.progress.connect(
            lambda done, total: self.statusBar().showMessage(f"Exporting frames {done}/{total}…")
        )
        job.finished.connect(
            lambda path: self.statusBar().showMessage(f"Training set written to {path}", 10000)
        )
        job.failed.connect(
            lambda message: self._report(f"Dataset export failed: {message}", title="Export failed")
        )
        self._export = job
        job.start()
        return job

    def show_finetune_help(self) -> None:
        """How to fine-tune from the command line (also a button in the fine-tune dialog)."""
        text = finetune_instructions(self.panel.settings().weights)
        self._message(QMessageBox.Icon.Information, "Fine-tune a tracker", text)

    def show_finetune_dialog(self) -> FinetuneDialog | None:
        """Fine-tune on the open video's annotation in the background; None without a video."""
        document = self.document
        if document is None:
            self.show_finetune_help()
            return None
        try:
            if self._finetune is not None and self._finetune.isVisible():
                self._finetune.raise_()
                return self._finetune
        except RuntimeError:  # closed and deleted, its destroyed signal still queued
            self._finetune = None
        dialog = FinetuneDialog(document.session, self.panel.settings(), document.project_path, self)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.weights_accepted.connect(self._use_finetuned_weights)
        dialog.destroyed.connect(lambda *_: setattr(self, "_finetune", None))
        self._finetune = dialog
        dialog.open()  # window-modal but asynchronous: repaints go on
        return dialog

    def _use_finetuned_weights(self, tracker: str, weights: Path) -> None:
        self.panel.set_settings(replace(self.panel.settings(), tracker=tracker, weights=Path(weights)))
        self.statusBar().showMessage(f"{tracker} now uses {weights}", 10000)

    def clear_frame_cache(self) -> int:
        """Delete the cached frames of every video but the open one; returns the bytes freed."""
        keep = self.document.cache.dir if self.document is not None else None
        freed = clear_cache(keep=keep)
        left = cache_usage()
        self.statusBar().showMessage(
            f"Frame cache cleared: {freed / 1e6:.0f} MB freed, {left / 1e6:.0f} MB kept for the open video "
            f"(limit {self.settings.cache_limit_mb} MB, in {default_cache_dir()})",
            10000,
        )
        return freed

    def show_help(self) -> None:
        HelpDialog(self.shortcut_groups(), self).exec()

    def _notice(self, message: str, title: str = "siamtrack") -> None:
        """Something went differently than asked but nothing failed (a lying header, a CPU fallback)."""
        self.last_notice = message
        self.statusBar().showMessage(message.splitlines()[0], 10000)
        self.panel.set_status(message.splitlines()[0])
        self._message(QMessageBox.Icon.Information, title, message)

    def _report(self, message: str, title: str = "siamtrack") -> None:
        """An error for the user: status bar always, and a dialog that does not block the caller."""
        self.last_error = message
        self.statusBar().showMessage(message.splitlines()[0], 10000)
        self._message(QMessageBox.Icon.Warning, title, message)

    def _message(self, icon: QMessageBox.Icon, title: str, text: str) -> None:
        if not self.prompts:
            return  # tests and unattended runs: the status bar and last_error carry it
        box = QMessageBox(icon, title, text, QMessageBox.StandardButton.Ok, self)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.open()  # window-modal but asynchronous: tracking and repaints go on
        self._message_box = box

    # ================================================================== window
    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        urls = event.mimeData().urls()
        if urls and urls[0].isLocalFile():
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:
        urls = event.mimeData().urls()
        if urls and urls[0].isLocalFile():
            event.acceptProposedAction()
            path = Path(urls[0].toLocalFile())
            # drop a single frame file: open its folder
            self.open_path(path.parent if path.suffix.lower() in IMAGE_SUFFIXES else path)

    def _restore_geometry(self) -> None:
        try:
            if self.settings.geometry:
                self.restoreGeometry(QByteArray.fromHex(self.settings.geometry.encode()))
            if self.settings.window_state:
                self.restoreState(QByteArray.fromHex(self.settings.window_state.encode()))
        except ValueError:
            pass

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        if not self._docks_sized and not self.settings.window_state:
            self._docks_sized = True
            self._size_docks()

    def _size_docks(self) -> None:
        """First-run proportions (a saved window state replaces them): the frame gets
        most of the room, the score maps more than the tracker form, the confidence
        plot enough to read."""
        self.resizeDocks([self.tracker_dock], [480], Qt.Orientation.Horizontal)
        self.resizeDocks([self.timeline_dock], [230], Qt.Orientation.Vertical)
        form = self.panel.sizeHint().height() + 30  # + the dock's title bar
        self.resizeDocks([self.tracker_dock, self.score_dock], [form, 2000], Qt.Orientation.Vertical)
        self.resizeDocks([self.objects_dock], [220], Qt.Orientation.Horizontal)

    def closeEvent(self, event: QCloseEvent) -> None:
        if not self._confirm_unsaved():
            event.ignore()
            return
        # Cancel + quit + wait: no thread outlives the window, and the frames already
        # tracked are delivered to the session before it is closed.
        self.controller.shutdown()
        if self._finetune is not None:
            try:
                self._finetune.shutdown()  # a fine-tune stops at its next step, its checkpoint kept
            except RuntimeError:  # already closed and deleted: its thread was shut down then
                self._finetune = None
        self._repaint_timer.stop()
        self._dirty = False  # asked above
        self.close_document()
        self.settings.step = self.transport.big_step
        self.settings.blend = self.blend_action.isChecked()
        self.settings.trail = self.trail_action.isChecked()
        self.settings.geometry = bytes(self.saveGeometry().toHex()).decode()
        self.settings.window_state = bytes(self.saveState().toHex()).decode()
        if self.persist_settings:
            save_settings(self.settings)
        event.accept()
