"""The SiamFC tracker of sections 2.4 and 4.1, read top to bottom as the algorithm."""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from trackers.config import config_from_mapping, config_to_dict
from trackers.geometry import crop_square, exemplar_extent, frame_mean_colour
from trackers.inference import (
    Embedding,
    FrameCrops,
    autocast,
    crop_batch,
    fold_batchnorm,
    precision_name,
    resolve_precision,
)
from trackers.protocol import TrackerError
from trackers.siamfc.config import PRESETS, SiamFCConfig
from trackers.siamfc.network import ARCHITECTURE, AlexNetEmbedding, SiamFCNet, init_weights
from trackers.siamfc.search import (
    choose_scale,
    damped_scale,
    hann_window,
    peak_displacement,
    score_region,
    upsample_maps,
    windowed_peak,
)
from trackers.timing import Stopwatch
from trackers.types import Box, Frame, ScoreMap, TrackResult
from trackers.weights import choose_device, load_into, load_or_random


def fast_embedding(net: SiamFCNet, device: torch.device, dtype: torch.dtype | None) -> Embedding | None:
    """SiamFC's embedding as :class:`Embedding` runs it, or None for a network whose
    ``embed`` is not the plain AlexNet (a test double), which then runs as it is."""
    embedding = getattr(net, "embedding", None)
    if type(net).embed is not SiamFCNet.embed or type(embedding) is not AlexNetEmbedding:
        return None
    # AlexNetEmbedding.forward is conv5(conv4(conv3(conv2(conv1(x))))): its blocks in order
    return Embedding(list(embedding.named_children()), device, dtype)


def default_weights_path() -> Path:
    """Where the weights trained by ``training/`` are bundled."""
    from resources import WEIGHTS_DIR

    return WEIGHTS_DIR / "siamfc.pt"


