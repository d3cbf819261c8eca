"""The SiamRPN tracker: tracking as local one-shot detection (section 4), top to bottom.

init: crop the exemplar (eq. 15), run the exemplar branch once and keep its output (the
paper's "detection kernels", sections 4.1, 4.2, Fig. 3).
update: crop the detection patch, run the detection branch only, decode every anchor's
proposal (eq. 12), keep the centre g x g cells, re-rank by score x shape penalty (eq.
13, 14) mixed with a cosine window, take the best and smooth the size (section 4.3).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
from numpy.typing import NDArray

from trackers.geometry import crop_square, exemplar_extent
from trackers.inference.crops import FrameCrops, crop_batch
from trackers.inference.embedding import Embedding
from trackers.siamese import PhasedSiameseTracker
from trackers.siamrpn.anchors import anchor_grid, center_mask, cosine_window
from trackers.siamrpn.config import PRESETS, SiamRPNConfig
from trackers.siamrpn.network import ARCHITECTURE, RPNExemplar, SiamRPNNet, init_weights
from trackers.siamrpn.targets import decode
from trackers.types import Box, Frame, ScoreMap, TrackResult
from trackers.weights.loading import load_into


def default_weights_path() -> Path:
    """Where the weights trained by ``training/`` are bundled."""
    from resources import WEIGHTS_DIR

    return WEIGHTS_DIR / "siamrpn.pt"


def fast_backbone(net: SiamRPNNet, device: torch.device, dtype: torch.dtype | None) -> Embedding:
    """SiamRPN's backbone as :class:`Embedding` runs it."""
    # AlexNetBackbone.forward is conv5(conv4(conv3(conv2(conv1(x))))): its blocks in order
    return Embedding(list(net.backbone.named_children()), device, dtype)


def overall_scale(w: NDArray | float, h: NDArray | float) -> NDArray | float:
    """Eq. 14: s with (w + p)(h + p) = s^2, p = (w + h) / 2."""
    p = (np.asarray(w) + np.asarray(h)) / 2.0
    return np.sqrt((w + p) * (h + p))


def _change(x: NDArray) -> NDArray:
    # max(x, 1/x) of eq. 13: how far a ratio is from 1, either way.
    return np.maximum(x, 1.0 / x)


def shape_penalty(w: NDArray | float, h: NDArray | float, last_w: float, last_h: float, k: float) -> NDArray:
    """Eq. 13's scale-and-ratio change penalty, in the form the score is multiplied by.

    r = h / w and s of eq. 14 for the proposal, r' and s' for the last frame's target.
    Deviation from eq. 13 as printed, e^{k max(r/r', r'/r) max(s/s', s'/s)}: with k > 0
    that factor is >= e^k and grows with the change, so multiplying the score by it would
    favour shape changes, the opposite of what section 4.3 says it is for. We use the
    released code's form e^{-k (max(r/r', r'/r) max(s/s', s'/s) - 1)}: exactly 1 for an
    unchanged box and shrinking as scale or ratio change (the printed form with k -> -k,
    times the constant e^k so that no change means no penalty).
    """
    w = np.asarray(w, dtype=np.float64)
    h = np.asarray(h, dtype=np.float64)
    ratio_change = _change((h / w) / (last_h / last_w))
    scale_change = _change(overall_scale(w, h) / overall_scale(last_w, last_h))
    return np.exp(-k * (ratio_change * scale_change - 1.0))


