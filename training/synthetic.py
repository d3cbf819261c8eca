"""Synthetic training pairs pasted from unlabelled real clips, and mixing them with real pairs.

Why this works (SiamFC, Bertinetto et al. 2016, section 2.2): the network learns a
general similarity function, not classes; a pair only has to show the same thing in
the exemplar and somewhere in the search image, "the class of the object plays no
part". Any textured region of a real frame can therefore serve as a target, and
unlabelled video, which is plentiful, supplies both targets and backgrounds.

What an item is:

* a *patch frame* P (any cached frame) and a random rectangle in it, the target:
  ``sqrt(w h)`` is 8-35 % of P's shorter side, aspect ``w / h`` 0.4-2.5 (log-uniform);
  rectangles whose pixels are nearly uniform are redrawn (best of a few tries), so
  there is something to track;
* the *exemplar* is P itself cut exactly as section 2.4 cuts a real exemplar: the
  target plus the context margin ``p = (w + h) / 4``, the square of side
  ``z = sqrt((w + 2p)(h + 2p))`` scaled to 127, centred on the rectangle, parts
  outside P in P's mean colour. The simplest honest choice: the exemplar is a real
  image with the target in its real surroundings and no paste seam. A seam in the
  exemplar would give the cross-correlation (eq. 2) a shortcut, "match the seam",
  that no real target has;
* the *search image* shows the same rectangle of P pasted onto a *background frame* B
  after a known change: the target's size times ``scale`` (0.8-1.25, log-uniform),
  its centre moved by up to ``max_shift_px`` search pixels on each axis, a gain and
  offset on its colours (the illumination change), and sometimes a slight blur of
  the whole image. The search image keeps the exemplar's scale (``z / 127`` frame
  pixels per pixel, side ``z * S / 127``), so the target is ``scale`` times as large
  in it as in the exemplar, as when a real object comes closer. B is a frame of
  another clip when there is more than one: a later frame of P's own clip still
  shows the original target near its old place, an identical distractor the label
  would call background. With a single clip, B is another of its cached frames,
  which lie far apart in time, cut around a random point.
* the edge of the paste is feathered (alpha ramps linearly over 1-4 search pixels,
  0.5 exactly on the rectangle's edge), so a hard border is not a trivial cue and the
  box stays the 50 % contour.

Geometry is exact: each image is cut with one ``cv2.warpAffine`` per source frame
(an inverse map from output pixel to frame pixel, pixel centres at ``i + 0.5`` as in
``trackers.geometry``), and the box ``[cx, cy, w, h]`` in search pixels follows from
the same numbers. Section 2.2 trains on centred pairs only; here the target is moved
and the box says where it is, as the training loop's item contract expects (the same
as ``training.data.PairDataset``).

The frames come from ``training.synthetic_frames`` (decoded once, cached).

What synthetic pairs cannot teach: out-of-plane rotation, deformation, occlusion,
real lighting. ``MixedPairs`` mixes them with real pairs by a ratio.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from numpy.typing import NDArray
from torch.utils.data import Dataset

from trackers.siamfc.config import SiamFCConfig
from training.crop_cache import Progress, crop_extents
from training.synthetic_frames import DEFAULT_FRAMES_PER_SOURCE, cache_frames

_RECT_TRIES = 8
_MARGIN = 2.0
"""Frame pixels kept between a target rectangle and P's border, for the feathered edge."""

EXEMPLAR_SIZE = SiamFCConfig().exemplar_size


# --------------------------------------------------------------------------- what is drawn


@dataclass(frozen=True)
class Synthesis:
    """Ranges of the synthetic changes; ``Synthesis.exact()`` turns the photometric ones off."""

    target_side: tuple[float, float] = (0.08, 0.35)
    """``sqrt(w h)`` of the target as a fraction of the patch frame's shorter side."""
    aspect: tuple[float, float] = (0.4, 2.5)
    min_std: float = 12.0
    """Least grey-level standard deviation inside the target; below it the rectangle is redrawn."""
    scale: tuple[float, float] = (0.8, 1.25)
    gain: float = 0.25
    channel_gain: float = 0.05
    offset: float = 16.0
    feather_px: tuple[float, float] = (1.0, 4.0)
    blur: float = 0.2
    blur_sigma: tuple[float, float] = (0.3, 1.0)

    @classmethod
    def exact(cls) -> Synthesis:
        """Geometry only: no illumination change, no blur, a hard edge."""
        return cls(gain=0.0, channel_gain=0.0, offset=0.0, feather_px=(0.0, 0.0), blur=0.0)


