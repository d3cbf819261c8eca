"""Fine-tuning on a project's own annotations, off the GUI thread.

The job pattern of :mod:`app.qt.jobs` (thread, job id, cancel, stale filter, shutdown):
a :class:`FinetuneWorker` lives in a QThread owned by a :class:`FinetuneController`;
the work itself is Qt-free (:mod:`app.model.project_training` and
``training.siamfc_train.train_siamfc``).

One job is three steps (four with the teacher), each polling the job's cancel event:

1. the success AUC of the current weights on the held-out frames ("before");
2. optionally, the teacher (NanoTrack) labels the training part's unreviewed frames
   (``project_training.teacher_fill``, forward-backward checked, never past the cut);
3. ``train_siamfc`` on the training frames, starting from the current weights;
4. the AUC of the new weights on the same frames ("after").

* **Cancel**: training polls the job's event between steps and saves a checkpoint
  before it returns, so a cancelled job keeps the weights it reached.
* **Progress** is throttled to :data:`MAX_RATE` signals a second; the loss a signal
  carries is the mean over the steps since the previous one, so a plot of it is the
  loss curve, smoothed, not a sample of single noisy batches.
* **Errors** become one line (``failed``); no traceback reaches the user.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Signal, Slot

from app.model.project_training import Cancelled, Split, heldout_auc, teacher_fill
from app.qt.jobs import Job, JobController
from trackers.evaluation import AnnotatedSequence
from trackers.messages import one_line

MAX_RATE = 10.0
"""Progress signals a second, at most."""

DEFAULT_EPOCHS = 3
DEFAULT_PAIRS_PER_EPOCH = 400
"""A budget a CPU gets through in a few minutes (150 steps of 8 pairs)."""
DEFAULT_LR = (1e-3, 1e-5)
"""Fine-tuning starts ten times lower than training from scratch (section 4.1's 1e-2):
the weights are already good, and a few hundred steps at 1e-2 would mostly undo them."""

PHASES = ("before", "teacher", "cache", "train", "checkpoint", "after", "done")


@dataclass(frozen=True)
class FinetuneJob:
    """Everything one fine-tune needs; immutable, so it can cross into the worker thread."""

    split: Split
    tracker: str
    """The tracker scored before and after (of the SiamFC family: it runs on the weights trained)."""
    weights: Path | None
    """The weights in use (None = the tracker's bundled default): the "before" score's."""
    init: Path | None
    """The SiamFC weights training starts from (None = random, when no default exists)."""
    out: Path
    device: str = "auto"
    epochs: int = DEFAULT_EPOCHS
    pairs_per_epoch: int = DEFAULT_PAIRS_PER_EPOCH
    batch_size: int = 8
    lr: tuple[float, float] = DEFAULT_LR
    cache_dir: Path | None = None
    model_dir: Path | None = None
    seed: int = 0
    extra_train: tuple[AnnotatedSequence, ...] = ()
    """The other objects' annotation before the cut (``project_training.other_objects_before``)."""
    teacher: bool = False
    """Let the teacher (NanoTrack) label the unreviewed frames before the cut, and train on them too."""
    absent: tuple[int, ...] = ()
    """Frames a person marked as without the target: reviewed, never labelled by the teacher."""


@dataclass(frozen=True)
class FinetuneProgress:
    phase: str
    """One of :data:`PHASES`."""
    step: int = 0
    total: int = 0
    """Steps in the whole run (0: no count, show a busy bar)."""
    loss: float = math.nan
    """Mean training loss since the previous report; NaN outside training."""
    message: str = ""
    auc: float | None = None
    """The "before" AUC, reported as soon as it is known (phase ``before``)."""


@dataclass
class FinetuneResult:
    status: str
    """``completed`` or ``cancelled``."""
    tracker: str
    before_auc: float | None = None
    after_auc: float | None = None
    checkpoint: Path | None = None
    """The weights written (kept when cancelled during training), or None."""
    trained: bool = False
    """Training ran all its epochs: the checkpoint is the finished one."""
    steps: int = 0
    train_losses: list[float] = field(default_factory=list)
    teacher_frames: int | None = None
    """Frames the teacher labelled (None: the teacher was not asked)."""

    @property
    def cancelled(self) -> bool:
        return self.status == "cancelled"

    @property
    def usable(self) -> bool:
        """The checkpoint is a finished fine-tune that can be used."""
        return self.trained and self.checkpoint is not None and self.checkpoint.is_file()

    @property
    def improved(self) -> bool | None:
        if self.before_auc is None or self.after_auc is None:
            return None
        return self.after_auc > self.before_auc


class FinetuneWorker(QObject):
    """Lives in the fine-tuning thread; runs one job at a time."""

    progress = Signal(int, object)  # job id, FinetuneProgress
    finished = Signal(int, object)  # job id, FinetuneResult
    failed = Signal(int, str)  # job id, one line

    def __init__(self) -> None:
        super().__init__()
        self._last_emit = 0.0
        self._loss_sum = 0.0
        self._loss_count = 0

    def _report(self, job_id: int, event: FinetuneProgress, force: bool = False) -> None:
        now = time.monotonic()
        if force or now - self._last_emit >= 1.0 / MAX_RATE:
            self._last_emit = now
            self.progress.emit(job_id, event)

    @Slot(object)
    def run(self, envelope: Job) -> None:
        job_id, job, cancel = envelope.job_id, envelope.payload, envelope.cancel
        result = FinetuneResult("cancelled", job.tracker)
        try:
            self._run(job_id, job, cancel, result)
        except Cancelled:
            result.status = "cancelled"
        except Exception as exc:  # noqa: BLE001 - every failure is one line for the dialog
            self.failed.emit(job_id, one_line(exc))
            return
        finally:
            _drop_resume_state(job.out)
        self.finished.emit(job_id, result)

    def _run(self, job_id: int, job: FinetuneJob, cancel: threading.Event, result: FinetuneResult) -> None:
        from training.siamfc_train import TrainProgress, train_siamfc

        heldout = job.split.heldout

        def score(phase: str, weights: Path | None) -> float:
            self._report(
                job_id,
                FinetuneProgress(phase, message=f"measuring {job.tracker} on the held-out frames"),
                True,
            )
            return heldout_auc(job.tracker, weights, heldout, job.device, cancel, model_dir=job.model_dir)

        result.before_auc = score("before", job.weights)
        if cancel.is_set():
            raise Cancelled
        # shown now, not at the end: the user sees what training has to beat
        self._report(job_id, FinetuneProgress("before", message="measured", auc=result.before_auc), True)

        train_seq = job.split.train
        teacher_options: dict[str, Any] = {}
        if job.teacher:
            def on_stretch(done: int, total: int) -> None:
                self._report(job_id, FinetuneProgress("teacher", done, total, message="teacher labels"),
                             done in (0, total))

            train_seq, result.teacher_frames = teacher_fill(
                job.split.train, job.split.cut, absent=job.absent, model_dir=job.model_dir, cancel=cancel,
                progress=on_stretch)
            # weight 0: the teacher gave boxes, not score maps; the checkpoint names it
            teacher_options = dict(teacher="nano", teacher_weight=0.0, teacher_model_dir=job.model_dir)

        self._loss_sum, self._loss_count = 0.0, 0

        def on_progress(event: TrainProgress) -> None:
            if event.phase == "train":
                if event.loss is not None and math.isfinite(event.loss):
                    self._loss_sum += event.loss
                    self._loss_count += 1
                last = event.step >= event.total_steps
                now = time.monotonic()
                if last or now - self._last_emit >= 1.0 / MAX_RATE:
                    loss = self._loss_sum / self._loss_count if self._loss_count else math.nan
                    self._loss_sum, self._loss_count = 0.0, 0
                    self._report(
                        job_id,
                        FinetuneProgress("train", event.step, event.total_steps, loss, str(event)),
                        True,
                    )
                return
            phase = event.phase if event.phase in PHASES else "checkpoint"
            self._report(
                job_id,
                FinetuneProgress(phase, event.step, event.total_steps, math.nan, event.message or str(event)),
                force=phase != "checkpoint",
            )

        trained = train_siamfc(
            [train_seq, *job.extra_train],
            [],
            job.out,
            init=job.init,
            epochs=job.epochs,
            pairs_per_epoch=job.pairs_per_epoch,
            batch_size=job.batch_size,
            lr_start=job.lr[0],
            lr_end=job.lr[1],
            device=job.device,
            progress=on_progress,
            cancel=cancel,
            resume=False,
            seed=job.seed,
            cache_dir=job.cache_dir,
            **teacher_options,
        )
        result.checkpoint = trained.checkpoint
        result.steps = trained.step
        result.train_losses = list(trained.train_losses)
        if trained.cancelled:
            raise Cancelled
        result.trained = True
        result.after_auc = score("after", trained.checkpoint)
        result.status = "completed"
        self._report(job_id, FinetuneProgress("done", trained.step, trained.step, math.nan, "done"), True)


def run_in_this_thread(
    job: FinetuneJob, on_progress: Callable[[FinetuneProgress], None] | None = None
) -> FinetuneResult:
    """Run ``job`` with the worker's own code in the calling thread (for tools and scripts; the
    app uses :class:`FinetuneController`). Raises RuntimeError with the worker's one-line
    message when it fails."""
    worker = FinetuneWorker()
    results: list[FinetuneResult] = []
    failures: list[str] = []
    # direct connections in one thread: every signal lands before run() returns
    worker.finished.connect(lambda _id, result: results.append(result))
    worker.failed.connect(lambda _id, message: failures.append(message))
    if on_progress is not None:
        worker.progress.connect(lambda _id, event: on_progress(event))
    worker.run(Job(1, job, threading.Event()))
    if failures:
        raise RuntimeError(failures[0])
    return results[0]


def _drop_resume_state(out: Path) -> None:
    """The app never resumes a fine-tune (each starts from the weights in use): its resume file goes."""
    try:
        from training.siamfc_train import resume_path

        resume_path(out).unlink(missing_ok=True)
    except (OSError, ImportError):
        pass


class FinetuneController(JobController):
    """Owned by the GUI thread: starts, cancels and shuts down fine-tunes on one worker thread.

    Its signals repeat the worker's for the current job, without the job id.
    """

    progress = Signal(object)  # FinetuneProgress
    finished = Signal(object)  # FinetuneResult
    failed = Signal(str)

    _worker: FinetuneWorker
    what = "fine-tune"

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(FinetuneWorker(), "siamtrack-finetune", parent)
        self._worker.progress.connect(self._on_progress)
        self._worker.finished.connect(self._on_finished)
        self._worker.failed.connect(self._on_failed)
        self._job: FinetuneJob | None = None

    def start(self, job: FinetuneJob) -> int:
        """Start ``job``; one still going is cancelled and its signals dropped. Returns the job id."""
        job_id = self.submit(job)
        self._job = job
        return job_id

    def _never_reported(self, job_id: int) -> None:
        if self._job is not None:
            self.finished.emit(FinetuneResult("cancelled", self._job.tracker))

    @Slot(int, object)
    def _on_progress(self, job_id: int, event: Any) -> None:
        if self.is_current(job_id):
            self.progress.emit(event)

    @Slot(int, object)
    def _on_finished(self, job_id: int, result: Any) -> None:
        if self.end(job_id):
            self.finished.emit(result)

    @Slot(int, str)
    def _on_failed(self, job_id: int, message: str) -> None:
        if self.end(job_id):
            self.failed.emit(message)
