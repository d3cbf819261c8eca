"""The training loop every tracker shares: epochs of SGD steps over exemplar/search pairs.

A tracker's trainer is a ``Task``: its network, how it starts (random, or from a
checkpoint), which parameters learn, and its loss on a batch. Everything else is here,
once: data (``training.data``, optionally mixed with synthetic pairs), the learning
rate annealed geometrically per epoch (SiamFC section 4.1), checkpoints and exact
resume, cancel, validation with early stopping, mixed precision, several processes
(``training.distributed``), and the success AUC before and after on the validation
sequences (``training.metrics``).

Files a run writes next to ``out``:

* ``out`` - the weights the tracker loads (``trackers.weights`` format), with the data
  lists, settings, losses and metrics in its provenance;
* ``<stem>.resume.pt`` - what a stopped run needs to carry on: weights, optimiser state
  (momentum buffers, AMP scale) and counters. Only tensors, numbers, strings, lists
  and dicts, so it loads with ``torch.load(weights_only=True)``;
* ``<stem>.best.pt`` - with validation, the weights of the best epoch so far; when the
  run ends they become ``out`` (early stopping keeps the best, not the last).

All are rewritten atomically every ``checkpoint_every`` steps, at each epoch's end and
on cancel. Resuming is exact in the data: item ``i`` of epoch ``e`` is always the same
pair with the same augmentation, so a resumed run continues with the batch that would
have come next.
"""

from __future__ import annotations

import contextlib
import math
import os
import shutil
import tempfile
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator
from collections.abc import Sequence as SequenceOf
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch
from torch import nn

from trackers.evaluation import Sequence
from trackers.output import output_target
from trackers.run import CancelToken
from trackers.weights import atomic_torch_save, choose_device, load_checkpoint, save_checkpoint
from training import distributed
from training.data import DEFAULT_MAX_GAP, Augmentation, CacheCancelled, PairDataset

RESUME_FORMAT = "siamtrack-train-resume"
RESUME_VERSION = 2

VAL_SEED_OFFSET = 1_000_003
"""Validation pairs are drawn with ``seed + VAL_SEED_OFFSET``, never from the training stream."""

AMP_CHOICES = ("auto", "off", "fp16", "bf16")


class TrainingError(RuntimeError):
    """Training cannot start or go on; the message says why, in one line."""


@dataclass(frozen=True)
class TrainProgress:
    """One report from the training loop. ``str()`` gives a line fit for a log."""

    phase: str
    """``cache``, ``train``, ``val``, ``metric``, ``checkpoint`` or ``done``."""
    epoch: int = 0
    """1-based epoch being worked on (0 before training starts)."""
    epochs: int = 0
    step: int = 0
    """Optimiser steps done since the start of the run, resumed runs included."""
    total_steps: int = 0
    loss: float | None = None
    """Mean training loss over the steps since the last report (``train``), or the validation loss."""
    pairs_per_second: float | None = None
    lr: float | None = None
    message: str = ""

    def __str__(self) -> str:
        if self.phase == "train":
            return (
                f"epoch {self.epoch}/{self.epochs} step {self.step}/{self.total_steps} "
                f"loss {self.loss:.4f} lr {self.lr:.2e} {self.pairs_per_second:.2f} pairs/s"
            )
        if self.phase == "val":
            return f"epoch {self.epoch}/{self.epochs} validation loss {self.loss:.4f}"
        return self.message


Progress = Callable[[TrainProgress], None]


@dataclass
class TrainResult:
    checkpoint: Path | None
    """The weights written, or None if the run was cancelled before any was."""
    epochs_done: int
    step: int
    val_losses: list[float] = field(default_factory=list)
    train_losses: list[float] = field(default_factory=list)
    cancelled: bool = False
    metrics: dict[str, Any] = field(default_factory=dict)
    """``{"before": ..., "after": ...}`` success AUC on the validation sequences (see training.metrics)."""
    stopped_early: bool = False


