"""SiamFC's training objective: the logistic loss over a score map (Bertinetto et al. 2016, section 2.2).

Each cell ``u`` of the score map is one exemplar-candidate example with a label
``y[u]`` in {+1, -1} (eq. 6) and a score ``v[u]``; its loss is
``log(1 + exp(-y v))`` (eq. 3). Eq. 4 averages over the map; section 2.2 then asks
that "the losses of the positive and negative examples in the score map are
weighted to eliminate class imbalance", so the plain mean becomes a weighted mean
in which the positives together weigh 1/2 and the negatives together weigh 1/2.
"""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F


def siamfc_labels(size: int, radius_px: float, stride: int) -> torch.Tensor:
    """Eq. 6 on a ``size x size`` map: +1 where ``k * ||u - c|| <= R``, else -1.

    ``u`` runs over the map's cells, ``c`` is its centre cell, ``k`` the network's total
    stride and ``R`` a radius in search-image pixels. The map is odd-sized in SiamFC
    (17x17), so ``c`` is a cell; for an even size the centre falls between cells and
    the distances are measured from that point.
    """
    if size < 1:
        raise ValueError(f"the score map needs a positive size, got {size}")
    if stride <= 0:
        raise ValueError(f"the stride must be positive, got {stride}")
    centre = (size - 1) / 2.0
    offsets = torch.arange(size, dtype=torch.float64) - centre
    distance = torch.sqrt(offsets[None, :] ** 2 + offsets[:, None] ** 2)
    positive = stride * distance <= radius_px
    return torch.where(positive, 1.0, -1.0).to(torch.float32)


def balanced_weights(labels: torch.Tensor) -> torch.Tensor:
    """Per-cell weights for one map or a batch of maps: positives sum to 1/2, negatives to 1/2.

    Computed over the last two dimensions, so each map in a batch is balanced on its
    own. A map with only one class gives that class the whole weight (total 1), so
    the loss keeps the scale of eq. 4 instead of dropping to half of it.
    """
    positive = labels > 0
    negative = ~positive
    n_pos = positive.sum(dim=(-2, -1), keepdim=True).to(torch.float32)
    n_neg = negative.sum(dim=(-2, -1), keepdim=True).to(torch.float32)
    share_pos = torch.where(n_neg > 0, 0.5, 1.0)
    share_neg = torch.where(n_pos > 0, 0.5, 1.0)
    weights = torch.where(
        positive,
        share_pos / n_pos.clamp(min=1.0),
        share_neg / n_neg.clamp(min=1.0),
    )
    return weights


def balanced_logistic_loss(scores: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Eq. 3-5 with class-balanced weights, averaged over the batch.

    ``scores`` is ``N x 1 x H x W`` (or ``N x H x W``, or one ``H x W`` map); ``labels`` is
    ``H x W`` (shared by every pair, as when all search images are centred on the
    target) or the same shape as ``scores``, with values +1 / -1.
    """
    labels = labels.to(device=scores.device, dtype=scores.dtype)
    labels = torch.broadcast_to(labels, scores.shape)
    weights = balanced_weights(labels).to(scores.dtype)
    # log(1 + exp(-y v)) == softplus(-y v), computed without overflow for large |v|.
    per_cell = F.softplus(-labels * scores)
    per_map = (weights * per_cell).sum(dim=(-2, -1))
    return per_map.mean()


POSITIVE_RADIUS_PX = 16.0
"""R of eq. 6 in search-image pixels: the value of the authors' released training code."""


@functools.lru_cache(maxsize=16)
def centred_labels(size: int, stride: int, device: torch.device) -> torch.Tensor:
    """Eq. 6's labels for a target at the centre, built once per map size and device
    (SiamFC's and DSiam's tasks score every pair against the same map)."""
    return siamfc_labels(size, POSITIVE_RADIUS_PX, stride).to(device)
