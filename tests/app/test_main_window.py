"""The whole window on a synthetic clip: draw, track, stop, edit, undo, close, restore, command line."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QMimeData, QPoint, Qt, QTimer, QUrl
from PySide6.QtGui import QDropEvent, QImage
from PySide6.QtWidgets import QApplication, QMessageBox

from app.model.journal import _OPEN_HERE, Journal, find_recoverable, journal_path
from app.model.settings import AppSettings
from app.qt.gui import build_parser, cmd_gui
from app.qt.main_window import MainWindow
from app.qt.tracking_worker import TrackerInfo
from app.qt.widgets.tracker_panel import SETTLE_MS
from tests.media import CLIP_FRAMES
from trackers.trajectory import Origin
from trackers.types import Box, Frame, ScoreMap, TrackResult


class FakeTracker:
    """Stays on its box; optional delay, failure, low scores and score maps, all per update."""

    def __init__(
        self,
        delay: float = 0.0,
        fail_at: int | None = None,
        low: tuple[int, ...] = (),
        untrained: bool = False,
    ):
        self.name = "fake"
        self.delay, self.fail_at, self.low, self.untrained = delay, fail_at, low, untrained
        self.updates = 0
        self.box = Box(0, 0, 1, 1)

    def init(self, frame: Frame, box: Box) -> None:
        self.box, self.updates = box, 0

    def update(self, frame: Frame) -> TrackResult:
        self.updates += 1
        if self.fail_at is not None and self.updates == self.fail_at:
            raise RuntimeError("tracker blew up")
        time.sleep(self.delay)
        values = np.zeros((17, 17), np.float32)
        values[8, 8] = 1.0
        maps = (ScoreMap(values, self.box, "chosen"), ScoreMap(values * 0.5, self.box, "scale a"))
        score = 0.05 if self.updates in self.low else 0.9
        return TrackResult(self.box, score, maps, self.untrained)


@pytest.fixture
def open_window(qtbot, synthetic_clip):
    windows: list[MainWindow] = []

    def make(tracker: str = "identity", prompts: bool = False, **fake: object) -> MainWindow:
        made: list[FakeTracker] = []

        def factory(name: str, **kwargs: object):
            if name == "identity" or fake:
                made.append(FakeTracker(**fake))  # type: ignore[arg-type]
                return made[-1]
            from trackers.registry import create_tracker

            return create_tracker(name, **kwargs)

        window = MainWindow(
            AppSettings(tracker=tracker), make_tracker=factory, prompts=prompts, persist_settings=False
        )
        window.made = made  # type: ignore[attr-defined]
        qtbot.addWidget(window)
        window.show()
        qtbot.waitExposed(window)
        assert window.open_path(synthetic_clip[0]), window.last_error
        qtbot.wait(50)  # let the docks settle, so frame coordinates map to where the mouse goes
        windows.append(window)
        return window

    yield make
    for window in windows:
        window.close()
        assert not window.controller.worker_thread.isRunning()


def tracked(window: MainWindow) -> list[int]:
    return [i for i, e in window.document.session.trajectory.annotated() if e.origin is Origin.TRACKED]


def test_draw_a_box_with_the_mouse_track_and_read_the_trajectory(
    qtbot, open_window, synthetic_clip, mouse_drag
):
    window = open_window()
    truth = synthetic_clip[1][0]
    view = window.view
    x0, y0, x1, y1 = truth.corners()
    mouse_drag(view.viewport(), view.map_to_widget(x0, y0).toPoint(), view.map_to_widget(x1, y1).toPoint())
    entry = window.document.session.trajectory[0]
    assert entry.origin is Origin.KEYFRAME
    assert entry.box.as_array() == pytest.approx(truth.as_array(), abs=1.0)
    with qtbot.waitSignal(window.run_ended, timeout=10_000) as ended:
        qtbot.mouseClick(window.panel.forward_button, Qt.MouseButton.LeftButton)
    assert ended.args[1] == "completed"
    assert tracked(window) == list(range(1, CLIP_FRAMES))
    assert all(e.box == entry.box for _, e in window.document.session.trajectory.annotated())
    window.repaint_now()
    assert window.index == CLIP_FRAMES - 1  # the view followed the tracker
    assert window.score_view.shown[0].label == "chosen"
    assert "tracked" in window.view.info_text()


def test_keyboard_shortcuts_track_undo_and_redo(qtbot, open_window):
    window = open_window()
    window.activateWindow()  # shortcuts go to the active window only
    qtbot.waitUntil(lambda: QApplication.activeWindow() is window, timeout=2000)
    window.set_keyframe(0, Box(20, 30, 40, 30))
    with qtbot.waitSignal(window.run_ended, timeout=10_000):
        qtbot.keyClick(window.view, Qt.Key.Key_T)
    assert len(tracked(window)) == CLIP_FRAMES - 1
    qtbot.keyClick(window.view, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert tracked(window) == []  # the whole run is one undo step
    qtbot.keyClick(
        window.view, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier
    )
    assert len(tracked(window)) == CLIP_FRAMES - 1
    qtbot.keyClick(window.view, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    qtbot.keyClick(window.view, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert window.document.session.trajectory[0] is None
    # navigation keys and nudging
    window.go_to(0)  # the view had followed the run to its end
    window.set_keyframe(0, Box(20, 30, 40, 30))
    qtbot.keyClick(window.view, Qt.Key.Key_Right, Qt.KeyboardModifier.ControlModifier)
    assert window.document.session.trajectory[0].box == Box(21, 30, 40, 30)
    qtbot.keyClick(window.view, Qt.Key.Key_Right, Qt.KeyboardModifier.ShiftModifier)
    window.repaint_now()
    assert window.index == window.transport.big_step
    qtbot.keyClick(window.view, Qt.Key.Key_A)
    assert window.document.session.trajectory[window.index].absent


def test_every_action_has_a_shortcut_listed_in_the_help(qtbot, open_window):
    from app.qt.widgets.help_dialog import HelpDialog

    window = open_window()
    groups = window.shortcut_groups()
    actions = [a for _, group in groups for a in group]
    assert len(actions) > 40
    assert [a.text() for a in actions if not a.shortcut().toString()] == []
    keys = [s.toString() for a in actions for s in a.shortcuts()]
    assert len(keys) == len(set(keys)), "two actions share a key"
    dialog = HelpDialog(groups, window)
    assert len(dialog.rows) == len(actions)
    dialog.deleteLater()


def test_the_menus_are_the_action_table_and_follow_its_enabling_rules(qtbot, open_window):
    """app.qt.actions.ACTIONS is the one place the menus come from: every row sits in its
    menu, in order, with its keys, and is enabled exactly when its rule says."""
    from PySide6.QtGui import QAction

    from app.qt.actions import ACTIONS, Enabled

    window = open_window(delay=0.05)
    for name, menu in window.menu_actions.menus.items():
        rows = [spec for spec in ACTIONS if spec.menu == name]
        shown = [a for a in menu.actions() if a.menu() is None][: len(rows)]
        assert [a.text() for a in shown] == [spec.text for spec in rows]
        assert [tuple(k.toString() for k in a.shortcuts()) for a in shown] == [spec.keys for spec in rows]
    by_text = {a.text(): a for a in window.findChildren(QAction)}

    def enabled() -> dict[Enabled, set[bool]]:
        found: dict[Enabled, set[bool]] = {}
        for spec in ACTIONS:
            if spec.text not in ("Undo", "Redo"):  # their texts name the step
                found.setdefault(spec.enabled, set()).add(by_text[spec.text].isEnabled())
        return found

    on, off = {True}, {False}
    video = {Enabled.ALWAYS: on, Enabled.VIDEO: on, Enabled.IDLE: on, Enabled.RUNNING: off}
    assert enabled() == video
    assert not window.undo_action.isEnabled() and not window.redo_action.isEnabled()
    window.set_keyframe(0, Box(20, 30, 40, 30))
    assert window.undo_action.isEnabled() and window.undo_action.text().startswith("Undo ")
    with qtbot.waitSignal(window.run_started, timeout=5_000):
        window.track(+1)
    assert enabled() == {**video, Enabled.IDLE: off, Enabled.RUNNING: on}
    with qtbot.waitSignal(window.run_ended, timeout=5_000):
        window.stop()
    window.travel(window.annotator.undo)
    assert window.redo_action.isEnabled()
    window.close_document()
    assert enabled() == {Enabled.ALWAYS: on, Enabled.VIDEO: off, Enabled.IDLE: off, Enabled.RUNNING: off}
    assert not window.undo_action.isEnabled() and window.undo_action.text() == "Undo"


def test_closing_unsaved_work_asks_first_and_cancel_keeps_it(qtbot, open_window, monkeypatch, tmp_path):
    from PySide6.QtWidgets import QFileDialog

    window = open_window(prompts=True)
    window.set_keyframe(0, Box(20, 30, 40, 30))
    assert window.documents.dirty and window.windowTitle().endswith(" *")
    answers = [QMessageBox.StandardButton.Cancel, QMessageBox.StandardButton.Save]
    asked: list[str] = []
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: asked.append(a[1]) or answers.pop(0))
    project = tmp_path / "asked.siamtrack.json"
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: (str(project), ""))
    assert not window.close_document()  # Cancel: the work stays open
    assert window.document is not None and window.documents.dirty and not project.exists()
    assert window.close_document()  # Save: no project file yet, so "save as" asks where
    assert asked == ["Unsaved annotation", "Unsaved annotation"]
    assert window.document is None and project.is_file() and not window.documents.dirty
    assert window.windowTitle() == "siamtrack"


def test_stop_keeps_the_frames_tracked_so_far(qtbot, open_window):
    window = open_window(delay=0.03)
    window.set_keyframe(0, Box(20, 30, 40, 30))
    window.track(+1)
    qtbot.waitUntil(lambda: len(tracked(window)) >= 3, timeout=10_000)
    with qtbot.waitSignal(window.run_ended, timeout=5_000) as ended:
        qtbot.mouseClick(window.panel.stop_button, Qt.MouseButton.LeftButton)
    assert ended.args[1] == "cancelled"
    kept = tracked(window)
    assert 3 <= len(kept) < CLIP_FRAMES - 1
    assert kept == list(range(1, len(kept) + 1))
    assert window.panel.forward_button.isEnabled()


def test_editing_a_tracked_box_retracks_only_up_to_the_next_keyframe(qtbot, open_window, monkeypatch):
    window = open_window()
    session = window.document.session
    window.set_keyframe(0, Box(20, 30, 40, 30))
    window.set_keyframe(20, Box(100, 60, 30, 30))
    with qtbot.waitSignal(window.run_ended, timeout=10_000):
        window.track(+1)
    assert tracked(window) == list(range(1, 20))
    requests = []
    original = window.controller.start
    monkeypatch.setattr(
        window.controller,
        "start",
        lambda request, video: (requests.append(request), original(request, video)),
    )
    window.go_to(10)
    # a big move: the new track disagrees with the old one, so it runs to the keyframe
    with qtbot.waitSignal(window.run_ended, timeout=10_000) as ended:
        window.view.box_edited.emit(Box(60, 50, 40, 30))
    assert ended.args[1] == "completed"
    assert (requests[-1].start, requests[-1].stop, requests[-1].direction) == (10, 20, 1)
    assert session.trajectory[10].origin is Origin.KEYFRAME
    assert all(session.trajectory[i].box == Box(60, 50, 40, 30) for i in range(11, 20))
    assert session.trajectory[5].box == Box(20, 30, 40, 30)
    assert all(session.trajectory[i] is None for i in range(21, CLIP_FRAMES))
    # a small correction agrees with the old track: the run rejoins it and stops early
    window.go_to(5)
    with qtbot.waitSignal(window.run_ended, timeout=10_000) as ended:
        window.nudge(1, 0, 0, 0)
    assert ended.args[1] == "rejoined"
    assert session.trajectory[9].box == Box(20, 30, 40, 30)  # the old track past the rejoin stays


def test_one_drag_correction_is_one_undo_step_named_in_the_menu(qtbot, open_window):
    """Issue 17 item 6: the first Ctrl+Z used to undo the re-track and leave the keyframe."""
    window = open_window()
    session = window.document.session
    window.set_keyframe(0, Box(20, 30, 40, 30))
    with qtbot.waitSignal(window.run_ended, timeout=10_000):
        window.track(+1)
    before = session.trajectory
    window.go_to(10)
    with qtbot.waitSignal(window.run_ended, timeout=10_000):
        window.view.box_edited.emit(Box(60, 50, 40, 30))
    assert session.trajectory[12].box == Box(60, 50, 40, 30)
    assert window.undo_action.text() == "Undo correction at frame 10"
    window.undo_action.trigger()
    assert session.trajectory == before
    assert window.redo_action.text() == "Redo correction at frame 10"
    assert window.panel.status_label.text() == ""  # "Tracking finished" was about the undone run


def test_track_on_a_tracked_frame_says_it_makes_a_keyframe(qtbot, open_window):
    """Issue 17 item 8: T on a tracked frame silently made it a keyframe."""
    window = open_window()
    session = window.document.session
    window.set_keyframe(0, Box(20, 30, 40, 30))
    with qtbot.waitSignal(window.run_ended, timeout=10_000):
        window.track(+1)
    before = session.trajectory
    window.go_to(10)
    with qtbot.waitSignal(window.run_ended, timeout=10_000):
        window.track(+1)
    assert "keyframe" in window.statusBar().currentMessage()
    assert session.trajectory[10].origin is Origin.KEYFRAME
    window.undo_action.trigger()  # one step takes back the keyframe and the run
    assert session.trajectory == before


def test_a_tracker_error_becomes_a_message_and_keeps_the_frames(qtbot, open_window):
    window = open_window(fail_at=6)
    window.set_keyframe(0, Box(20, 30, 40, 30))
    with qtbot.waitSignal(window.run_ended, timeout=10_000) as ended:
        window.track(+1)
    assert ended.args[1] == "failed"
    assert "tracker blew up" in window.last_error
    assert tracked(window) == [1, 2, 3, 4, 5]
    assert "tracker blew up" in window.panel.status_label.text()
    # The race of issue 17 item 7, made certain: the tracker's "ready" (a probe queued
    # behind the run, or the run's own) arrives after the failure and must not hide it.
    window.controller.tracker_ready.emit(TrackerInfo("identity", "cpu", False))
    qtbot.wait(SETTLE_MS + 200)  # and whatever the settings' own probe answers
    assert "tracker blew up" in window.panel.status_label.text()


def test_a_retrack_after_an_edit_says_tracking_not_ready(qtbot, open_window):
    window = open_window(delay=0.02)
    window.set_keyframe(0, Box(20, 30, 40, 30))
    with qtbot.waitSignal(window.run_ended, timeout=10_000):
        window.track(+1)
    window.go_to(10)
    with qtbot.waitSignal(window.run_started, timeout=5_000):
        window.view.box_edited.emit(Box(60, 50, 40, 30))
    window.controller.tracker_ready.emit(TrackerInfo("identity", "cpu", False))
    assert window.panel.status_label.text().startswith("tracking")
    with qtbot.waitSignal(window.run_ended, timeout=10_000):
        pass


def test_closing_during_a_run_stops_the_thread_and_keeps_the_frames(qtbot, open_window):
    window = open_window(delay=0.03)
    window.set_keyframe(0, Box(20, 30, 40, 30))
    seen: dict[str, object] = {}
    window.run_ended.connect(lambda rid, reason: seen.update(reason=reason, count=len(tracked(window))))
    window.track(+1)
    qtbot.waitUntil(lambda: len(tracked(window)) >= 2, timeout=10_000)
    updates_before_close = window.made[-1].updates
    window.close()
    assert not window.controller.worker_thread.isRunning()
    assert seen["reason"] == "cancelled"
    assert seen["count"] >= updates_before_close  # nothing tracked before the close was dropped
    assert window.document is None


def test_low_confidence_suggestions_can_be_visited_confirmed_and_rejected(qtbot, open_window):
    window = open_window(low=(7, 8, 15))
    window.set_keyframe(0, Box(20, 30, 40, 30))
    with qtbot.waitSignal(window.run_ended, timeout=10_000):
        window.track(+1)
    window.repaint_now()
    assert window.suggestions() == [7, 8, 15]
    window.go_to(0)
    window.jump_suggestion(1)
    assert window.index == 7
    window.confirm_suggestion()  # absent on 7, then on to the next
    assert window.document.session.trajectory[7].absent
    assert window.index == 8
    window.reject_suggestion()
    assert window.suggestions() == [15] and window.index == 15
    window.plot.frame_requested.emit(3)  # a click on the plot
    window.repaint_now()
    assert window.index == 3


def test_the_timeline_holds_calibrated_confidence_and_the_overlay_the_raw_score(qtbot, open_window):
    """Issue 17 item 4: a fake tracker registered as siamfc reports raw 0.9; the trajectory
    and timeline hold siamfc's calibrated confidence, the overlay names both."""
    from trackers.confidence import confidence

    window = open_window(tracker="siamfc", low=(7,))
    window.set_keyframe(0, Box(20, 30, 40, 30))
    with qtbot.waitSignal(window.run_ended, timeout=10_000):
        window.track(+1)
    session = window.document.session
    assert session.trajectory[3].score == pytest.approx(confidence("siamfc", 0.9))
    assert session.trajectory[7].score == pytest.approx(confidence("siamfc", 0.05))
    window.go_to(3)
    window.repaint_now()
    info = window.view.info_text()
    assert f"confidence {confidence('siamfc', 0.9):.2f}" in info and "raw siamfc score 0.9" in info


