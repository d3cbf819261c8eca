"""TrackerPanel: which tracker, its weights and device, and the Track / Stop buttons."""

from __future__ import annotations

import html
from pathlib import Path

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QRadioButton,
    QSizePolicy,
    QSpinBox,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from app.model.session import TrackerSettings
from trackers.registry import TEST_DOUBLES, TRACKERS

DEVICES = ("auto", "cpu", "cuda")
TRACKER_NOTES = {
    "siamfc": "SiamFC, 5 scales",
    "siamfc-3s": "SiamFC, 3 scales",
    "siamrpn": "SiamRPN",
    "dsiam": "DSiam",
    "dsiamm": "DSiamM",
    "cv-mil": "OpenCV MIL",
    "cv-kcf": "OpenCV KCF",
    "cv-csrt": "OpenCV CSRT",
    "cv-nano": "OpenCV NanoTrack (ONNX)",
    "cv-vit": "OpenCV ViT (ONNX)",
    "identity": "identity (test double)",
}
SETTLE_MS = 300
"""Wait this long after the last change before asking the worker to build the tracker."""
UNTRAINED_TEXT = "⚠ UNTRAINED WEIGHTS: this tracker runs on random weights; its boxes mean nothing."


class TrackerPanel(QWidget):
    track_requested = Signal(int)  # +1 forward, -1 backward
    stop_requested = Signal()
    settings_changed = Signal(object)  # TrackerSettings, after the choice has settled

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.tracker_box = QComboBox()
        for name in TRACKERS:
            if name not in TEST_DOUBLES:
                self.tracker_box.addItem(f"{name}  ({TRACKER_NOTES.get(name, name)})", name)
        self.weights_edit = QLineEdit()
        self.weights_edit.setPlaceholderText("bundled default")
        self.weights_edit.setClearButtonEnabled(True)
        browse = QToolButton()
        browse.setText("…")
        browse.setToolTip("Choose a weights file")
        browse.clicked.connect(self._browse_weights)
        weights_row = QHBoxLayout()
        weights_row.addWidget(self.weights_edit, 1)
        weights_row.addWidget(browse)
        self.device_box = QComboBox()
        self.device_box.addItems(DEVICES)
        self.device_label = QLabel("")
        device_row = QHBoxLayout()
        device_row.addWidget(self.device_box)
        device_row.addWidget(self.device_label, 1)

        self.to_end = QRadioButton("to the end or next keyframe")
        self.n_frames = QRadioButton("at most")
        self.to_end.setChecked(True)
        self.frames_box = QSpinBox()
        self.frames_box.setRange(1, 1_000_000)
        self.frames_box.setValue(50)
        self.frames_box.setSuffix(" frames")
        span_row = QHBoxLayout()
        span_row.addWidget(self.to_end)
        span_row.addWidget(self.n_frames)
        span_row.addWidget(self.frames_box, 1)
        self.retrack_box = QCheckBox("Re-track after edits")
        self.retrack_box.setToolTip("Editing a tracked box makes it a keyframe and tracks on from it")
        self.retrack_box.setChecked(True)
        self.follow_box = QCheckBox("Follow the tracker")
        self.follow_box.setToolTip("Show each frame as it is tracked (until you navigate yourself)")
        self.follow_box.setChecked(True)

        self.backward_button = QPushButton("◀ Track backward")
        self.forward_button = QPushButton("Track forward ▶")
        self.stop_button = QPushButton("■ Stop")
        self.backward_button.clicked.connect(lambda: self.track_requested.emit(-1))
        self.forward_button.clicked.connect(lambda: self.track_requested.emit(+1))
        self.stop_button.clicked.connect(self.stop_requested)
        buttons = QHBoxLayout()
        for button in (self.backward_button, self.forward_button, self.stop_button):
            buttons.addWidget(button)

        self.untrained_label = QLabel(UNTRAINED_TEXT)
        self.untrained_label.setWordWrap(True)
        self.untrained_label.setStyleSheet(
            "QLabel { background: #b00020; color: white; font-weight: bold; padding: 4px;"
            " border-radius: 3px; }"
        )
        self.untrained_label.hide()
        self.status_label = QLabel("")
        self.status_label.setWordWrap(True)
        self.progress_bar = QProgressBar()
        self.progress_bar.setTextVisible(True)
        self.progress_bar.hide()

        form = QFormLayout()
        form.addRow("Tracker", self.tracker_box)
        form.addRow("Weights", weights_row)
        form.addRow("Device", device_row)
        form.addRow("Track", span_row)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        checks = QHBoxLayout()
        checks.addWidget(self.retrack_box)
        checks.addWidget(self.follow_box)
        checks.addStretch(1)
        layout.addLayout(checks)
        layout.addLayout(buttons)
        layout.addWidget(self.progress_bar)
        layout.addWidget(self.untrained_label)
        layout.addWidget(self.status_label)
        # the form takes the height it needs and no more: extra height goes to the score maps
        self.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Maximum)

        self._running = False
        self._status_kind = ""
        """What the status line says: "" (nothing), "ready", "run" (a run's progress or
        end) or "problem". A tracker's "ready" only replaces "" or an older "ready": it
        never overwrites a run's progress or a failure (the worker's answer can arrive
        after either, see tests/app/test_widgets.py)."""
        self._model_dir: Path | None = None
        """Where cv-nano and cv-vit find their ONNX files: from the command line, no widget."""
        self._settle = QTimer(self)
        self._settle.setSingleShot(True)
        self._settle.setInterval(SETTLE_MS)
        self._settle.timeout.connect(lambda: self.settings_changed.emit(self.settings()))
        self.tracker_box.currentIndexChanged.connect(self._changed)
        self.weights_edit.editingFinished.connect(self._changed)
        self.device_box.currentIndexChanged.connect(self._changed)
        self.set_running(False)

    # --- settings ------------------------------------------------------------------
    def settings(self) -> TrackerSettings:
        text = self.weights_edit.text().strip()
        return TrackerSettings(
            tracker=self.tracker_box.currentData(),
            weights=Path(text) if text else None,
            device=self.device_box.currentText(),
            model_dir=self._model_dir,
            max_frames=self.frames_box.value() if self.n_frames.isChecked() else None,
        )

    def set_settings(self, settings: TrackerSettings) -> None:
        index = self.tracker_box.findData(settings.tracker)
        if index < 0 and settings.tracker in TRACKERS:  # a test double asked for by name (tests, scripts)
            self.tracker_box.addItem(
                f"{settings.tracker}  ({TRACKER_NOTES.get(settings.tracker, '')})", settings.tracker
            )
            index = self.tracker_box.count() - 1
        if index >= 0:
            self.tracker_box.setCurrentIndex(index)
        self.weights_edit.setText("" if settings.weights is None else str(settings.weights))
        self.device_box.setCurrentText(settings.device)
        self._model_dir = settings.model_dir
        if settings.max_frames is None:
            self.to_end.setChecked(True)
        else:
            self.n_frames.setChecked(True)
            self.frames_box.setValue(settings.max_frames)
        self._changed()

    @property
    def tracker_name(self) -> str:
        return str(self.tracker_box.currentData())

    def _changed(self) -> None:
        # The verdict on the old choice no longer holds until the worker answers.
        self.untrained_label.hide()
        self.device_label.setText("")
        if not self._running:
            self._set_status("", "")  # a new choice: the old verdict no longer holds
        self._settle.start()

    def _browse_weights(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, "Weights file", "", "Checkpoints (*.pt *.pth);;All files (*)"
        )
        if path:
            self.weights_edit.setText(path)
            self._changed()

    # --- what the worker said ------------------------------------------------------
    def show_tracker(self, name: str, device: str, untrained: bool) -> None:
        """What the worker built: the device it picked, and whether the weights are untrained."""
        if name != self.tracker_name:
            return  # an answer about a choice the user has since changed
        asked = self.device_box.currentText()
        if device == "-":
            self.device_label.setText("(OpenCV: CPU)")
        elif asked == "auto":
            self.device_label.setText(f"auto picked: {device}")
        else:
            self.device_label.setText(f"running on {device}")
        self.untrained_label.setVisible(untrained)
        if not self._running and self._status_kind in ("", "ready"):
            self._set_status(f"{name} ready", "ready")

    def show_problem(self, message: str) -> None:
        self.untrained_label.hide()
        self.status_label.setTextFormat(Qt.TextFormat.RichText)
        self.status_label.setText(f"<span style='color:#ff6060'>{html.escape(message)}</span>")
        self._status_kind = "problem"

    def set_status(self, text: str) -> None:
        """A line about the current or last run (progress, how it ended)."""
        self._set_status(text, "run")

    def _set_status(self, text: str, kind: str) -> None:
        self.status_label.setTextFormat(Qt.TextFormat.PlainText)
        self.status_label.setText(text)
        self._status_kind = kind

    def clear_status(self) -> None:
        """Forget the last run's line (a new video is open)."""
        if not self._running:
            self._set_status("", "")

    @property
    def untrained_shown(self) -> bool:
        return not self.untrained_label.isHidden()

    def set_available(self, available: bool) -> None:
        """Whether there is a video to track in: without one the Track buttons do nothing."""
        self._available = available
        self.forward_button.setEnabled(available and not self._running)
        self.backward_button.setEnabled(available and not self._running)

    def set_running(self, running: bool) -> None:
        available = getattr(self, "_available", True)
        self.forward_button.setEnabled(available and not running)
        self.backward_button.setEnabled(available and not running)
        self.stop_button.setEnabled(running)
        self._running = running
        self.progress_bar.setVisible(running)
        if running:
            # empty with a word, not a full bar without text, until the first count arrives
            self.progress_bar.setRange(0, 1)
            self.progress_bar.setValue(0)
            self.progress_bar.setFormat("starting the tracker…")

    def set_progress(self, done: int, total: int) -> None:
        self.progress_bar.setRange(0, max(1, total))
        self.progress_bar.setValue(done)
        self.progress_bar.setFormat(f"{done} / {total} frames")
