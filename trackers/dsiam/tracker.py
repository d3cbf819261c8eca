"""The DSiam tracker of section 3.6, read top to bottom as the algorithm.

SiamFC's search (three scales, bicubic up-sampling, scale penalty, cosine window,
displacement times stride, damped scale) around DSiam's score map: eq. 2 with the
transformations V and W, fused over layers with eq. 9. V and W start switched off and
are re-learned (eq. 6 and 8) after every successfully tracked frame.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from trackers.dsiam.config import PRESETS, DSiamConfig
from trackers.dsiam.network import DSiamNet, Features, load_weights
from trackers.dsiam.transforms import background_weights
from trackers.inference.batchnorm import fold_batchnorm
from trackers.inference.crops import FrameCrops
from trackers.inference.embedding import Embedding
from trackers.siamese import SiameseTracker
from trackers.siamfc.network import init_weights
from trackers.siamfc.scale_state import ScaleSearchState
from trackers.siamfc.search import hann_window, score_region, upsample_maps
from trackers.siamfc.tracker import default_weights_path as siamfc_weights_path
from trackers.types import Box, Frame, ScoreMap, TrackResult


def default_weights_path() -> Path:
    """The bundled DSiam weights (trained by ``training.dsiam_train``), else SiamFC's:
    section 3.6 starts DSiam from SiamFC, and its transformations work on those too."""
    from resources import WEIGHTS_DIR

    path = WEIGHTS_DIR / "dsiam.pt"
    return path if path.is_file() else siamfc_weights_path()


class DSiamTracker(ScaleSearchState, SiameseTracker):
    family = "DSiam"
    presets = PRESETS
    config_class = DSiamConfig
    default_preset = "dsiam"

    def __init__(
        self,
        config: DSiamConfig,
        net: DSiamNet,
        device: torch.device,
        *,
        name: str = "dsiam",
        untrained: bool = False,
        embedding: Embedding | None = None,
    ) -> None:
        """``embedding``: what computes the conv4/conv5 features (anything with
        :class:`Embedding`'s ``features``, ``precision`` and ``calibrate``); None is the
        fast one built from ``net``."""
        if net.layers != config.layers:
            raise ValueError(f"the network uses {net.layers}, the config asks for {config.layers}")
        super().__init__(config, net.to(device).eval(), device, name=name, untrained=untrained)
        fold_batchnorm(self.net.siamfc.embedding)
        # DSiamNet.features runs conv1..conv4, then conv5 on top: the blocks in order
        self._use_embedding(
            embedding or Embedding(list(self.net.siamfc.embedding.named_children()), device, self._dtype)
        )
        self._search = config.search_config()
        self._scale_factors = np.asarray(self._search.scale_factors(), dtype=np.float64)
        self._window = hann_window(self._search.upsampled_size)
        # Fig. 3: the map that turns G into Ḡ, one for the whole track (search-image pixels,
        # 1 x 1 x H x W on the device, to multiply a batch of crops)
        background = background_weights(config.search_size, config.background_sigma, config.background_taper)
        self._background = torch.from_numpy(background).to(device)[None, None]
        self._first: Features | None = None
        self._v: dict[str, torch.Tensor] | None = None
        self._w: dict[str, torch.Tensor] | None = None

    # ----------------------------------------------------------------- building
    @classmethod
    def default_weights(cls) -> Path:
        """None as ``weights`` is the bundled DSiam weights, else SiamFC's; a ``siamfc-alexnet``
        checkpoint leaves fusion maps and λ at their initial values (section 3.6)."""
        return default_weights_path()

    @classmethod
    def build_net(cls, config: DSiamConfig) -> DSiamNet:
        return DSiamNet.from_config(config)

    @classmethod
    def init_net(cls, net: torch.nn.Module) -> None:
        init_weights(net.siamfc)

    @classmethod
    def load_net(cls, net: torch.nn.Module, path: Path) -> None:
        load_weights(net, path)

    @classmethod
    def loaded(cls, net: torch.nn.Module, config: Mapping[str, Any] | None) -> None:
        # A value the user typed wins over one a DSiam checkpoint carries.
        explicit = {
            key: float(value)
            for key, value in (config or {}).items()
            if key in ("lambda_v", "lambda_w", "v_rate", "w_rate")
        }
        net.set_hyperparameters(**explicit)

    # ----------------------------------------------------------------- tracking
    def _features(self, images: torch.Tensor) -> Features:
        """conv4/conv5 features of a batch of crops (N x 3 x H x W on the device, uint8 or
        float, from ``FrameCrops``); the embedding may run in reduced precision, everything
        after it (eq. 2-9) gets fp32."""
        return self.embedding.features(images, self.net.layers)

    @torch.inference_mode()
    def init(self, frame: Frame, box: Box) -> None:
        self._start(frame, box)
        cfg = self.config

        # exemplar O_1 (the paper's template) "slightly larger than b_1 and centered at b_1"
        # (section 3.6): SiamFC's context region (SiamFC eq. 7), and the search region
        # 255/127 times larger
        self._start_extents(box, self._search)

        crops = self._frame_crops(frame)
        self._calibrate(lambda: self._crop(crops, self._search_extent * self._scale_factors, cfg.search_size))

        # F^4_1 and F^5_1 (section 3.6), kept for the whole track: eq. 2 always transforms
        # the first exemplar, never a later one
        self._first = self._features(self._crop(crops, self._exemplar_extent, cfg.exemplar_size))
        # "Before tracking, we turn off the transformations V_0 and W_0" (section 3.6)
        self._v = None
        self._w = None

    @torch.inference_mode()
    def update(self, frame: Frame) -> TrackResult:
        self._require_init(self._first)
        cfg = self.config
        search = self._search
        self.stopwatch.start()

        # Z_{t,s}, s = 1..3, centred at b_{t-1}, one batch (section 3.6)
        extents = self._search_extent * self._scale_factors
        crops = self._frame_crops(frame)  # one upload on a GPU
        search_regions = self._crop(crops, extents, cfg.search_size)
        self.stopwatch.lap("crop")
        features = self._features(search_regions)

        # eq. 2 per layer with V_{t-1}, W_{t-1}, then eq. 9 across layers
        fused, per_layer = self.net(self._first, features, self._v, self._w)
        # the fused and every layer's maps in one device-to-host copy
        layers = [per_layer[layer][:, 0].float() for layer in cfg.layers]
        maps = torch.stack([fused[:, 0].float(), *layers])
        maps = maps.cpu().numpy()
        fused_maps, layer_maps = maps[0], dict(zip(cfg.layers, maps[1:]))
        self.stopwatch.lap("network")
        finite = bool(np.isfinite(fused_maps).all())
        if not finite:  # never let a NaN steer the box; such a frame counts as lost
            fused_maps = np.nan_to_num(fused_maps, nan=0.0, posinf=0.0, neginf=0.0)

        # "search the maximum value among the fused response map and get its respective
        # location and scale" (section 3.6), the SiamFC way: up-sample, penalise scale
        # changes, add the cosine window
        upsampled = upsample_maps(fused_maps, search.upsampled_size)
        previous_center = self._center.copy()
        scale_id, _, _, windowed = self._follow_peak(upsampled, extents, search)
        peak = float(upsampled[scale_id].max())
        # "When the maximum value of fused response map is larger than 0, the tracking at
        # current frame is successful" (section 3.6)
        tracked = finite and peak > cfg.success_threshold
        # under the threshold the frame still has a box; only V and W are off (section 3.6).
        # Maps that were not finite (cleaned to 0 above) say so: their peak means nothing.
        if not finite:
            state = "maps not finite, lost"
        else:
            state = "tracked" if tracked else f"peak under {cfg.success_threshold:g}, V and W off"

        box = self._keep_in_frame(self._min_size, self._max_size)

        self.stopwatch.lap("post")
        if tracked:
            # learning V and W re-embeds three crops: network time (and its crops)
            self._learn_transforms(crops, float(extents[scale_id]))
            self.stopwatch.lap("network")
        elif cfg.reset_on_failure:
            self._v = None
            self._w = None

        result = TrackResult(
            box=box,
            score=peak if finite else 0.0,
            score_maps=self._score_maps(
                previous_center, extents, fused_maps, layer_maps, windowed, scale_id, state
            ),
            untrained=self.untrained,
        )
        self.stopwatch.lap("post")
        return result

    def _learn_transforms(self, crops: FrameCrops, search_extent: float) -> None:
        """Section 3.6: "crop I_t according to b_t and get O_t, G_t, and get Ḡ_t by multiplying
        G_t with a Gaussian weight map", then V_t (eq. 6) and W_t (eq. 8)."""
        cfg = self.config
        # O_t: the exemplar region around b_t, as O_1 was cut around b_1
        target = self._crop(crops, self._exemplar_extent, cfg.exemplar_size)
        # G_t: "centering at the target location and with the same size of searching region"
        # (section 3.2), i.e. the search region of the scale just chosen
        g = self._crop(crops, search_extent, cfg.search_size).float()
        g_bar = g * self._background
        target_features = self._features(target)
        pair = self._features(torch.cat([g, g_bar]))
        self._v = self.net.learn_v(self._first, target_features)  # type: ignore[arg-type]
        self._w = self.net.learn_w(
            {layer: f[0:1] for layer, f in pair.items()},
            {layer: f[1:2] for layer, f in pair.items()},
        )

    def _score_maps(
        self,
        center: np.ndarray,
        extents: np.ndarray,
        fused_maps: np.ndarray,
        layer_maps: dict[str, np.ndarray],
        windowed: np.ndarray,
        scale_id: int,
        state: str,
    ) -> tuple[ScoreMap, ...]:
        """The chosen scale's fused map as searched (up-sampled, windowed) first, then each
        layer's raw 17x17 score map at that scale (conv4, conv5), then each scale's raw
        fused 17x17 map; ``state`` ends the first one's label."""
        search = self._search
        factor = self._scale_factors[scale_id]
        chosen = score_region(center, float(extents[scale_id]), search)
        maps = [
            ScoreMap(
                values=windowed,
                region=chosen,
                label=(
                    f"fused {'+'.join(self.config.layers)}, chosen scale {factor:.4f}, "
                    f"windowed, {state}"
                ),
            )
        ]
        for layer in self.config.layers:
            values = layer_maps[layer][scale_id]
            label = f"{layer}, scale {factor:.4f}"
            maps.append(ScoreMap(values=values, region=chosen, label=label))
        for factor_i, extent, values in zip(self._scale_factors, extents, fused_maps):
            maps.append(
                ScoreMap(
                    values=values.astype(np.float32),
                    region=score_region(center, float(extent), search),
                    label=f"fused, scale {factor_i:.4f}",
                )
            )
        return tuple(maps)