class SiamFCTracker:
    def __init__(
        self,
        config: SiamFCConfig,
        net: SiamFCNet,
        device: torch.device,
        *,
        name: str = "siamfc",
        untrained: bool = False,
    ) -> None:
        self.name = name
        self.config = config
        self.device = device
        self.untrained = untrained
        # The tracker's network is for inference only: batch norm is folded into the convs
        # in place, so its state_dict is no longer a training checkpoint's.
        self.net = fold_batchnorm(net.to(device).eval())
        self._dtype = resolve_precision(config.precision, device)
        self._embedding = fast_embedding(self.net, device, self._dtype)
        self.precision = (
            self._embedding.precision if self._embedding is not None else precision_name(self._dtype)
        )
        self._scale_factors = np.asarray(config.scale_factors(), dtype=np.float64)
        self._window = hann_window(config.upsampled_size)
        self._exemplar_features: torch.Tensor | None = None
        self.stopwatch = Stopwatch()
        # None: crop on the device when it is a GPU (FrameCrops); tests force True on a CPU
        self.crop_on_device: bool | None = None

    # ----------------------------------------------------------------- building
    @classmethod
    def create(
        cls,
        preset: str = "siamfc",
        *,
        weights: str | Path | None = None,
        device: str = "auto",
        config: Mapping[str, Any] | None = None,
    ) -> SiamFCTracker:
        if preset not in PRESETS:
            raise TrackerError(f"unknown SiamFC preset {preset!r}")
        cfg = config_from_mapping(SiamFCConfig, config, base=PRESETS[preset])
        torch_device = choose_device(device)
        net = SiamFCNet(score_scale=cfg.score_scale)
        untrained = load_or_random(
            net,
            weights=weights,
            default_path=default_weights_path(),
            name=preset,
            init=init_weights,
            load=lambda module, path: load_into(module, path, ARCHITECTURE, "SiamFC"),
        )
        return cls(cfg, net, torch_device, name=preset, untrained=untrained)

    def config_dict(self) -> dict[str, Any]:
        return config_to_dict(self.config)

    # ----------------------------------------------------------------- tracking
    @torch.inference_mode()
    def init(self, frame: Frame, box: Box) -> None:
        self.prepare(frame, box)
        if self._embedding is not None and self._embedding.precision == "int8":
            # int8 activation ranges from this video's first search regions
            self._embedding.calibrate(self.first_search_images(frame))
        self.learn_exemplar(frame)

    # The phases of init and update, for ``trackers.batch``: several trackers that share
    # one network (see ``spawn``) run their search regions through it as one batch.
    def spawn(self) -> SiamFCTracker:
        """A tracker for another object that shares this one's network (and int8 ranges)."""
        twin = copy.copy(self)
        twin.stopwatch = Stopwatch()
        twin._exemplar_features = None
        return twin

    def batch_key(self) -> object:
        """Trackers with the same key can run their search regions as one batch."""
        return ("siamfc", id(self.net), id(self._embedding))

    @torch.inference_mode()
    def prepare(self, frame: Frame, box: Box) -> None:
        """The part of init that needs no network: sizes, centre, mean colour."""
        if not box.is_valid():
            raise ValueError(f"the initial box must have a positive size and finite values, got {box}")
        cfg = self.config
        self._frame_size = (frame.shape[1], frame.shape[0])
        self._center = np.array(box.center(), dtype=np.float64)
        self._target_size = np.array([box.w, box.h], dtype=np.float64)

        # exemplar and search region sizes (eq. 7): s(w+2p) x s(h+2p) = A, p = (w+h)/4
        self._exemplar_extent = exemplar_extent(box.w, box.h, cfg.context)
        self._search_extent = self._exemplar_extent * cfg.search_size / cfg.exemplar_size
        self._min_size = 0.1 * self._target_size
        self._max_size = np.array(self._frame_size, dtype=np.float64)

        # mean colour, used to pad crops that leave the frame (section 2.2, Fig. 2)
        self._fill = frame_mean_colour(frame)

    def first_search_images(self, frame: Frame) -> torch.Tensor:
        return self._search_images(frame, self._search_extent * self._scale_factors)

    @property
    def embedding(self) -> Embedding | None:
        return self._embedding

    @torch.inference_mode()
    def learn_exemplar(self, frame: Frame) -> None:
        # exemplar features, computed once and reused on every frame (section 4.1)
        size = self.config.exemplar_size
        exemplar = crop_square(frame, *self._center, self._exemplar_extent, size, self._fill)
        self._exemplar_features = self._embed(crop_batch(exemplar[None], self.device))

    @torch.inference_mode()
    def update(self, frame: Frame) -> TrackResult:
        self.stopwatch.start()
        extents, search_images = self.search(frame)
        self.stopwatch.lap("crop")
        result = self.finish(extents, self._embed(search_images))
        return result

    @torch.inference_mode()
    def search(self, frame: Frame, crops: FrameCrops | None = None) -> tuple[np.ndarray, torch.Tensor]:
        """Every scale's search region, one batch (sections 2.1, 2.2)."""
        if self._exemplar_features is None:
            raise RuntimeError("update() before init()")
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

        # peak scale: every scale change is penalised (section 2.4)
        scale_id = choose_scale(upsampled, cfg.scale_penalty)

        # cosine window added to the normalised score map (section 2.4)
        row, col, response = windowed_peak(upsampled[scale_id], self._window, cfg.window_influence)
        peak_score = float(upsampled[scale_id, row, col])

        # displacement: the peak's offset from the centre, times the stride (sections 2.1,
        # 2.2), mapped from up-sampled map to search image to frame pixels
        previous_center = self._center.copy()
        self._center = self._center + peak_displacement(row, col, extents[scale_id], cfg)

        # scale update by linear interpolation, for damping (section 4.1)
        scale = damped_scale(float(self._scale_factors[scale_id]), cfg.scale_lr)
        self._target_size = np.clip(self._target_size * scale, self._min_size, self._max_size)
        self._exemplar_extent *= scale
        self._search_extent *= scale

        # a target leaving the frame stays at its border instead of running away
        width, height = self._frame_size
        self._center = np.clip(self._center, [0.0, 0.0], [float(width), float(height)])

        box = Box.from_center(*self._center, *self._target_size)
        result = TrackResult(
            box=box,
            score=peak_score if math.isfinite(peak_score) else 0.0,
            score_maps=self._score_maps(previous_center, extents, scores, response, scale_id),
            untrained=self.untrained,
        )
        self.stopwatch.lap("post")
        return result

    def _embed(self, images: torch.Tensor) -> torch.Tensor:
        """phi of a batch of crops, fp32 out, in the configured precision."""
        if self._embedding is not None:
            return self._embedding(images)
        # a network with its own embed (a test double): run it as it is
        with autocast(self.device, self._dtype):
            return self.net.embed(images.float().contiguous(memory_format=torch.channels_last)).float()

    def _search_images(
        self, frame: Frame, extents: np.ndarray, crops: FrameCrops | None = None
    ) -> torch.Tensor:
        """Every scale's search region as one batch on the network's device (on a GPU the
        frame is uploaded once and all scales are cut there, see ``FrameCrops``)."""
        crops = crops or FrameCrops(frame, self.device, self.crop_on_device)
        return crops.squares(*self._center, extents, self.config.search_size, self._fill)

    def _score_maps(
        self,
        center: np.ndarray,
        extents: np.ndarray,
        scores: np.ndarray,
        response: np.ndarray,
        scale_id: int,
    ) -> tuple[ScoreMap, ...]:
        """The chosen, windowed, up-sampled map first, then each scale's raw 17x17 map."""
        maps = [
            ScoreMap(
                values=response,
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
