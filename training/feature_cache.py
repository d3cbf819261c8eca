"""What a task's frozen backbone layers make of its training pairs, computed once.

Frozen layers (SiamRPN's ``--freeze-layers``, section 5.1) map each augmented pair to
the same features at every step, and they cost a large part of the step: on the
development machine's 2 cores one bf16 step of the up-channel RPN (section 3.2) takes
0.25 s for 16 pairs, the whole backbone's forward pass of those pairs 0.6 s, and
cutting and augmenting them more again. So the pairs are drawn, augmented and run
through the frozen layers once, here, and stored as fp16 (with all five frozen:
256 x 6 x 6 exemplar and 256 x 22 x 22 search features, 266 KB a pair; with conv1-3
frozen, 384-channel maps, 600 KB a pair); training then runs only the layers that
learn.

What this gives up: each cached pair keeps the one augmentation it was drawn with, so
an epoch over the cache repeats pairs a fresh draw would vary. ``count`` pairs are
cached; every epoch visits them in a new seeded order (and wraps around if an epoch
asks for more pairs than the cache holds).

The cache sits under the crop cache folder in a sub-folder named by a hash of the
frozen layers' weights and of a description of the pairs, so a resumed run finds it
and a run with other data or other layers does not. It is written to a temporary
folder and renamed into place when complete, as the crop cache is.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from training.crop_cache import CacheCancelled, cache_entry, default_cache_dir

FEATURE_CACHE_VERSION = 1
BUILD_BATCH = 32


def backbone_digest(backbone: nn.Module) -> str:
    """A hash of the backbone's weights and buffers (batch-norm statistics included)."""
    digest = hashlib.sha1()
    for key, value in sorted(backbone.state_dict().items()):
        digest.update(key.encode())
        digest.update(value.detach().to("cpu", torch.float32).contiguous().numpy().tobytes())
    return digest.hexdigest()


class FeaturePairs:
    """A pair dataset (``set_epoch``, ``len``, ``batch``) over cached backbone features.

    ``batch(indices)`` returns ``(exemplar features, search features, boxes)``: float32
    ``N x C x 6 x 6``, ``N x C x 22 x 22`` and the boxes the source pairs gave.
    """

    def __init__(self, folder: Path, pairs_per_epoch: int, seed: int) -> None:
        self.folder = Path(folder)
        self.exemplars = np.load(self.folder / "exemplars.npy", mmap_mode="r")
        self.searches = np.load(self.folder / "searches.npy", mmap_mode="r")
        self.boxes = np.load(self.folder / "boxes.npy")
        self.count = len(self.boxes)
        self.pairs_per_epoch = int(pairs_per_epoch)
        self.seed = int(seed)
        self.set_epoch(0)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)
        self._order = np.random.default_rng([self.seed, self.epoch, 11]).permutation(self.count)

    def __len__(self) -> int:
        return self.pairs_per_epoch

    def batch(self, indices: Iterable[int]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        rows = np.sort(self._order[[int(i) % self.count for i in indices]])
        # sorted rows read the memory maps front to back; the batch's order does not matter
        return (
            torch.from_numpy(np.asarray(self.exemplars[rows], dtype=np.float32)),
            torch.from_numpy(np.asarray(self.searches[rows], dtype=np.float32)),
            torch.from_numpy(np.asarray(self.boxes[rows], dtype=np.float32)),
        )


def cache_features(
    pairs: Any,
    backbone: nn.Module,
    *,
    count: int,
    pairs_per_epoch: int,
    description: dict[str, Any],
    device: torch.device,
    dtype: torch.dtype | None,
    cache_dir: str | Path | None = None,
    seed: int = 0,
    progress: Callable[[str], None] | None = None,
    cancel: Any = None,
) -> FeaturePairs:
    """Run ``count`` pairs of ``pairs`` through ``backbone`` once and return them cached.

    Pair ``j`` is item ``j % len(pairs)`` of epoch ``j // len(pairs)`` of ``pairs``, so
    the cache is as reproducible as the pair dataset. ``dtype`` is the autocast type
    the backbone runs in (None: fp32). Raises ``CacheCancelled`` on cancel.
    """
    if count < 1:
        raise ValueError("the feature cache needs at least one pair")
    key_source = json.dumps(
        {"version": FEATURE_CACHE_VERSION, "count": int(count), "backbone": backbone_digest(backbone),
         "dtype": str(dtype), **description},
        sort_keys=True, default=str,
    )
    key = hashlib.sha1(key_source.encode()).hexdigest()[:20]
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    final = root / "features" / key
    if not (final / "meta.json").is_file():
        was_training = backbone.training
        backbone.eval()
        try:
            with cache_entry(final) as work:
                _write(pairs, backbone, count, work, key_source, device, dtype, progress, cancel)
        finally:
            backbone.train(was_training)
    elif progress is not None:
        progress(f"backbone features of {count} pairs: cached in {final}")
    return FeaturePairs(final, pairs_per_epoch, seed)


@torch.no_grad()
def _write(
    pairs: Any,
    backbone: nn.Module,
    count: int,
    work: Path,
    key_source: str,
    device: torch.device,
    dtype: torch.dtype | None,
    progress: Callable[[str], None] | None,
    cancel: Any,
) -> None:
    """Fill ``work`` with the entry: the features of ``count`` pairs, their boxes, meta.json."""
    per_epoch = len(pairs)
    exemplars = searches = None
    boxes = np.zeros((count, 4), dtype=np.float32)
    for first in range(0, count, BUILD_BATCH):
        if cancel is not None and cancel.is_set():
            raise CacheCancelled("feature cache")
        rows = range(first, min(first + BUILD_BATCH, count))
        by_epoch: dict[int, list[int]] = {}
        for j in rows:
            by_epoch.setdefault(j // per_epoch, []).append(j % per_epoch)
        parts = []
        for epoch, indices in by_epoch.items():
            pairs.set_epoch(epoch)
            parts.append(pairs.batch(indices))
        ex_images = torch.cat([p[0] for p in parts])
        se_images = torch.cat([p[1] for p in parts])
        with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
            ex = backbone(ex_images.to(device)).float().cpu().numpy()
            se = backbone(se_images.to(device)).float().cpu().numpy()
        if exemplars is None:
            exemplars = np.lib.format.open_memmap(
                work / "exemplars.npy", mode="w+", dtype=np.float16, shape=(count, *ex.shape[1:]))
            searches = np.lib.format.open_memmap(
                work / "searches.npy", mode="w+", dtype=np.float16, shape=(count, *se.shape[1:]))
        exemplars[rows.start : rows.stop] = ex
        searches[rows.start : rows.stop] = se
        boxes[rows.start : rows.stop] = torch.cat([p[2] for p in parts]).numpy()
        if progress is not None:
            progress(f"backbone features: {rows.stop}/{count} pairs")
    assert exemplars is not None and searches is not None
    exemplars.flush()
    searches.flush()
    del exemplars, searches
    np.save(work / "boxes.npy", boxes)
    (work / "meta.json").write_text(
        json.dumps({"pairs": count, "key": json.loads(key_source)}, indent=1), encoding="utf-8")
