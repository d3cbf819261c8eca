"""What a training run reports while it goes (``TrainProgress``) and returns (``TrainResult``)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from training.checkpoints import Counters


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


def result_of(wrote: Path | None, counters: Counters, *, cancelled: bool = False,
            stopped_early: bool = False) -> TrainResult:
    return TrainResult(wrote, counters.epoch, counters.step, list(counters.val_losses),
                       list(counters.train_losses), cancelled=cancelled, metrics=dict(counters.metrics),
                       stopped_early=stopped_early)
