"""The widgets on their own: what they draw and what they emit."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PySide6.QtCore import QPointF, Qt

from app.model.session import TrackerSettings
from app.model.settings import AppSettings, load_settings, save_settings
from app.qt.widgets.frame_view import ORIGIN_COLOURS, FrameView
from app.qt.widgets.help_dialog import HelpDialog
from app.qt.widgets.score_map_view import REMEMBERED_FRAMES, ScoreMapView, peak
from app.qt.widgets.timeline import DEFAULT_THRESHOLD, ConfidencePlot, Transport, format_time, spans
from app.qt.widgets.tracker_panel import TrackerPanel
from trackers.registry import TRACKERS
from trackers.trajectory import Entry, Origin
from trackers.types import Box, ScoreMap

FRAME = np.zeros((120, 160, 3), np.uint8)


@pytest.fixture
def view(qtbot):
    widget = FrameView()
    qtbot.addWidget(widget)
    widget.resize(400, 300)
    widget.show()
    qtbot.waitExposed(widget)
    widget.set_frame(FRAME)
    return widget


def test_dragging_on_the_frame_draws_a_box_on_whole_pixels(qtbot, view, mouse_drag):
    start, end = view.map_to_widget(20, 30).toPoint(), view.map_to_widget(60, 70).toPoint()
    with qtbot.waitSignal(view.box_drawn, timeout=2000) as drawn:
        mouse_drag(view.viewport(), start, end)
    assert drawn.args == [Box(20, 30, 40, 40)]


def test_a_click_is_not_a_box(qtbot, view):
    drawn: list[Box] = []
    view.box_drawn.connect(drawn.append)
    qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, pos=view.map_to_widget(50, 50).toPoint())
    assert drawn == []


def test_a_box_from_the_model_is_shown_in_its_origin_colour_and_is_no_edit(qtbot, view):
    edited: list[Box] = []
    view.box_edited.connect(edited.append)
    view.set_entry(Entry(Box(10, 20, 30, 40), Origin.TRACKED, 0.5))
    assert view.shown_box() == Box(10, 20, 30, 40)
    assert view._roi.pen.color().name() == ORIGIN_COLOURS[Origin.TRACKED]
    view.set_entry(Entry(None, Origin.KEYFRAME))
    assert view.shown_box() is None
    assert edited == []


def test_dragging_the_box_moves_it(qtbot, view, mouse_drag):
    view.set_entry(Entry(Box(40, 40, 40, 30), Origin.TRACKED, 0.5))
    start, end = view.map_to_widget(60, 55).toPoint(), view.map_to_widget(80, 65).toPoint()
    with qtbot.waitSignal(view.box_edited, timeout=2000) as edited:
        mouse_drag(view.viewport(), start, end)
    box = edited.args[0]
    assert (box.w, box.h) == (40, 30)
    assert box.x == pytest.approx(60, abs=1) and box.y == pytest.approx(50, abs=1)


def test_the_chosen_score_map_blends_over_its_region(qtbot, view):
    score_map = ScoreMap(np.arange(16, dtype=np.float32).reshape(4, 4), Box(10, 20, 40, 30), "m")
    view.set_score_map(score_map)
    assert not view.overlay_visible()
    view.set_blend(True)
    assert view.overlay_visible()
    rect = view._overlay.mapRectToParent(view._overlay.boundingRect())
    assert (rect.x(), rect.y(), rect.width(), rect.height()) == pytest.approx((10, 20, 40, 30))
    view.set_score_map(None)
    assert not view.overlay_visible()


def maps(count: int) -> tuple[ScoreMap, ...]:
    values = np.zeros((17, 17), np.float32)
    values[3, 12] = 2.0
    first = ScoreMap(values, Box(0, 0, 17, 17), "chosen")
    return (first,) + tuple(ScoreMap(values * i, Box(0, 0, 17, 17), f"scale {i}") for i in range(1, count))


def test_score_map_view_draws_the_chosen_map_large_and_the_rest_as_labelled_tiles(qtbot):
    widget = ScoreMapView()
    qtbot.addWidget(widget)
    widget.show_maps(maps(4))
    assert widget.tile_labels() == ["1", "2", "3"]  # "scale" once, in the title
    assert "per scale" in widget.title
    assert widget._main_peak.data["x"][0] == 12.5 and widget._main_peak.data["y"][0] == 3.5
    assert widget._colour_bar.levels() == pytest.approx((0.0, 2.0))
    widget.show_maps(maps(1))
    assert widget.tile_labels() == []
    widget.show_maps(())
    assert not widget._empty.isHidden()


def test_score_map_view_fits_a_view_again_only_when_its_map_changes_shape(qtbot, monkeypatch):
    widget = ScoreMapView()
    qtbot.addWidget(widget)
    fits = []
    view_class = type(widget._main_view)
    original = view_class.autoRange
    def counted(view, *args, **kwargs):
        fits.append(view)
        return original(view, *args, **kwargs)

    monkeypatch.setattr(view_class, "autoRange", counted)
    box = Box(0, 0, 10, 10)

    def maps_of(side: int, offset: float = 0.0) -> tuple[ScoreMap, ...]:
        rng = np.random.default_rng(side)
        return tuple(ScoreMap(rng.random((side, side), np.float32) + offset, box, f"s {i}") for i in range(4))

    widget.show_maps(maps_of(17))
    assert len(fits) == 4  # the main view and three tiles, fitted once
    widget.show_maps(maps_of(17, 1.0))
    assert len(fits) == 4  # same shapes: no relayout
    widget.show_maps(maps_of(25))
    assert len(fits) == 8  # a new shape (siamfc's 25x25 after siamfc-3s's 17x17) fits again
    (x0, x1), (y0, y1) = widget._main_view.viewRange()
    assert x0 <= 0.0 and x1 >= 25.0 and y0 <= 0.0 and y1 >= 25.0


def test_score_map_view_remembers_recent_frames_only(qtbot):
    widget = ScoreMapView()
    qtbot.addWidget(widget)
    for index in range(REMEMBERED_FRAMES + 5):
        widget.remember(index, maps(2))
    assert widget.maps_for(0) == ()
    assert widget.maps_for(REMEMBERED_FRAMES + 4) != ()


def test_peak_ignores_nan():
    values = np.array([[np.nan, 1.0], [3.0, 2.0]], np.float32)
    assert peak(values) == (1, 0)


def test_transport_steps_are_clamped_and_play_advances(qtbot):
    transport = Transport()
    qtbot.addWidget(transport)
    requested: list[int] = []
    transport.frame_requested.connect(requested.append)
    transport.frame_requested.connect(transport.set_frame)
    transport.set_frame_count(30, 100.0)
    transport.step(-5)
    transport.step(transport.big_step)
    transport.end()
    transport.step(1)
    transport.home()
    assert requested == [0, 10, 29, 29, 0]
    assert "frame 0 / 29" in transport.label.text()
    transport.play()
    qtbot.waitUntil(lambda: transport.frame >= 3, timeout=3000)
    transport.pause()
    assert not transport.playing


def test_format_time():
    assert format_time(45, 30.0) == "0:01.500"
    assert format_time(3600, 30.0) == "2:00.000"


def test_the_threshold_stays_put_across_edits_unless_the_user_moves_it(qtbot):
    """Issue 17 item 4: it used to be re-estimated from the scores after every edit."""
    plot = ConfidencePlot()
    qtbot.addWidget(plot)
    rng = np.random.default_rng(0)
    for _ in range(4):  # four edits, four different score sets
        plot.set_data(rng.uniform(0.3, 1.0, 50), [0], np.zeros(50, bool))
        assert plot.threshold == DEFAULT_THRESHOLD
    plot.set_threshold(0.3)
    plot.set_data(rng.uniform(0.3, 1.0, 50), [0], np.zeros(50, bool))
    assert plot.threshold == 0.3


def test_the_confidence_axis_is_fixed_and_absent_frames_are_spans(qtbot):
    """Issue 17 item 5: no autoscale of noise; absent frames as spans, not ticks."""
    plot = ConfidencePlot()
    qtbot.addWidget(plot)
    scores = np.full(40, 0.91)
    scores[::2] = 0.93  # noise that the old autoscale blew up to the full height
    absent = np.zeros(40, bool)
    absent[5:9] = True
    absent[20] = True
    plot.set_data(scores, [0], absent)
    low, high = plot.getViewBox().viewRange()[1]
    assert low <= 0.0 and 1.1 <= high < 1.2  # headroom above 1.0: the threshold label is not clipped
    assert plot.absent_spans == [(5, 4), (20, 1)]
    starts, lengths = spans(np.array([True, True, False, True]))
    assert list(starts) == [0, 3] and list(lengths) == [2, 1]


def test_confidence_plot_click_requests_a_frame_and_marks_suggestions(qtbot):
    plot = ConfidencePlot()
    qtbot.addWidget(plot)
    plot.resize(600, 200)
    plot.show()
    qtbot.waitExposed(plot)
    scores = np.full(50, 0.9)
    scores[30:35] = 0.1
    plot.set_data(scores, [0], np.zeros(50, bool))
    assert plot.threshold == DEFAULT_THRESHOLD
    plot.set_suggestions([30, 31])
    assert list(plot._suggested.data["x"]) == [30, 31]
    view = plot.getViewBox()
    view.setRange(xRange=(0, 49), yRange=(0, 1), padding=0)
    scene_point = view.mapViewToScene(QPointF(20, 0.5))
    point = plot.mapFromScene(scene_point)
    with qtbot.waitSignal(plot.frame_requested, timeout=2000) as requested:
        qtbot.mouseClick(plot.viewport(), Qt.MouseButton.LeftButton, pos=point)
    assert requested.args[0] == pytest.approx(20, abs=1)
    with qtbot.waitSignal(plot.threshold_changed):
        plot.set_threshold(0.25)
    plot.set_data(scores, [0], np.zeros(50, bool))
    assert plot.threshold == 0.25  # the user's line stays where it was put


def test_tracker_panel_offers_every_registered_tracker(qtbot):
    panel = TrackerPanel()
    qtbot.addWidget(panel)
    offered = [panel.tracker_box.itemData(i) for i in range(panel.tracker_box.count())]
    assert offered == [name for name in TRACKERS if name != "identity"]
    assert {"cv-csrt", "cv-mil", "siamrpn", "dsiamm"} <= set(offered)
    # issue 17 item 17: the test double is not offered, but a setting naming it still works
    assert not any("test double" in panel.tracker_box.itemText(i) for i in range(panel.tracker_box.count()))
    panel.set_settings(TrackerSettings("identity"))
    assert panel.tracker_name == "identity"


def test_the_gui_tracker_choices_leave_out_test_doubles(capsys):
    from app.qt.gui import build_parser

    assert "identity" not in build_parser().format_help()
    assert build_parser().parse_args(["--tracker", "identity"]).tracker == "identity"  # scripts and tests


def test_the_shortcut_list_shows_keys_first_and_recent_files_by_name(qtbot):
    """Issue 17 item 16: full paths of recent files pushed the Keys column out of view."""
    from PySide6.QtGui import QAction, QKeySequence

    from app.qt.widgets.help_dialog import shortcut_rows

    recent = QAction("&1 /very/long/path/to/some/folder/clip.siamtrack.json")
    recent.setShortcut(QKeySequence("Ctrl+1"))
    rows = shortcut_rows([("File › Open recent", [recent])])
    assert rows[0][0] == QKeySequence("Ctrl+1").toString(QKeySequence.SequenceFormat.NativeText)
    assert rows[0][1] == "1 clip.siamtrack.json"


def test_tracker_panel_settings_round_trip_and_settle_into_one_signal(qtbot, tmp_path):
    panel = TrackerPanel()
    qtbot.addWidget(panel)
    wanted = TrackerSettings("siamrpn", tmp_path / "w.pt", "cpu", max_frames=25)
    with qtbot.waitSignal(panel.settings_changed, timeout=2000) as changed:
        panel.set_settings(wanted)
    assert changed.args == [wanted]
    assert panel.settings() == wanted


def test_tracker_panel_says_when_the_weights_are_untrained(qtbot):
    panel = TrackerPanel()
    qtbot.addWidget(panel)
    panel.set_settings(TrackerSettings("siamfc", None, "auto"))
    panel.show_tracker("siamfc", "cpu", untrained=True)
    assert panel.untrained_shown
    assert panel.device_label.text() == "auto picked: cpu"
    panel.show_tracker("siamrpn", "cpu", untrained=False)  # an answer about another choice
    assert panel.untrained_shown
    panel.show_tracker("siamfc", "cuda", untrained=False)
    assert not panel.untrained_shown
    panel.set_running(True)
    assert panel.stop_button.isEnabled() and not panel.forward_button.isEnabled()


def test_help_dialog_lists_the_actions_with_their_keys(qtbot):
    from PySide6.QtGui import QAction, QKeySequence

    undo = QAction("&Undo")
    undo.setShortcut(QKeySequence("Ctrl+Z"))
    dialog = HelpDialog([("Edit", [undo])])
    qtbot.addWidget(dialog)
    assert dialog.rows == [
        (QKeySequence("Ctrl+Z").toString(QKeySequence.SequenceFormat.NativeText), "Undo", "Edit")
    ]


def test_settings_round_trip_and_survive_a_damaged_file(tmp_path):
    path = tmp_path / "gui.json"
    settings = AppSettings(tracker="cv-csrt", step=25, blend=True)
    for i in range(15):
        settings.add_recent(tmp_path / f"v{i}.mp4")
    save_settings(settings, path)
    loaded = load_settings(path)
    assert loaded == settings and len(loaded.recent) == 10
    assert loaded.recent[0].endswith("v14.mp4")
    path.write_text(json.dumps({"step": "many", "blend": 1, "tracker": "siamrpn"}))
    assert load_settings(path) == AppSettings(tracker="siamrpn")
    path.write_text("{not json")
    assert load_settings(path) == AppSettings()


def test_a_late_ready_never_overwrites_a_run_or_its_failure(qtbot):
    """Issue 17 item 7: the worker's "ready" can arrive after the run started or failed."""
    panel = TrackerPanel()
    qtbot.addWidget(panel)
    panel.set_settings(TrackerSettings("siamfc", None, "auto"))
    panel.show_tracker("siamfc", "cpu", untrained=False)
    assert panel.status_label.text() == "siamfc ready"
    panel.set_status("tracking with siamfc…")
    panel.set_running(True)
    panel.show_tracker("siamfc", "cpu", untrained=False)  # the run's own build answers late
    assert panel.status_label.text() == "tracking with siamfc…"
    panel.show_problem("Tracking failed: boom")
    panel.set_running(False)
    panel.show_tracker("siamfc", "cpu", untrained=False)  # a probe queued behind the run
    assert "Tracking failed: boom" in panel.status_label.text()


