"""The training loop every tracker shares: epochs of SGD steps over exemplar/search pairs.

A tracker's trainer is a ``Task``: its network, how it starts (random, or from a
checkpoint), which parameters learn, and its loss on a batch. Everything else is here,
once: data (``training.data``, optionally mixed with synthetic pairs), the learning
rate annealed geometrically per epoch (SiamFC section 4.1), checkpoints and exact
resume, cancel, validation with early stopping, mixed precision, several processes
(``training.distributed``), and the success AUC before and after on the validation
sequences (``training.metrics``).

The run's settings are a frozen ``training.config.TrainConfig`` (defaults in one place,
unknown names refused); ``Trainer`` carries one run out in small steps (``load_data``,
``start`` or resume, ``step``, ``epoch_end``, ``save``, ``finish``), and ``train`` is its
one-call form. The files beside ``out`` (weights, resume state, best epoch) are named and
read back by ``training.checkpoints``; all are rewritten atomically every
``checkpoint_every`` steps, at each epoch's end and on cancel. Resuming is exact in the
data: item ``i`` of epoch ``e`` is always the same pair with the same augmentation, so a
resumed run continues with the batch that would have come next.
"""

from __future__ import annotations

import math
import tempfile
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch

from trackers.devices import choose_device
from trackers.evaluation import AnnotatedSequence
from trackers.output import copy_file, output_target
from trackers.protocol import TrackerError
from trackers.run import CancelToken
from trackers.weights.checkpoint import atomic_torch_save, save_checkpoint
from trackers.weights.loading import load_checkpoint
from trackers.weights.provenance import learnt_from, read_provenance
from training import distributed
from training.augmentation import Augmentation
from training.checkpoints import (
    RESUME_FORMAT,
    RESUME_VERSION,
    Counters,
    best_path,
    damaged,
    epoch_path,
    load_resume,
    resume_path,
)
from training.config import TrainConfig, TrainingError
from training.crop_cache import CacheCancelled
from training.precision import autocast, move_optimizer_state, precision_for
from training.progress import Progress, TrainProgress, TrainResult, result_of
from training.task import Task, task_pairs, validation_loss

VAL_SEED_OFFSET = 1_000_003
"""Validation pairs are drawn with ``seed + VAL_SEED_OFFSET``, never from the training stream."""


def learning_rate(epoch: int, epochs: int, start: float = 1e-2, end: float = 1e-5) -> float:
    """Section 4.1: annealed geometrically at each epoch, ``start`` at the first, ``end`` at the last."""
    if epochs <= 1:
        return start
    return start * (end / start) ** (epoch / (epochs - 1))