def test_a_rejected_suggestion_loses_its_circle(qtbot, open_window):
    """Issue 17 item 5."""
    window = open_window(low=(7, 8))
    window.set_keyframe(0, Box(20, 30, 40, 30))
    with qtbot.waitSignal(window.run_ended, timeout=10_000):
        window.track(+1)
    window.repaint_now()
    assert list(window.plot._suggested.data["x"]) == [7, 8]
    window.go_to(7)
    window.reject_suggestion()
    window.repaint_now()
    assert list(window.plot._suggested.data["x"]) == [8]


def test_an_undone_runs_score_map_is_not_shown(qtbot, open_window):
    """Issue 17 item 10: after undo the dock kept the undone run's map."""
    window = open_window()
    window.set_keyframe(0, Box(20, 30, 40, 30))
    with qtbot.waitSignal(window.run_ended, timeout=10_000):
        window.track(+1)
    window.go_to(12)
    with qtbot.waitSignal(window.run_ended, timeout=10_000):
        window.view.box_edited.emit(Box(60, 50, 40, 30))  # re-tracks 13.. with new boxes
    window.go_to(14)
    window.repaint_now()
    assert window.score_view.shown
    window.undo_action.trigger()  # back to the first run's box on 14, whose maps were replaced
    window.repaint_now()
    assert window.score_view.shown == ()


