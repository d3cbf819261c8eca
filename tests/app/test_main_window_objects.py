"""The window with several objects: the scripted walkthrough of issue 21.

Add a second object, track both at once, correct one without touching the other,
select by clicking a box, the lanes, the object list, undo, and save and reopen.
"""

from __future__ import annotations

from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QColor

from app.model.session import AnnotatedObject
from tests.media import CLIP_FRAMES
from trackers.trajectory import Origin
from trackers.types import Box

from .test_main_window import open_window  # noqa: F401 - the fixture


def _tracked(trajectory) -> list[int]:
    return [i for i, e in trajectory.annotated() if e.origin is Origin.TRACKED]


def test_a_second_object_tracked_together_and_corrected_alone(qtbot, open_window, tmp_path, mouse_drag):  # noqa: F811
    window = open_window()
    session = window.document.session
    window.set_keyframe(0, Box(20, 30, 30, 30))
    # a new object: the next box drawn is its first keyframe
    window.object_list.add_button.click()
    second = session.selected_id
    assert second == 2 and window.object_list.list.count() == 2
    view = window.view
    mouse_drag(view.viewport(), view.map_to_widget(90, 40).toPoint(), view.map_to_widget(120, 70).toPoint())
    assert session.trajectory_of(second)[0].origin is Origin.KEYFRAME
    assert session.trajectory_of(1)[0].box == Box(20, 30, 30, 30)  # the first object is untouched
    window.repaint_now()
    assert [o[0] for o in view.others()] == [1]  # the other object's box is drawn, in its colour

    # track all objects forward: one decode per frame, one undo step
    with qtbot.waitSignal(window.run_ended, timeout=10_000) as ended:
        window.track_all_action.trigger()
    assert ended.args[1] == "completed"
    assert _tracked(session.trajectory_of(1)) == list(range(1, CLIP_FRAMES))
    assert _tracked(session.trajectory_of(second)) == list(range(1, CLIP_FRAMES))
    first_before = session.trajectory_of(1)

    # correct the second object on frame 10: only it is re-tracked
    window.go_to(10)
    with qtbot.waitSignal(window.run_ended, timeout=10_000):
        window.set_keyframe(10, Box(95, 45, 30, 30))
    assert session.trajectory_of(second)[10].origin is Origin.KEYFRAME
    assert session.trajectory_of(second)[20].box == Box(95, 45, 30, 30)
    assert session.trajectory_of(1) == first_before

    # clicking the first object's box selects it
    window.repaint_now()
    point = view.map_to_widget(35, 45).toPoint()
    qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, pos=point)
    qtbot.waitUntil(lambda: session.selected_id == 1, timeout=2000)
    assert window.object_list.list.currentRow() == 0

    # the lanes: one per object, the selected one marked
    window.repaint_now()
    assert [lane[0] for lane in window.lanes.lanes()] == [1, second]

    # relabel and recolour through the list; undo takes back one action at a time
    window.object_list.colour_dialog = lambda current: QColor("#00ff00")
    window.object_list.colour_button.click()
    assert session.object(1).colour == "#00ff00"
    window.object_list.label_box.setCurrentText("runner")
    window.object_list.label_box.lineEdit().returnPressed.emit()
    assert session.object(1).label == "runner" and "runner" in session.labels
    window.annotator.undo()
    assert session.object(1).label == "object" and session.object(1).colour == "#00ff00"
    window.annotator.redo()

    # next / previous object keys, and N visits suggestions of any object
    window.annotator.select_next_object(1)
    assert session.selected_id == second

    # save and reopen: every object, exactly
    objects: tuple[AnnotatedObject, ...] = session.objects
    project = tmp_path / "two.siamtrack.json"
    assert window.documents.save_to(project)
    window.close_document()
    assert window.open_path(project)
    assert window.document.session.objects == objects
    assert window.object_list.list.count() == 2


def test_cmd_gui_with_two_boxes_tracks_both_objects(qtbot, synthetic_clip, tmp_path, monkeypatch):
    from PySide6.QtGui import QImage

    from app.qt.gui import build_parser, cmd_gui
    from app.qt.main_window import MainWindow

    clip, boxes = synthetic_clip
    box = boxes[0]
    seen: list[tuple] = []
    original_close = MainWindow.close

    def close(self):  # what the window held when the run closed it
        if self.document is not None:
            seen.append(self.document.session.objects)
        return original_close(self)

    monkeypatch.setattr(MainWindow, "close", close)
    shot = tmp_path / "shot.png"
    args = build_parser().parse_args(
        [
            str(clip),
            "--box",
            f"{box.x:g},{box.y:g},{box.w:g},{box.h:g}",
            "--box",
            "100,10,30,30",
            "--track",
            "--tracker",
            "identity",
            "--screenshot",
            str(shot),
            "--exit-when-done",
        ]
    )
    assert cmd_gui(args) == 0
    assert not QImage(str(shot)).isNull()
    (objects,) = seen
    assert [o.id for o in objects] == [1, 2]
    assert all(_tracked(o.trajectory) == list(range(1, CLIP_FRAMES)) for o in objects)
    assert objects[1].trajectory[CLIP_FRAMES - 1].box == Box(100, 10, 30, 30)


def test_export_all_objects_and_read_them_back(qtbot, open_window, tmp_path):  # noqa: F811
    import pytest

    pytest.importorskip("trackers.formats.tracks", reason="the formats' several-object API is not merged")
    from trackers.formats import read_tracks

    window = open_window()
    session = window.document.session
    window.set_keyframe(0, Box(20, 30, 30, 30))
    session.add_object("car", box=(0, Box(90, 40, 30, 30)))
    session.add_object("dog", box=(2, Box(10, 10, 20, 20)))
    out = tmp_path / "all.xml"
    window.export_objects(out, "cvat")
    tracks = read_tracks(out, "cvat", frame_count=session.frame_count, frame_size=session.frame_size)
    assert [(t.id, t.label) for t in tracks] == [(1, "object"), (2, "car"), (3, "dog")]
    assert tracks[2].trajectory[2].box == Box(10, 10, 20, 20)