class Task(ABC):
    """What one tracker's training needs beyond the shared loop."""

    name: str
    """The registry name of the tracker these weights are for (metrics track with it)."""
    architecture: str
    method: str
    """The paper and sections followed, for the checkpoint's provenance."""
    config: dict[str, Any]
    """The tracker configuration stored with the weights."""
    search_margin: int = 0
    """Extra context cached around the search crop (see ``PairDataset``)."""
    lr_start: float = 1e-2
    lr_end: float = 1e-5
    weight_decay: float = 5e-4
    momentum: float = 0.9
    default_batch_size: int = 8
    max_grad_norm: float | None = None
    """Clip the gradient's global norm to this (None: no clipping)."""

    def augmentation(self) -> Augmentation:
        return Augmentation()

    def pairs(
        self,
        sequences: SequenceOf[Sequence],
        *,
        pairs_per_epoch: int,
        cache_dir: str | Path | None,
        max_gap: int,
        seed: int,
        augmentation: Augmentation,
        progress: Callable[[str], None],
        cancel: CancelToken | None,
    ) -> Any:
        """The dataset of training (or validation) items: ``set_epoch``, ``len`` and
        ``batch(indices) -> (exemplars, searches, boxes)``. Pairs by default; a task that
        trains through time (DSiam) returns clips instead."""
        return PairDataset(
            sequences, pairs_per_epoch=pairs_per_epoch, cache_dir=cache_dir, max_gap=max_gap, seed=seed,
            augmentation=augmentation, progress=progress, cancel=cancel, search_margin=self.search_margin,
        )

    def settings(self) -> dict[str, Any]:
        """Task settings that a resumed run must share with the run it continues."""
        return {}

    @abstractmethod
    def build(self, seed: int) -> nn.Module:
        """The network, randomly initialised (seeded)."""

    def load_init(self, net: nn.Module, path: Path) -> str:
        """Start from ``path`` (fine-tuning); return a word on what was loaded."""
        weights, _meta = load_checkpoint(path, self.architecture)
        try:
            net.load_state_dict(weights, strict=True)
        except RuntimeError as exc:
            first = str(exc).splitlines()[0]
            raise TrainingError(f"{path} does not fit the {self.name} network: {first}") from None
        return f"{self.architecture} weights"

    def cached_pairs(
        self,
        net: nn.Module,
        pairs: Any,
        *,
        role: str,
        pairs_per_epoch: int,
        description: dict[str, Any],
        device: torch.device,
        dtype: torch.dtype | None,
        cache_dir: str | Path | None,
        seed: int,
        progress: Callable[[str], None],
        cancel: CancelToken | None,
    ) -> Any:
        """The dataset the loop steps through, given ``pairs`` ("train" or "val" by
        ``role``) and the network once its starting weights are in. By default ``pairs``
        itself; a task whose backbone is frozen may return its cached features instead
        (``training.feature_cache``). May raise ``CacheCancelled``."""
        return pairs

    def trainable(self, net: nn.Module) -> list[nn.Parameter]:
        """Parameters the optimiser updates; the rest are frozen (requires_grad False)."""
        return [p for p in net.parameters() if p.requires_grad]

    def train_mode(self, net: nn.Module) -> None:
        """Put ``net`` in training mode (a task with frozen layers keeps their batch norm fixed)."""
        net.train()

    @abstractmethod
    def loss(
        self, net: nn.Module, exemplars: torch.Tensor, searches: torch.Tensor, boxes: torch.Tensor
    ) -> torch.Tensor:
        """Mean loss over a batch; images N x 3 x H x W on the device, boxes N x 4 (cx, cy, w, h)."""

    def state_for_checkpoint(self, net: nn.Module) -> dict[str, torch.Tensor]:
        # channels_last is a speed choice of this process; files hold plain contiguous tensors.
        return {k: v.detach().to("cpu").contiguous() for k, v in net.state_dict().items()}


