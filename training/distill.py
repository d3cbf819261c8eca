"""Knowledge distillation from NanoTrack: the teacher's maps for every training pair, cached.

``siamtrack train --teacher nano`` adds a second objective to a tracker's own loss
(SiamFC eq. 3-5, SiamRPN eq. 5): match what NanoTrack (``trackers.nanotrack``) says
about the same exemplar/search pair. The architectures stay the papers'; only the
training objective gains a term, weighted by ``--teacher-weight``.

:class:`Teacher` runs NanoTrack on each batch the loop draws and returns, per pair,
a ``5 x 16 x 16`` array: the foreground probability and the box (``cx, cy, w, h``,
search-image pixels) each cell predicts. Item ``i`` of epoch ``e`` is always the same
augmented pair (``training.data``), so the answers are cached on disk per epoch, keyed
by everything that decides the pairs (data, settings, seed) and by the teacher's files:
each pair costs the teacher once, also across a resume.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from trackers.nanotrack import SCORE_SIZE, NanoTrackNet, resample_to_grid

TEACHERS = ("nano",)
CACHE_VERSION = 1
CHANNELS = 5
"""foreground, cx, cy, w, h."""


class Teacher:
    """NanoTrack's maps for training pairs, with a per-epoch cache on disk."""

    name = "nano"

    def __init__(self, cache_dir: str | Path | None, description: dict[str, Any], pairs_per_epoch: int,
                 model_dir: str | Path | None = None) -> None:
        self.net = NanoTrackNet(model_dir)
        self.pairs_per_epoch = int(pairs_per_epoch)
        files = [hashlib.sha1(p.read_bytes()).hexdigest() for p in self.net.files]
        text = json.dumps({"v": CACHE_VERSION, "teacher": self.name, "files": files,
                           "pairs": self.pairs_per_epoch, "run": description}, sort_keys=True, default=str)
        key = hashlib.sha1(text.encode("utf-8")).hexdigest()[:16]
        if cache_dir is None:
            from training.crop_cache import default_cache_dir

            cache_dir = default_cache_dir()
        self.folder = Path(cache_dir) / "teacher" / f"nano-{key}"
        self.hits = 0
        self.misses = 0
        self._epoch: int | None = None
        self._maps: np.ndarray | None = None
        self._done: np.ndarray | None = None

    def provenance(self) -> dict[str, Any]:
        return teacher_provenance(self.net.files)

    def _open(self, epoch: int) -> None:
        if self._epoch == epoch:
            return
        self.flush()
        self.folder.mkdir(parents=True, exist_ok=True)
        maps_file = self.folder / f"epoch{epoch:04d}.maps.npy"
        done_file = self.folder / f"epoch{epoch:04d}.done.npy"
        shape = (self.pairs_per_epoch, CHANNELS, SCORE_SIZE, SCORE_SIZE)
        if maps_file.is_file() and done_file.is_file():
            maps = np.load(maps_file, mmap_mode="r+")
            done = np.load(done_file, mmap_mode="r+")
            if maps.shape == shape and done.shape == (self.pairs_per_epoch,):
                self._epoch, self._maps, self._done = epoch, maps, done
                return
        # fp16: probabilities to 1e-3, coordinates to an eighth of a pixel or better
        self._maps = np.lib.format.open_memmap(maps_file, mode="w+", dtype=np.float16, shape=shape)
        self._done = np.lib.format.open_memmap(done_file, mode="w+", dtype=np.bool_, shape=shape[:1])
        self._epoch = epoch

    def flush(self) -> None:
        """Write what is computed so far to disk (the loop calls it with each checkpoint)."""
        for array in (self._maps, self._done):
            if array is not None:
                array.flush()

    def maps(self, exemplars: torch.Tensor, searches: torch.Tensor, *, epoch: int,
             indices: Sequence[int]) -> torch.Tensor:
        """``N x 5 x 16 x 16`` float32 for the pairs ``indices`` of ``epoch``.

        Images are ``N x 3 x H x W``, RGB 0..255, as the loop draws them."""
        self._open(int(epoch))
        assert self._maps is not None and self._done is not None
        out = np.empty((len(indices), CHANNELS, SCORE_SIZE, SCORE_SIZE), dtype=np.float32)
        ex = exemplars.detach().float().cpu().numpy()
        se = searches.detach().float().cpu().numpy()
        for row, index in enumerate(indices):
            index = int(index)
            if 0 <= index < self.pairs_per_epoch and self._done[index]:
                out[row] = self._maps[index]
                self.hits += 1
                continue
            answer = self.net(ex[row], se[row])
            out[row, 0] = answer.foreground
            out[row, 1:] = answer.boxes
            # as stored: a pair's targets are the same whether computed now or read back
            out[row] = out[row].astype(np.float16)
            self.misses += 1
            if 0 <= index < self.pairs_per_epoch:
                self._maps[index] = out[row]
                self._done[index] = True
        return torch.from_numpy(out)


def teacher_provenance(files: Sequence[Path]) -> dict[str, Any]:
    """What a checkpoint says of the teacher whose files are ``files``."""
    return {"teacher_model": "NanoTrack v2 (OpenCV TrackerNano ONNX files, Apache-2.0)",
            "teacher_files": [Path(p).name for p in files]}


def make_teacher(name: str, cache_dir: str | Path | None, description: dict[str, Any], pairs_per_epoch: int,
                 model_dir: str | Path | None = None) -> Teacher:
    if name not in TEACHERS:
        raise ValueError(f"unknown teacher {name!r}; one of {', '.join(TEACHERS)}")
    return Teacher(cache_dir, description, pairs_per_epoch, model_dir)


def resample_matrix(size: int, stride: float) -> torch.Tensor:
    """``size x 16`` matrix ``A`` with ``A @ M @ A.T`` = ``resample_to_grid(M, size, stride)``."""
    basis = np.eye(SCORE_SIZE, dtype=np.float32)
    # resampling is separable and linear: the rows of the resampled identity are A
    columns = [resample_to_grid(np.outer(basis[k], np.ones(SCORE_SIZE)), size, stride)[:, 0]
               for k in range(SCORE_SIZE)]
    return torch.from_numpy(np.stack(columns, axis=1))


def soft_targets(teacher_maps: torch.Tensor, size: int, stride: float) -> torch.Tensor:
    """The teacher's foreground read at the cells of a ``size x size`` map ``stride`` pixels apart."""
    matrix = resample_matrix(size, stride).to(teacher_maps.device)
    foreground = teacher_maps[:, 0].float()
    return matrix @ foreground @ matrix.T


def soft_balanced_bce(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy against soft targets, balanced like eq. 4 with section 2.2's weights:
    the target's mass and the background's mass weigh one half each, per map."""
    logits = logits.reshape(targets.shape).float()
    targets = targets.clamp(0.0, 1.0)
    positive = targets.sum(dim=(-2, -1), keepdim=True).clamp(min=1e-3)
    negative = (1.0 - targets).sum(dim=(-2, -1), keepdim=True).clamp(min=1e-3)
    weights = 0.5 * targets / positive + 0.5 * (1.0 - targets) / negative
    per_cell = F.binary_cross_entropy_with_logits(logits, targets, reduction="none")
    # the weights sum to one per map; their gradient is not wanted
    return (weights.detach() * per_cell).sum(dim=(-2, -1)).mean()
