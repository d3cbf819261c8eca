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
LOW_FRACTION = 0.75
"""Scores under this fraction of the median are suggested by default (see auto_threshold)."""


def format_time(index: int, fps: float) -> str:
    """``m:ss.mmm`` of frame ``index`` at ``fps``."""
    seconds = index / fps if fps > 0 else 0.0
    minutes, rest = divmod(seconds, 60.0)
    return f"{int(minutes)}:{rest:06.3f}"


def auto_threshold(scores: NDArray[np.float64]) -> float | None:
    """Where the low-score line starts (the user can drag it): the higher of the median
    minus three standard deviations (estimated from the median absolute deviation, so
    that lost frames do not widen it) and, for positive scores, three quarters of the
    median, since a tracker that has lost its target typically keeps a peak well above
    the noise but a quarter or more below its usual one. None when there are no scores."""
    finite = scores[np.isfinite(scores)]
    if finite.size == 0:
        return None
    median = float(np.median(finite))
    sigma = 1.4826 * float(np.median(np.abs(finite - median)))
    threshold = median - 3.0 * sigma if sigma > 0 else -np.inf
    if median > 0:
        threshold = max(threshold, LOW_FRACTION * median)
    elif sigma == 0:  # constant scores at or below zero: a quarter below them
        threshold = median - 0.25 * abs(median)
    return float(threshold)


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
    """Peak score per frame, keyframes, absent frames, the threshold and its suggestions.

    Clicking the plot requests that frame; dragging the threshold line changes the
    suggestions (frames whose score is under it, where the target may be lost).
    """

    frame_requested = Signal(int)
    threshold_changed = Signal(float)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent, background="#202020")
        self.setMenuEnabled(False)
        self.setMouseEnabled(x=True, y=False)
        self.hideButtons()
        self.showGrid(x=False, y=True, alpha=0.25)
        self.setLabel("left", "peak score")
        self.setLabel("bottom", "frame")
        self.setMinimumHeight(140)
        self._curve = self.plot([], [], pen=pg.mkPen("#35a7ff", width=1.5), connect="finite")
        self._keyframes = pg.ScatterPlotItem(symbol="t1", size=10, brush=pg.mkBrush("#3ddc60"), pen=None)
        self._absent = pg.ScatterPlotItem(symbol="s", size=5, brush=pg.mkBrush("#909090"), pen=None)
        self._suggested = pg.ScatterPlotItem(symbol="o", size=9, brush=None, pen=pg.mkPen("#ff4040", width=2))
        for item in (self._keyframes, self._absent, self._suggested):
            self.addItem(item)
        self._cursor = pg.InfiniteLine(angle=90, movable=False, pen=pg.mkPen("#ffffff", width=1))
        self.addItem(self._cursor, ignoreBounds=True)
        self._threshold = pg.InfiniteLine(
            angle=0,
            movable=True,
            pen=pg.mkPen("#ff4040", style=Qt.PenStyle.DashLine),
            label="threshold {value:.3g}",
            labelOpts={"position": 0.05, "color": "#ff8080"},
        )
        self._threshold.hide()
        self.addItem(self._threshold, ignoreBounds=True)
        self._threshold.sigPositionChangeFinished.connect(self._on_threshold_dragged)
        self.scene().sigMouseClicked.connect(self._on_click)
        self._count = 0
        self._user_threshold = False
        self._scores: NDArray[np.float64] = np.zeros(0)

    def set_data(self, scores: NDArray[np.float64], keyframes: list[int], absent: NDArray[np.bool_]) -> None:
        """Scores per frame (NaN where none), keyframe indices, absent mask."""
        count = len(scores)
        self._scores = scores
        frames = np.arange(count, dtype=np.float64)
        self._curve.setData(frames, scores, connect="finite")
        finite = scores[np.isfinite(scores)]
        top = float(finite.max()) if finite.size else 1.0
        bottom = float(min(0.0, finite.min())) if finite.size else 0.0
        self._keyframes.setData(np.asarray(keyframes, dtype=np.float64), np.full(len(keyframes), top))
        absent_frames = np.flatnonzero(absent).astype(np.float64)
        self._absent.setData(absent_frames, np.full(len(absent_frames), bottom))
        if count != self._count:
            self._count = count
            self.setXRange(0, max(1, count - 1), padding=0.01)
        # shown before it moves: its label only follows the value while visible
        self._threshold.setVisible(finite.size > 0)
        if not self._user_threshold:
            value = auto_threshold(scores)
            if value is not None:
                self._threshold.setValue(value)

    def set_suggestions(self, frames: list[int]) -> None:
        xs = np.asarray(frames, dtype=np.float64)
        ys = self._scores[np.asarray(frames, dtype=int)] if frames else np.zeros(0)
        self._suggested.setData(xs, ys)

    def set_cursor(self, index: int) -> None:
        self._cursor.setValue(index)

    @property
    def threshold(self) -> float | None:
        return float(self._threshold.value()) if self._threshold.isVisible() else None

    def set_threshold(self, value: float) -> None:
        """Fix the threshold (as if the user had dragged it)."""
        self._user_threshold = True
        self._threshold.setValue(value)
        self._threshold.show()
        self.threshold_changed.emit(float(value))

    def _on_threshold_dragged(self) -> None:
        self._user_threshold = True
        self.threshold_changed.emit(float(self._threshold.value()))

    def _on_click(self, event) -> None:  # noqa: ANN001 - pyqtgraph's MouseClickEvent
        if event.button() != Qt.MouseButton.LeftButton or not self._count:
            return
        view = self.getViewBox()
        if not view.sceneBoundingRect().contains(event.scenePos()):
            return
        x = view.mapSceneToView(event.scenePos()).x()
        self.frame_requested.emit(int(min(max(round(x), 0), self._count - 1)))
