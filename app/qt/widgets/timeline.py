"""The timeline: a transport bar (slider, play/pause, steps) and the confidence plot.

Both only *request* frames (``frame_requested``); the main window decides what is
shown and tells them with ``set_frame``, so the slider never fights the model.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from numpy.typing import NDArray
from PySide6.QtCore import QSignalBlocker, Qt, QTimer, Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QSlider, QSpinBox, QStyle, QToolButton, QWidget

DEFAULT_STEP = 10
DEFAULT_THRESHOLD = 0.5
"""Confidence under which a tracked frame is suggested for a look. The timeline plots each
tracker's calibrated confidence (trackers/confidence.py, an estimate of P(IoU > 0.5)), so one
fixed line means the same for every tracker; it moves only when the user drags it."""


def format_time(index: int, fps: float) -> str:
    """``m:ss.mmm`` of frame ``index`` at ``fps``."""
    seconds = index / fps if fps > 0 else 0.0
    minutes, rest = divmod(seconds, 60.0)
    return f"{int(minutes)}:{rest:06.3f}"


def spans(mask: NDArray[np.bool_]) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """(starts, lengths) of the runs of True in ``mask``."""
    padded = np.r_[False, np.asarray(mask, bool), False].astype(np.int8)
    edges = np.flatnonzero(np.diff(padded))
    starts, stops = edges[::2], edges[1::2]
    return starts, stops - starts


class Transport(QWidget):
    """Slider, play/pause, step buttons and the frame number and time."""

    frame_requested = Signal(int)
    playing_changed = Signal(bool)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._count = 0
        self._fps = 30.0
        self._index = 0

        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setRange(0, 0)
        self.slider.valueChanged.connect(self.frame_requested)
        self.step_box = QSpinBox()
        self.step_box.setRange(2, 10_000)
        self.step_box.setValue(DEFAULT_STEP)
        self.step_box.setPrefix("N=")
        self.step_box.setToolTip("Frames per big step (Shift+Left / Shift+Right)")
        self.label = QLabel()
        self.label.setMinimumWidth(220)

        icon = QStyle.StandardPixmap
        self.play_button = self._button(icon.SP_MediaPlay, "Play / pause (Space)", self.toggle_play)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(4, 0, 4, 0)
        layout.addWidget(self._button(icon.SP_MediaSkipBackward, "First frame (Home)", self.home))
        layout.addWidget(
            self._button(
                icon.SP_MediaSeekBackward, "Back N frames (Shift+Left)", lambda: self.step(-self.big_step)
            )
        )
        layout.addWidget(self._button(icon.SP_ArrowLeft, "Previous frame (Left)", lambda: self.step(-1)))
        layout.addWidget(self.play_button)
        layout.addWidget(self._button(icon.SP_ArrowRight, "Next frame (Right)", lambda: self.step(1)))
        layout.addWidget(
            self._button(
                icon.SP_MediaSeekForward, "Forward N frames (Shift+Right)", lambda: self.step(self.big_step)
            )
        )
        layout.addWidget(self._button(icon.SP_MediaSkipForward, "Last frame (End)", self.end))
        layout.addWidget(self.step_box)
        layout.addWidget(self.slider, 1)
        layout.addWidget(self.label)

        self._timer = QTimer(self)
        self._timer.timeout.connect(self._advance)
        self._update_label()

    def _button(self, icon: QStyle.StandardPixmap, tip: str, slot: object) -> QToolButton:
        button = QToolButton()
        button.setIcon(self.style().standardIcon(icon))
        button.setToolTip(tip)
        button.setAutoRaise(True)
        button.clicked.connect(slot)
        return button

    # --- model -> view ------------------------------------------------------------
    def set_frame_count(self, count: int, fps: float) -> None:
        self.pause()
        self._count = count
        self._fps = fps if fps > 0 else 30.0
        with QSignalBlocker(self.slider):
            self.slider.setRange(0, max(0, count - 1))
            self.slider.setPageStep(self.big_step)
        self._timer.setInterval(max(1, round(1000 / self._fps)))
        self.set_frame(min(self._index, max(0, count - 1)))

    def set_frame(self, index: int) -> None:
        self._index = index
        with QSignalBlocker(self.slider):
            self.slider.setValue(index)
        self._update_label()

    def _update_label(self) -> None:
        last = max(0, self._count - 1)
        self.label.setText(
            f"frame {self._index} / {last}   {format_time(self._index, self._fps)}"
            if self._count
            else "no video"
        )

    @property
    def frame(self) -> int:
        return self._index

    @property
    def fps(self) -> float:
        return self._fps

    @property
    def big_step(self) -> int:
        return self.step_box.value()

    # --- commands -------------------------------------------------------------------
    def request(self, index: int) -> None:
        if self._count:
            self.frame_requested.emit(min(max(index, 0), self._count - 1))

    def step(self, delta: int) -> None:
        self.request(self._index + delta)

    def home(self) -> None:
        self.request(0)

    def end(self) -> None:
        self.request(self._count - 1)

    @property
    def playing(self) -> bool:
        return self._timer.isActive()

    def toggle_play(self) -> None:
        self.pause() if self.playing else self.play()

    def play(self) -> None:
        if self._count and not self.playing:
            if self._index >= self._count - 1:
                self.request(0)
            self._timer.start()
            self.play_button.setIcon(self.style().standardIcon(QStyle.StandardPixmap.SP_MediaPause))
            self.playing_changed.emit(True)

    def pause(self) -> None:
        if self.playing:
            self._timer.stop()
            self.play_button.setIcon(self.style().standardIcon(QStyle.StandardPixmap.SP_MediaPlay))
            self.playing_changed.emit(False)

    def _advance(self) -> None:
        if self._index >= self._count - 1:
            self.pause()
        else:
            self.request(self._index + 1)


class ConfidencePlot(pg.PlotWidget):
    """Confidence per frame, keyframes, absent spans, the threshold and its suggestions.

    The y axis is fixed to [0, 1]: confidences are calibrated (see DEFAULT_THRESHOLD),
    so noise stays noise instead of being stretched over the whole height. Clicking
    the plot requests that frame; dragging the threshold line changes the suggestions
    (frames whose confidence is under it, where the target may be lost).
    """

    frame_requested = Signal(int)
    threshold_changed = Signal(float)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent, background="#202020")
        self.setMenuEnabled(False)
        self.setMouseEnabled(x=True, y=False)
        self.hideButtons()
        self.showGrid(x=False, y=True, alpha=0.25)
        self.setLabel("left", "confidence")
        self.setLabel("bottom", "frame")
        self.setMinimumHeight(140)
        self._curve = self.plot([], [], pen=pg.mkPen("#35a7ff", width=1.5), connect="finite")
        self._keyframes = pg.ScatterPlotItem(symbol="t1", size=10, brush=pg.mkBrush("#3ddc60"), pen=None)
        self._absent = pg.BarGraphItem(
            x0=[], y0=[], width=[], height=[], brush=pg.mkBrush(144, 144, 144, 90), pen=pg.mkPen(None)
        )
        self._suggested = pg.ScatterPlotItem(symbol="o", size=9, brush=None, pen=pg.mkPen("#ff4040", width=2))
        for item in (self._absent, self._keyframes, self._suggested):
            self.addItem(item)
        self.setYRange(0.0, 1.12, padding=0)  # room above 1.0 for the threshold's label
        self.enableAutoRange(y=False)
        self._cursor = pg.InfiniteLine(angle=90, movable=False, pen=pg.mkPen("#ffffff", width=1))
        self.addItem(self._cursor, ignoreBounds=True)
        self._threshold = pg.InfiniteLine(
            angle=0,
            movable=True,
            pen=pg.mkPen("#ff4040", style=Qt.PenStyle.DashLine),
            label="threshold {value:.2f}",
            # above the line, inside the plot: at the edge the label was clipped
            labelOpts={"position": 0.02, "color": "#ff8080", "anchors": [(0, 1), (0, 1)]},
        )
        self._threshold.setValue(DEFAULT_THRESHOLD)
        self._threshold.setBounds((0.0, 1.0))
        self._threshold.hide()
        self.addItem(self._threshold, ignoreBounds=True)
        self._threshold.sigPositionChangeFinished.connect(self._on_threshold_dragged)
        self._threshold.sigPositionChanged.connect(lambda *_: self._place_threshold_label())
        self.scene().sigMouseClicked.connect(self._on_click)
        self._count = 0
        self._scores: NDArray[np.float64] = np.zeros(0)
        self._empty = pg.TextItem(
            "The confidence of every tracked frame appears here.", color="#a0a0a0", anchor=(0.5, 0.5)
        )
        self.addItem(self._empty, ignoreBounds=True)
        self._empty.setPos(50, 0.5)
        self.setXRange(0, 100, padding=0)
        self.getAxis("bottom").setStyle(showValues=False)

    def set_data(self, scores: NDArray[np.float64], keyframes: list[int], absent: NDArray[np.bool_]) -> None:
        """Scores per frame (NaN where none), keyframe indices, absent mask."""
        count = len(scores)
        self._scores = scores
        frames = np.arange(count, dtype=np.float64)
        self._curve.setData(frames, scores, connect="finite")
        finite = scores[np.isfinite(scores)]
        self._keyframes.setData(np.asarray(keyframes, dtype=np.float64), np.full(len(keyframes), 1.0))
        starts, lengths = spans(absent)
        self._absent.setOpts(
            x0=starts - 0.5, width=lengths, y0=np.zeros(len(starts)), height=np.ones(len(starts))
        )
        if count != self._count:
            self._count = count
            self.setXRange(0, max(1, count - 1) if count else 100, padding=0.01 if count else 0)
        self._empty.setVisible(count == 0)
        self.getAxis("bottom").setStyle(showValues=count > 0)
        # The line stays where it is (DEFAULT_THRESHOLD, or where the user put it).
        self._threshold.setVisible(finite.size > 0)

    def clear_data(self) -> None:
        """No video: nothing plotted, no threshold, and a line saying what goes here."""
        self.set_data(np.zeros(0), [], np.zeros(0, bool))
        self.set_suggestions([])

    def set_suggestions(self, frames: list[int]) -> None:
        xs = np.asarray(frames, dtype=np.float64)
        ys = self._scores[np.asarray(frames, dtype=int)] if frames else np.zeros(0)
        self._suggested.setData(xs, ys)

    def set_cursor(self, index: int) -> None:
        self._cursor.setValue(index)

    @property
    def threshold(self) -> float | None:
        return float(self._threshold.value()) if self._threshold.isVisible() else None

    @property
    def empty_text(self) -> str:
        return self._empty.textItem.toPlainText() if self._empty.isVisible() else ""

    @property
    def absent_spans(self) -> list[tuple[int, int]]:
        """(first frame, length) of each absent span drawn."""
        opts = self._absent.opts
        return [(int(round(x + 0.5)), int(w)) for x, w in zip(opts["x0"], opts["width"])]

    def set_threshold(self, value: float) -> None:
        """Move the threshold (as if the user had dragged it)."""
        self._threshold.setValue(value)
        self._threshold.show()
        self.threshold_changed.emit(float(value))

    def _place_threshold_label(self) -> None:
        """Above the line, or under it near the top (from 0.9): the room above 1.0 holds no
        label once the line is there, and a label above 0.99 was cut in half."""
        label = self._threshold.label
        below = self._threshold.value() > 0.9
        label.anchors = [(0, 0), (0, 0)] if below else [(0, 1), (0, 1)]
        label.updatePosition()

    def _on_threshold_dragged(self) -> None:
        self.threshold_changed.emit(float(self._threshold.value()))

    def _on_click(self, event) -> None:  # noqa: ANN001 - pyqtgraph's MouseClickEvent
        if event.button() != Qt.MouseButton.LeftButton or not self._count:
            return
        view = self.getViewBox()
        if not view.sceneBoundingRect().contains(event.scenePos()):
            return
        x = view.mapSceneToView(event.scenePos()).x()
        self.frame_requested.emit(int(min(max(round(x), 0), self._count - 1)))