def test_the_progress_bar_starts_empty_and_says_so(qtbot):
    panel = TrackerPanel()
    qtbot.addWidget(panel)
    panel.set_running(True)
    bar = panel.progress_bar
    assert bar.value() == bar.minimum() < bar.maximum()
    assert bar.text()  # not a full bar without text


def test_confidence_is_in_0_1_and_comparable_across_trackers():
    """Issue 17 item 4: SiamFC peaks near 10 and SiamRPN in 0-1; their confidences share [0, 1]."""
    from trackers.confidence import CALIBRATION, confidence, is_calibrated

    assert {"siamfc", "siamrpn"} <= set(CALIBRATION)
    for name, (a, _b) in CALIBRATION.items():
        assert a > 0, f"{name}: a higher raw score must mean a higher confidence"
        values = [confidence(name, x) for x in (-1e6, -5.0, 0.0, 0.5, 1.0, 5.0, 10.0, 1e6)]
        assert all(0.0 <= v <= 1.0 for v in values)
        assert values == sorted(values)
    assert confidence("siamfc", float("nan")) is None and confidence("siamfc", None) is None
    assert not is_calibrated("cv-kcf") and confidence("cv-kcf", 1.7) == 1.0  # clipped, uncalibrated


def test_score_map_dock_names_the_raw_score_and_forgets_maps_of_other_boxes(qtbot):
    """Issue 17 item 10: the title showed the map's peak (5.56e-05) beside a score of 5.88,
    and kept an undone run's map."""
    from app.qt.widgets.score_map_view import ScoreMapView

    widget = ScoreMapView()
    qtbot.addWidget(widget)
    values = np.zeros((17, 17), np.float32)
    values[3, 4] = 5.56e-05
    box = Box(1, 2, 3, 4)
    widget.remember(7, (ScoreMap(values, box, "scale 1.00"),), score=5.88, box=box, tracker="siamfc")
    about = widget.about(7, box)
    widget.show_maps(about.maps, about)  # as the main window shows a tracked frame
    assert "raw score 5.88" in widget.title and "siamfc" in widget.title and "5.56e-05" not in widget.title
    assert widget.maps_for(7, Box(9, 9, 3, 4)) == ()  # the frame now holds another run's box
    assert widget.about(7, box).score == 5.88


