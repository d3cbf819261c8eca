"""Training targets and loss of SiamRPN (sections 3.2, 3.3, eq. 3-6) and the box coding
shared with inference (eq. 3 and eq. 12). Pure torch, no Qt, so ``training/`` can use it.

Boxes are ``cx, cy, w, h`` tensors (last dimension 4) in search-image pixels, as the
anchors of :mod:`trackers.siamrpn.anchors`.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from trackers.siamrpn.config import SiamRPNConfig

# Largest |dw|, |dh| that decode() exponentiates: a proposal at most e^4.135 ~ 62x an
# anchor's side. Not in the paper: an untrained (or diverging) network can emit deltas
# whose exp() overflows to inf and turns the whole pipeline into NaN. Same bound as
# the Faster R-CNN implementations' box coder (log(1000 / 16)).
DELTA_CLIP = math.log(1000.0 / 16.0)

IGNORE, NEGATIVE, POSITIVE = -1, 0, 1


def encode(anchors: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
    """Eq. 3: the normalised distance from each anchor to the ground truth.

    d0 = (Tx - Ax) / Aw, d1 = (Ty - Ay) / Ah, d2 = ln(Tw / Aw), d3 = ln(Th / Ah).
    ``gt`` broadcasts against ``anchors`` (one box for all anchors, or one each).
    """
    gt = gt.to(anchors.dtype).expand_as(anchors)
    return torch.stack(
        (
            (gt[..., 0] - anchors[..., 0]) / anchors[..., 2],
            (gt[..., 1] - anchors[..., 1]) / anchors[..., 3],
            torch.log(gt[..., 2] / anchors[..., 2]),
            torch.log(gt[..., 3] / anchors[..., 3]),
        ),
        dim=-1,
    )


def decode(anchors: torch.Tensor, deltas: torch.Tensor, clip: float = DELTA_CLIP) -> torch.Tensor:
    """Eq. 12: proposals from anchors and regression outputs, the inverse of eq. 3.

    x = xa + dx * wa, y = ya + dy * ha, w = wa * e^dw, h = ha * e^dh. ``dw`` and ``dh``
    are clipped to ``[-clip, clip]`` first (see DELTA_CLIP; deviation for robustness).
    """
    deltas = deltas.to(anchors.dtype)
    dw = deltas[..., 2].clamp(-clip, clip)
    dh = deltas[..., 3].clamp(-clip, clip)
    return torch.stack(
        (
            anchors[..., 0] + deltas[..., 0] * anchors[..., 2],
            anchors[..., 1] + deltas[..., 1] * anchors[..., 3],
            anchors[..., 2] * torch.exp(dw),
            anchors[..., 3] * torch.exp(dh),
        ),
        dim=-1,
    )


def box_iou(boxes: torch.Tensor, box: torch.Tensor) -> torch.Tensor:
    """IoU of each ``cx, cy, w, h`` box with one box, as a tensor op over every anchor.

    The rule is ``trackers.evaluation.metrics.iou``'s (continuous areas, zero union gives 0);
    it stays a torch op because anchors are labelled in batches on the training device.
    """
    box = box.to(boxes.dtype)
    x0 = torch.maximum(boxes[..., 0] - boxes[..., 2] / 2, box[0] - box[2] / 2)
    y0 = torch.maximum(boxes[..., 1] - boxes[..., 3] / 2, box[1] - box[3] / 2)
    x1 = torch.minimum(boxes[..., 0] + boxes[..., 2] / 2, box[0] + box[2] / 2)
    y1 = torch.minimum(boxes[..., 1] + boxes[..., 3] / 2, box[1] + box[3] / 2)
    inter = (x1 - x0).clamp(min=0) * (y1 - y0).clamp(min=0)
    union = boxes[..., 2] * boxes[..., 3] + box[2] * box[3] - inter
    return torch.where(union > 0, inter / union.clamp(min=1e-12), torch.zeros_like(inter))


def sample_labels(
    ious: torch.Tensor,
    *,
    positive_iou: float = 0.6,
    negative_iou: float = 0.3,
    max_positives: int = 16,
    total: int = 64,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Section 3.3: label anchors 1 (positive), 0 (negative) or -1 (not sampled).

    Positives have IoU > th_hi = 0.6, negatives IoU < th_lo = 0.3; at most 16 positives
    and 64 samples in all per pair, drawn at random (seeded by ``generator``). Negatives
    fill what the positives leave of the 64; ``generator`` is a CPU generator. Unlike
    Faster R-CNN we do not promote the best-matching anchor to positive when none passes
    0.6: the paper does not, and such a pair then trains the classifier on negatives only.
    """
    flat = ious.reshape(-1)
    labels = torch.full(flat.shape, IGNORE, dtype=torch.long, device=flat.device)
    positives = torch.nonzero(flat > positive_iou).flatten()
    negatives = torch.nonzero(flat < negative_iou).flatten()

    def pick(index: torch.Tensor, count: int) -> torch.Tensor:
        if index.numel() <= count:
            return index
        order = torch.randperm(index.numel(), generator=generator, device="cpu").to(index.device)
        return index[order[:count]]

    positives = pick(positives, max_positives)
    negatives = pick(negatives, total - positives.numel())
    labels[positives] = POSITIVE
    labels[negatives] = NEGATIVE
    return labels.reshape(ious.shape)


