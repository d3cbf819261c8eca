"""The SiamFC tracker of sections 2.4 and 4.1, read top to bottom as the algorithm."""

from __future__ import annotations

import math
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch

from trackers.config import config_from_mapping, config_to_dict
from trackers.geometry import crop_square, exemplar_extent, frame_mean_colour
from trackers.protocol import TrackerError
from trackers.siamfc.config import PRESETS, SiamFCConfig
from trackers.siamfc.network import ARCHITECTURE, SiamFCNet, init_weights
from trackers.types import Box, Frame, ScoreMap, TrackResult
from trackers.weights import choose_device, load_checkpoint


def default_weights_path() -> Path:
    """Where the weights trained by ``training/`` are bundled."""
    from resources import WEIGHTS_DIR

    return WEIGHTS_DIR / "siamfc.pt"


def damped_scale(factor: float, scale_lr: float) -> float:
    """Section 4.1: the new scale is a linear interpolation between 1 and the peak's scale."""
    return (1.0 - scale_lr) + scale_lr * factor


def _hann_window(size: int) -> np.ndarray:
    # Section 2.4: a cosine window penalising large displacements, normalised to sum 1
    # so that it mixes with the normalised score map on the same footing.
    window = np.outer(np.hanning(size), np.hanning(size))
    return (window / window.sum()).astype(np.float32)


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
        self.net = net.to(device).eval()
        self._scale_factors = np.asarray(config.scale_factors(), dtype=np.float64)
        self._window = _hann_window(config.upsampled_size)
        self._exemplar_features: torch.Tensor | None = None

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
        path = Path(weights) if weights is not None else default_weights_path()
        untrained = weights is None and not path.is_file()
        if untrained:
            init_weights(net)
            print(
                f"WARNING: {preset} has no trained weights ({path} is missing): it runs on RANDOM "
                "weights and its boxes mean little. Train some with `siamtrack train`.",
                file=sys.stderr,
            )
        else:
            state, _meta = load_checkpoint(path, ARCHITECTURE)
            try:
                net.load_state_dict(state, strict=True)
            except RuntimeError as exc:
                raise TrackerError(f"{path} does not fit the SiamFC network: {str(exc).splitlines()[0]}") from None
        return cls(cfg, net, torch_device, name=preset, untrained=untrained)

    def config_dict(self) -> dict[str, Any]:
        return config_to_dict(self.config)

    # ----------------------------------------------------------------- tracking
    def _to_tensor(self, crops: np.ndarray) -> torch.Tensor:
        # RGB 0..255, as the network was trained; channels_last suits the CPU conv kernels.
        tensor = torch.from_numpy(crops).to(self.device).permute(0, 3, 1, 2).float()
        return tensor.contiguous(memory_format=torch.channels_last)

    @torch.inference_mode()
    def init(self, frame: Frame, box: Box) -> None:
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

        # exemplar features, computed once and reused on every frame (section 4.1)
        exemplar = crop_square(frame, *self._center, self._exemplar_extent, cfg.exemplar_size, self._fill)
        self._exemplar_features = self.net.embed(self._to_tensor(exemplar[None]))

    @torch.inference_mode()
    def update(self, frame: Frame) -> TrackResult:
        if self._exemplar_features is None:
            raise RuntimeError("update() before init()")
        cfg = self.config
        up = cfg.upsampled_size

        # search images at every scale, one batch, one forward pass (sections 2.1, 2.2)
        extents = self._search_extent * self._scale_factors
        crops = np.stack(
            [crop_square(frame, *self._center, e, cfg.search_size, self._fill) for e in extents]
        )
        search_features = self.net.embed(self._to_tensor(crops))
        scores = self.net.score(self._exemplar_features, search_features)
        scores = scores[:, 0].float().cpu().numpy()

        # bicubic up-sampling 17 -> 272 (section 4.1)
        upsampled = np.stack(
            [cv2.resize(s, (up, up), interpolation=cv2.INTER_CUBIC) for s in scores]
        )

        # peak scale: every scale change is penalised (section 2.4)
        middle = cfg.scale_count // 2
        penalties = np.full(cfg.scale_count, cfg.scale_penalty, dtype=np.float32)
        penalties[middle] = 1.0
        scale_id = int(np.argmax(upsampled.reshape(cfg.scale_count, -1).max(axis=1) * penalties))

        # cosine window added to the normalised score map (section 2.4)
        response = upsampled[scale_id] - upsampled[scale_id].min()
        response /= response.sum() + 1e-16
        response = (1.0 - cfg.window_influence) * response + cfg.window_influence * self._window
        row, col = np.unravel_index(int(np.argmax(response)), response.shape)
        peak_score = float(upsampled[scale_id, row, col])

        # displacement: the peak's offset from the centre, times the stride (section 2.2),
        # mapped from up-sampled map to search image to frame pixels
        offset = np.array([col, row], dtype=np.float64) - (up - 1) / 2.0
        in_search = offset * cfg.total_stride / cfg.upsample
        in_frame = in_search * extents[scale_id] / cfg.search_size
        previous_center = self._center.copy()
        self._center = self._center + in_frame

        # scale update by linear interpolation, for damping (section 4.1)
        scale = damped_scale(float(self._scale_factors[scale_id]), cfg.scale_lr)
        self._target_size = np.clip(self._target_size * scale, self._min_size, self._max_size)
        self._exemplar_extent *= scale
        self._search_extent *= scale

        # a target leaving the frame stays at its border instead of running away
        width, height = self._frame_size
        self._center = np.clip(self._center, [0.0, 0.0], [float(width), float(height)])

        box = Box.from_center(*self._center, *self._target_size)
        return TrackResult(
            box=box,
            score=peak_score if math.isfinite(peak_score) else 0.0,
            score_maps=self._score_maps(previous_center, extents, scores, response, scale_id),
            untrained=self.untrained,
        )

    def _score_maps(
        self,
        center: np.ndarray,
        extents: np.ndarray,
        scores: np.ndarray,
        response: np.ndarray,
        scale_id: int,
    ) -> tuple[ScoreMap, ...]:
        """The chosen, windowed, up-sampled map first, then each scale's raw 17x17 map.

        A 17x17 map spans 17 * stride search-image pixels around the search centre:
        cell i is the exemplar window centred i * stride pixels right of the first one.
        """
        cfg = self.config
        span = cfg.score_size * cfg.total_stride / cfg.search_size

        def region(extent: float) -> Box:
            return Box.from_center(center[0], center[1], span * extent, span * extent)

        maps = [
            ScoreMap(
                values=response.astype(np.float32),
                region=region(extents[scale_id]),
                label=f"chosen scale {self._scale_factors[scale_id]:.4f}, windowed",
            )
        ]
        for factor, extent, values in zip(self._scale_factors, extents, scores):
            maps.append(ScoreMap(values=values.astype(np.float32), region=region(extent), label=f"scale {factor:.4f}"))
        return tuple(maps)