def resume_path(out: str | Path) -> Path:
    """``out`` with its suffix replaced by ``.resume.pt``: ``siamfc.pt`` -> ``siamfc.resume.pt``."""
    return _beside(out, ".resume.pt")


def best_path(out: str | Path) -> Path:
    """``siamfc.pt`` -> ``siamfc.best.pt``: the best epoch's weights while a run goes."""
    return _beside(out, ".best.pt")


def _beside(out: str | Path, suffix: str) -> Path:
    out = Path(out)
    return out.with_name(out.stem + suffix) if out.suffix else out.with_name(out.name + suffix)


def learning_rate(epoch: int, epochs: int, start: float = 1e-2, end: float = 1e-5) -> float:
    """Section 4.1: annealed geometrically at each epoch, ``start`` at the first, ``end`` at the last."""
    if epochs <= 1:
        return start
    return start * (end / start) ** (epoch / (epochs - 1))


def precision_for(amp: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype for ``--amp``: ``auto`` is fp16 on CUDA and off on the CPU.

    bf16 on the CPU is offered (it roughly halves the convolutions' cost on CPUs with
    AVX-512 BF16) but not the default: fp32 master weights keep it stable, yet its
    7-bit mantissa makes the small late learning rates of section 4.1 partly vanish.
    """
    if amp not in AMP_CHOICES:
        raise TrainingError(f"unknown --amp {amp!r}; choose one of {', '.join(AMP_CHOICES)}")
    if amp == "auto":
        return torch.float16 if device.type == "cuda" else None
    if amp == "off":
        return None
    if amp == "fp16" and device.type != "cuda":
        raise TrainingError("--amp fp16 needs CUDA; on the CPU use bf16 or off")
    return torch.float16 if amp == "fp16" else torch.bfloat16


@contextlib.contextmanager
def _autocast(device: torch.device, dtype: torch.dtype | None) -> Iterator[None]:
    if dtype is None:
        yield
        return
    with torch.autocast(device_type=device.type, dtype=dtype):
        yield


def _cast_to(state: Any, device: torch.device) -> None:
    for buffers in state.values():
        for key, value in buffers.items():
            if isinstance(value, torch.Tensor):
                buffers[key] = value.to(device)


@dataclass
class _Counters:
    epoch: int = 0
    step_in_epoch: int = 0
    step: int = 0
    val_losses: list[float] = field(default_factory=list)
    train_losses: list[float] = field(default_factory=list)
    epoch_loss_sum: float = 0.0
    epoch_loss_count: int = 0
    elapsed: float = 0.0
    best_epoch: int = 0
    """1-based epoch with the lowest validation loss so far (0: none yet)."""
    metrics: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "epoch": int(self.epoch),
            "step_in_epoch": int(self.step_in_epoch),
            "step": int(self.step),
            "val_losses": list(self.val_losses),
            "train_losses": list(self.train_losses),
            "epoch_loss_sum": float(self.epoch_loss_sum),
            "epoch_loss_count": int(self.epoch_loss_count),
            "elapsed_seconds": float(self.elapsed),
            "best_epoch": int(self.best_epoch),
            "metrics": dict(self.metrics),
        }

    @classmethod
    def from_dict(cls, state: dict[str, Any]) -> _Counters:
        return cls(
            epoch=int(state["epoch"]),
            step_in_epoch=int(state["step_in_epoch"]),
            step=int(state["step"]),
            val_losses=[float(v) for v in state["val_losses"]],
            train_losses=[float(v) for v in state["train_losses"]],
            epoch_loss_sum=float(state["epoch_loss_sum"]),
            epoch_loss_count=int(state["epoch_loss_count"]),
            elapsed=float(state["elapsed_seconds"]),
            best_epoch=int(state.get("best_epoch", 0)),
            metrics=dict(state.get("metrics", {})),
        )

    def epochs_without_improvement(self) -> int:
        return len(self.val_losses) - self.best_epoch if self.best_epoch else len(self.val_losses)


def train(
    task: Task,
    train_seqs: SequenceOf[Sequence],
    val_seqs: SequenceOf[Sequence],
    out: str | Path,
    *,
    epochs: int = 50,
    pairs_per_epoch: int = 50_000,
    batch_size: int | None = None,
    lr_start: float | None = None,
    lr_end: float | None = None,
    weight_decay: float | None = None,
    momentum: float | None = None,
    init: str | Path | None = None,
    device: str = "auto",
    amp: str = "auto",
    progress: Progress | None = None,
    cancel: CancelToken | None = None,
    resume: bool = True,
    checkpoint_every: int = 200,
    val_pairs: int = 128,
    patience: int = 0,
    metric_frames: int = 0,
    max_gap: int = DEFAULT_MAX_GAP,
    seed: int = 0,
    cache_dir: str | Path | None = None,
    augmentation: Augmentation | None = None,
    extra_pairs: Callable[[int], Any] | None = None,
    extra_ratio: float = 0.0,
    extra_description: str = "",
) -> TrainResult:
    """Train (or fine-tune, with ``init``) ``task``'s network and write ``out``.

    With ``resume`` and a resume file beside ``out`` from a run on the same data and
    settings, training carries on where that run stopped (``epochs`` may differ: the
    learning-rate schedule then follows the new count). ``cancel`` is polled between
    steps; when set, the state is saved and the result says ``cancelled``.

    ``patience`` > 0 stops after that many epochs without a lower validation loss.
    ``metric_frames`` > 0 tracks the first that many frames of each validation sequence
    before and after, and records both success AUCs. ``extra_pairs(pairs_per_epoch)``
    builds a second pair dataset (synthetic pairs) mixed in with probability ``extra_ratio``.
    """
    batch_size = task.default_batch_size if batch_size is None else batch_size
    lr_start = task.lr_start if lr_start is None else lr_start
    lr_end = task.lr_end if lr_end is None else lr_end
    weight_decay = task.weight_decay if weight_decay is None else weight_decay
    momentum = task.momentum if momentum is None else momentum
    if epochs < 1 or pairs_per_epoch < 1 or batch_size < 1:
        raise TrainingError("epochs, pairs_per_epoch and batch_size must all be at least 1")
    if checkpoint_every < 1:
        raise TrainingError("checkpoint_every must be at least 1")
    if patience < 0 or metric_frames < 0:
        raise TrainingError("patience and metric_frames must not be negative")
    if not 0.0 <= extra_ratio <= 1.0:
        raise TrainingError("the synthetic ratio must be between 0 and 1")
    if extra_ratio > 0 and extra_pairs is None:
        raise TrainingError("a synthetic ratio was given without synthetic sources")
    if not train_seqs and extra_ratio < 1.0:
        raise TrainingError("no training sequences")
    # A link is written through: the resume and best files sit beside its target.
    out = output_target(out)
    state_path = resume_path(out)
    context, torch_device = distributed.from_environment(choose_device(device))
    autocast_dtype = precision_for(amp, torch_device)
    main = context.is_main

    def report(**kwargs: Any) -> None:
        if progress is not None and main:
            progress(TrainProgress(**kwargs))

    train_names = [s.name for s in train_seqs]
    val_names = [s.name for s in val_seqs]
    overlap = sorted(set(train_names) & set(val_names))
    if overlap:
        raise TrainingError(f"sequences both in training and validation: {', '.join(overlap)}")
    settings = {
        "pairs_per_epoch": int(pairs_per_epoch),
        "batch_size": int(batch_size),
        "lr_start": float(lr_start),
        "lr_end": float(lr_end),
        "weight_decay": float(weight_decay),
        "momentum": float(momentum),
        "max_gap": int(max_gap),
        "seed": int(seed),
        "val_pairs": int(val_pairs),
        "amp": str(autocast_dtype).replace("torch.", "") if autocast_dtype else "fp32",
        "world_size": int(context.world_size),
        "synthetic_ratio": float(extra_ratio),
        "synthetic": extra_description,
        **task.settings(),
    }

    # ---- data (decoding every source once, the first time only)
    try:
        train_set = _pairs(
            task, train_seqs, pairs_per_epoch, cache_dir, max_gap, seed,
            augmentation if augmentation is not None else task.augmentation(),
            report, cancel, extra_pairs, extra_ratio,
        )
        val_set = (
            task.pairs(
                val_seqs, pairs_per_epoch=val_pairs, cache_dir=cache_dir, max_gap=max_gap,
                seed=seed + VAL_SEED_OFFSET, augmentation=Augmentation.none(),
                progress=lambda text: report(phase="cache", message=text), cancel=cancel,
            )
            if val_seqs and val_pairs > 0
            else None
        )
    except CacheCancelled:
        return TrainResult(checkpoint=None, epochs_done=0, step=0, cancelled=True)
    except ValueError as exc:
        raise TrainingError(str(exc)) from None

    # ---- model, optimiser and where to start from
    net = task.build(seed)
    counters = _Counters()
    resumed = False
    init_note = ""
    state: dict[str, Any] | None = None
    if resume and state_path.is_file():
        state = _load_resume(state_path, task.architecture)
        mismatch = [key for key, value in settings.items() if state.get("settings", {}).get(key) != value]
        if state.get("train_sequences") != train_names:
            mismatch.append("training sequences")
        if state.get("val_sequences") != val_names:
            mismatch.append("validation sequences")
        if mismatch:
            raise TrainingError(
                f"{state_path} comes from a run with other {', '.join(mismatch)}; "
                "start afresh without resume, or write to another --out"
            )
        with _damaged(state_path):
            net.load_state_dict(state["state_dict"])
            counters = _Counters.from_dict(state)
        init = state.get("init") or None
        resumed = True
    elif init is not None:
        init_note = task.load_init(net, Path(init))

    parameters = task.trainable(net)
    if not parameters:
        raise TrainingError(f"the {task.name} task leaves no parameter to train")
    optimizer = torch.optim.SGD(parameters, lr=lr_start, momentum=momentum, weight_decay=weight_decay)
    scaler = torch.amp.GradScaler("cuda", enabled=autocast_dtype == torch.float16)
    if state is not None:
        with _damaged(state_path):
            optimizer.load_state_dict(state["optimizer"])
            if state.get("scaler"):
                scaler.load_state_dict(state["scaler"])
        report(phase="checkpoint",
               message=f"resuming from {state_path}: epoch {counters.epoch + 1}, step {counters.step}")
    elif init_note:
        report(phase="checkpoint", message=f"starting from {init} ({init_note})")

    net.to(torch_device).to(memory_format=torch.channels_last)
    _cast_to(optimizer.state, torch_device)
    try:
        common = dict(device=torch_device, dtype=autocast_dtype, cache_dir=cache_dir,
                      progress=lambda text: report(phase="cache", message=text), cancel=cancel)
        train_set = task.cached_pairs(
            net, train_set, role="train", pairs_per_epoch=pairs_per_epoch, seed=seed,
            description={"settings": settings, "sequences": train_names, "role": "train"}, **common)
        if val_set is not None:
            val_set = task.cached_pairs(
                net, val_set, role="val", pairs_per_epoch=val_pairs, seed=seed + VAL_SEED_OFFSET,
                description={"settings": settings, "sequences": val_names, "role": "val"}, **common)
    except CacheCancelled:
        return TrainResult(checkpoint=None, epochs_done=0, step=0, cancelled=True)
    model = distributed.wrap(net, context, torch_device)

    steps_per_epoch = math.ceil(pairs_per_epoch / batch_size)
    total_steps = steps_per_epoch * epochs
    started = datetime.now(timezone.utc).isoformat(timespec="seconds")
    wrote: Path | None = None
    best_file = best_path(out)

    def to_device(images: torch.Tensor) -> torch.Tensor:
        images = images.to(torch_device, non_blocking=True)
        # Clips (N x L x 3 x H x W) stay as they are; the task reshapes them.
        return images.contiguous(memory_format=torch.channels_last) if images.dim() == 4 else images

    def provenance(epochs_done: int, finished: bool) -> dict[str, Any]:
        return {
            "trainer": type(task).__module__,
            "method": task.method,
            "train_sequences": list(train_names),
            "val_sequences": list(val_names),
            "epochs": int(epochs),
            "epochs_done": int(epochs_done),
            "step": int(counters.step),
            "steps_per_epoch": int(steps_per_epoch),
            "val_loss": list(counters.val_losses),
            "train_loss": list(counters.train_losses),
            "best_epoch": int(counters.best_epoch),
            "metrics": dict(counters.metrics),
            "finished": bool(finished),
            "init": str(init) if init is not None else "",
            "resumed": bool(resumed),
            "started": started,
            "saved": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "train_seconds": float(counters.elapsed),
            "torch": str(torch.__version__),
            **settings,
        }

    def save(epochs_done: int, finished: bool) -> Path:
        nonlocal wrote
        if not main:
            return out
        weights = task.state_for_checkpoint(net)
        bad = next((k for k, v in weights.items() if v.is_floating_point() and not v.isfinite().all()), None)
        if bad is not None:
            # A diverged run: never write it over the last good checkpoint.
            kept = f"; the last good checkpoint {out} is kept" if out.is_file() else ""
            raise TrainingError(
                f"the weights became non-finite ({bad}) by step {counters.step}{kept}; "
                "lower the learning rate"
            )
        path = save_checkpoint(out, weights, architecture=task.architecture, config=task.config,
                               provenance=provenance(epochs_done, finished))
        resume_state = {
            "format": RESUME_FORMAT,
            "version": RESUME_VERSION,
            "architecture": task.architecture,
            "state_dict": weights,
            "optimizer": optimizer.state_dict(),
            "scaler": scaler.state_dict() if scaler.is_enabled() else {},
            **counters.to_dict(),
            "epochs_done": int(epochs_done),
            "settings": dict(settings),
            "train_sequences": list(train_names),
            "val_sequences": list(val_names),
            "init": str(init) if init is not None else "",
        }
        atomic_torch_save(resume_state, state_path)
        wrote = path
        report(phase="checkpoint", epoch=epochs_done, epochs=epochs, step=counters.step,
               total_steps=total_steps,
               message=f"saved {path} (step {counters.step}, {epochs_done}/{epochs} epochs done)")
        return path

    def cancelled() -> bool:
        return distributed.any_rank(cancel is not None and cancel.is_set(), context, torch_device)

    def measure(which: str, weights_path: Path) -> None:
        if not (metric_frames and val_seqs and main) or which in counters.metrics:
            return
        from training.metrics import success_auc

        report(phase="metric", message=f"tracking the validation sequences with the {which} weights")
        result = success_auc(task.name, weights_path, val_seqs, device=str(torch_device),
                             max_frames=metric_frames, cancel=cancel)
        if result is not None:
            counters.metrics[which] = result
            report(phase="metric", message=f"success AUC {which}: {result['auc']:.3f} "
                                           f"on {len(val_seqs)} validation sequences")

    try:
        # ---- the "before" figure, on the weights the run starts from
        if "before" not in counters.metrics and metric_frames and val_seqs and main:
            with tempfile.TemporaryDirectory(prefix="siamtrack-before-") as tmp:
                start_file = save_checkpoint(Path(tmp) / "before.pt", task.state_for_checkpoint(net),
                                             architecture=task.architecture, config=task.config)
                measure("before", start_file)

        # ---- the loop: epochs of steps, a validation and a checkpoint at each epoch's end
        window_start = time.perf_counter()
        stopped_early = False
        while counters.epoch < epochs:
            lr = learning_rate(counters.epoch, epochs, lr_start, lr_end)
            for group in optimizer.param_groups:
                group["lr"] = lr
            train_set.set_epoch(counters.epoch)
            task.train_mode(net)
            while counters.step_in_epoch < steps_per_epoch:
                if cancelled():
                    save(counters.epoch, finished=False)
                    return _result(wrote, counters, cancelled=True)
                tick = time.perf_counter()
                first = counters.step_in_epoch * batch_size
                indices = range(first, min(first + batch_size, pairs_per_epoch))
                exemplars, searches, boxes = train_set.batch(distributed.share(indices, context))
                with _autocast(torch_device, autocast_dtype):
                    loss = task.loss(model, to_device(exemplars), to_device(searches), boxes.to(torch_device))
                value = float(loss.detach())
                if not math.isfinite(value):
                    # Keep the last good checkpoint on disk; the weights now are garbage.
                    kept = f"; the last good checkpoint {out} is kept" if out.is_file() else ""
                    raise TrainingError(
                        f"the loss became {value} at step {counters.step + 1}{kept}; lower the learning rate"
                    )
                optimizer.zero_grad(set_to_none=True)
                scaler.scale(loss).backward()
                if task.max_grad_norm is not None:
                    scaler.unscale_(optimizer)
                    torch.nn.utils.clip_grad_norm_(parameters, task.max_grad_norm)
                scaler.step(optimizer)
                scaler.update()
                counters.step += 1
                counters.step_in_epoch += 1
                now = time.perf_counter()
                counters.elapsed += now - tick
                counters.epoch_loss_sum += value
                counters.epoch_loss_count += 1
                report(
                    phase="train", epoch=counters.epoch + 1, epochs=epochs, step=counters.step,
                    total_steps=total_steps, loss=value,
                    pairs_per_second=len(indices) / max(now - window_start, 1e-9), lr=lr,
                )
                window_start = now
                if counters.step % checkpoint_every == 0 and counters.step_in_epoch < steps_per_epoch:
                    save(counters.epoch, finished=False)

            # end of an epoch
            counters.train_losses.append(counters.epoch_loss_sum / max(counters.epoch_loss_count, 1))
            improved = False
            if val_set is not None:
                with _autocast(torch_device, autocast_dtype):
                    val_loss = validation_loss(task, net, val_set, batch_size, to_device, torch_device)
                counters.val_losses.append(val_loss)
                improved = counters.best_epoch == 0 or val_loss < counters.val_losses[counters.best_epoch - 1]
                if improved:
                    counters.best_epoch = len(counters.val_losses)
                report(phase="val", epoch=counters.epoch + 1, epochs=epochs, step=counters.step,
                       total_steps=total_steps, loss=val_loss)
            counters.epoch += 1
            counters.step_in_epoch = 0
            counters.epoch_loss_sum, counters.epoch_loss_count = 0.0, 0
            stopped_early = bool(patience) and counters.epochs_without_improvement() >= patience
            save(counters.epoch, finished=counters.epoch >= epochs or stopped_early)
            if improved and main:
                shutil.copyfile(out, best_file)
            window_start = time.perf_counter()
            if stopped_early:
                report(phase="checkpoint", message=(
                    f"stopping early: no better validation loss for {patience} epochs; "
                    f"keeping epoch {counters.best_epoch}"))
                break

        distributed.barrier(context)
        if wrote is None and main:
            # Resumed a run that had already finished: rewrite nothing unless asked for metrics.
            wrote = out if out.is_file() else save(counters.epoch, finished=True)
        if main and best_file.is_file() and counters.best_epoch and counters.best_epoch != counters.epoch:
            # The best epoch, not the last, is the result (early stopping's point).
            os.replace(best_file, out)
        if main:
            measure("after", out)
            if "after" in counters.metrics:
                # Re-save so the file records the figure (same weights, richer provenance).
                weights, _ = load_checkpoint(out, task.architecture)
                save_checkpoint(out, weights, architecture=task.architecture, config=task.config,
                                provenance=provenance(counters.epoch, finished=True))
            best_file.unlink(missing_ok=True)
            wrote = out
        report(phase="done", epoch=counters.epoch, epochs=epochs, step=counters.step, total_steps=total_steps,
               message=f"finished: {counters.epoch} epochs, {counters.step} steps, weights in {wrote}")
        return _result(wrote, counters, stopped_early=stopped_early)
    finally:
        distributed.shutdown(context)


def _result(wrote: Path | None, counters: _Counters, *, cancelled: bool = False,
            stopped_early: bool = False) -> TrainResult:
    return TrainResult(wrote, counters.epoch, counters.step, list(counters.val_losses),
                       list(counters.train_losses), cancelled=cancelled, metrics=dict(counters.metrics),
                       stopped_early=stopped_early)


def _pairs(
    task: Task,
    sequences: SequenceOf[Sequence],
    pairs_per_epoch: int,
    cache_dir: str | Path | None,
    max_gap: int,
    seed: int,
    augmentation: Augmentation,
    report: Callable[..., None],
    cancel: CancelToken | None,
    extra_pairs: Callable[[int], Any] | None,
    extra_ratio: float,
) -> Any:
    """The training pairs: real ones, synthetic ones, or a seeded mix of both."""
    real = None
    if sequences and extra_ratio < 1.0:
        real = task.pairs(
            sequences, pairs_per_epoch=pairs_per_epoch, cache_dir=cache_dir, max_gap=max_gap, seed=seed,
            augmentation=augmentation, progress=lambda text: report(phase="cache", message=text),
            cancel=cancel,
        )
    if extra_ratio <= 0.0 or extra_pairs is None:
        return real
    synthetic = extra_pairs(pairs_per_epoch)
    if real is None:
        return synthetic
    from training.synthetic import MixedPairs

    return MixedPairs(real, synthetic, extra_ratio, pairs_per_epoch=pairs_per_epoch, seed=seed)


@torch.no_grad()
def validation_loss(
    task: Task,
    net: nn.Module,
    dataset: Any,
    batch_size: int,
    to_device: Callable[[torch.Tensor], torch.Tensor],
    device: torch.device,
) -> float:
    """Mean loss over the fixed validation pairs, in eval mode (batch norm as when tracking)."""
    was_training = net.training
    net.eval()
    dataset.set_epoch(0)
    total, count = 0.0, 0
    try:
        for first in range(0, len(dataset), batch_size):
            indices = range(first, min(first + batch_size, len(dataset)))
            exemplars, searches, boxes = dataset.batch(indices)
            loss = task.loss(net, to_device(exemplars), to_device(searches), boxes.to(device))
            total += float(loss) * len(indices)
            count += len(indices)
    finally:
        net.train(was_training)
    return total / max(count, 1)


@contextlib.contextmanager
def _damaged(path: Path) -> Iterator[None]:
    """A resume file of the right format with parts missing or of the wrong shape: one
    line for the user, not a traceback from deep inside load_state_dict."""
    try:
        yield
    except (KeyError, TypeError, ValueError, AttributeError, IndexError, RuntimeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise TrainingError(
            f"the resume state {path} is damaged ({type(exc).__name__}: {first}); "
            "start afresh without --resume"
        ) from None


def _load_resume(path: Path, architecture: str) -> dict[str, Any]:
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unreadable file gets the same one-line answer
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise TrainingError(f"cannot read the resume state {path}: {first}") from None
    if not isinstance(state, dict) or state.get("format") != RESUME_FORMAT:
        raise TrainingError(f"{path} is not a siamtrack resume file")
    if state.get("version") != RESUME_VERSION or state.get("architecture") != architecture:
        raise TrainingError(f"{path} was written by another version or for another network")
    return state


def frozen(modules: Iterable[nn.Module]) -> None:
    """Freeze ``modules``: no gradient, and (with ``Task.train_mode``) fixed batch norm."""
    for module in modules:
        for parameter in module.parameters():
            parameter.requires_grad_(False)
