"""Training SiamFC from annotated sequences (Bertinetto et al. 2016, sections 2.2 and 4.1).

The recipe of section 4.1 ("Implementation details"): SGD on eq. 5 with mini-batches
of 8 pairs, Gaussian initialisation scaled by the improved Xavier method
(``init_weights``), and a learning rate annealed geometrically at each epoch from
1e-2 to 1e-5. The paper names neither momentum nor weight decay; 0.9 and 5e-4 are the
values of the authors' released training code (and of siamfc-pytorch).

The loop, checkpoints and resume are ``training.loop``'s; this module is SiamFC's task:
its network and the balanced logistic loss of eq. 3-6 over the score map, plus the
optional distillation term of ``--teacher nano`` (``distill_loss``).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from trackers.config import config_to_dict
from trackers.evaluation import AnnotatedSequence
from trackers.siamfc.config import PRESETS, SiamFCConfig, with_paper_search
from trackers.siamfc.network import ARCHITECTURE, SiamFCNet, init_weights

# re-exported: the names the app's fine-tune and its tests take from here
from training.checkpoints import RESUME_FORMAT, RESUME_VERSION, resume_path  # noqa: F401
from training.config import TrainingError  # noqa: F401
from training.data import is_negative
from training.loop import learning_rate, train  # noqa: F401
from training.losses import POSITIVE_RADIUS_PX, balanced_logistic_loss, centred_labels
from training.progress import TrainProgress, TrainResult  # noqa: F401
from training.task import Task


class SiamFCTask(Task):
    """Eq. 5: the mean over pairs of the balanced logistic loss (eq. 3-4) on the score map."""

    name = "siamfc"
    architecture = ARCHITECTURE
    method = "SiamFC, Bertinetto et al. 2016 (sections 2.2, 2.4, 4.1)"
    distills = True
    negatives = True

    def __init__(self, config: SiamFCConfig | None = None) -> None:
        # the paper's geometry (255 / 17, as the crop cache cuts), not the tracking preset's
        # larger search region (trackers/siamfc/config.py, TRACKING_SEARCH)
        self.cfg = config or with_paper_search(PRESETS["siamfc"])
        self.config = config_to_dict(self.cfg)

    def settings(self) -> dict[str, Any]:
        return {"positive_radius_px": POSITIVE_RADIUS_PX}

    def build(self, seed: int) -> nn.Module:
        net = SiamFCNet(score_scale=self.cfg.score_scale)
        init_weights(net, seed=seed)
        return net

    def labels(self, device: torch.device) -> torch.Tensor:
        return centred_labels(self.cfg.score_size, self.cfg.total_stride, device)

    def pair_labels(self, boxes: torch.Tensor, device: torch.device) -> torch.Tensor:
        """Eq. 6's labels for a batch: the centred disc for every pair, except a negative
        pair (``--negative-pairs``; its box is all NaN), whose cells are all -1. Such a
        map has one class only, so ``balanced_weights`` gives its negatives the whole
        weight, as a pair's two halves weigh together."""
        labels = self.labels(device)
        negative = is_negative(boxes).to(device)
        if not bool(negative.any()):
            return labels
        return torch.where(negative[:, None, None, None], torch.full_like(labels, -1.0), labels)

    def loss(
        self, net: nn.Module, exemplars: torch.Tensor, searches: torch.Tensor, boxes: torch.Tensor
    ) -> torch.Tensor:
        # The pairs are centred on the target (2 px of translation at most, a quarter of
        # the stride): eq. 6's labels are the same for every pair, and the boxes only
        # say which pairs are negative ones.
        scores = net(exemplars, searches).float()
        return balanced_logistic_loss(scores, self.pair_labels(boxes, scores.device))

    def distill_loss(
        self, net: nn.Module, exemplars: torch.Tensor, searches: torch.Tensor, boxes: torch.Tensor,
        teacher: torch.Tensor, weight: float,
    ) -> torch.Tensor:
        """Eq. 5 plus a distillation term (not in the paper; ``training.distill``).

        The teacher's foreground map, read at our 17 x 17 cells, is a soft label per cell;
        the term is the logistic loss of eq. 3 against it, balanced as section 2.2
        balances eq. 4 (target and background weigh one half each). It tells the score
        map what eq. 6's fixed disc cannot: how far the target extends and which
        look-alikes in the search image deserve a low score.
        """
        from training.distill import soft_balanced_bce, soft_targets

        scores = net(exemplars, searches).float()
        own = balanced_logistic_loss(scores, self.pair_labels(boxes, scores.device))
        targets = soft_targets(teacher, self.cfg.score_size, self.cfg.total_stride)
        return (1.0 - weight) * own + weight * soft_balanced_bce(scores, targets)


def train_siamfc(
    train_seqs: Sequence[AnnotatedSequence],
    val_seqs: Sequence[AnnotatedSequence],
    out: str | Path,
    **options: Any,
) -> TrainResult:
    """Train (or fine-tune, with ``init=``) SiamFC and write ``out``; options as ``training.loop.train``."""
    return train(SiamFCTask(), train_seqs, val_seqs, out, **options)
