"""The SiamFC tracker of sections 2.4 and 4.1, read top to bottom as the algorithm."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from trackers.config import score_cells
from trackers.geometry import crop_square
from trackers.inference.batchnorm import fold_batchnorm
from trackers.inference.crops import FrameCrops, crop_batch
from trackers.inference.embedding import Embedding
from trackers.siamese import PhasedSiameseTracker
from trackers.siamfc.config import PRESETS, SiamFCConfig
from trackers.siamfc.network import ARCHITECTURE, SiamFCNet, init_weights
from trackers.siamfc.scale_state import ScaleSearchState
from trackers.siamfc.search import hann_window, score_region, upsample_maps
from trackers.types import Box, Frame, ScoreMap, TrackResult
from trackers.weights.loading import load_into


def fast_embedding(net: SiamFCNet, device: torch.device, dtype: torch.dtype | None) -> Embedding:
    """SiamFC's embedding as :class:`Embedding` runs it."""
    # AlexNetEmbedding.forward is conv5(conv4(conv3(conv2(conv1(x))))): its blocks in order
    return Embedding(list(net.embedding.named_children()), device, dtype)


def default_weights_path() -> Path:
    """Where the weights trained by ``training/`` are bundled."""
    from resources import WEIGHTS_DIR

    return WEIGHTS_DIR / "siamfc.pt"


def check_score_size(config: SiamFCConfig) -> None:
    """The score map's side follows from the crops (section 2.2: 6x6 exemplar features slid
    over 22x22 search features give 17x17); the up-sampling, window and peak mapping read it
    from ``score_size``, so a search_size without its score_size would misplace every peak."""
    span = config.search_size - config.exemplar_size
    cells = score_cells(config)
    if span % config.total_stride or cells != config.score_size:
        fix = (f"set score_size={cells}" if span % config.total_stride == 0 else
               f"use a search_size of exemplar_size + a multiple of total_stride, e.g. search_size="
               f"{config.exemplar_size + (cells - 1) * config.total_stride} with score_size={cells}")
        raise ValueError(
            f"search_size {config.search_size} with exemplar_size {config.exemplar_size} and "
            f"total_stride {config.total_stride} gives no {config.score_size}x{config.score_size} "
            f"score map: {fix}"
        )


