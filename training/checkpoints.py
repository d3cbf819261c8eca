"""The files a training run keeps beside its ``out``: where they are and how they are read back.

* ``out``: the weights the tracker loads (``trackers.weights.checkpoint`` format);
* ``<stem>.resume.pt``: what a stopped run needs to carry on (weights, optimiser state,
  counters, settings); only tensors, numbers, strings, lists and dicts, so it loads
  with ``torch.load(weights_only=True)``;
* ``<stem>.best.pt``: with validation, the best epoch's weights while the run goes;
* ``<stem>.epoch<N>.pt``: with ``keep_epochs``, the weights after each epoch N, so that a
  tracking figure (not only the validation loss) can choose among them afterwards.

``Counters`` is where a run stands (epoch, step, losses, metrics), saved in the resume state.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from training.config import TrainingError

RESUME_FORMAT = "siamtrack-train-resume"
RESUME_VERSION = 2


def resume_path(out: str | Path) -> Path:
    """``out`` with its suffix replaced by ``.resume.pt``: ``siamfc.pt`` -> ``siamfc.resume.pt``."""
    return _beside(out, ".resume.pt")


def best_path(out: str | Path) -> Path:
    """``siamfc.pt`` -> ``siamfc.best.pt``: the best epoch's weights while a run goes."""
    return _beside(out, ".best.pt")


def epoch_path(out: str | Path, epoch: int) -> Path:
    """``siamfc.pt``, 3 -> ``siamfc.epoch3.pt``: the weights after epoch 3 (``keep_epochs``)."""
    return _beside(out, f".epoch{epoch}.pt")


def _beside(out: str | Path, suffix: str) -> Path:
    out = Path(out)
    return out.with_name(out.stem + suffix) if out.suffix else out.with_name(out.name + suffix)


@contextlib.contextmanager
def damaged(path: Path) -> Iterator[None]:
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


def load_resume(path: Path, architecture: str) -> dict[str, Any]:
    """The resume state at ``path``, checked to be ours and for ``architecture``."""
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


@dataclass
class Counters:
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
    def from_dict(cls, state: dict[str, Any]) -> Counters:
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
