"""Training SiamRPN (Li et al. 2018, sections 3.3 and 5.1) in the shared loop.

The objective is eq. 5: the cross-entropy of the classification branch plus λ times
the smooth L1 (eq. 4, 6) of the regression branch, on anchors labelled by section
3.3's rules (IoU > 0.6 positive, < 0.3 negative, at most 16 positives of 64 samples
per pair); ``trackers.siamrpn.targets`` holds those pieces, shared with inference.

Section 5.1 starts the backbone from ImageNet and fixes its first three conv layers.
No ImageNet weights can be had here; the nearest thing is our own SiamFC: its Table 1
network is the same AlexNet but for the two groups of conv2, conv4 and conv5, and a
grouped convolution *is* an ungrouped one whose weights are zero between the groups.
So ``load_init`` accepts a SiamFC checkpoint and writes its backbone in exactly
(block-diagonal weights): a SiamRPN that starts with SiamFC's features, which the
training then un-groups as far as it unfreezes layers.

Pairs differ from SiamFC's in one way: the regression must see targets away from the
centre and of varied size, so the search image is translated by up to 48 px and
rescaled by up to 20 % (the released training code shifts by up to 64 px and scales
by 18 %), cut from crops cached with a 64 px margin so the shifted image still shows
the frame rather than fill colour.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from trackers.config import config_to_dict
from trackers.siamfc.network import ARCHITECTURE as SIAMFC_ARCHITECTURE
from trackers.siamrpn.anchors import anchor_grid
from trackers.siamrpn.config import PRESETS, SiamRPNConfig
from trackers.siamrpn.network import ARCHITECTURE, SiamRPNNet, init_weights
from trackers.siamrpn.targets import anchor_targets, encode, flatten_outputs, rpn_loss, smooth_l1
from trackers.weights.checkpoint import WeightsError
from trackers.weights.loading import load_checkpoint
from training.augmentation import Augmentation
from training.config import TrainingError
from training.task import Task, frozen

BACKBONE_LAYERS = ("conv1", "conv2", "conv3", "conv4", "conv5")


def ungroup(weight: torch.Tensor, groups: int) -> torch.Tensor:
    """A grouped conv's ``(out, in / groups, k, k)`` weights as the equivalent ungrouped
    ``(out, in, k, k)``: output group g reads only input group g, zeros elsewhere."""
    out_channels, per_group = weight.shape[:2]
    full = weight.new_zeros((out_channels, per_group * groups, *weight.shape[2:]))
    step = out_channels // groups
    for g in range(groups):
        rows = slice(g * step, (g + 1) * step)
        full[rows, g * per_group : (g + 1) * per_group] = weight[rows]
    return full


def backbone_from_siamfc(siamfc_state: dict[str, torch.Tensor], net: SiamRPNNet) -> None:
    """Write SiamFC's embedding into SiamRPN's backbone, un-grouping conv2, conv4, conv5."""
    target = net.backbone.state_dict()
    mapped: dict[str, torch.Tensor] = {}
    for key, value in target.items():
        source = siamfc_state.get("embedding." + key)
        if source is None:
            raise TrainingError(f"the SiamFC checkpoint has no embedding.{key}")
        source = source.to(value.dtype)
        if source.shape != value.shape:
            groups = value.shape[1] // source.shape[1] if source.dim() == 4 else 0
            if groups < 2 or source.shape[0] != value.shape[0]:
                shapes = f"{tuple(source.shape)} does not fit {tuple(value.shape)}"
                raise TrainingError(f"embedding.{key} {shapes}")
            source = ungroup(source, groups)
        mapped[key] = source
    net.backbone.load_state_dict(mapped, strict=True)


class SiamRPNTask(Task):
    name = "siamrpn"
    architecture = ARCHITECTURE
    method = "SiamRPN, Li et al. 2018 (sections 3.2, 3.3, eq. 3-6, 5.1)"
    search_margin = 64
    distills = True
    # Section 5.1: "learning rate decreased in log space from 10^-2 to 10^-6". Deviation:
    # from 1e-3. At 1e-2 the loss of a fresh RPN on SiamFC features climbed from 0.9 to
    # 2.4 in 40 steps (batch 8, head only); at 1e-3 it fell to 0.25 in 60. We end at
    # 1e-5 like SiamFC because our runs are a few epochs, not 20.
    lr_start = 1e-3
    lr_end = 1e-5
    # Not in the paper: the released training code clips the gradient norm at 10; a
    # fresh RPN on features it did not grow up with gives a few huge early gradients.
    max_grad_norm = 10.0

    def __init__(
        self,
        config: SiamRPNConfig | None = None,
        *,
        freeze_layers: int = 3,
        reg_weight: float | None = None,
        scale_jitter: float = 0.2,
        feature_cache: int = 0,
        freeze_classification: bool = False,
    ) -> None:
        if not 0 <= freeze_layers <= len(BACKBONE_LAYERS):
            raise TrainingError(f"freeze_layers must be 0..{len(BACKBONE_LAYERS)}")
        if reg_weight is not None and reg_weight < 0:
            raise TrainingError("reg_weight (lambda of eq. 5) must be >= 0")
        if not 0.0 <= scale_jitter < 1.0:
            raise TrainingError("scale_jitter must lie in [0, 1)")
        if feature_cache < 0:
            raise TrainingError("feature_cache (pairs) must not be negative")
        if feature_cache and freeze_layers < 1:
            # only what frozen layers compute stays the same from step to step
            raise TrainingError("the feature cache needs frozen backbone layers (freeze_layers >= 1)")
        self.feature_cache = int(feature_cache)
        self.cfg = config or PRESETS["siamrpn"]
        if reg_weight is not None:
            # eq. 5's lambda is a free hyper-parameter in the paper
            self.cfg = dataclasses.replace(self.cfg, reg_weight=float(reg_weight))
        self.scale_jitter = float(scale_jitter)
        self.config = config_to_dict(self.cfg)
        self.freeze_layers = freeze_layers
        self.freeze_classification = bool(freeze_classification)
        self._anchors: dict[torch.device, torch.Tensor] = {}

    def augmentation(self) -> Augmentation:
        return Augmentation(translate_px=48.0, scale=self.scale_jitter)

    def settings(self) -> dict[str, Any]:
        settings = {"freeze_layers": self.freeze_layers, "scale_jitter": self.scale_jitter,
                    "feature_cache": self.feature_cache}
        if self.freeze_classification:  # only when set: runs from before the option keep their settings
            settings["freeze_classification"] = True
        return settings

    def cached_pairs(self, net: nn.Module, pairs: Any, *, role: str, pairs_per_epoch: int,
                     description: dict[str, Any], device: torch.device, dtype: torch.dtype | None,
                     cache_dir: str | Path | None, seed: int, progress: Callable[[str], None],
                     cancel: Any) -> Any:
        """With ``feature_cache`` pairs: what the frozen backbone layers make of that many
        training pairs (of every validation pair), computed once (training/feature_cache.py);
        ``SiamRPNNet.forward`` then takes them in place of images and runs the rest."""
        if not self.feature_cache:
            return pairs
        from training.feature_cache import cache_features

        count = self.feature_cache if role == "train" else len(pairs)
        net.cached_layers = self.freeze_layers
        return cache_features(
            pairs, nn.Sequential(*self._frozen_modules(net)), count=count, pairs_per_epoch=pairs_per_epoch,
            description=description,
            device=device, dtype=dtype, cache_dir=cache_dir, seed=seed, progress=progress, cancel=cancel,
        )

    def build(self, seed: int) -> nn.Module:
        net = SiamRPNNet(anchor_count=len(self.cfg.anchor_ratios))
        init_weights(net, seed=seed)
        # Not in the paper (it does not say how the RPN starts): both branches start
        # small, so the first proposals are near the anchors and the first class scores
        # near even. He-scaled, on SiamFC features, they start at |A_reg| ~ 5 (boxes e^5
        # times an anchor) and the first steps blow up. The regression's 1x1 adjust starts
        # as 0.1 x identity, not near zero: every gradient to the regression convs passes
        # through it, and at 1e-3 they learned nothing in 1500 steps (regression loss flat).
        with torch.no_grad():
            channels = net.rpn.reg_adjust.weight.shape[0]
            net.rpn.reg_adjust.weight.copy_(0.1 * torch.eye(channels).reshape(channels, channels, 1, 1))
            net.rpn.reg_adjust.bias.zero_()
            net.rpn.exemplar_cls.weight.mul_(0.1)
        self._freeze(net)
        return net

    def _frozen_modules(self, net: SiamRPNNet) -> list[nn.Module]:
        return [getattr(net.backbone, name) for name in BACKBONE_LAYERS[: self.freeze_layers]]

    def _freeze(self, net: SiamRPNNet) -> None:
        frozen(self._frozen_modules(net))
        if self.freeze_classification:
            # Not in the paper: train the regression branch alone. With the whole backbone frozen
            # too (freeze_layers 5), A_cls, and so which anchor wins, stays exactly as loaded.
            frozen([net.rpn.exemplar_cls, net.rpn.search_cls])

    def load_init(self, net: nn.Module, path: Path) -> str:
        try:
            weights, _meta = load_checkpoint(path, ARCHITECTURE)
        except WeightsError:
            try:
                siamfc, _meta = load_checkpoint(path, SIAMFC_ARCHITECTURE)
            except WeightsError as exc:
                raise TrainingError(f"{path} holds neither SiamRPN nor SiamFC weights ({exc})") from None
            backbone_from_siamfc(siamfc, net)
            return "SiamFC's embedding as the backbone, RPN from scratch"
        try:
            net.load_state_dict(weights, strict=True)
        except RuntimeError as exc:
            first = str(exc).splitlines()[0]
            raise TrainingError(f"{path} does not fit the SiamRPN network: {first}") from None
        return "SiamRPN weights"

    def train_mode(self, net: nn.Module) -> None:
        net.train()
        # Frozen layers keep their batch-norm statistics too (section 5.1 fixes them).
        for module in self._frozen_modules(net):
            module.eval()

    def anchors(self, device: torch.device) -> torch.Tensor:
        if device not in self._anchors:
            grid = anchor_grid(self.cfg).reshape(-1, 4)
            self._anchors[device] = torch.as_tensor(grid, dtype=torch.float32, device=device)
        return self._anchors[device]

    def loss(
        self, net: nn.Module, exemplars: torch.Tensor, searches: torch.Tensor, boxes: torch.Tensor
    ) -> torch.Tensor:
        a_cls, a_reg = net(exemplars, searches)
        return self._own_loss(a_cls, a_reg, boxes)

    def distill_loss(
        self, net: nn.Module, exemplars: torch.Tensor, searches: torch.Tensor, boxes: torch.Tensor,
        teacher: torch.Tensor, weight: float,
    ) -> torch.Tensor:
        """Eq. 5 plus a distillation term (not in the paper; ``training.distill``).

        NanoTrack predicts a box from every cell. Read at our cells (bilinear, as the
        foreground), each anchor gets a soft label: the teacher's foreground at its cell
        times how well the anchor fits the box predicted there (IoU mapped from section
        3.3's 0.3..0.6 band onto 0..1). Anchors on cells the teacher calls target (>0.5)
        and that fit its box (IoU > 0.3) regress to that box (eq. 3 coding, eq. 4's smooth
        L1, weighted by the foreground). This gives the regression dense size and aspect
        targets on every pair, which ground truth alone gave it once per pair.
        """
        from training.distill import resample_matrix, soft_balanced_bce

        a_cls, a_reg = net(exemplars, searches)
        own = self._own_loss(a_cls, a_reg, boxes)
        cfg = self.cfg
        k = len(cfg.anchor_ratios)
        matrix = resample_matrix(cfg.score_size, cfg.total_stride).to(teacher.device)
        maps = matrix @ teacher.float() @ matrix.T  # N x 5 x S x S: foreground, cx, cy, w, h
        foreground = maps[:, 0].clamp(0.0, 1.0)
        cls, reg = flatten_outputs(a_cls.float(), a_reg.float(), k)  # N x (k*S*S) x 2 / 4
        anchors = self.anchors(teacher.device)  # (k*S*S) x 4, anchor-major like flatten_outputs
        n = teacher.shape[0]
        per_cell = maps[:, 1:].permute(0, 2, 3, 1).reshape(n, 1, -1, 4)
        cell_boxes = per_cell.expand(n, k, -1, 4).reshape(n, -1, 4)
        cell_boxes = torch.cat([cell_boxes[..., :2], cell_boxes[..., 2:].clamp(min=1.0)], dim=-1)
        cell_fg = foreground.reshape(n, 1, -1).expand(n, k, -1).reshape(n, -1)
        fit = _pairwise_iou(anchors.expand_as(cell_boxes), cell_boxes)
        band = ((fit - cfg.negative_iou) / (cfg.positive_iou - cfg.negative_iou)).clamp(0.0, 1.0)
        soft = (cell_fg * band).reshape(n, k, cfg.score_size, cfg.score_size)
        logits = (cls[..., 1] - cls[..., 0]).reshape(n, k, cfg.score_size, cfg.score_size)
        l_cls = soft_balanced_bce(logits, soft)
        regress = (cell_fg > 0.5) & (fit > cfg.negative_iou)
        if bool(regress.any()):
            deltas = encode(anchors.expand_as(cell_boxes)[regress], cell_boxes[regress])
            per_anchor = smooth_l1(reg[regress] - deltas, cfg.smooth_l1_sigma).sum(dim=-1)
            l_reg = (per_anchor * cell_fg[regress]).sum() / cell_fg[regress].sum().clamp(min=1e-6)
        else:
            l_reg = reg.sum() * 0.0
        return (1.0 - weight) * own + weight * (l_cls + cfg.reg_weight * l_reg)

    def _own_loss(self, a_cls: torch.Tensor, a_reg: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
        anchors = self.anchors(boxes.device)
        # The 64 samples per pair are drawn at random (section 3.3); seeding the draw by
        # the batch's boxes keeps a run, and a resumed run, reproducible.
        digest = hashlib.sha1(boxes.detach().cpu().numpy().astype(np.float32).tobytes()).digest()
        generator = torch.Generator().manual_seed(int.from_bytes(digest[:4], "little"))
        labels, targets = zip(*(anchor_targets(anchors, box, self.cfg, generator) for box in boxes.float()))
        loss, _l_cls, _l_reg = rpn_loss(
            a_cls.float(), a_reg.float(), torch.stack(labels), torch.stack(targets),
            reg_weight=self.cfg.reg_weight, sigma=self.cfg.smooth_l1_sigma,
        )
        return loss


def _pairwise_iou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """IoU of matching rows of two ``(..., 4)`` arrays of ``cx, cy, w, h`` boxes.

    ``trackers.evaluation.metrics.iou``'s rule (continuous areas, zero union gives 0) as a
    torch op on the training device; the clamp only keeps a zero union finite (inter is 0 then).
    """
    x0 = torch.maximum(a[..., 0] - a[..., 2] / 2, b[..., 0] - b[..., 2] / 2)
    y0 = torch.maximum(a[..., 1] - a[..., 3] / 2, b[..., 1] - b[..., 3] / 2)
    x1 = torch.minimum(a[..., 0] + a[..., 2] / 2, b[..., 0] + b[..., 2] / 2)
    y1 = torch.minimum(a[..., 1] + a[..., 3] / 2, b[..., 1] + b[..., 3] / 2)
    inter = (x1 - x0).clamp(min=0) * (y1 - y0).clamp(min=0)
    union = a[..., 2] * a[..., 3] + b[..., 2] * b[..., 3] - inter
    return inter / union.clamp(min=1e-6)