class Trainer:
    """One training run in small steps: data, start or resume, the steps, each epoch's
    end, saving. ``run()`` does them all; ``train`` is the one-call form."""

    def __init__(
        self,
        task: Task,
        train_seqs: Sequence[AnnotatedSequence],
        val_seqs: Sequence[AnnotatedSequence],
        out: str | Path,
        config: TrainConfig,
        *,
        progress: Progress | None = None,
        cancel: CancelToken | None = None,
        extra_pairs: Callable[[int], Any] | None = None,
    ) -> None:
        self.task = task
        self.cfg = cfg = config.for_task(task)
        if cfg.extra_ratio > 0 and extra_pairs is None:
            raise TrainingError("a synthetic ratio was given without synthetic sources")
        if not train_seqs and cfg.extra_ratio < 1.0:
            raise TrainingError("no training sequences")
        if cfg.negative_pairs and not task.negatives:
            raise TrainingError(f"the {task.name} task does not train on negative pairs (SiamFC does)")
        if cfg.negative_pairs and cfg.teacher is not None and cfg.teacher_weight > 0:
            raise TrainingError("negative pairs have no teacher's map to learn from; "
                                "use them with --teacher-weight 0 or without a teacher")
        self.train_seqs, self.val_seqs = list(train_seqs), list(val_seqs)
        # A link is written through: the resume and best files sit beside its target.
        self.out = output_target(out)
        self.state_path = resume_path(self.out)
        self.best_file = best_path(self.out)
        self.progress, self.cancel, self.extra_pairs = progress, cancel, extra_pairs
        self.context, self.device = distributed.from_environment(choose_device(cfg.device))
        self.dtype = precision_for(cfg.amp, self.device)
        self.main = self.context.is_main
        self.train_names = [s.name for s in self.train_seqs]
        self.val_names = [s.name for s in self.val_seqs]
        overlap = sorted(set(self.train_names) & set(self.val_names))
        if overlap:
            raise TrainingError(f"sequences both in training and validation: {', '.join(overlap)}")
        self.settings = cfg.run_settings(self.dtype, self.context.world_size, self.task.settings())
        self.counters = Counters()
        self.resumed = False
        self.init = cfg.init
        # every sequence the starting weights (and theirs) trained on: trackers.weights.provenance
        self.inherited: list[str] = []
        self.wrote: Path | None = None
        self.teacher: Any = None
        self.teacher_provenance: dict[str, Any] = {}
        self.steps_per_epoch = math.ceil(cfg.pairs_per_epoch / cfg.batch_size)
        self.total_steps = self.steps_per_epoch * cfg.epochs
        self.started = datetime.now(timezone.utc).isoformat(timespec="seconds")

    # ---- reporting
    def report(self, **kwargs: Any) -> None:
        if self.progress is not None and self.main:
            self.progress(TrainProgress(**kwargs))

    def _cache_progress(self, text: str) -> None:
        self.report(phase="cache", message=text)

    # ---- data (decoding every source once, the first time only)
    def load_data(self) -> None:
        cfg, task = self.cfg, self.task
        try:
            self.train_set = task_pairs(
                task, self.train_seqs, cfg.pairs_per_epoch, cfg.cache_dir, cfg.max_gap, cfg.seed,
                cfg.augmentation, self.report, self.cancel, self.extra_pairs, cfg.extra_ratio,
                cfg.teacher_share,
            )
            self.val_set = (
                task.pairs(
                    self.val_seqs, pairs_per_epoch=cfg.val_pairs, cache_dir=cfg.cache_dir,
                    max_gap=cfg.max_gap,
                    seed=cfg.seed + VAL_SEED_OFFSET, augmentation=Augmentation.none(),
                    progress=self._cache_progress, cancel=self.cancel,
                )
                if self.val_seqs and cfg.val_pairs > 0
                else None
            )
        except ValueError as exc:
            raise TrainingError(str(exc)) from None

    # ---- model, optimiser and where to start from
    def start(self) -> None:
        cfg, task = self.cfg, self.task
        self.net = net = task.build(cfg.seed)
        state: dict[str, Any] | None = None
        init_note = ""
        if cfg.resume and self.state_path.is_file():
            state = load_resume(self.state_path, task.architecture)
            mismatch = [key for key, value in self.settings.items()
                        if state.get("settings", {}).get(key) != value]
            if state.get("train_sequences") != self.train_names:
                mismatch.append("training sequences")
            if state.get("val_sequences") != self.val_names:
                mismatch.append("validation sequences")
            if mismatch:
                raise TrainingError(
                    f"{self.state_path} comes from a run with other {', '.join(mismatch)}; "
                    "start afresh without resume, or write to another --out"
                )
            with damaged(self.state_path):
                net.load_state_dict(state["state_dict"])
                self.counters = Counters.from_dict(state)
            self.init = state.get("init") or None
            self.inherited = [str(name) for name in state.get("inherited_sequences", [])]
            self.resumed = True
        elif cfg.init is not None:
            init_note = task.load_init(net, Path(cfg.init))
            self.inherited = sorted(learnt_from(read_provenance(cfg.init)))

        self.parameters = task.trainable(net)
        if not self.parameters:
            raise TrainingError(f"the {task.name} task leaves no parameter to train")
        self.optimizer = torch.optim.SGD(self.parameters, lr=cfg.lr_start, momentum=cfg.momentum,
                                         weight_decay=cfg.weight_decay)
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.dtype == torch.float16)
        if state is not None:
            with damaged(self.state_path):
                self.optimizer.load_state_dict(state["optimizer"])
                if state.get("scaler"):
                    self.scaler.load_state_dict(state["scaler"])
            where = f"epoch {self.counters.epoch + 1}, step {self.counters.step}"
            self.report(phase="checkpoint", message=f"resuming from {self.state_path}: {where}")
        elif init_note:
            self.report(phase="checkpoint", message=f"starting from {cfg.init} ({init_note})")
        net.to(self.device).to(memory_format=torch.channels_last)
        move_optimizer_state(self.optimizer.state, self.device)

    def cache_features(self) -> None:
        """Let the task swap its pairs for cached features (a frozen backbone)."""
        cfg = self.cfg
        common = dict(device=self.device, dtype=self.dtype, cache_dir=cfg.cache_dir,
                      progress=self._cache_progress, cancel=self.cancel)
        self.train_set = self.task.cached_pairs(
            self.net, self.train_set, role="train", pairs_per_epoch=cfg.pairs_per_epoch, seed=cfg.seed,
            description={"settings": self.settings, "sequences": self.train_names, "role": "train"}, **common)
        if self.val_set is not None:
            self.val_set = self.task.cached_pairs(
                self.net, self.val_set, role="val", pairs_per_epoch=cfg.val_pairs,
                seed=cfg.seed + VAL_SEED_OFFSET,
                description={"settings": self.settings, "sequences": self.val_names, "role": "val"}, **common)

    def start_teacher(self) -> None:
        cfg = self.cfg
        if cfg.teacher is None:
            return
        from trackers.nanotrack import find_model_files
        from training.distill import make_teacher, teacher_provenance

        if cfg.teacher_weight == 0:
            # The teacher only labelled clips (--teacher-label); no maps are asked for, so
            # no map teacher is built. The checkpoint still names it.
            try:
                self.teacher_provenance = teacher_provenance(find_model_files(cfg.teacher_model_dir))
            except TrackerError as exc:
                raise TrainingError(str(exc)) from None
            return
        if not self.task.distills:
            raise TrainingError(f"the {self.task.name} task has no distillation objective; with "
                                "--teacher-weight 0 it trains on the teacher's labelled clips only")
        if getattr(self.net, "cached_layers", 0):
            raise TrainingError("the teacher needs images; it cannot work on cached backbone features")
        rank = self.context.rank if self.context.world_size > 1 else 0
        try:
            self.teacher = make_teacher(
                cfg.teacher, cfg.cache_dir,
                {"settings": self.settings, "sequences": self.train_names, "rank": rank},
                cfg.pairs_per_epoch, cfg.teacher_model_dir)
        except (ValueError, TrackerError) as exc:
            raise TrainingError(str(exc)) from None
        self.teacher_provenance = self.teacher.provenance()

    # ---- saving
    def _to_device(self, images: torch.Tensor) -> torch.Tensor:
        images = images.to(self.device, non_blocking=True)
        # Clips (N x L x 3 x H x W) stay as they are; the task reshapes them.
        return images.contiguous(memory_format=torch.channels_last) if images.dim() == 4 else images

    def provenance(self, epochs_done: int, finished: bool) -> dict[str, Any]:
        counters = self.counters
        return {
            "trainer": type(self.task).__module__,
            "method": self.task.method,
            "train_sequences": list(self.train_names),
            "val_sequences": list(self.val_names),
            "inherited_sequences": list(self.inherited),
            "epochs": int(self.cfg.epochs),
            "epochs_done": int(epochs_done),
            "step": int(counters.step),
            "steps_per_epoch": int(self.steps_per_epoch),
            "val_loss": list(counters.val_losses),
            "train_loss": list(counters.train_losses),
            "best_epoch": int(counters.best_epoch),
            "metrics": dict(counters.metrics),
            "finished": bool(finished),
            "init": str(self.init) if self.init is not None else "",
            "resumed": bool(self.resumed),
            "started": self.started,
            "saved": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "train_seconds": float(counters.elapsed),
            "torch": str(torch.__version__),
            **self.settings,
            **self.teacher_provenance,
        }

    def save(self, epochs_done: int, finished: bool) -> Path:
        """Write ``out`` and the resume state (atomically), and say so."""
        if not self.main:
            return self.out
        if self.teacher is not None:
            self.teacher.flush()
        task = self.task
        weights = task.state_for_checkpoint(self.net)
        bad = next((k for k, v in weights.items() if v.is_floating_point() and not v.isfinite().all()), None)
        if bad is not None:
            # A diverged run: never write it over the last good checkpoint.
            raise TrainingError(
                f"the weights became non-finite ({bad}) by step {self.counters.step}{self._kept()}; "
                "lower the learning rate"
            )
        path = save_checkpoint(self.out, weights, architecture=task.architecture, config=task.config,
                               provenance=self.provenance(epochs_done, finished))
        resume_state = {
            "format": RESUME_FORMAT,
            "version": RESUME_VERSION,
            "architecture": task.architecture,
            "state_dict": weights,
            "optimizer": self.optimizer.state_dict(),
            "scaler": self.scaler.state_dict() if self.scaler.is_enabled() else {},
            **self.counters.to_dict(),
            "epochs_done": int(epochs_done),
            "settings": dict(self.settings),
            "train_sequences": list(self.train_names),
            "val_sequences": list(self.val_names),
            "init": str(self.init) if self.init is not None else "",
            "inherited_sequences": list(self.inherited),
        }
        atomic_torch_save(resume_state, self.state_path)
        self.wrote = path
        self.report(phase="checkpoint", epoch=epochs_done, epochs=self.cfg.epochs, step=self.counters.step,
                    total_steps=self.total_steps,
                    message=f"saved {path} (step {self.counters.step}, "
                            f"{epochs_done}/{self.cfg.epochs} epochs done)")
        return path

    def _kept(self) -> str:
        return f"; the last good checkpoint {self.out} is kept" if self.out.is_file() else ""

    def cancelled(self) -> bool:
        flag = self.cancel is not None and self.cancel.is_set()
        return distributed.any_rank(flag, self.context, self.device)

    def measure(self, which: str, weights_path: Path) -> None:
        """Success AUC of ``weights_path`` on the validation sequences, recorded as ``which``."""
        cfg, counters = self.cfg, self.counters
        if not (cfg.metric_frames and self.val_seqs and self.main) or which in counters.metrics:
            return
        from training.metrics import success_auc

        self.report(phase="metric", message=f"tracking the validation sequences with the {which} weights")
        result = success_auc(self.task.name, weights_path, self.val_seqs, device=str(self.device),
                             max_frames=cfg.metric_frames, cancel=self.cancel)
        if result is not None:
            counters.metrics[which] = result
            self.report(phase="metric", message=f"success AUC {which}: {result['auc']:.3f} "
                                                f"on {len(self.val_seqs)} validation sequences")

    def measure_before(self) -> None:
        if "before" in self.counters.metrics or not (self.cfg.metric_frames and self.val_seqs and self.main):
            return
        with tempfile.TemporaryDirectory(prefix="siamtrack-before-") as tmp:
            start_file = save_checkpoint(Path(tmp) / "before.pt", self.task.state_for_checkpoint(self.net),
                                         architecture=self.task.architecture, config=self.task.config)
            self.measure("before", start_file)

    # ---- the steps
    def step(self, window_start: float) -> float:
        """One optimiser step on the next batch; returns the time it ended."""
        cfg, counters, task = self.cfg, self.counters, self.task
        tick = time.perf_counter()
        first = counters.step_in_epoch * cfg.batch_size
        indices = range(first, min(first + cfg.batch_size, cfg.pairs_per_epoch))
        mine = distributed.share(indices, self.context)
        exemplars, searches, boxes = self.train_set.batch(mine)
        targets = None
        if self.teacher is not None:
            targets = self.teacher.maps(exemplars, searches, epoch=counters.epoch, indices=list(mine))
        with autocast(self.device, self.dtype):
            ex, se, bx = self._to_device(exemplars), self._to_device(searches), boxes.to(self.device)
            if targets is None:
                loss = task.loss(self.model, ex, se, bx)
            else:
                loss = task.distill_loss(self.model, ex, se, bx, targets.to(self.device), cfg.teacher_weight)
        value = float(loss.detach())
        if not math.isfinite(value):
            # Keep the last good checkpoint on disk; the weights now are garbage.
            raise TrainingError(
                f"the loss became {value} at step {counters.step + 1}{self._kept()}; lower the learning rate")
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        if task.max_grad_norm is not None:
            self.scaler.unscale_(self.optimizer)
            torch.nn.utils.clip_grad_norm_(self.parameters, task.max_grad_norm)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        counters.step += 1
        counters.step_in_epoch += 1
        now = time.perf_counter()
        counters.elapsed += now - tick
        counters.epoch_loss_sum += value
        counters.epoch_loss_count += 1
        self.report(
            phase="train", epoch=counters.epoch + 1, epochs=cfg.epochs, step=counters.step,
            total_steps=self.total_steps, loss=value,
            pairs_per_second=len(indices) / max(now - window_start, 1e-9), lr=self.lr,
        )
        return now

    def epoch_end(self) -> bool:
        """Validation, counters, checkpoint and best copy; True when the run should stop early."""
        cfg, counters = self.cfg, self.counters
        counters.train_losses.append(counters.epoch_loss_sum / max(counters.epoch_loss_count, 1))
        improved = False
        if self.val_set is not None:
            with autocast(self.device, self.dtype):
                val_loss = validation_loss(self.task, self.net, self.val_set, cfg.batch_size, self._to_device,
                                           self.device)
            counters.val_losses.append(val_loss)
            improved = counters.best_epoch == 0 or val_loss < counters.val_losses[counters.best_epoch - 1]
            if improved:
                counters.best_epoch = len(counters.val_losses)
            self.report(phase="val", epoch=counters.epoch + 1, epochs=cfg.epochs, step=counters.step,
                        total_steps=self.total_steps, loss=val_loss)
        counters.epoch += 1
        counters.step_in_epoch = 0
        counters.epoch_loss_sum, counters.epoch_loss_count = 0.0, 0
        stop = bool(cfg.patience) and counters.epochs_without_improvement() >= cfg.patience
        self.save(counters.epoch, finished=counters.epoch >= cfg.epochs or stop)
        if cfg.keep_epochs and self.main:
            copy_file(self.out, epoch_path(self.out, counters.epoch))
        if improved and self.main:
            copy_file(self.out, self.best_file)
        if stop:
            self.report(phase="checkpoint", message=(
                f"stopping early: no better validation loss for {cfg.patience} epochs; "
                f"keeping epoch {counters.best_epoch}"))
        return stop

    def finish(self, stopped_early: bool) -> TrainResult:
        """The best epoch becomes ``out``, with the "after" figure recorded in it."""
        cfg, counters, task = self.cfg, self.counters, self.task
        distributed.barrier(self.context)
        if self.wrote is None and self.main:
            # Resumed a run that had already finished: rewrite nothing unless asked for metrics.
            self.wrote = self.out if self.out.is_file() else self.save(counters.epoch, finished=True)
        best_is_earlier = counters.best_epoch and counters.best_epoch != counters.epoch
        if self.main and self.best_file.is_file() and best_is_earlier:
            # The best epoch, not the last, is the result (early stopping's point).
            copy_file(self.best_file, self.out)
        if self.main:
            self.measure("after", self.out)
            if "after" in counters.metrics:
                # Re-save so the file records the figure (same weights, richer provenance).
                weights, _ = load_checkpoint(self.out, task.architecture)
                save_checkpoint(self.out, weights, architecture=task.architecture, config=task.config,
                                provenance=self.provenance(counters.epoch, finished=True))
            self.best_file.unlink(missing_ok=True)
            self.wrote = self.out
        self.report(phase="done", epoch=counters.epoch, epochs=cfg.epochs, step=counters.step,
                    total_steps=self.total_steps,
                    message=f"finished: {counters.epoch} epochs, {counters.step} steps, "
                            f"weights in {self.wrote}")
        return result_of(self.wrote, counters, stopped_early=stopped_early)

    def run(self) -> TrainResult:
        try:
            self.load_data()
        except CacheCancelled:
            return TrainResult(checkpoint=None, epochs_done=0, step=0, cancelled=True)
        self.start()
        try:
            self.cache_features()
        except CacheCancelled:
            return TrainResult(checkpoint=None, epochs_done=0, step=0, cancelled=True)
        self.model = distributed.wrap(self.net, self.context, self.device)
        self.start_teacher()
        cfg, counters = self.cfg, self.counters
        try:
            self.measure_before()
            window_start = time.perf_counter()
            stopped_early = False
            while counters.epoch < cfg.epochs:
                self.lr = learning_rate(counters.epoch, cfg.epochs, cfg.lr_start, cfg.lr_end)
                for group in self.optimizer.param_groups:
                    group["lr"] = self.lr
                self.train_set.set_epoch(counters.epoch)
                self.task.train_mode(self.net)
                while counters.step_in_epoch < self.steps_per_epoch:
                    if self.cancelled():
                        self.save(counters.epoch, finished=False)
                        return result_of(self.wrote, counters, cancelled=True)
                    window_start = self.step(window_start)
                    mid_epoch = counters.step_in_epoch < self.steps_per_epoch
                    if counters.step % cfg.checkpoint_every == 0 and mid_epoch:
                        self.save(counters.epoch, finished=False)
                stopped_early = self.epoch_end()
                window_start = time.perf_counter()
                if stopped_early:
                    break
            return self.finish(stopped_early)
        finally:
            distributed.shutdown(self.context)


def train(
    task: Task,
    train_seqs: Sequence[AnnotatedSequence],
    val_seqs: Sequence[AnnotatedSequence],
    out: str | Path,
    *,
    progress: Progress | None = None,
    cancel: CancelToken | None = None,
    extra_pairs: Callable[[int], Any] | None = None,
    **options: Any,
) -> TrainResult:
    """Train (or fine-tune, with ``init``) ``task``'s network and write ``out``.

    ``options`` are the fields of :class:`~training.config.TrainConfig` (unknown names
    raise). With ``resume`` and a resume file beside ``out`` from a run on the same data
    and settings, training carries on where that run stopped (``epochs`` may differ: the
    learning-rate schedule then follows the new count). ``cancel`` is polled between
    steps; when set, the state is saved and the result says ``cancelled``.
    ``extra_pairs(pairs_per_epoch)`` builds a second pair dataset (synthetic pairs)
    mixed in with probability ``extra_ratio``.
    """
    config = TrainConfig.from_options(**options)
    return Trainer(task, train_seqs, val_seqs, out, config, progress=progress, cancel=cancel,
                   extra_pairs=extra_pairs).run()