def test_blending_shows_the_score_map_over_the_frame(qtbot, open_window):
    window = open_window()
    window.set_keyframe(0, Box(20, 30, 40, 30))
    with qtbot.waitSignal(window.run_ended, timeout=10_000):
        window.track(+1)
    window.blend_action.trigger()
    window.repaint_now()
    assert window.view.overlay_visible()
    assert window.score_view.blend_box.isChecked()


def test_untrained_weights_are_flagged_in_the_panel(qtbot, open_window):
    window = open_window(tracker="siamfc", untrained=True)
    qtbot.waitUntil(lambda: window.panel.untrained_shown, timeout=5_000)


def os_threads() -> int:
    return len(os.listdir("/proc/self/task"))


def test_one_hundred_start_stop_cycles_leave_one_thread(qtbot, open_window):
    window = open_window(delay=0.002)
    window.document.cache.wait()  # the frame index's thread is done before counting
    window.set_keyframe(0, Box(20, 30, 40, 30))

    def cycle() -> None:
        window.go_to(0)
        with qtbot.waitSignal(window.run_ended, timeout=10_000):
            assert window.track(+1)
            window.stop()

    cycle()  # the worker thread starts
    python_threads, native_threads = threading.active_count(), os_threads()
    for _ in range(100):
        cycle()
    # Every thread that ever ran Python code counts here (a foreign thread stays
    # registered once it has called into Python), so a new thread per run shows.
    assert threading.active_count() <= python_threads
    assert window.controller.worker_thread.isRunning()  # the one worker thread, reused
    # Natively, FFmpeg's decoder threads and OpenCV's pool come and go with the
    # runs; a leak per run would add a hundred.
    qtbot.waitUntil(lambda: os_threads() <= native_threads + 10, timeout=3000)