def test_an_object_with_its_own_tracker_keeps_it(qtbot, open_window):  # noqa: F811
    from app.model.session import TrackerSettings

    window = open_window()
    session = window.document.session
    window.set_keyframe(0, Box(20, 30, 30, 30))
    window.object_list.own_settings_box.setChecked(True)  # object 1 keeps the panel's tracker
    assert session.object(1).settings == window.panel.settings()
    window.panel.set_settings(TrackerSettings(tracker="siamfc-3s"))
    with qtbot.waitSignal(window.run_ended, timeout=10_000) as ended:
        window.track(+1)
    assert ended.args[1] == "completed"
    assert session.trajectory[5].score == 0.9  # the test double's score: not siamfc-3s
    window.object_list.own_settings_box.setChecked(False)
    assert session.object(1).settings is None


def test_n_visits_the_suggestions_of_every_object_and_selects_their_object(qtbot, open_window):  # noqa: F811
    from trackers.trajectory import Entry

    window = open_window()
    session = window.document.session
    window.set_keyframe(0, Box(20, 30, 30, 30))
    b = session.add_object("car", box=(0, Box(90, 40, 30, 30)), select=False)
    sure, unsure = 0.9, 0.01
    session.apply(
        {i: Entry(Box(20, 30, 30, 30), Origin.TRACKED, unsure if i == 7 else sure) for i in range(1, 12)}
    )
    session.apply(
        {i: Entry(Box(90, 40, 30, 30), Origin.TRACKED, unsure if i == 4 else sure) for i in range(1, 12)},
        object_id=b,
    )
    window.plot.set_threshold(0.5)
    window.go_to(0)
    window.jump_suggestion(1)
    window.repaint_now()
    assert window.index == 4 and session.selected_id == b  # object 2's suggestion comes first
    window.jump_suggestion(1)
    assert window.index == 7 and session.selected_id == 1
    lanes = {lane[0]: lane[3] for lane in window.lanes.lanes()}
    assert lanes == {1: [7], b: [4]}


def test_alt_t_tracks_all_objects_and_no_menu_takes_an_action_key(qtbot, open_window, monkeypatch):  # noqa: F811
    """Alt+T was the "&Track" (and "&Tools") menu's key as well: Qt then runs neither
    ("Ambiguous shortcut overload"), and the walkthrough's Alt+T tracked nothing."""
    from PySide6.QtGui import QKeySequence

    window = open_window()
    menu_keys = {
        QKeySequence.mnemonic(menu.title()).toString()
        for menu in (action.menu() for action in window.menuBar().actions())
        if menu is not None
    }
    action_keys = {
        sequence.toString() for action in window.findChildren(type(window.undo_action))
        for sequence in action.shortcuts()
    }
    assert "Alt+T" in action_keys and "Alt+T" not in menu_keys
    assert not menu_keys & action_keys, menu_keys & action_keys
    calls = []
    monkeypatch.setattr(window.annotator, "track_all", lambda *args: calls.append(args))
    window.activateWindow()
    qtbot.keyClick(window, Qt.Key.Key_T, Qt.KeyboardModifier.AltModifier)
    assert calls == [(window.index, 1)]


def test_enter_in_the_label_or_name_field_gives_the_keys_back_to_the_window(qtbot, open_window, monkeypatch):  # noqa: F811
    """After relabelling in the Objects dock, T must track and arrows step frames; the field
    kept the focus and took them as text (the walkthrough's Home, Shift+Right went nowhere)."""
    window = open_window()
    window.set_keyframe(0, Box(20, 30, 30, 30))
    window.activateWindow()
    qtbot.waitUntil(lambda: window.isActiveWindow(), timeout=2000)
    tracked = []
    monkeypatch.setattr(window.annotator, "track", lambda index, direction: tracked.append(index) or True)
    objects = window.object_list
    for field, typed in ((objects.label_box.lineEdit(), "car"), (objects.name_edit, "red")):
        field.setFocus()
        qtbot.waitUntil(field.hasFocus, timeout=2000)
        field.selectAll()
        qtbot.keyClicks(field, typed)
        qtbot.keyClick(field, Qt.Key.Key_Return)
        assert not field.hasFocus() and window.view.hasFocus()
        qtbot.keyClick(window.view, Qt.Key.Key_T)
        assert tracked[-1] == 0 and field.text() == typed
    obj = window.document.session.object()
    assert (obj.label, obj.name) == ("car", "red")
    assert len(tracked) == 2


def test_a_lane_tick_sits_under_its_frame_on_the_plot_and_a_click_there_goes_to_it(qtbot, open_window):  # noqa: F811
    """The lanes spanned the whole width while the plot's frames start after its y axis:
    a tick was frames away from its point on the plot, and a click went to the wrong frame."""
    window = open_window()
    window.set_keyframe(0, Box(20, 30, 30, 30))
    window.annotator.new_object()
    window.repaint_now()
    plot, lanes = window.plot, window.lanes
    for frame in (3, 15, 27):
        scene = plot.getViewBox().mapViewToScene(QPointF(frame, 0.5))
        x = lanes.mapFromGlobal(plot.mapToGlobal(plot.mapFromScene(scene))).x()
        qtbot.mouseClick(lanes, Qt.MouseButton.LeftButton, pos=QPoint(x, 3))
        assert window.index == frame
        assert abs(lanes._x(frame) - x) <= 1  # where its tick is drawn
