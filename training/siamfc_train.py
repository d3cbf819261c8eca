"""Training SiamFC from annotated sequences (Bertinetto et al. 2016, sections 2.2 and 4.1).

The recipe of section 4.1 ("Implementation details"): SGD on eq. 5 with mini-batches
of 8 pairs, Gaussian initialisation scaled by the improved Xavier method
(``init_weights``), and a learning rate annealed geometrically at each epoch from
1e-2 to 1e-5. The paper names neither momentum nor weight decay; 0.9 and 5e-4 are the
values of the authors' released training code (and of siamfc-pytorch).

Two files come out:

* ``out`` - a weights-only checkpoint (``trackers.weights.save_checkpoint``) that the
  tracker loads, with the data lists, the epochs done, the step and the validation
  loss per epoch in its provenance;
* ``resume_path(out)`` - what a stopped run needs to carry on: the weights, the SGD
  state (momentum buffers) and the counters. Only tensors, numbers, strings, lists
  and dicts, so it too loads with ``torch.load(weights_only=True)``.

Both are rewritten atomically every ``checkpoint_every`` steps, at each epoch's end
and when the run is cancelled.

Resuming is exact in the data: item ``i`` of epoch ``e`` is always the same pair with
the same augmentation (see ``training.data``), so a resumed run continues with the
batch that would have come next.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from collections.abc import Sequence as SequenceOf
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch

from trackers.config import config_to_dict
from trackers.evaluation import Sequence
from trackers.run import CancelToken
from trackers.siamfc.config import PRESETS, SiamFCConfig
from trackers.siamfc.network import ARCHITECTURE, SiamFCNet, init_weights
from trackers.weights import atomic_torch_save, choose_device, load_checkpoint, save_checkpoint
from training.data import DEFAULT_MAX_GAP, Augmentation, CacheCancelled, PairDataset
from training.losses import balanced_logistic_loss, siamfc_labels

RESUME_FORMAT = "siamtrack-train-resume"
RESUME_VERSION = 1

POSITIVE_RADIUS_PX = 16.0
"""R of eq. 6 in search-image pixels: the value of the authors' released training code."""

VAL_SEED_OFFSET = 1_000_003
"""Validation pairs are drawn with ``seed + VAL_SEED_OFFSET``, never from the training stream."""


class TrainingError(RuntimeError):
    """Training cannot start or go on; the message says why, in one line."""


@dataclass(frozen=True)
class TrainProgress:
    """One report from the training loop. ``str()`` gives a line fit for a log."""

    phase: str
    """``cache``, ``train``, ``val``, ``checkpoint`` or ``done``."""
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


def resume_path(out: str | Path) -> Path:
    """``out`` with its suffix replaced by ``.resume.pt``: ``siamfc.pt`` -> ``siamfc.resume.pt``."""
    out = Path(out)
    return out.with_name(out.stem + ".resume.pt") if out.suffix else out.with_name(out.name + ".resume.pt")


def learning_rate(epoch: int, epochs: int, start: float = 1e-2, end: float = 1e-5) -> float:
    """Section 4.1: annealed geometrically at each epoch, ``start`` at the first, ``end`` at the last."""
    if epochs <= 1:
        return start
    return start * (end / start) ** (epoch / (epochs - 1))


def _atomic_save(payload: dict[str, Any], path: Path) -> None:
    atomic_torch_save(payload, path)


def _plain_state(net: torch.nn.Module) -> dict[str, torch.Tensor]:
    # channels_last is a speed choice of this process; files hold plain contiguous tensors.
    return {k: v.detach().to("cpu").contiguous() for k, v in net.state_dict().items()}


