"""FinetuneDialog: fine-tune SiamFC on this project's annotations, and see whether it helped.

The dialog splits the annotation by time (:mod:`app.model.project_training`), runs the job in
the background (:mod:`app.qt.finetune_worker`), and shows the loss as it falls and the
success AUC on the held-out frames before and after. "Use these weights" hands the new
file to the tracker panel whether the score went up or down; the labels say which.
"""

from __future__ import annotations

import html
import math
import time
from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QCloseEvent
from PySide6.QtWidgets import (
    QCheckBox,
    QDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from app.model.project_training import (
    MIN_ANNOTATED,
    SIAMFC_FAMILY,
    ProjectTrainingError,
    Split,
    annotation_sequence,
    finetuned_tracker,
    initial_weights,
    other_objects_before,
    output_path,
    split_sequence,
)
from app.model.session import AnnotationSession, TrackerSettings
from app.qt.finetune_worker import (
    DEFAULT_EPOCHS,
    DEFAULT_PAIRS_PER_EPOCH,
    FinetuneController,
    FinetuneJob,
    FinetuneProgress,
    FinetuneResult,
)
from app.qt.widgets.export_dialog import finetune_instructions
from trackers.trajectory import Origin

PHASE_TEXT = {
    "before": "Measuring the current weights on the held-out frames…",
    "teacher": "NanoTrack is labelling the frames you have not reviewed…",
    "cache": "Cutting training crops from the video…",
    "train": "Training",
    "checkpoint": "Training",
    "after": "Measuring the new weights on the held-out frames…",
    "done": "Done",
}
GOOD, BAD = "#2e9d3e", "#c0392b"
REVIEWED = frozenset({Origin.KEYFRAME, Origin.IMPORTED})
"""The boxes a person gave: drawn, corrected, accepted with K (keyframes) or imported. Tracked
and interpolated boxes are left out: training a tracker on its own output teaches it nothing,
and scoring it against its own output flatters it."""


class FinetuneDialog(QDialog):
    """Settings, progress, loss, before/after AUC, and Start / Cancel / Use these weights."""

    weights_accepted = Signal(str, object)  # tracker name, Path of the new weights

    def __init__(
        self,
        session: AnnotationSession,
        settings: TrackerSettings,
        project_path: Path | None = None,
        parent: QWidget | None = None,
        *,
        cache_dir: Path | None = None,
        data_dir: Path | None = None,
        batch_size: int = 8,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("Fine-tune on this project's trajectories")
        self._session = session
        self._settings = settings
        self._project_path = project_path
        self._cache_dir = cache_dir
        self._batch_size = batch_size
        self.tracker = finetuned_tracker(settings.tracker)
        self.out = output_path(project_path, session.video, avoid=settings.weights, data_dir=data_dir)
        self.result: FinetuneResult | None = None
        self.error: str | None = None
        self._steps: list[float] = []
        self._losses: list[float] = []
        self._train_started: float | None = None

        self.controller = FinetuneController(self)
        self.controller.progress.connect(self._on_progress)
        self.controller.finished.connect(self._on_finished)
        self.controller.failed.connect(self._on_failed)

        # --- what will happen
        self.about_label = QLabel()
        self.about_label.setWordWrap(True)
        self.tracker_note = QLabel()
        self.tracker_note.setWordWrap(True)
        self.tracker_note.setStyleSheet("QLabel { color: #d08000; }")
        self.epochs_box = QSpinBox()
        self.epochs_box.setRange(1, 100)
        self.epochs_box.setValue(DEFAULT_EPOCHS)
        self.pairs_box = QSpinBox()
        self.pairs_box.setRange(8, 1_000_000)
        self.pairs_box.setSingleStep(100)
        self.pairs_box.setValue(DEFAULT_PAIRS_PER_EPOCH)
        self.out_label = QLabel(str(self.out))
        self.out_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.out_label.setWordWrap(True)
        self.teacher_box = QCheckBox("Let NanoTrack label the frames you have not reviewed")
        self.teacher_box.setToolTip(
            "Before training, the bundled NanoTrack tracker (the teacher the default weights were "
            "distilled from) follows the target from each of your boxes over the frames without one, up "
            "to the held-out part, and keeps only the stretches it can track back to your box. "
            "Your own boxes are never changed."
        )
        form = QFormLayout()
        form.addRow("Epochs", self.epochs_box)
        form.addRow("Pairs per epoch", self.pairs_box)
        form.addRow("New weights", self.out_label)
        form.addRow("", self.teacher_box)

        # --- how it goes
        self.progress_bar = QProgressBar()
        self.progress_bar.setTextVisible(True)
        self.progress_bar.setRange(0, 1)
        self.progress_bar.setValue(0)
        self.status_label = QLabel("")
        self.status_label.setWordWrap(True)
        self.loss_plot = pg.PlotWidget(background="#202020")
        self.loss_plot.setMenuEnabled(False)
        self.loss_plot.hideButtons()
        self.loss_plot.setLabel("left", "loss")
        self.loss_plot.getAxis("left").enableAutoSIPrefix(False)  # "loss", not "loss (x0.001)"
        self.loss_plot.setLabel("bottom", "step")
        self.loss_plot.showGrid(x=False, y=True, alpha=0.25)
        self.loss_plot.setMinimumHeight(140)
        self._loss_curve = self.loss_plot.plot([], [], pen=pg.mkPen("#35a7ff", width=1.5))
        self.before_label = QLabel("AUC before: –")
        self.after_label = QLabel("AUC after: –")
        for label in (self.before_label, self.after_label):
            label.setTextFormat(Qt.TextFormat.RichText)
        scores = QHBoxLayout()
        scores.addWidget(self.before_label)
        scores.addWidget(self.after_label)
        scores.addStretch(1)

        # --- buttons
        self.start_button = QPushButton("Start")
        self.start_button.setDefault(True)
        self.cancel_button = QPushButton("Cancel")
        self.use_button = QPushButton("Use these weights")
        self.cli_button = QPushButton("Command line…")
        self.cli_button.setToolTip("How to fine-tune on an exported training set with `siamtrack train`")
        self.close_button = QPushButton("Close")
        self.start_button.clicked.connect(self.start)
        self.cancel_button.clicked.connect(self.cancel)
        self.use_button.clicked.connect(self.use_weights)
        self.cli_button.clicked.connect(self._show_instructions)
        self.close_button.clicked.connect(self.reject)
        buttons = QHBoxLayout()
        buttons.addWidget(self.cli_button)
        buttons.addStretch(1)
        for button in (self.start_button, self.cancel_button, self.use_button, self.close_button):
            buttons.addWidget(button)

        layout = QVBoxLayout(self)
        layout.addWidget(self.about_label)
        layout.addWidget(self.tracker_note)
        layout.addLayout(form)
        layout.addWidget(self.progress_bar)
        layout.addWidget(self.status_label)
        layout.addWidget(self.loss_plot, 1)
        layout.addLayout(scores)
        layout.addLayout(buttons)
        self.resize(560, 520)

        self.split: Split | None = None
        self._describe()
        self._set_running(False)

    # ------------------------------------------------------------------ state
    def _describe(self) -> None:
        if self._settings.tracker in SIAMFC_FAMILY:
            self.tracker_note.hide()
        else:
            self.tracker_note.setText(
                f"The current tracker is {self._settings.tracker}, which does not run on SiamFC's weights: "
                'this fine-tunes SiamFC weights and scores SiamFC. "Use these weights" switches the '
                "tracker to SiamFC."
            )
        trajectory = self._session.trajectory
        counts = {origin: 0 for origin in Origin}
        for _, entry in trajectory.annotated():
            if entry.box is not None:
                counts[entry.origin] += 1
        reviewed = sum(counts[o] for o in REVIEWED)
        machine = counts[Origin.TRACKED] + counts[Origin.INTERPOLATED]
        left_out = (
            f" The {machine} tracked or interpolated boxes are left out: the tracker's own output "
            "would teach it nothing and flatter its score."
            if machine
            else ""
        )
        try:
            self.split = split_sequence(annotation_sequence(self._session, origins=REVIEWED))
        except ProjectTrainingError:
            self.split = None
            self.about_label.setText(
                f"Fine-tuning uses only the boxes you drew, corrected or accepted (K): this video has "
                f"only {reviewed} frames with one, it needs at least {MIN_ANNOTATED}.{left_out}"
            )
            return
        split = self.split
        first, last = split.heldout_span
        self.about_label.setText(
            f"Fine-tunes SiamFC weights on the {split.train_frames} frames you drew, corrected or accepted "
            f"before frame {split.cut}, then measures {self.tracker} (success AUC) on the "
            f"{split.heldout_frames} such frames {first}–{last}, which training never sees: once with the "
            f"weights in use, once with the new ones.{left_out}"
        )

    def _set_running(self, running: bool) -> None:
        ready = self.split is not None
        self.start_button.setEnabled(ready and not running)
        self.epochs_box.setEnabled(not running)
        self.pairs_box.setEnabled(not running)
        self.teacher_box.setEnabled(not running)
        self.cancel_button.setEnabled(running)
        self.use_button.setEnabled(not running and self.result is not None and self.result.usable)

    @property
    def running(self) -> bool:
        return self.controller.running

    # ------------------------------------------------------------------ commands
    def job(self) -> FinetuneJob:
        """The job the settings describe (Start runs it)."""
        if self.split is None:
            raise ProjectTrainingError(self.about_label.text())
        weights = self._settings.weights if self._settings.tracker in SIAMFC_FAMILY else None
        return FinetuneJob(
            extra_train=tuple(other_objects_before(self._session, self.split.cut)),
            split=self.split,
            tracker=self.tracker,
            weights=weights,
            init=initial_weights(self._settings.tracker, self._settings.weights),
            out=self.out,
            device=self._settings.device,
            epochs=self.epochs_box.value(),
            pairs_per_epoch=self.pairs_box.value(),
            batch_size=self._batch_size,
            cache_dir=self._cache_dir,
            model_dir=self._settings.model_dir,
            teacher=self.teacher_box.isChecked(),
            absent=tuple(
                i for i, e in self._session.trajectory.annotated() if e.box is None and e.origin in REVIEWED
            ),
        )

    def start(self) -> None:
        if self.running or self.split is None:
            return
        job = self.job()
        self.result, self.error = None, None
        self._steps, self._losses = [], []
        self._train_started = None
        self._loss_curve.setData([], [])
        self.status_label.setTextFormat(Qt.TextFormat.PlainText)
        self.before_label.setText("AUC before: …")
        self.after_label.setText("AUC after: –")
        self.status_label.setText(PHASE_TEXT["before"])
        self.progress_bar.setRange(0, 0)
        if job.init is None:
            self.tracker_note.setText(
                "No trained SiamFC weights to start from: training starts from random ones, "
                "and a short run will not make them good."
            )
            self.tracker_note.show()
        self.controller.start(job)
        self._set_running(True)

    def cancel(self) -> None:
        if self.running:
            self.status_label.setText("Stopping at the next step…")
            self.controller.cancel()

    def use_weights(self) -> None:
        result = self.result
        if result is None or not result.usable or result.checkpoint is None:
            return
        self.weights_accepted.emit(result.tracker, Path(result.checkpoint))
        self.accept()

    def shutdown(self) -> None:
        """Cancel a running job and wait for its thread (the window is closing)."""
        self.controller.shutdown()

    def _show_instructions(self) -> None:
        QMessageBox.information(
            self, "Fine-tune from the command line", finetune_instructions(self._settings.weights)
        )

    # ------------------------------------------------------------------ worker signals
    def _on_progress(self, event: FinetuneProgress) -> None:
        if event.phase in ("train", "checkpoint", "cache", "teacher") and event.total > 0:
            self.progress_bar.setRange(0, event.total)
            self.progress_bar.setValue(event.step)
            self.progress_bar.setFormat("stretch %v / %m" if event.phase == "teacher" else "step %v / %m")
        elif event.phase in ("before", "after", "cache"):
            self.progress_bar.setRange(0, 0)
        if event.phase == "before" and event.auc is not None:
            self.before_label.setText(f"AUC before: <b>{event.auc:.3f}</b>")
        if event.phase == "train":
            now = time.monotonic()
            if self._train_started is None:
                self._train_started = (now, event.step)
            if math.isfinite(event.loss):
                self._steps.append(float(event.step))
                self._losses.append(event.loss)
                self._loss_curve.setData(np.asarray(self._steps), np.asarray(self._losses))
                self._scale_loss_axes(event.total)
                self.status_label.setText(
                    f"Training: step {event.step}/{event.total}, loss {event.loss:.4f}"
                    + self._time_left(now, event.step, event.total)
                )
        elif event.phase in PHASE_TEXT and event.phase != "checkpoint":
            self.status_label.setText(PHASE_TEXT[event.phase])
        if event.phase == "after" and self.result is None:
            self.progress_bar.setRange(0, 0)

    def _time_left(self, now: float, step: int, total: int) -> str:
        """", about 3 min left" from the pace so far (the measuring after training is extra)."""
        if self._train_started is None or total <= 0:
            return ""
        start, first = self._train_started
        done = step - first
        if done <= 0 or now <= start:
            return ""
        seconds = (total - step) * (now - start) / done
        return f", about {seconds / 60:.0f} min left" if seconds >= 90 else f", about {seconds:.0f} s left"

    def _scale_loss_axes(self, total: int) -> None:
        """Steps 0..total on x from the first point on; y from 0 to a little above the
        highest loss (one point alone gave pyqtgraph a degenerate, meaningless range)."""
        plot = self.loss_plot
        plot.setXRange(0, max(1, total), padding=0.02)
        top = max(self._losses) if self._losses else 1.0
        plot.setYRange(0, top * 1.1 if top > 0 else 1.0, padding=0)

    def _on_finished(self, result: FinetuneResult) -> None:
        self.result = result
        before = result.before_auc
        self.before_label.setText(
            f"AUC before: <b>{before:.3f}</b>" if before is not None else "AUC before: –"
        )
        after = result.after_auc
        if after is not None and before is not None:
            delta = after - before
            colour, word = (
                (GOOD, "better") if delta > 0 else (BAD, "worse") if delta < 0 else ("#808080", "same")
            )
            self.after_label.setText(
                f"AUC after: <b>{after:.3f}</b> <span style='color:{colour}'>({delta:+.3f}, {word})</span>"
            )
        else:
            self.after_label.setText("AUC after: –")
        self.progress_bar.setRange(0, 1)
        self.progress_bar.setValue(1 if result.status == "completed" else 0)
        self.progress_bar.setFormat("%p%")
        taught = (
            f" NanoTrack labelled {result.teacher_frames} frames you had not reviewed."
            if result.teacher_frames is not None
            else ""
        )
        if result.cancelled:
            kept = (
                f" The weights reached so far are kept in {result.checkpoint}."
                if result.checkpoint is not None and result.checkpoint.is_file()
                else ""
            )
            self.status_label.setText("Cancelled." + kept)
        elif result.improved:
            self.status_label.setText("Done: the new weights score higher on the held-out frames." + taught)
        else:
            self.status_label.setText(
                "Done: the new weights do NOT score higher on the held-out frames; "
                "keeping the current ones is probably better." + taught
            )
        self._set_running(False)

    def _on_failed(self, message: str) -> None:
        self.error = message
        self.progress_bar.setRange(0, 1)
        self.progress_bar.setValue(0)
        self.status_label.setTextFormat(Qt.TextFormat.RichText)
        self.status_label.setText(
            f"<span style='color:{BAD}'>Fine-tuning failed: {html.escape(message)}</span>"
        )
        self._set_running(False)

    # ------------------------------------------------------------------ closing
    def done(self, code: int) -> None:
        self.shutdown()
        super().done(code)

    def closeEvent(self, event: QCloseEvent) -> None:
        self.shutdown()
        super().closeEvent(event)