class SiamRPNTracker(PhasedSiameseTracker):
    family = "SiamRPN"
    presets = PRESETS
    config_class = SiamRPNConfig
    default_preset = "siamrpn"

    def __init__(
        self,
        config: SiamRPNConfig,
        net: SiamRPNNet,
        device: torch.device,
        *,
        name: str = "siamrpn",
        untrained: bool = False,
        embedding: Embedding | None = None,
    ) -> None:
        """``embedding``: what computes the backbone's features (anything with
        :class:`Embedding`'s call, ``precision`` and ``calibrate``); None is the fast one
        built from ``net``. The network's backbone module keeps its weights (checkpoints,
        training); the tracker runs the embedding instead: folded batch norm, bf16 or int8
        (trackers/inference/), and the RPN after it in fp32."""
        if net.anchor_count != config.anchor_count:
            raise ValueError(f"network has {net.anchor_count} anchors, config {config.anchor_count}")
        super().__init__(config, net.to(device).eval(), device, name=name, untrained=untrained)
        self._use_embedding(embedding or fast_backbone(self.net, device, self._dtype))
        s = config.score_size
        # (k, S, S, 4) anchors in search-image pixels; decoding happens on the CPU in float64.
        self._anchors = torch.from_numpy(anchor_grid(config))
        # Cosine window tiled over the k anchors (section 4.3, released code).
        self._window = np.broadcast_to(cosine_window(s), (config.anchor_count, s, s))
        # Section 4.3, first strategy: anchors outside the centre g x g cells are discarded.
        self._keep = np.broadcast_to(center_mask(s, config.center_size), (config.anchor_count, s, s))
        self._exemplar: RPNExemplar | None = None

    # ----------------------------------------------------------------- building
    @classmethod
    def default_weights(cls) -> Path:
        return default_weights_path()

    @classmethod
    def build_net(cls, config: SiamRPNConfig) -> SiamRPNNet:
        return SiamRPNNet(anchor_count=config.anchor_count)

    @classmethod
    def init_net(cls, net: torch.nn.Module) -> None:
        init_weights(net)

    @classmethod
    def load_net(cls, net: torch.nn.Module, path: Path) -> None:
        load_into(net, path, ARCHITECTURE, "SiamRPN")

    # ----------------------------------------------------------------- tracking
    def _search_region(self, frame: Frame, extent: float, crops: FrameCrops | None = None) -> torch.Tensor:
        """The detection patch as a batch of one on the network's device (on a GPU cut
        there from the uploaded frame, see ``FrameCrops``)."""
        return self._crop(crops or self._frame_crops(frame), extent, self.config.search_size)

    def _search_extent(self) -> float:
        # Eq. 15 square around the current target, doubled (section 5.1: the detection
        # patch has "double the size of the template patch"), i.e. scaled 255 / 127.
        w, h = self._target_size
        return (
            exemplar_extent(w, h, self.config.context) * self.config.search_size / self.config.exemplar_size
        )

    # init and update are PhasedSiameseTracker's, from the phases below (as SiamFC's):
    # trackers that share one network (``spawn``) run their detection patches through the
    # backbone as one batch; each then correlates with its own exemplar.
    def _forget_exemplar(self) -> None:
        self._exemplar = None

    def first_search_images(self, frame: Frame) -> torch.Tensor:
        return self._search_region(frame, self._search_extent())

    @torch.inference_mode()
    def prepare(self, frame: Frame, box: Box) -> None:
        """The part of init that needs no network."""
        self._start(frame, box)
        # Released code keeps the size >= 10 px; a smaller initial box is not inflated.
        self._min_size = min(self.config.min_size, box.w, box.h)
        self._box = box

    @torch.inference_mode()
    def learn_exemplar(self, frame: Frame) -> None:
        cfg, box = self.config, self._box
        # Exemplar (the paper's "template patch"): A x A of eq. 15 resized to 127 (section 5.1).
        extent = exemplar_extent(box.w, box.h, cfg.context)
        exemplar = crop_square(frame, *self._center, extent, cfg.exemplar_size, self._fill)
        # One-shot detection (sections 4.1, 4.2): the exemplar branch runs once, here;
        # update() never runs it again.
        # uint8: the embedding casts it once
        self._exemplar = self.net.rpn.exemplar_branch(self._embed(crop_batch(exemplar[None], self.device)))

    @torch.inference_mode()
    def search(self, frame: Frame, crops: FrameCrops | None = None) -> tuple[float, torch.Tensor]:
        """The detection patch around the last position (section 5.1), a batch of one."""
        self._require_init(self._exemplar)
        search_extent = self._search_extent()
        return search_extent, self._search_region(frame, search_extent, crops)

    @torch.inference_mode()
    def finish(self, search_extent: float, features: torch.Tensor) -> TrackResult:
        """The rest of update, from the detection patch's backbone features on: the RPN
        with this object's exemplar (``net.detect`` without its backbone), then the box."""
        assert self._exemplar is not None
        a_cls, a_reg = self.net.rpn(self._exemplar, features)
        return self._decide(search_extent, a_cls, a_reg)

    def _decide(self, search_extent: float, a_cls: torch.Tensor, a_reg: torch.Tensor) -> TrackResult:
        cfg = self.config
        k, s = cfg.anchor_count, cfg.score_size
        centre = cfg.search_size / 2.0
        scale = cfg.search_size / search_extent  # search pixels per frame pixel
        # both outputs in one device-to-host copy: the frame's only synchronisation
        host = torch.cat([a_cls[0].float().reshape(-1), a_reg[0].float().reshape(-1)]).cpu()
        host = host.to(torch.float64)
        self.stopwatch.lap("network")

        # Foreground probability: softmax over each anchor's (background, foreground)
        # pair, the odd channel being the foreground (section 4.2, eq. 10).
        logits = host[: 2 * k * s * s].reshape(k, 2, s, s)
        foreground = torch.softmax(logits, dim=1)[:, 1].numpy()
        foreground = np.nan_to_num(foreground, nan=0.0)

        # Every anchor's proposal (eq. 11, 12), in search-image pixels. Section 4.2 takes
        # the top K by score first; re-ranking all of them is the same with K = k S^2.
        deltas = host[2 * k * s * s :].reshape(k, 4, s, s).permute(0, 2, 3, 1)
        deltas = torch.nan_to_num(deltas, nan=0.0, posinf=0.0, neginf=0.0)
        proposals = decode(self._anchors, deltas).numpy()  # (k, S, S, 4)

        # Second strategy of section 4.3: shape penalty (eq. 13, 14) against the last
        # target size in search pixels, multiplied into the score; then the cosine window,
        # mixed linearly as the released code does (the paper gives no mixing rule).
        last_w, last_h = self._target_size * scale
        penalty = shape_penalty(proposals[..., 2], proposals[..., 3], last_w, last_h, cfg.penalty_k)
        penalty = np.nan_to_num(penalty, nan=0.0)
        ranked = foreground * penalty
        ranked = (1.0 - cfg.window_influence) * ranked + cfg.window_influence * self._window
        # First strategy of section 4.3: only the centre g x g cells may win.
        ranked = np.where(self._keep, ranked, -np.inf)
        # No NMS: it never removes the top-ranked proposal, and only the top one is used.
        best = np.unravel_index(int(np.argmax(ranked)), ranked.shape)
        best_score = float(foreground[best])
        proposal = proposals[best]

        previous_center = self._center.copy()
        previous_extent = search_extent
        if np.all(np.isfinite(proposal)):
            # Displacement from the search centre, back to frame pixels.
            self._center = self._center + (proposal[:2] - centre) / scale
            # "target size is updated by linear interpolation to keep the shape changing
            # smoothly" (section 4.3); released code: rate = penalty x score x lr, so an
            # unsure or much-changed proposal moves the size little.
            rate = float(penalty[best]) * best_score * cfg.lr
            self._target_size = (1.0 - rate) * self._target_size + rate * proposal[2:] / scale

        # A target leaving the frame stays at its border with a usable size.
        box = self._keep_in_frame(self._min_size, np.array(self._frame_size, dtype=np.float64))

        result = TrackResult(
            box=box,
            score=best_score if math.isfinite(best_score) else 0.0,
            score_maps=self._score_maps(previous_center, previous_extent, foreground),
            untrained=self.untrained,
        )
        self.stopwatch.lap("post")
        return result

    def _score_maps(
        self, center: np.ndarray, search_extent: float, foreground: np.ndarray
    ) -> tuple[ScoreMap, ...]:
        """The max over anchors of the foreground probability, then each anchor's map.

        The 17 x 17 cells sit ``stride`` search pixels apart around the search centre, so
        the grid covers 17 * stride search pixels, i.e. that many / scale frame pixels.
        """
        cfg = self.config
        side = cfg.score_size * cfg.total_stride * search_extent / cfg.search_size
        region = Box.from_center(center[0], center[1], side, side)
        maps = [
            ScoreMap(
                values=foreground.max(axis=0).astype(np.float32),
                region=region,
                label="foreground probability, max over anchors",
            )
        ]
        for ratio, values in zip(cfg.anchor_ratios, foreground):
            maps.append(
                ScoreMap(values=values.astype(np.float32), region=region, label=f"anchor ratio h/w {ratio:g}")
            )
        return tuple(maps)
