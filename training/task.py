"""What one tracker's training needs beyond the shared loop (``training.loop``): a ``Task``.

Its network, how it starts (random, or from a checkpoint), which parameters learn, its
loss on a batch and, optionally, its loss with a teacher's maps (``training.distill``).
One module per tracker implements it: ``siamfc_train``, ``siamrpn_train``, ``dsiam_train``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from trackers.evaluation import AnnotatedSequence
from trackers.run import CancelToken
from trackers.weights.loading import load_checkpoint
from training.augmentation import Augmentation
from training.config import TrainingError
from training.data import PairDataset

TEACHER_SEED_OFFSET = 7919
"""Added to the run's seed for the labelled / teacher-labelled choice and the teacher-labelled
pairs (``task_pairs``), so that neither repeats another draw of the same seed."""


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
    distills: bool = False
    """Whether ``distill_loss`` is implemented (a teacher weight above 0 needs it)."""
    negatives: bool = False
    """Whether ``loss`` reads negative pairs (``--negative-pairs``; their boxes are all NaN)."""

    def augmentation(self) -> Augmentation:
        return Augmentation()

    def pairs(
        self,
        sequences: Sequence[AnnotatedSequence],
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

    def distill_loss(
        self, net: nn.Module, exemplars: torch.Tensor, searches: torch.Tensor, boxes: torch.Tensor,
        teacher: torch.Tensor, weight: float,
    ) -> torch.Tensor:
        """The task's loss mixed with a distillation term: ``(1 - weight) * own + weight * teacher``.

        ``teacher`` is ``N x 5 x 16 x 16``: NanoTrack's foreground and per-cell boxes on
        the same pairs (``training.distill``). Tasks that cannot learn from it say so."""
        raise TrainingError(f"the {self.name} task has no distillation objective")

    def state_for_checkpoint(self, net: nn.Module) -> dict[str, torch.Tensor]:
        # channels_last is a speed choice of this process; files hold plain contiguous tensors.
        return {k: v.detach().to("cpu").contiguous() for k, v in net.state_dict().items()}


def frozen(modules: Iterable[nn.Module]) -> None:
    """Freeze ``modules``: no gradient, and (with ``Task.train_mode``) fixed batch norm."""
    for module in modules:
        for parameter in module.parameters():
            parameter.requires_grad_(False)


def task_pairs(
    task: Task,
    sequences: Sequence[AnnotatedSequence],
    pairs_per_epoch: int,
    cache_dir: str | Path | None,
    max_gap: int,
    seed: int,
    augmentation: Augmentation,
    report: Callable[..., None],
    cancel: CancelToken | None,
    extra_pairs: Callable[[int], Any] | None,
    extra_ratio: float,
    teacher_share: float | None = None,
) -> Any:
    """The training pairs: real ones, synthetic ones, or a seeded mix of both. With
    ``teacher_share`` the real ones are themselves a mix: that share from the
    teacher-labelled sequences, the rest from the labelled ones."""

    def pairs_of(chosen: Sequence[AnnotatedSequence], seed: int) -> Any:
        return task.pairs(
            chosen, pairs_per_epoch=pairs_per_epoch, cache_dir=cache_dir, max_gap=max_gap, seed=seed,
            augmentation=augmentation, progress=lambda text: report(phase="cache", message=text),
            cancel=cancel,
        )

    real = None
    if sequences and extra_ratio < 1.0:
        if teacher_share is None:
            real = pairs_of(sequences, seed)
        else:
            from training.pseudo_labels import is_teacher_labelled
            from training.synthetic import MixedPairs

            taught = [s for s in sequences if is_teacher_labelled(s)]
            labelled = [s for s in sequences if not is_teacher_labelled(s)]
            if not taught or not labelled:
                raise TrainingError(
                    "a teacher share needs labelled and teacher-labelled sequences; there are "
                    f"{len(labelled)} labelled and {len(taught)} teacher-labelled"
                )
            # other seeds than the synthetic mix's, so that the two choices are independent
            real = MixedPairs(pairs_of(labelled, seed), pairs_of(taught, seed + TEACHER_SEED_OFFSET),
                              teacher_share, pairs_per_epoch=pairs_per_epoch, seed=seed + TEACHER_SEED_OFFSET)
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