@dataclass(frozen=True)
class Draw:
    """Everything item ``i`` of an epoch drew; frames are (clip, row in that clip's cache)."""

    patch: tuple[int, int]
    rect: tuple[float, float, float, float]
    """The target in the patch frame: ``x, y, w, h``, continuous, 0-based."""
    background: tuple[int, int]
    background_centre: tuple[float, float]
    scale: float
    shift: tuple[float, float]
    gain: tuple[float, float, float]
    offset: float
    feather: float
    blur_sigma: float
    """0 for no blur."""

    @property
    def exemplar_side(self) -> float:
        """``z`` of eq. 7 in patch-frame pixels."""
        return crop_extents(self.rect[2], self.rect[3])[0]


def _log_uniform(rng: np.random.Generator, bounds: tuple[float, float]) -> float:
    return float(math.exp(rng.uniform(math.log(bounds[0]), math.log(bounds[1]))))


def _random_rect(
    rng: np.random.Generator, height: int, width: int, synthesis: Synthesis
) -> tuple[float, float, float, float]:
    side = rng.uniform(*synthesis.target_side) * min(height, width)
    root = math.sqrt(_log_uniform(rng, synthesis.aspect))
    w = min(side * root, width - 2 * _MARGIN)
    h = min(side / root, height - 2 * _MARGIN)
    x = rng.uniform(_MARGIN, width - _MARGIN - w)
    y = rng.uniform(_MARGIN, height - _MARGIN - h)
    return float(x), float(y), float(w), float(h)


def _texture(frame: NDArray[np.uint8], rect: tuple[float, float, float, float]) -> float:
    x, y, w, h = rect
    region = frame[int(y) : math.ceil(y + h), int(x) : math.ceil(x + w)]
    return float(region.astype(np.float32).mean(axis=2).std())


# --------------------------------------------------------------------------- cutting


def _warp(
    frame: NDArray[np.uint8], matrix: NDArray[np.float64], out: int, fill: Sequence[float]
) -> NDArray[np.uint8]:
    return cv2.warpAffine(
        np.ascontiguousarray(frame),
        matrix,
        (out, out),
        flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=tuple(float(v) for v in fill),
    )


def inverse_affine(step: float, frame_x: float, frame_y: float, out_x: float, out_y: float):
    """The 2x3 inverse map putting continuous frame point ``(frame_x, frame_y)`` at
    continuous output point ``(out_x, out_y)``, ``step`` frame pixels per output pixel.

    Output pixel ``j`` (centre ``j + 0.5``) reads frame point
    ``frame_x + (j + 0.5 - out_x) * step``; OpenCV indexes pixel centres, hence ``- 0.5``.
    """
    tx = frame_x + (0.5 - out_x) * step - 0.5
    ty = frame_y + (0.5 - out_y) * step - 0.5
    return np.array([[step, 0.0, tx], [0.0, step, ty]], dtype=np.float64)


def _ramp(size: int, low: float, high: float, feather: float) -> NDArray[np.float32]:
    """Alpha along one axis for the span ``[low, high)``: 0.5 on its edges, linear over ``feather``."""
    centres = np.arange(size, dtype=np.float64) + 0.5
    inside = np.minimum(centres - low, high - centres)
    if feather <= 0:
        return (inside > 0).astype(np.float32)
    return np.clip(inside / feather + 0.5, 0.0, 1.0).astype(np.float32)


# --------------------------------------------------------------------------- datasets


def _to_tensor(image: NDArray) -> torch.Tensor:
    array = np.clip(np.asarray(image, dtype=np.float32), 0.0, 255.0)
    return torch.from_numpy(np.ascontiguousarray(array.transpose(2, 0, 1)))


def _mean(frame: NDArray[np.uint8]) -> NDArray[np.float64]:
    return frame.reshape(-1, 3).mean(axis=0)