def test_save_reopen_and_journal_lifecycle(qtbot, open_window, tmp_path, synthetic_clip):
    window = open_window()
    window.set_keyframe(3, Box(20, 30, 40, 30))
    journal = journal_path(window.document.session.content_hash)
    assert journal.exists()
    project = tmp_path / "clip.siamtrack.json"
    assert window.documents.save_to(project)
    assert not window.windowTitle().endswith("*")
    window.close_document()
    assert not journal.exists()  # a clean close leaves nothing to recover
    assert window.open_path(project)
    assert window.document.session.trajectory[3].box == Box(20, 30, 40, 30)
    assert window.document.project_path == project


def test_drop_a_file_to_open_it(qtbot, open_window, synthetic_clip):
    window = open_window()
    window.set_keyframe(0, Box(20, 30, 40, 30))
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(synthetic_clip[0]))])
    event = QDropEvent(
        QPoint(10, 10).toPointF(),
        Qt.DropAction.CopyAction,
        mime,
        Qt.MouseButton.NoButton,
        Qt.KeyboardModifier.NoModifier,
    )
    window.dropEvent(event)
    assert window.document is not None and window.document.session.trajectory[0] is None  # reopened fresh
    assert window.settings.recent[0] == str(Path(synthetic_clip[0]).resolve())