def train_siamfc(
    train_seqs: SequenceOf[Sequence],
    val_seqs: SequenceOf[Sequence],
    out: str | Path,
    *,
    epochs: int = 50,
    pairs_per_epoch: int = 50_000,
    batch_size: int = 8,
    lr_start: float = 1e-2,
    lr_end: float = 1e-5,
    weight_decay: float = 5e-4,
    momentum: float = 0.9,
    init: str | Path | None = None,
    device: str = "auto",
    progress: Progress | None = None,
    cancel: CancelToken | None = None,
    resume: bool = True,
    checkpoint_every: int = 200,
    val_pairs: int = 128,
    max_gap: int = DEFAULT_MAX_GAP,
    seed: int = 0,
    cache_dir: str | Path | None = None,
    augmentation: Augmentation | None = None,
) -> TrainResult:
    """Train (or fine-tune, with ``init``) SiamFC and write ``out``; see the module notes.

    With ``resume`` and a resume file beside ``out`` from a run on the same data and
    settings, training carries on from where that run stopped (``epochs`` may differ:
    the learning-rate schedule then follows the new count). ``cancel`` is polled between
    steps; when it is set the current state is saved and the result says ``cancelled``.
    """
    if epochs < 1 or pairs_per_epoch < 1 or batch_size < 1:
        raise TrainingError("epochs, pairs_per_epoch and batch_size must all be at least 1")
    if checkpoint_every < 1:
        raise TrainingError("checkpoint_every must be at least 1")
    if not train_seqs:
        raise TrainingError("no training sequences")
    out = Path(out)
    state_path = resume_path(out)
    torch_device = choose_device(device)
    config: SiamFCConfig = PRESETS["siamfc"]

    def report(**kwargs: Any) -> None:
        if progress is not None:
            progress(TrainProgress(**kwargs))

    def cache_message(text: str) -> None:
        report(phase="cache", message=text)

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
        "positive_radius_px": POSITIVE_RADIUS_PX,
        "val_pairs": int(val_pairs),
    }

    # ---- data (decoding every source once, the first time only)
    try:
        train_set = PairDataset(
            train_seqs,
            pairs_per_epoch=pairs_per_epoch,
            cache_dir=cache_dir,
            max_gap=max_gap,
            seed=seed,
            augmentation=augmentation,
            config=config,
            progress=cache_message,
            cancel=cancel,
        )
        val_set = (
            PairDataset(
                val_seqs,
                pairs_per_epoch=val_pairs,
                cache_dir=cache_dir,
                max_gap=max_gap,
                seed=seed + VAL_SEED_OFFSET,
                augmentation=Augmentation.none(),
                config=config,
                progress=cache_message,
                cancel=cancel,
            )
            if val_seqs and val_pairs > 0
            else None
        )
    except CacheCancelled:
        return TrainResult(checkpoint=None, epochs_done=0, step=0, cancelled=True)

    # ---- model and optimiser
    net = SiamFCNet(score_scale=config.score_scale)
    init_weights(net, seed=seed)
    optimizer = torch.optim.SGD(
        net.parameters(), lr=lr_start, momentum=momentum, weight_decay=weight_decay
    )
    epoch, step_in_epoch, step = 0, 0, 0
    val_losses: list[float] = []
    train_losses: list[float] = []
    epoch_loss_sum, epoch_loss_count = 0.0, 0
    elapsed = 0.0
    resumed = False

    if resume and state_path.is_file():
        state = _load_resume(state_path)
        try:
            mismatch = [
                key for key, value in settings.items() if state["settings"].get(key) != value
            ]
            if state["train_sequences"] != train_names:
                mismatch.append("training sequences")
            if state["val_sequences"] != val_names:
                mismatch.append("validation sequences")
            if mismatch:
                raise TrainingError(
                    f"{state_path} comes from a run with other {', '.join(mismatch)}; "
                    "start afresh without resume, or write to another --out"
                )
            net.load_state_dict(state["state_dict"])
            optimizer.load_state_dict(state["optimizer"])
            epoch, step_in_epoch, step = state["epoch"], state["step_in_epoch"], state["step"]
            val_losses = [float(v) for v in state["val_losses"]]
            train_losses = [float(v) for v in state["train_losses"]]
            epoch_loss_sum = float(state["epoch_loss_sum"])
            epoch_loss_count = int(state["epoch_loss_count"])
            elapsed = float(state["elapsed_seconds"])
            init = state.get("init") or None
            resumed = True
        except TrainingError:
            raise
        except (KeyError, TypeError, ValueError, AttributeError, IndexError, RuntimeError) as exc:
            # A file of the right format with parts missing or of the wrong shape: the
            # user gets one line, not a traceback from deep inside load_state_dict.
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            raise TrainingError(
                f"the resume state {state_path} is damaged ({type(exc).__name__}: {first}); "
                "start afresh without --resume"
            ) from None
        report(phase="checkpoint", message=f"resuming from {state_path}: epoch {epoch + 1}, step {step}")
    elif init is not None:
        weights, _meta = load_checkpoint(init, ARCHITECTURE)
        try:
            net.load_state_dict(weights, strict=True)
        except RuntimeError as exc:
            raise TrainingError(f"{init} does not fit the SiamFC network: {str(exc).splitlines()[0]}") from None

    net.to(torch_device).to(memory_format=torch.channels_last)
    # load_state_dict put the momentum buffers on the CPU; move them with the weights.
    for buffers in optimizer.state.values():
        for key, value in buffers.items():
            if isinstance(value, torch.Tensor):
                buffers[key] = value.to(torch_device)

    labels = siamfc_labels(config.score_size, POSITIVE_RADIUS_PX, config.total_stride).to(torch_device)
    steps_per_epoch = math.ceil(pairs_per_epoch / batch_size)
    total_steps = steps_per_epoch * epochs
    started = datetime.now(timezone.utc).isoformat(timespec="seconds")
    wrote: Path | None = None

    def to_device(images: torch.Tensor) -> torch.Tensor:
        return images.to(torch_device, non_blocking=True).contiguous(memory_format=torch.channels_last)

    def save(epochs_done: int, finished: bool) -> Path:
        nonlocal wrote
        weights = _plain_state(net)
        provenance = {
            "trainer": "training.siamfc_train",
            "method": "SiamFC, Bertinetto et al. 2016 (sections 2.2, 2.4, 4.1)",
            "train_sequences": list(train_names),
            "val_sequences": list(val_names),
            "epochs": int(epochs),
            "epochs_done": int(epochs_done),
            "step": int(step),
            "steps_per_epoch": int(steps_per_epoch),
            "val_loss": list(val_losses),
            "train_loss": list(train_losses),
            "finished": bool(finished),
            "init": str(init) if init is not None else "",
            "resumed": bool(resumed),
            "started": started,
            "saved": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "train_seconds": float(elapsed),
            "torch": str(torch.__version__),
            **settings,
        }
        path = save_checkpoint(
            out, weights, architecture=ARCHITECTURE, config=config_to_dict(config), provenance=provenance
        )
        resume_state = {
            "format": RESUME_FORMAT,
            "version": RESUME_VERSION,
            "architecture": ARCHITECTURE,
            "state_dict": weights,
            "optimizer": optimizer.state_dict(),
            "epoch": int(epoch),
            "step_in_epoch": int(step_in_epoch),
            "step": int(step),
            "epochs_done": int(epochs_done),
            "val_losses": list(val_losses),
            "train_losses": list(train_losses),
            "epoch_loss_sum": float(epoch_loss_sum),
            "epoch_loss_count": int(epoch_loss_count),
            "elapsed_seconds": float(elapsed),
            "settings": dict(settings),
            "train_sequences": list(train_names),
            "val_sequences": list(val_names),
            "init": str(init) if init is not None else "",
        }
        _atomic_save(resume_state, state_path)
        wrote = path
        report(phase="checkpoint", epoch=epochs_done, epochs=epochs, step=step, total_steps=total_steps,
               message=f"saved {path} (step {step}, {epochs_done}/{epochs} epochs done)")
        return path

    def cancelled() -> bool:
        return cancel is not None and cancel.is_set()

    # ---- the loop: epochs of steps, a validation and a checkpoint at each epoch's end
    window_loss, window_pairs, window_steps = 0.0, 0, 0
    window_start = time.perf_counter()
    while epoch < epochs:
        lr = learning_rate(epoch, epochs, lr_start, lr_end)
        for group in optimizer.param_groups:
            group["lr"] = lr
        train_set.set_epoch(epoch)
        net.train()
        while step_in_epoch < steps_per_epoch:
            if cancelled():
                save(epoch, finished=False)
                return TrainResult(wrote, epoch, step, val_losses, train_losses, cancelled=True)
            tick = time.perf_counter()
            first = step_in_epoch * batch_size
            indices = range(first, min(first + batch_size, pairs_per_epoch))
            exemplars, searches = train_set.batch(indices)
            scores = net(to_device(exemplars), to_device(searches))
            loss = balanced_logistic_loss(scores, labels)
            value = float(loss.detach())
            if not math.isfinite(value):
                # Keep the last good checkpoint on disk; the weights now are garbage.
                raise TrainingError(
                    f"the loss became {value} at step {step + 1}; lower the learning rate"
                )
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            step += 1
            step_in_epoch += 1
            elapsed += time.perf_counter() - tick
            epoch_loss_sum += value
            epoch_loss_count += 1
            window_loss += value
            window_pairs += len(indices)
            window_steps += 1
            now = time.perf_counter()
            report(
                phase="train", epoch=epoch + 1, epochs=epochs, step=step, total_steps=total_steps,
                loss=window_loss / window_steps, pairs_per_second=window_pairs / max(now - window_start, 1e-9),
                lr=lr,
            )
            window_loss, window_pairs, window_steps = 0.0, 0, 0
            window_start = now
            if step % checkpoint_every == 0 and step_in_epoch < steps_per_epoch:
                save(epoch, finished=False)

        # end of an epoch
        train_losses.append(epoch_loss_sum / max(epoch_loss_count, 1))
        if val_set is not None:
            val_loss = validation_loss(net, val_set, labels, batch_size, to_device)
            val_losses.append(val_loss)
            report(phase="val", epoch=epoch + 1, epochs=epochs, step=step, total_steps=total_steps, loss=val_loss)
        epoch += 1
        step_in_epoch = 0
        epoch_loss_sum, epoch_loss_count = 0.0, 0
        save(epoch, finished=epoch >= epochs)
        window_start = time.perf_counter()

    if wrote is None:
        # Resumed a run that had already finished: rewrite nothing, point at what is there.
        wrote = out if out.is_file() else save(epoch, finished=True)
    report(phase="done", epoch=epoch, epochs=epochs, step=step, total_steps=total_steps,
           message=f"finished: {epoch} epochs, {step} steps, weights in {wrote}")
    return TrainResult(wrote, epoch, step, val_losses, train_losses, cancelled=False)