class SiamFCTracker(ScaleSearchState, PhasedSiameseTracker):
    family = "SiamFC"
    presets = PRESETS
    config_class = SiamFCConfig
    default_preset = "siamfc"

    def __init__(
        self,
        config: SiamFCConfig,
        net: SiamFCNet,
        device: torch.device,
        *,
        name: str = "siamfc",
        untrained: bool = False,
        embedding: Embedding | None = None,
    ) -> None:
        """``embedding``: what computes phi (anything with :class:`Embedding`'s call,
        ``precision`` and ``calibrate``); None is the fast one built from ``net``."""
        # The tracker's network is for inference only: batch norm is folded into the convs
        # in place, so its state_dict is no longer a training checkpoint's.
        check_score_size(config)
        net = fold_batchnorm(net.to(device).eval())
        super().__init__(config, net, device, name=name, untrained=untrained)
        self._use_embedding(embedding or fast_embedding(self.net, device, self._dtype))
        self._scale_factors = np.asarray(config.scale_factors(), dtype=np.float64)
        self._window = hann_window(config.upsampled_size)
        self._exemplar_features: torch.Tensor | None = None

    # ----------------------------------------------------------------- building
    @classmethod
    def default_weights(cls) -> Path:
        return default_weights_path()

    @classmethod
    def build_net(cls, config: SiamFCConfig) -> SiamFCNet:
        return SiamFCNet(score_scale=config.score_scale)

    @classmethod
    def init_net(cls, net: torch.nn.Module) -> None:
        init_weights(net)

    @classmethod
    def load_net(cls, net: torch.nn.Module, path: Path) -> None:
        load_into(net, path, ARCHITECTURE, "SiamFC")

    # ----------------------------------------------------------------- tracking
    # init and update are PhasedSiameseTracker's, from the phases below; several trackers
    # that share one network (see ``spawn``) run their search regions through it as one
    # batch (``trackers.batch``).
    @torch.inference_mode()
    def prepare(self, frame: Frame, box: Box) -> None:
        """The part of init that needs no network: sizes, centre, mean colour."""
        self._start(frame, box)
        self._start_extents(box, self.config)  # eq. 7

    def first_search_images(self, frame: Frame) -> torch.Tensor:
        return self._search_images(frame, self._search_extent * self._scale_factors)

    @torch.inference_mode()
    def learn_exemplar(self, frame: Frame) -> None:
        # exemplar features, computed once and reused on every frame (section 4.1)
        size = self.config.exemplar_size
        exemplar = crop_square(frame, *self._center, self._exemplar_extent, size, self._fill)
        self._exemplar_features = self._embed(crop_batch(exemplar[None], self.device))

    def _forget_exemplar(self) -> None:
        self._exemplar_features = None

    @torch.inference_mode()
    def search(self, frame: Frame, crops: FrameCrops | None = None) -> tuple[np.ndarray, torch.Tensor]:
        """Every scale's search region, one batch (sections 2.1, 2.2)."""
        self._require_init(self._exemplar_features)
        extents = self._search_extent * self._scale_factors
        return extents, self._search_images(frame, extents, crops)

    @torch.inference_mode()
    def finish(self, extents: np.ndarray, search_features: torch.Tensor) -> TrackResult:
        """The rest of update, from the search regions' features on."""
        cfg = self.config
        assert self._exemplar_features is not None
        # the correlation sums 9216 products per cell: fp32 keeps the peak where it is
        scores = self.net.score(self._exemplar_features, search_features)
        scores = scores[:, 0].float().cpu().numpy()
        self.stopwatch.lap("network")

        # bicubic up-sampling 17 -> 272 (section 4.1)
        upsampled = upsample_maps(scores, cfg.upsampled_size)

        # peak scale (every scale change penalised) and the windowed peak (section 2.4), the
        # centre moved to it (sections 2.1, 2.2) and the damped scale update (section 4.1)
        previous_center = self._center.copy()
        scale_id, row, col, windowed = self._follow_peak(upsampled, extents, cfg)
        peak_score = float(upsampled[scale_id, row, col])

        box = self._keep_in_frame(self._min_size, self._max_size)
        result = TrackResult(
            box=box,
            score=peak_score if math.isfinite(peak_score) else 0.0,
            score_maps=self._score_maps(previous_center, extents, scores, windowed, scale_id),
            untrained=self.untrained,
        )
        self.stopwatch.lap("post")
        return result

    def _search_images(
        self, frame: Frame, extents: np.ndarray, crops: FrameCrops | None = None
    ) -> torch.Tensor:
        """Every scale's search region as one batch on the network's device (on a GPU the
        frame is uploaded once and all scales are cut there, see ``FrameCrops``)."""
        return self._crop(crops or self._frame_crops(frame), extents, self.config.search_size)

    def _score_maps(
        self,
        center: np.ndarray,
        extents: np.ndarray,
        scores: np.ndarray,
        windowed: np.ndarray,
        scale_id: int,
    ) -> tuple[ScoreMap, ...]:
        """The chosen, windowed, up-sampled map first, then each scale's raw 17x17 map."""
        maps = [
            ScoreMap(
                values=windowed,
                region=score_region(center, float(extents[scale_id]), self.config),
                label=f"chosen scale {self._scale_factors[scale_id]:.4f}, windowed",
            )
        ]
        for factor, extent, values in zip(self._scale_factors, extents, scores):
            maps.append(
                ScoreMap(
                    values=values.astype(np.float32),
                    region=score_region(center, float(extent), self.config),
                    label=f"scale {factor:.4f}",
                )
            )
        return tuple(maps)