def test_export_a_format_and_a_training_set(qtbot, open_window, tmp_path):
    from app.qt.widgets.export_dialog import ExportDialog
    from trackers.formats import read_trajectory

    window = open_window()
    window.set_keyframe(0, Box(20, 30, 40, 30))
    with qtbot.waitSignal(window.run_ended, timeout=10_000):
        window.track(+1)
    dialog = ExportDialog(window.document.session.trajectory, tmp_path / "clip", window)
    dialog.format_box.setCurrentIndex(dialog.format_box.findData("otb"))
    assert dialog.path == tmp_path / "clip_otb.txt"
    assert "score" in dialog.loss_label.text()  # OTB cannot hold the tracker's scores
    dialog.write()
    written, _ = read_trajectory(dialog.path, "otb")
    assert written[5].box == Box(20, 30, 40, 30)
    job = window.export_dataset(tmp_path / "dataset")
    with qtbot.waitSignal(job.finished, timeout=20_000) as done:
        pass
    sequence = Path(done.args[0])
    assert (sequence / "groundtruth.txt").exists() and len(list(sequence.glob("*.jpg"))) == CLIP_FRAMES


def test_an_image_folder_opens_like_a_video(qtbot, open_window, tmp_path):
    import cv2

    from resources.demo_clip import render_sequence

    frames, _ = render_sequence(n_frames=4, size=(64, 48), seed=1)
    for i, frame in enumerate(frames):
        cv2.imwrite(str(tmp_path / f"{i + 1:04d}.png"), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    window = open_window()
    assert window.open_path(tmp_path), window.last_error
    assert window.document.frame_count == 4 and window.transport.label.text().startswith("frame 0 / 3")


def _crash(journal: Journal) -> None:
    """Leave ``journal`` as a killed process would: flushed, unlocked, not deleted."""
    with journal._cond:
        journal._closing = True
        journal._cond.notify_all()
    journal._thread.join()
    journal._write_pending()
    journal._file.close()
    _OPEN_HERE.discard(journal.path)


def test_work_left_by_a_crash_is_offered_and_restored(qtbot, open_window):
    window = open_window(prompts=True)
    document = window.document
    document.session.set_keyframe(4, Box(20, 30, 40, 30))
    _crash(document.journal)
    document.journal = None
    window.document.session.remove_listener(window._on_session_changed)
    document.cache.close()
    document.source.close()
    window.document = None
    assert find_recoverable() != []

    def click_restore() -> None:
        box = QApplication.activeModalWidget()
        if not isinstance(box, QMessageBox):
            QTimer.singleShot(20, click_restore)
            return
        [restore] = [b for b in box.buttons() if b.text() == "Restore"]
        restore.click()

    QTimer.singleShot(0, click_restore)
    window.offer_restore()
    assert window.document is not None
    assert window.document.session.trajectory[4].box == Box(20, 30, 40, 30)
    assert find_recoverable() == []
    window.documents.dirty = False  # no save prompt when the fixture closes it


def test_cmd_gui_tracks_takes_a_screenshot_and_exits(qtbot, synthetic_clip, tmp_path):
    clip, boxes = synthetic_clip
    box = boxes[0]
    shot = tmp_path / "shot.png"
    args = build_parser().parse_args(
        [
            str(clip),
            "--box",
            f"{box.x:g},{box.y:g},{box.w:g},{box.h:g}",
            "--track",
            "--tracker",
            "identity",
            "--screenshot",
            str(shot),
            "--exit-when-done",
        ]
    )
    assert cmd_gui(args) == 0
    image = QImage(str(shot))
    assert not image.isNull() and image.width() > 600
    assert find_recoverable() == []  # an unattended run leaves no journal behind


def test_cmd_gui_rejects_a_missing_video(qtbot, tmp_path, capsys):
    args = build_parser().parse_args([str(tmp_path / "nope.mp4"), "--exit-when-done"])
    assert cmd_gui(args) == 2
    assert "nope.mp4" in capsys.readouterr().err


def test_track_both_ways_between_keyframes_fuses_by_score(qtbot, open_window):
    """Forward from one keyframe, backward from the next, the higher score kept per frame."""
    # each run scores 0.9 on its first four updates and 0.05 after: forward wins frames 1-4
    # (and the tie on 5), backward wins 6-9
    window = open_window(low=(5, 6, 7, 8, 9))
    session = window.document.session
    session.set_keyframe(0, Box(10, 10, 20, 20))
    session.set_keyframe(10, Box(50, 50, 20, 20))
    with qtbot.waitSignal(window.annotator.run_ended, timeout=20000) as ended:
        assert window.annotator.track_between(5)
    assert ended.args[1] == "completed"
    trajectory = session.trajectory
    assert all(trajectory[i].origin is Origin.TRACKED for i in range(1, 10))
    assert [trajectory[i].box for i in (1, 4, 5)] == [Box(10, 10, 20, 20)] * 3
    assert [trajectory[i].box for i in (6, 9)] == [Box(50, 50, 20, 20)] * 2
    assert session.undo()  # the fusion is one undo step
    assert all(session.trajectory[i] is None for i in range(1, 10))
    # outside two keyframes there is nothing to do, and the user is told why
    with qtbot.waitSignal(window.annotator.message, timeout=2000):
        assert not window.annotator.track_between(12)


def test_absent_range_up_to_the_next_keyframe_is_one_undo_step(qtbot, open_window):
    window = open_window()
    session = window.document.session
    session.set_keyframe(0, Box(10, 10, 20, 20))
    session.set_keyframe(12, Box(40, 40, 20, 20))
    window.annotator.mark_absent_to_next_keyframe(4)
    trajectory = session.trajectory
    assert all(trajectory[i].box is None for i in range(4, 12))
    assert trajectory[3] is None and trajectory[12].box == Box(40, 40, 20, 20)
    assert session.undo()
    assert all(session.trajectory[i] is None for i in range(4, 12))


def test_the_empty_window_says_what_to_do_and_disables_what_cannot_work(qtbot, synthetic_clip):
    """Issue 17 item 2: blank canvas, enabled Track buttons, an axis from 0.1 to 0.9."""
    window = MainWindow(AppSettings(tracker="identity"), prompts=False, persist_settings=False)
    qtbot.addWidget(window)
    window.show()
    window.repaint_now()
    assert "Open a video" in window.view.hint_text()
    assert not window.panel.forward_button.isEnabled() and not window.forward_action.isEnabled()
    assert not window.close_action.isEnabled()
    assert "appears here" in window.plot.empty_text
    assert window.plot.threshold is None
    # a finished run's line from the last video is not carried over, and a hint says what next
    window.panel.set_status("Tracking finished")
    assert window.open_path(synthetic_clip[0])
    window.repaint_now()
    assert window.panel.status_label.text() == ""
    assert "Drag a box" in window.view.hint_text()
    assert window.panel.forward_button.isEnabled() and window.plot.empty_text == ""
    window.set_keyframe(0, Box(20, 30, 40, 30))
    window.repaint_now()
    assert window.view.hint_text() == ""
    window.close_document()
    assert "Open a video" in window.view.hint_text() and "appears here" in window.plot.empty_text
    window.close()


def test_clear_the_frame_cache_keeps_the_open_video(qtbot, open_window):
    """Issue 17 item 14: a "clear cache" action, and the cap comes from the settings."""
    from app.model.document import VideoDocument
    from app.model.frame_cache import cache_entries, default_cache_dir

    window = open_window()
    assert VideoDocument.cache_limit_bytes == AppSettings().cache_limit_mb * 1024**2
    assert window.document.cache.limit_bytes == VideoDocument.cache_limit_bytes
    assert window.document.cache.wait(20)
    other = default_cache_dir() / "some-other-video"
    other.mkdir(parents=True)
    (other / "frames.pack").write_bytes(b"\0" * 5000)
    assert window.clear_frame_cache() == 5000
    assert [e[2] for e in cache_entries()] == [window.document.cache.dir]
    assert "Frame cache cleared" in window.statusBar().currentMessage()


def test_save_as_adds_the_project_to_open_recent(qtbot, open_window, tmp_path):
    """Issue 17 item 12."""
    window = open_window()
    window.set_keyframe(0, Box(20, 30, 40, 30))
    assert window.documents.save_to(tmp_path / "mine.siamtrack.json")
    assert window.settings.recent[0] == str((tmp_path / "mine.siamtrack.json").resolve())
    assert "mine.siamtrack.json" in window.menu_actions.recent_actions[0].text()


def test_opening_a_video_that_has_a_project_offers_it(
    qtbot, open_window, tmp_path, synthetic_clip, monkeypatch
):
    """Issue 17 item 12: it used to give an empty annotation with no hint."""
    window = open_window()
    window.set_keyframe(0, Box(20, 30, 40, 30))
    project = tmp_path / "elsewhere" / "work.siamtrack.json"
    project.parent.mkdir()
    assert window.documents.save_to(project)  # not beside the video: found through the recent list
    window.close_document()
    assert window.open_path(synthetic_clip[0])
    assert str(project) in window.statusBar().currentMessage()  # no prompts: a hint
    assert window.document.project_path is None
    window.prompts = True
    window.documents.dirty = False
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: QMessageBox.StandardButton.Open)
    window.close_document()
    assert window.open_path(synthetic_clip[0])
    assert window.document.project_path == project
    assert window.document.session.trajectory[0].box == Box(20, 30, 40, 30)
    window.prompts = False


def test_extra_height_goes_to_the_score_maps_not_the_tracker_form(qtbot, open_window):
    """Issue 17 item 11: after a resize the extra height went to the mostly empty Tracker panel."""
    window = open_window()
    window.resize(1400, 800)
    qtbot.wait(100)
    form, maps = window.tracker_dock.height(), window.score_dock.height()
    window.resize(1400, 1100)
    qtbot.wait(100)
    assert window.tracker_dock.height() <= form + 5
    assert window.score_dock.height() >= maps + 250
