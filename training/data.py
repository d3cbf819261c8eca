"""Training pairs for SiamFC (Bertinetto et al. 2016, sections 2.2 and 2.4).

What a pair is (section 2.2): an exemplar and a search image from two frames of one
annotated sequence that both contain the target and are at most ``T`` frames apart,
both centred on the target; the class of the object plays no part. The crops come from
``training.crop_cache`` (cut once per frame), the random changes from
``training.augmentation``, and the train / validation split from ``training.splits``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from numpy.typing import NDArray
from torch.utils.data import Dataset

from trackers.evaluation import AnnotatedSequence
from trackers.siamfc.config import SiamFCConfig
from training.augmentation import (
    Augmentation,
    colour_jitter,
    grayscale,
    mirrored,
    negative_rng,
    resample,
    to_tensor,
)
from training.crop_cache import CachedSequence, Progress, build_crop_cache, center_slice, crop_extents
from training.splits import flight_key

DEFAULT_MAX_GAP = 100
"""T of section 2.2: the most frames between the exemplar's and the search image's frame."""


class PairDataset(Dataset):
    """``pairs_per_epoch`` random (exemplar, search) pairs per epoch, reproducible.

    Item ``i`` of epoch ``e`` is drawn from ``np.random.default_rng([seed, e, i])``:
    a sequence uniformly, a frame ``a`` among its valid frames, and a frame ``b != a``
    with ``|a - b| <= max_gap`` (``a`` itself only if it has no such neighbour).
    It returns ``(exemplar, search, box)``: float32 tensors ``3 x 127 x 127`` and
    ``3 x 255 x 255``, RGB in 0..255 (the input convention of the networks), and the
    target's ``cx, cy, w, h`` in search-image pixels (pixel ``i`` spans ``[i, i+1)``).

    With ``augmentation.negative`` > 0 that share of the items are negative pairs: the
    search image comes from a frame of a sequence of another flight (``flight_key``),
    centred on that sequence's target, and the box is all NaN (``is_negative``): the
    exemplar's target is nowhere in it. The item's own draws are unchanged; which items
    are negative, and the other sequence and frame, come from ``negative_rng``.

    ``search_margin`` caches crops ``2 * search_margin`` pixels larger at the same
    scale, so that a search image translated by up to that much still shows real
    context rather than fill colour (SiamRPN's task translates by tens of pixels).
    """

    def __init__(
        self,
        sequences: Sequence[AnnotatedSequence],
        *,
        pairs_per_epoch: int,
        cache_dir: str | Path | None = None,
        max_gap: int = DEFAULT_MAX_GAP,
        seed: int = 0,
        augmentation: Augmentation | None = None,
        config: SiamFCConfig | None = None,
        progress: Progress | None = None,
        cancel: Any = None,
        search_margin: int = 0,
    ) -> None:
        if pairs_per_epoch < 1:
            raise ValueError("pairs_per_epoch must be at least 1")
        if max_gap < 0:
            raise ValueError("max_gap must not be negative")
        self.config = config or SiamFCConfig()
        self.pairs_per_epoch = int(pairs_per_epoch)
        self.max_gap = int(max_gap)
        self.seed = int(seed)
        self.augmentation = augmentation if augmentation is not None else Augmentation()
        self.epoch = 0
        if search_margin < 0:
            raise ValueError("search_margin must not be negative")
        # The cache is cut at the same scale, only wider: a config whose search side is
        # larger by 2 * margin (crop_extents scales the extent with it).
        cache_config = replace(self.config, search_size=self.config.search_size + 2 * int(search_margin))
        cached = build_crop_cache(
            sequences, cache_dir, config=cache_config, progress=progress, cancel=cancel
        )
        empty = [c.name for c in cached if len(c.frames) == 0]
        if empty and progress is not None:
            progress(f"skipping sequences without a usable frame: {', '.join(empty)}")
        boxes = {s.name: np.asarray(s.groundtruth, dtype=np.float64) for s in sequences}
        self.sequences: list[CachedSequence] = [c for c in cached if len(c.frames)]
        if not self.sequences:
            raise ValueError("no sequence has a frame with a valid box to train on")
        # Target w, h in canonical crop pixels: the crop shows search_size / extent
        # crop pixels per frame pixel.
        self._sizes: list[NDArray[np.float64]] = []
        for c in self.sequences:
            wh = boxes[c.name][c.frames, 2:4]
            extent = np.array([crop_extents(w, h, self.config)[1] for w, h in wh])
            self._sizes.append(wh * (self.config.search_size / extent)[:, None])
        self._opened: dict[int, tuple[NDArray[np.uint8], NDArray[np.float32]]] = {}
        self._inner = center_slice(cache_config.search_size, self.config.exemplar_size)
        self._search = center_slice(cache_config.search_size, self.config.search_size)
        # for negative pairs: the sequences of every other flight
        flights = [flight_key(c.name) for c in self.sequences]
        self._others = [[k for k, f in enumerate(flights) if f != mine] for mine in flights]
        if self.augmentation.negative and not any(self._others):
            raise ValueError("negative pairs need sequences of at least two flights")

    # Memory maps must not be pickled into DataLoader workers (pickling copies the
    # whole array); each process opens its own.
    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_opened"] = {}
        return state

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.sequences]

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.pairs_per_epoch

    def _crops(self, which: int) -> tuple[NDArray[np.uint8], NDArray[np.float32]]:
        opened = self._opened.get(which)
        if opened is None:
            opened = self.sequences[which].open()
            self._opened[which] = opened
        return opened

    def _rng(self, index: int) -> np.random.Generator:
        return np.random.default_rng([self.seed, self.epoch, int(index)])

    def pair(self, index: int) -> tuple[str, int, int]:
        """(sequence name, exemplar frame, search frame) of item ``index`` this epoch.

        For a negative pair the search frame is ``negative(index)``'s, of another sequence."""
        which, row_a, row_b, _rng = self._draw(index)
        cached = self.sequences[which]
        return cached.name, int(cached.frames[row_a]), int(cached.frames[row_b])

    def negative(self, index: int) -> tuple[str, int] | None:
        """(sequence name, frame) the search image of item ``index`` comes from if it is a
        negative pair this epoch, else None."""
        which = self._draw(int(index))[0]
        found = self._negative(int(index), which)
        if found is None:
            return None
        other, row = found
        return self.sequences[other].name, int(self.sequences[other].frames[row])

    def _negative(self, index: int, which: int) -> tuple[int, int] | None:
        """(sequence, row) of item ``index``'s search image if it is a negative pair, else None;
        ``which`` is the item's own sequence (``_draw``'s first value)."""
        share = self.augmentation.negative
        if not share:
            return None
        others = self._others[which]
        rng = negative_rng(self.seed, self.epoch, index)
        if rng.random() >= share or not others:
            return None
        other = others[int(rng.integers(len(others)))]
        return other, int(rng.integers(len(self.sequences[other].frames)))

    def _draw(self, index: int) -> tuple[int, int, int, np.random.Generator]:
        if not 0 <= index < self.pairs_per_epoch:
            raise IndexError(f"pair {index} out of range for {self.pairs_per_epoch} pairs")
        rng = self._rng(index)
        which = int(rng.integers(len(self.sequences)))
        frames = self.sequences[which].frames
        row_a = int(rng.integers(len(frames)))
        a = frames[row_a]
        lo = int(np.searchsorted(frames, a - self.max_gap, side="left"))
        hi = int(np.searchsorted(frames, a + self.max_gap, side="right"))
        candidates = [r for r in range(lo, hi) if r != row_a]
        row_b = int(candidates[rng.integers(len(candidates))]) if candidates else row_a
        return which, row_a, row_b, rng

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        which, row_a, row_b, rng = self._draw(int(index))
        crops, fills = self._crops(which)
        cfg, aug = self.config, self.augmentation
        w, h = self._sizes[which][row_b]
        centre = cfg.search_size / 2.0
        search_crops, search_fills = crops, fills
        negative = self._negative(int(index), which)
        if negative is not None:  # the search image from another flight; the box says "nowhere"
            other, row_b = negative
            search_crops, search_fills = self._crops(other)
        if aug == Augmentation.none():
            exemplar = np.asarray(crops[row_a][self._inner, self._inner], dtype=np.float32)
            search = np.asarray(search_crops[row_b][self._search, self._search], dtype=np.float32)
            box = torch.tensor([centre, centre, w, h], dtype=torch.float32)
            return to_tensor(exemplar), to_tensor(search), box

        def stretch() -> tuple[float, float]:
            return (
                1.0 + rng.uniform(-aug.stretch, aug.stretch),
                1.0 + rng.uniform(-aug.stretch, aug.stretch),
            )

        ex_sx, ex_sy = stretch()
        exemplar = resample(crops[row_a], cfg.exemplar_size, ex_sx, ex_sy, 0.0, 0.0, fills[row_a])
        se_sx, se_sy = stretch()
        shift = rng.uniform(-aug.translate_px, aug.translate_px, size=2)
        if aug.scale:
            zoom = math.exp(rng.uniform(-math.log1p(aug.scale), math.log1p(aug.scale)))
            se_sx, se_sy = se_sx * zoom, se_sy * zoom
        search = resample(search_crops[row_b], cfg.search_size, se_sx, se_sy, shift[0], shift[1],
                          search_fills[row_b])
        # _resample reads crop point c + (j + 0.5 - out / 2) * scale + shift at output
        # pixel j; the target's centre (crop point c) lands where that offset is zero.
        box = torch.tensor(
            [centre - shift[0] / se_sx, centre - shift[1] / se_sy, w / se_sx, h / se_sy],
            dtype=torch.float32,
        )

        images = [colour_jitter(img.astype(np.float32), aug, rng) for img in (exemplar, search)]
        if rng.random() < aug.grayscale:
            images = [grayscale(img) for img in images]
        for k, img in enumerate(images):
            if rng.random() < aug.blur:
                sigma = rng.uniform(*aug.blur_sigma)
                images[k] = cv2.GaussianBlur(img, (0, 0), sigmaX=sigma)
        flipped = mirrored(images, aug, rng)  # the last draw
        if flipped is not None:
            images, box[0] = flipped, cfg.search_size - box[0]
        if negative is not None:
            box[:] = float("nan")
        return to_tensor(images[0]), to_tensor(images[1]), box

    def batch(self, indices: Iterable[int]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return stack_items([self[i] for i in indices])


def is_negative(boxes: torch.Tensor) -> torch.Tensor:
    """Which rows of an ``N x 4`` batch of boxes mark negative pairs (all NaN: no target)."""
    return torch.isnan(boxes).all(dim=-1)


def stack_items(
    items: Sequence[tuple[torch.Tensor, torch.Tensor, torch.Tensor]],
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """A batch from ``(exemplar, search, box)`` items: three stacked tensors."""
    exemplars, searches, boxes = zip(*items)
    return torch.stack(exemplars), torch.stack(searches), torch.stack(boxes)