class SyntheticPairs(Dataset):
    """``pairs_per_epoch`` synthetic (exemplar, search, box) items per epoch, reproducible.

    Item ``i`` of epoch ``e`` is drawn from ``np.random.default_rng([seed, e, i])`` (see
    ``draw``). Same contract as ``training.data.PairDataset``: float32 tensors
    ``3 x 127 x 127`` and ``3 x S x S`` (RGB 0..255) and the box ``[cx, cy, w, h]`` in
    search pixels. ``sources`` are anything ``open_source`` opens (videos, image folders).
    """

    def __init__(
        self,
        sources: Sequence[str | Path],
        *,
        pairs_per_epoch: int,
        seed: int = 0,
        search_size: int = 255,
        max_shift_px: float = 64.0,
        frames_per_source: int = DEFAULT_FRAMES_PER_SOURCE,
        synthesis: Synthesis | None = None,
        cache_dir: str | Path | None = None,
        progress: Progress | None = None,
        cancel: Any = None,
    ) -> None:
        if pairs_per_epoch < 1:
            raise ValueError("pairs_per_epoch must be at least 1")
        if search_size <= EXEMPLAR_SIZE:
            raise ValueError(f"search_size must exceed the exemplar's {EXEMPLAR_SIZE} pixels")
        if max_shift_px < 0 or frames_per_source < 1:
            raise ValueError("max_shift_px must not be negative and frames_per_source must be positive")
        if not sources:
            raise ValueError("no unlabelled source to cut synthetic pairs from")
        self.pairs_per_epoch = int(pairs_per_epoch)
        self.seed = int(seed)
        self.search_size = int(search_size)
        self.max_shift_px = float(max_shift_px)
        self.synthesis = synthesis if synthesis is not None else Synthesis()
        self.epoch = 0
        self.entries = cache_frames(
            sources, cache_dir, frames_per_source=frames_per_source, progress=progress, cancel=cancel
        )
        self.counts = [int(json.loads((e / "meta.json").read_text())["frames"]) for e in self.entries]
        self._opened: dict[int, NDArray[np.uint8]] = {}

    # Memory maps must not be pickled into DataLoader workers; each process opens its own.
    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_opened"] = {}
        return state

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.pairs_per_epoch

    def frame(self, clip: int, row: int) -> NDArray[np.uint8]:
        """Cached frame ``row`` of source ``clip`` (H x W x 3 uint8 RGB, read-only)."""
        frames = self._opened.get(clip)
        if frames is None:
            frames = np.load(self.entries[clip] / "frames.npy", mmap_mode="r")
            self._opened[clip] = frames
        return frames[row]

    # ---- drawing

    def draw(self, index: int) -> Draw:
        """What item ``index`` of the current epoch is made of."""
        if not 0 <= index < self.pairs_per_epoch:
            raise IndexError(f"pair {index} out of range for {self.pairs_per_epoch} pairs")
        rng = np.random.default_rng([self.seed, self.epoch, int(index)])
        syn = self.synthesis
        patch, rect = self._draw_target(rng)
        background = self._draw_background(rng, patch)
        centre = self._draw_background_centre(rng, background, rect)
        scale = _log_uniform(rng, syn.scale)
        shift = rng.uniform(-self.max_shift_px, self.max_shift_px, size=2)
        gain = (1.0 + rng.uniform(-syn.gain, syn.gain)) * (
            1.0 + rng.uniform(-syn.channel_gain, syn.channel_gain, size=3)
        )
        offset = float(rng.uniform(-syn.offset, syn.offset))
        feather = float(rng.uniform(*syn.feather_px))
        blur = float(rng.uniform(*syn.blur_sigma)) if rng.random() < syn.blur else 0.0
        return Draw(
            patch, rect, background, centre, scale, (float(shift[0]), float(shift[1])),
            (float(gain[0]), float(gain[1]), float(gain[2])), offset, feather, blur,
        )

    def _draw_target(self, rng: np.random.Generator) -> tuple[tuple[int, int], tuple[float, ...]]:
        # Best of a few tries: a flat wall or sky gives the network nothing to match,
        # but an item must always come out, so the most textured try wins.
        best: tuple[float, tuple[int, int], tuple[float, ...]] | None = None
        for _ in range(_RECT_TRIES):
            clip = int(rng.integers(len(self.entries)))
            row = int(rng.integers(self.counts[clip]))
            frame = self.frame(clip, row)
            rect = _random_rect(rng, frame.shape[0], frame.shape[1], self.synthesis)
            texture = _texture(frame, rect)
            if best is None or texture > best[0]:
                best = (texture, (clip, row), rect)
            if texture >= self.synthesis.min_std:
                break
        assert best is not None
        return best[1], best[2]

    def _draw_background(self, rng: np.random.Generator, patch: tuple[int, int]) -> tuple[int, int]:
        clip, row = patch
        if len(self.entries) > 1:
            # Another clip: P's own clip still shows the original target (see module notes).
            other = int(rng.integers(len(self.entries) - 1))
            other += other >= clip
            return other, int(rng.integers(self.counts[other]))
        if self.counts[clip] > 1:
            other = int(rng.integers(self.counts[clip] - 1))
            return clip, other + (other >= row)
        return clip, row

    def _draw_background_centre(
        self, rng: np.random.Generator, background: tuple[int, int], rect: tuple[float, ...]
    ) -> tuple[float, float]:
        height, width = self.frame(*background).shape[:2]
        side = crop_extents(rect[2], rect[3])[0] * self.search_size / EXEMPLAR_SIZE

        def axis(length: int) -> float:
            # Keep the search square inside B where it fits, so it shows real background.
            if side >= length:
                return length / 2.0
            return float(rng.uniform(side / 2.0, length - side / 2.0))

        return axis(width), axis(height)

    # ---- cutting

    def box(self, draw: Draw) -> NDArray[np.float32]:
        """``[cx, cy, w, h]`` of the pasted target in search pixels."""
        step = draw.exemplar_side / EXEMPLAR_SIZE  # frame pixels per search pixel
        half = self.search_size / 2.0
        w, h = draw.rect[2] * draw.scale / step, draw.rect[3] * draw.scale / step
        return np.array([half + draw.shift[0], half + draw.shift[1], w, h], dtype=np.float32)

    def exemplar(self, draw: Draw) -> NDArray[np.uint8]:
        """Section 2.4's exemplar of the rectangle, cut from the patch frame itself."""
        frame = self.frame(*draw.patch)
        x, y, w, h = draw.rect
        z = draw.exemplar_side
        matrix = inverse_affine(z / EXEMPLAR_SIZE, x + w / 2, y + h / 2, EXEMPLAR_SIZE / 2, EXEMPLAR_SIZE / 2)
        return _warp(frame, matrix, EXEMPLAR_SIZE, _mean(frame))

    def search(self, draw: Draw) -> NDArray[np.float32]:
        """The rectangle pasted onto the background frame, moved, scaled and relit."""
        size, step = self.search_size, draw.exemplar_side / EXEMPLAR_SIZE
        cx, cy, bw, bh = (float(v) for v in self.box(draw))
        background = self.frame(*draw.background)
        bx, by = draw.background_centre
        back = _warp(background, inverse_affine(step, bx, by, size / 2, size / 2), size, _mean(background))
        patch = self.frame(*draw.patch)
        x, y, w, h = draw.rect
        # The target is `scale` times larger, so each search pixel covers step / scale of P.
        fore_map = inverse_affine(step / draw.scale, x + w / 2, y + h / 2, cx, cy)
        fore = _warp(patch, fore_map, size, _mean(patch)).astype(np.float32)
        fore = fore * np.asarray(draw.gain, dtype=np.float32) + np.float32(draw.offset)
        alpha = np.outer(
            _ramp(size, cy - bh / 2, cy + bh / 2, draw.feather),
            _ramp(size, cx - bw / 2, cx + bw / 2, draw.feather),
        )[:, :, None]
        image = alpha * fore + (1.0 - alpha) * back.astype(np.float32)
        if draw.blur_sigma > 0:
            image = cv2.GaussianBlur(image, (0, 0), sigmaX=draw.blur_sigma)
        return image

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        draw = self.draw(int(index))
        return (
            _to_tensor(self.exemplar(draw)),
            _to_tensor(self.search(draw)),
            torch.from_numpy(self.box(draw)),
        )

    def batch(self, indices: Iterable[int]) -> tuple[torch.Tensor, ...]:
        return _stack([self[i] for i in indices])


