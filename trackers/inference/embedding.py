"""The embedding as a tracker runs it on every frame: folded, in its precision, fp32 out."""

from __future__ import annotations

import copy
from collections.abc import Sequence

import torch
from torch import nn

from trackers.inference.batchnorm import fold_batchnorm
from trackers.inference.int8 import Int8Stages
from trackers.inference.precision import autocast, cpu_has_bf16, precision_name

Stages = Sequence[tuple[str, nn.Sequential]]


class Embedding:
    """An embedding as a tracker runs it on every frame: one call, fp32 features out.

    ``stages`` are the embedding's blocks in order (SiamFC's conv1..conv5), each a
    Sequential of Conv2d, BatchNorm2d, ReLU and MaxPool2d. The blocks are copied (and
    batch norm folded in the copies), so the caller's network keeps its weights: its
    checkpoints and training are untouched.

    How it runs, by ``dtype`` (from :func:`~trackers.inference.precision.resolve_precision`):

    * None: fp32, weights in channels_last.
    * bf16 or fp16 on a GPU: autocast, as before.
    * bf16 on a CPU: the weights themselves in bf16 and the crops cast once, instead of
      autocast casting every weight on every call (same arithmetic, fewer passes).
    * int8 (``torch.qint8``, CPU only): :class:`~trackers.inference.int8.Int8Stages`,
      calibrated by :meth:`calibrate` on the first frame. Until calibrated it runs bf16.

    Anything it cannot convert (another layer type, no quantized engine) falls back to
    the next precision down; ``precision`` says what it actually runs.
    """

    def __init__(self, stages: Stages, device: torch.device, dtype: torch.dtype | None) -> None:
        if device.type == "cuda":
            # fixed input shapes every frame: let cuDNN pick its fastest algorithms once
            torch.backends.cudnn.benchmark = True
        self.device = device
        self.names = [name for name, _ in stages]
        copies = nn.ModuleList(copy.deepcopy(stage) for _, stage in stages).to(device).eval()
        fold_batchnorm(copies)
        self._fp32 = list(copies.to(memory_format=torch.channels_last))
        self._int8: Int8Stages | None = None
        self._cast: torch.dtype | None = None  # CPU: weights and input in this dtype
        self._autocast: torch.dtype | None = None  # GPU: autocast to this dtype
        self._fast = self._fp32
        if dtype == torch.qint8:
            try:
                self._int8 = Int8Stages(self._fp32, device)
            except (ImportError, AttributeError, RuntimeError, NotImplementedError, ValueError):
                self._int8 = None  # a torch without quantized tensors (deprecated in 2.13)
            dtype = torch.bfloat16 if cpu_has_bf16() else None
        if dtype is not None and device.type == "cpu":
            self._cast = dtype
            self._fast = [copy.deepcopy(stage).to(dtype) for stage in self._fp32]
        elif dtype is not None:
            self._autocast = dtype
        self._fallback = precision_name(dtype)

    @property
    def precision(self) -> str:
        return "int8" if self._int8 is not None else self._fallback

    def calibrate(self, images: torch.Tensor) -> None:
        """Set the int8 ranges from ``images`` (:meth:`Int8Stages.calibrate`); no-op unless running int8.

        The tracker calls it once per track, on the first frame's crops, so the ranges
        fit that video.
        """
        if self._int8 is not None:
            self._int8.calibrate(images)

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        """fp32 features of ``images`` (N x 3 x H x W, uint8 or float 0..255): the last stage."""
        return self.features(images, self.names[-1:])[self.names[-1]]

    @torch.inference_mode()
    def features(self, images: torch.Tensor, taps: Sequence[str]) -> dict[str, torch.Tensor]:
        """fp32 output of every stage named in ``taps``; stages after the last tap do not run."""
        last = max(self.names.index(name) for name in taps)
        if self._int8 is not None and self._int8.calibrated:
            return self._int8.features(images, self.names[: last + 1], taps)
        out: dict[str, torch.Tensor] = {}
        x = images.to(self._cast) if self._cast is not None else images.float()
        with autocast(self.device, self._autocast):
            for name, stage in zip(self.names[: last + 1], self._fast):
                x = stage(x)
                if name in taps:
                    out[name] = x.float()
        return out