@torch.no_grad()
def validation_loss(
    net: SiamFCNet,
    dataset: PairDataset,
    labels: torch.Tensor,
    batch_size: int,
    to_device: Callable[[torch.Tensor], torch.Tensor],
) -> float:
    """Mean loss over the fixed validation pairs, in eval mode (batch norm as when tracking)."""
    was_training = net.training
    net.eval()
    dataset.set_epoch(0)
    total, count = 0.0, 0
    try:
        for first in range(0, len(dataset), batch_size):
            indices = range(first, min(first + batch_size, len(dataset)))
            exemplars, searches = dataset.batch(indices)
            scores = net(to_device(exemplars), to_device(searches))
            total += float(balanced_logistic_loss(scores, labels)) * len(indices)
            count += len(indices)
    finally:
        net.train(was_training)
    return total / max(count, 1)


def _load_resume(path: Path) -> dict[str, Any]:
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unreadable file gets the same one-line answer
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise TrainingError(f"cannot read the resume state {path}: {first}") from None
    if not isinstance(state, dict) or state.get("format") != RESUME_FORMAT:
        raise TrainingError(f"{path} is not a siamtrack resume file")
    if state.get("version") != RESUME_VERSION or state.get("architecture") != ARCHITECTURE:
        raise TrainingError(f"{path} was written by another version or for another network")
    return state