def test_handles_shrink_on_a_small_box_and_the_edge_ones_hide(qtbot, view):
    """Issue 17 item 9: eight large diamonds hid a 30 px box's outline."""
    from app.qt.widgets.frame_view import HANDLE_RADIUS

    view.resize(400, 300)
    view.fit()
    view.set_entry(Entry(Box(10, 10, 100, 80), Origin.KEYFRAME))
    big = view.handle_sizes()
    assert all(r == HANDLE_RADIUS and shown for r, shown in big)
    view.set_entry(Entry(Box(10, 10, 12, 12), Origin.KEYFRAME))  # ~25 screen px at this zoom
    small = view.handle_sizes()
    assert all(r < HANDLE_RADIUS for r, _ in small)
    assert sum(shown for _, shown in small) == 4  # the corners only
    view.zoom(4.0)  # zoomed in, the same box is big on screen again
    assert all(r == HANDLE_RADIUS and shown for r, shown in view.handle_sizes())


def test_score_map_dock_fits_five_long_labelled_anchor_maps(qtbot):
    """Issue 17 item 11: with SiamRPN the colour bar and the fifth anchor map were cut off."""
    from app.qt.widgets.score_map_view import ScoreMapView, split_labels

    assert split_labels(["anchor ratio h/w 0.33", "anchor ratio h/w 0.5"]) == (
        "anchor ratio h/w",
        ["0.33", "0.5"],
    )
    assert split_labels(["scale 0.95", "scale 1.05"]) == ("scale", ["0.95", "1.05"])
    assert split_labels(["a b", "c d"]) == ("", ["a b", "c d"])
    widget = ScoreMapView()
    qtbot.addWidget(widget)
    values = np.random.default_rng(0).random((17, 17)).astype(np.float32)
    box = Box(1, 2, 3, 4)
    chosen = ScoreMap(values, box, "foreground probability, max over anchors")
    anchors = tuple(ScoreMap(values, box, f"anchor ratio h/w {r}") for r in (0.33, 0.5, 1, 2, 3))
    widget.remember(3, (chosen, *anchors), score=0.801, box=box, tracker="siamrpn")
    about = widget.about(3, box)
    widget.show_maps(about.maps, about)  # as the main window shows a tracked frame
    widget.resize(440, 500)
    widget.show()
    qtbot.waitExposed(widget)
    assert widget.tile_labels() == ["0.33", "0.5", "1", "2", "3"]
    assert "per anchor ratio h/w" in widget.title
    assert widget.minimumSizeHint().width() <= 440
    assert widget._plot.minimumSizeHint().width() <= 440 and widget._tiles_canvas.sizeHint().width() <= 440


def test_the_threshold_label_stays_inside_the_plot_near_the_top(qtbot):
    """A threshold dragged up to 0.998 drew its label above the line, half outside the plot."""
    plot = ConfidencePlot()
    qtbot.addWidget(plot)
    plot.resize(900, 200)
    plot.set_data(np.linspace(0.9, 1.0, 50), [0], np.zeros(50, dtype=bool))
    plot.show()
    qtbot.waitExposed(plot)
    view = plot.getViewBox().sceneBoundingRect()
    for value in (0.5, 0.95, 0.998, 1.0):
        plot.set_threshold(value)
        qtbot.wait(10)
        label = plot._threshold.label.sceneBoundingRect()
        assert view.top() <= label.top() and label.bottom() <= view.bottom(), (value, label, view)
