"""The DSiam network of Fig. 5: SiamFC's embedding, eq. 2 per layer, eq. 9 across layers.

Every learnable quantity of section 3.5 is an ``nn.Parameter`` here (embedding, the
fusion weight maps Υ, λv and λw, and the release's blend rates), and every step from
features to the fused map is differentiable torch code, so a training loop can unroll
tracking over a clip and back-propagate through time into all of them.

The pieces, in the order the tracker uses them::

    feats = net.features(images)             # {"conv4": ..., "conv5": ...}, section 3.6
    v = net.learn_v(first, previous)          # eq. 5-6
    w = net.learn_w(g, g_bar)                 # eq. 7-8
    fused, per_layer = net(exemplar, search, v, w)   # eq. 2, then eq. 9
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import nn

from trackers.dsiam.config import LAYERS, DSiamConfig
from trackers.dsiam.transforms import apply_transform, regularisation, solve_transform
from trackers.siamfc.network import ARCHITECTURE as SIAMFC_ARCHITECTURE
from trackers.siamfc.network import SiamFCNet, cross_correlation
from trackers.weights.checkpoint import WeightsError
from trackers.weights.loading import load_into

ARCHITECTURE = "dsiam-alexnet"

Features = dict[str, torch.Tensor]
"""Layer name -> N x C x h x w features."""

Transforms = Mapping[str, torch.Tensor]
"""Layer name -> C x h x w (or 1 x C x h x w) transformation V or W; a missing layer is off."""


class DSiamNet(nn.Module):
    """f^l (SiamFC's AlexNet), eq. 2 for each layer l, eq. 9 over the active layers.

    The parameters exist for every layer of ``LAYERS`` whichever are active, so one
    ``dsiam-alexnet`` checkpoint serves both presets.
    """

    def __init__(
        self,
        layers: tuple[str, ...] = ("conv5",),
        *,
        score_scale: float = 0.001,
        score_size: int = 17,
        lambda_v: float = 1e-5,
        lambda_w: float = 10.0,
        v_rate: float = 0.49,
        w_rate: float = 0.29,
    ) -> None:
        super().__init__()
        if not layers or any(layer not in LAYERS for layer in layers):
            raise ValueError(f"layers must be a non-empty subset of {LAYERS}, got {layers!r}")
        self.layers = tuple(layer for layer in LAYERS if layer in layers)
        # Section 3.6: "we adopt AlexNet trained by SiamFC as the initialization of f^l".
        self.siamfc = SiamFCNet(score_scale=score_scale)
        count = len(LAYERS)
        # λv, λw of eq. 5 and 7, one per layer (the release has v_lambda/v1_lambda ...),
        # learned by BPTT (section 3.5). Stored as log λ: eq. 3 needs λ > 0, and no SGD
        # step on log λ can break that.
        self.log_lambda_v = nn.Parameter(torch.full((count,), math.log(lambda_v)))
        self.log_lambda_w = nn.Parameter(torch.full((count,), math.log(lambda_w)))
        # The release's blend rates (see DSiamConfig.v_rate), learnable as it says.
        self.v_rate = nn.Parameter(torch.full((count,), float(v_rate)))
        self.w_rate = nn.Parameter(torch.full((count,), float(w_rate)))
        # Υ^l of eq. 9, before the sum-to-one projection of fusion_weights(). Section 3.6:
        # "we initialize the weight map of 'conv5' to be the matrix of ones and that of
        # 'conv4' to be the matrix of zeros".
        fusion = torch.zeros(count, score_size, score_size)
        fusion[LAYERS.index("conv5")] = 1.0
        self.fusion = nn.Parameter(fusion)
        # conv5's score map uses SiamFC's own 1e-3 scale and bias b (SiamFC eq. 2); conv4's
        # score map needs its own bias (the paper does not say; zero-initialised, learned).
        self.conv4_bias = nn.Parameter(torch.zeros(1))

    @classmethod
    def from_config(cls, config: DSiamConfig) -> DSiamNet:
        return cls(
            config.layers,
            score_scale=config.score_scale,
            score_size=config.score_size,
            lambda_v=config.lambda_v,
            lambda_w=config.lambda_w,
            v_rate=config.v_rate,
            w_rate=config.w_rate,
        )

    # ------------------------------------------------------------------ features
    def features(self, images: torch.Tensor) -> Features:
        """f^l(images) for the active layers: conv1..conv4, then conv5 on top of conv4.

        conv4 is taken after its ReLU (the release's 'a_relu4'); conv5 is SiamFC's output.
        127 -> conv4 8x8x384, conv5 6x6x256; 255 -> conv4 24x24x384, conv5 22x22x256.
        """
        emb = self.siamfc.embedding
        conv4 = emb.conv4(emb.conv3(emb.conv2(emb.conv1(images))))
        out: Features = {}
        if "conv4" in self.layers:
            out["conv4"] = conv4
        if "conv5" in self.layers:
            out["conv5"] = emb.conv5(conv4)
        return out

    # ------------------------------------------------- fast transformation learning
    def lambda_v(self, layer: str) -> torch.Tensor:
        return self.log_lambda_v[LAYERS.index(layer)].exp()

    def lambda_w(self, layer: str) -> torch.Tensor:
        return self.log_lambda_w[LAYERS.index(layer)].exp()

    def set_hyperparameters(
        self,
        *,
        lambda_v: float | None = None,
        lambda_w: float | None = None,
        v_rate: float | None = None,
        w_rate: float | None = None,
    ) -> None:
        """Overwrite λ or rates for every layer (e.g. a user override over a checkpoint)."""
        with torch.no_grad():
            if lambda_v is not None:
                self.log_lambda_v.fill_(math.log(lambda_v))
            if lambda_w is not None:
                self.log_lambda_w.fill_(math.log(lambda_w))
            if v_rate is not None:
                self.v_rate.fill_(v_rate)
            if w_rate is not None:
                self.w_rate.fill_(w_rate)

    def learn_v(self, first: Features, previous: Features) -> dict[str, torch.Tensor]:
        """Eq. 5-6: V^l_{t-1} taking f^l(O_1) towards f^l(O_{t-1}), for every active layer."""
        return {
            layer: solve_transform(
                first[layer], previous[layer], regularisation(self.lambda_v(layer), first[layer])
            )
            for layer in self.layers
        }

    def learn_w(self, g: Features, g_bar: Features) -> dict[str, torch.Tensor]:
        """Eq. 7-8: W^l_{t-1} taking f^l(G_{t-1}) towards f^l(Ḡ_{t-1}), for every active layer."""
        return {
            layer: solve_transform(
                g[layer], g_bar[layer], regularisation(self.lambda_w(layer), g[layer])
            )
            for layer in self.layers
        }

    # ------------------------------------------------------------------ score maps
    def score_maps(
        self,
        exemplar: Features,
        search: Features,
        v: Transforms | None = None,
        w: Transforms | None = None,
    ) -> Features:
        """Eq. 2 for each active layer: S^l = corr(V^l * f^l(O_1), W^l * f^l(Z)).

        ``exemplar`` is 1 x C x h x w (tracking: one exemplar for all scales) or
        N x C x h x w (training: one per search region). ``v``/``w`` None, or a layer
        missing from them, is that transformation switched off (section 3.6).
        Returns layer -> N x 1 x 17 x 17.
        """
        out: Features = {}
        for layer in self.layers:
            index = LAYERS.index(layer)
            z = apply_transform(v.get(layer) if v else None, exemplar[layer], self.v_rate[index])
            x = apply_transform(w.get(layer) if w else None, search[layer], self.w_rate[index])
            if layer == "conv5":
                # exactly SiamFC's head (its scale and bias b), so that with V = W = identity
                # DSiam is SiamFC (section 3.1, eq. 1)
                out[layer] = self.siamfc.score(z, x)
            else:
                out[layer] = cross_correlation(z, x) * self.siamfc.score_scale + self.conv4_bias
        return out

    def fusion_weights(self) -> torch.Tensor:
        """Υ^l of eq. 9 for the active layers, L x 17 x 17, summing to one at every cell.

        The constraint sum_l Υ^l = 1 (section 3.3) is kept by projecting the raw maps onto
        it: Υ^l = P^l + (1 - sum_k P^k) / L. The projection is the identity on maps that
        already sum to one (the initial conv5 ones / conv4 zeros, or conv5 alone: all
        ones), and gradients reach every P^l, including conv4's zeros.
        """
        raw = self.fusion[[LAYERS.index(layer) for layer in self.layers]]
        return raw + (1.0 - raw.sum(dim=0, keepdim=True)) / len(self.layers)

    def fuse(self, score_maps: Features) -> torch.Tensor:
        """Eq. 9: S_t = sum_l Υ^l ⊙ S^l_t, elementwise. N x 1 x 17 x 17."""
        weights = self.fusion_weights()
        maps = [score_maps[layer] for layer in self.layers]
        if maps[0].shape[-2:] != weights.shape[-2:]:
            raise ValueError(
                f"{tuple(maps[0].shape[-2:])} score maps do not fit "
                f"{tuple(weights.shape[-2:])} fusion maps"
            )
        fused = weights[0] * maps[0]
        for weight, score_map in zip(weights[1:], maps[1:]):
            fused = fused + weight * score_map
        return fused

    def forward(
        self,
        exemplar: Features,
        search: Features,
        v: Transforms | None = None,
        w: Transforms | None = None,
    ) -> tuple[torch.Tensor, Features]:
        """The fused map (eq. 2 then eq. 9) and each layer's map, N x 1 x 17 x 17."""
        per_layer = self.score_maps(exemplar, search, v, w)
        return self.fuse(per_layer), per_layer


def load_weights(net: DSiamNet, path: str | Path) -> str:
    """Load a ``dsiam-alexnet`` checkpoint into ``net``, or a ``siamfc-alexnet`` one into its
    embedding and head (section 3.6: SiamFC's AlexNet initialises f^l; fusion maps and λ
    keep their initial values). Returns the architecture that was found."""
    try:
        load_into(net, path, ARCHITECTURE, "DSiam")
        return ARCHITECTURE
    except WeightsError:
        try:
            load_into(net.siamfc, path, SIAMFC_ARCHITECTURE, "DSiam")
        except WeightsError as exc:
            raise WeightsError(
                f"{exc} (DSiam takes {ARCHITECTURE!r} or {SIAMFC_ARCHITECTURE!r} weights)"
            ) from None
        return SIAMFC_ARCHITECTURE