def _stack(items: list[tuple[torch.Tensor, ...]]) -> tuple[torch.Tensor, ...]:
    return tuple(torch.stack(parts) for parts in zip(*items))


class MixedPairs(Dataset):
    """Item ``i`` from ``synthetic`` with probability ``ratio``, otherwise from ``real``.

    The choice is drawn from ``np.random.default_rng([seed, epoch, i, 7])`` (the 7 keeps
    it apart from the children's own draws when they share the seed), and the child's
    item is ``i % len(child)``, so the mix is as reproducible as its parts.
    """

    def __init__(
        self, real: Dataset, synthetic: Dataset, ratio: float, *, pairs_per_epoch: int, seed: int = 0
    ) -> None:
        if not 0.0 <= ratio <= 1.0:
            raise ValueError("the synthetic ratio must lie in [0, 1]")
        if pairs_per_epoch < 1:
            raise ValueError("pairs_per_epoch must be at least 1")
        self.real, self.synthetic = real, synthetic
        self.ratio = float(ratio)
        self.pairs_per_epoch = int(pairs_per_epoch)
        self.seed = int(seed)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)
        self.real.set_epoch(epoch)
        self.synthetic.set_epoch(epoch)

    def __len__(self) -> int:
        return self.pairs_per_epoch

    def is_synthetic(self, index: int) -> bool:
        if not 0 <= index < self.pairs_per_epoch:
            raise IndexError(f"pair {index} out of range for {self.pairs_per_epoch} pairs")
        rng = np.random.default_rng([self.seed, self.epoch, int(index), 7])
        return bool(rng.random() < self.ratio)  # random() < 1 always, < 0 never

    def __getitem__(self, index: int) -> tuple[torch.Tensor, ...]:
        child = self.synthetic if self.is_synthetic(int(index)) else self.real
        return child[int(index) % len(child)]

    def batch(self, indices: Iterable[int]) -> tuple[torch.Tensor, ...]:
        return _stack([self[i] for i in indices])