def anchor_targets(
    anchors: torch.Tensor,
    gt: torch.Tensor,
    config: SiamRPNConfig | None = None,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Labels (A,) and eq. 3 regression targets (A, 4) for one pair.

    ``anchors`` is ``(..., 4)`` (flattened to A rows), ``gt`` the target box ``(4,)`` in
    the same search-image pixels.
    """
    cfg = config or SiamRPNConfig()
    flat = anchors.reshape(-1, 4)
    labels = sample_labels(
        box_iou(flat, gt),
        positive_iou=cfg.positive_iou,
        negative_iou=cfg.negative_iou,
        max_positives=cfg.max_positives,
        total=cfg.samples_per_pair,
        generator=generator,
    )
    return labels, encode(flat, gt)


def flatten_outputs(
    a_cls: torch.Tensor, a_reg: torch.Tensor, anchor_count: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(N, 2k, S, S), (N, 4k, S, S)`` -> ``(N, k*S*S, 2), (N, k*S*S, 4)`` in anchor order.

    Channel ``2a + c`` is class c of anchor a and ``4a + j`` delta j of anchor a (eq. 10,
    11); the row order matches ``anchors.anchor_grid(...).reshape(-1, 4)``.
    """
    n, _, s, t = a_cls.shape
    k = anchor_count
    cls = a_cls.reshape(n, k, 2, s, t).permute(0, 1, 3, 4, 2).reshape(n, k * s * t, 2)
    reg = a_reg.reshape(n, k, 4, s, t).permute(0, 1, 3, 4, 2).reshape(n, k * s * t, 4)
    return cls, reg


def smooth_l1(x: torch.Tensor, sigma: float = 3.0) -> torch.Tensor:
    """Eq. 4: 0.5 sigma^2 x^2 where |x| < 1 / sigma^2, else |x| - 0.5 / sigma^2."""
    s2 = sigma * sigma
    ax = x.abs()
    return torch.where(ax < 1.0 / s2, 0.5 * s2 * x * x, ax - 0.5 / s2)


def rpn_loss(
    a_cls: torch.Tensor,
    a_reg: torch.Tensor,
    labels: torch.Tensor,
    reg_targets: torch.Tensor,
    *,
    reg_weight: float = 1.0,
    sigma: float = 3.0,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Eq. 5: loss = L_cls + lambda * L_reg; returns ``(loss, L_cls, L_reg)``.

    ``a_cls``, ``a_reg``: network outputs (N, 2k, S, S), (N, 4k, S, S); ``labels``
    (N, A) from sample_labels; ``reg_targets`` (N, A, 4) from encode.

    L_cls is the cross-entropy (softmax over background / foreground, section 3.2)
    averaged over the sampled anchors. L_reg is eq. 6, the sum over the four
    coordinates of eq. 4, averaged over the positive anchors (only positives have a
    box to regress to; the paper does not state the normalisation, this is the
    released-code practice). A batch without positives has L_reg = 0.
    """
    k = a_cls.shape[1] // 2
    cls, reg = flatten_outputs(a_cls, a_reg, k)
    labels = labels.reshape(cls.shape[0], -1)
    reg_targets = reg_targets.reshape(reg.shape).to(reg.dtype)

    sampled = labels >= 0
    if bool(sampled.any()):
        l_cls = F.cross_entropy(cls[sampled], labels[sampled])
    else:
        l_cls = cls.sum() * 0.0
    positive = labels == POSITIVE
    if bool(positive.any()):
        l_reg = smooth_l1(reg[positive] - reg_targets[positive], sigma).sum(dim=-1).mean()
    else:
        l_reg = reg.sum() * 0.0
    return l_cls + reg_weight * l_reg, l_cls, l_reg
