"""The settings of one training run, frozen and checked once (``TrainConfig``).

Every option of ``training.loop.train`` that is a value (not a callback) lives here,
with its default in one place. ``None`` in the optimiser fields means "the task's own
value" (``Task.lr_start`` and so on); :meth:`TrainConfig.for_task` fills them in.
Unknown option names raise, so a misspelt keyword never trains with a default.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from training.augmentation import Augmentation
from training.data import DEFAULT_MAX_GAP

AMP_CHOICES = ("auto", "off", "fp16", "bf16")


class TrainingError(RuntimeError):
    """Training cannot start or go on; the message says why, in one line."""


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 50
    pairs_per_epoch: int = 50_000
    batch_size: int | None = None
    """Pairs per step; None: the task's (SiamFC section 4.1: 8)."""
    lr_start: float | None = None
    lr_end: float | None = None
    weight_decay: float | None = None
    momentum: float | None = None
    init: str | Path | None = None
    """Weights to start from (fine-tuning); ignored when a resume state is found."""
    device: str = "auto"
    amp: str = "auto"
    resume: bool = True
    checkpoint_every: int = 200
    keep_epochs: bool = False
    """Also keep each epoch's weights beside ``out`` (``training.checkpoints.epoch_path``)."""
    val_pairs: int = 128
    patience: int = 0
    """Epochs without a lower validation loss before stopping (0: never)."""
    metric_frames: int = 0
    """Frames of each validation sequence tracked before and after (0: none)."""
    max_gap: int = DEFAULT_MAX_GAP
    seed: int = 0
    cache_dir: str | Path | None = None
    augmentation: Augmentation | None = None
    """None: the task's own augmentation."""
    hflip: float = 0.0
    """Probability of mirroring a real pair left to right (``Augmentation.flip``), on top of
    the augmentation (0: never, the pairs as before the option existed)."""
    negative_pairs: float = 0.0
    """Share of the real pairs that are negative ones (``Augmentation.negative``; 0: none, the
    pairs as before the option existed). SiamFC's task only."""
    extra_ratio: float = 0.0
    """Share of synthetic pairs (``extra_pairs`` of ``train``)."""
    extra_description: str = ""
    teacher: str | None = None
    """"nano": add the distillation term of ``training.distill``."""
    teacher_weight: float = 0.5
    teacher_share: float | None = None
    """Share of the real pairs drawn from the teacher-labelled sequences, the rest from the
    labelled ones (None: every sequence equally likely, as section 2.2 samples videos)."""
    teacher_model_dir: str | Path | None = None

    def __post_init__(self) -> None:
        if self.amp not in AMP_CHOICES:
            raise TrainingError(f"unknown --amp {self.amp!r}; choose one of {', '.join(AMP_CHOICES)}")
        small_batch = self.batch_size is not None and self.batch_size < 1
        if self.epochs < 1 or self.pairs_per_epoch < 1 or small_batch:
            raise TrainingError("epochs, pairs_per_epoch and batch_size must all be at least 1")
        if self.checkpoint_every < 1:
            raise TrainingError("checkpoint_every must be at least 1")
        if self.patience < 0 or self.metric_frames < 0:
            raise TrainingError("patience and metric_frames must not be negative")
        if not 0.0 <= self.extra_ratio <= 1.0:
            raise TrainingError("the synthetic ratio must be between 0 and 1")
        if self.teacher_share is not None and not 0.0 <= self.teacher_share <= 1.0:
            raise TrainingError("the teacher share must be between 0 and 1")
        if self.teacher is not None and not 0.0 <= self.teacher_weight <= 1.0:
            raise TrainingError("the teacher weight must be between 0 and 1")
        if not 0.0 <= self.hflip <= 1.0:
            raise TrainingError("the flip probability must be between 0 and 1")
        if not 0.0 <= self.negative_pairs < 1.0:
            raise TrainingError("the share of negative pairs must be at least 0 and below 1")

    @classmethod
    def from_options(cls, **options: Any) -> TrainConfig:
        """``TrainConfig(**options)``, with unknown names reported as a TrainingError."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(options) - known)
        if unknown:
            raise TrainingError(f"unknown training option(s): {', '.join(unknown)}")
        return cls(**options)

    def run_settings(self, amp: Any, world_size: int, task_settings: Mapping[str, Any]) -> dict[str, Any]:
        """The settings a checkpoint records and a resumed run must match: this config's
        (filled in by :meth:`for_task`), the autocast dtype ``amp`` (None: fp32), the
        number of processes and the task's own."""
        settings = {
            "pairs_per_epoch": int(self.pairs_per_epoch),
            "batch_size": int(self.batch_size),  # type: ignore[arg-type]
            "lr_start": float(self.lr_start),  # type: ignore[arg-type]
            "lr_end": float(self.lr_end),  # type: ignore[arg-type]
            "weight_decay": float(self.weight_decay),  # type: ignore[arg-type]
            "momentum": float(self.momentum),  # type: ignore[arg-type]
            "max_gap": int(self.max_gap),
            "seed": int(self.seed),
            "val_pairs": int(self.val_pairs),
            "amp": str(amp).replace("torch.", "") if amp else "fp32",
            "world_size": int(world_size),
            "synthetic_ratio": float(self.extra_ratio),
            "synthetic": self.extra_description,
            **task_settings,
        }
        if self.hflip:  # recorded only when used, so runs from before the option still resume
            settings["hflip"] = float(self.hflip)
        if self.negative_pairs:  # likewise
            settings["negative_pairs"] = float(self.negative_pairs)
        if self.teacher_share is not None:
            settings["teacher_share"] = float(self.teacher_share)
        if self.teacher is not None:
            settings["teacher"] = str(self.teacher)
            settings["teacher_weight"] = float(self.teacher_weight)
        return settings

    def for_task(self, task: Any) -> TrainConfig:
        """This config with the task's defaults filled in where a value was left None."""
        return dataclasses.replace(
            self,
            batch_size=task.default_batch_size if self.batch_size is None else self.batch_size,
            lr_start=task.lr_start if self.lr_start is None else self.lr_start,
            lr_end=task.lr_end if self.lr_end is None else self.lr_end,
            weight_decay=task.weight_decay if self.weight_decay is None else self.weight_decay,
            momentum=task.momentum if self.momentum is None else self.momentum,
            augmentation=self._augmentation(task),
        )

    def _augmentation(self, task: Any) -> Augmentation:
        augmentation = task.augmentation() if self.augmentation is None else self.augmentation
        if self.hflip:
            augmentation = dataclasses.replace(augmentation, flip=self.hflip)
        if self.negative_pairs:
            augmentation = dataclasses.replace(augmentation, negative=self.negative_pairs)
        return augmentation
