"""int8 twins of an embedding's blocks (CPU only), their calibration and their packing per shape.

oneDNN/fbgemm int8 convolutions do twice the multiply-adds per cycle of bf16 on
AVX512-VNNI. Weights are quantized per output channel; activations per tensor, with
ranges measured by :meth:`Int8Stages.calibrate` on the first frame (the tracker's
exemplar and search regions). The input crops are uint8 already, so the first layer sees
them exactly. oneDNN keeps the convolution it compiled for the first input shape a
packed weight sees and recompiles for any other shape on every call (1.8x slower, 36
against 20 ms for SiamFC's three scales), so every input shape (exemplar, search batch,
DSiam's pair) gets its own twin, packed once.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import torch
from torch import nn

from trackers.inference.precision import QUANTIZED_ENGINES

INT8_MARGIN = 1.0
"""Headroom over the largest activation seen while calibrating (see ``Int8Stages.calibrate``)."""
INT8_SHAPES = 8
"""Input shapes an int8 embedding keeps a packed twin for (a tracker uses two or three)."""


class Int8Stages:
    """The int8 twins of fp32 ``stages`` (Sequentials of Conv2d, ReLU and MaxPool2d, batch
    norm folded), one set per input shape.

    Building raises (NotImplementedError, or torch's own error where it has no quantized
    tensors) when the stages cannot run in int8; the caller then runs another precision.
    """

    def __init__(self, stages: Sequence[nn.Module], device: torch.device) -> None:
        self.device = device
        self._fp32 = list(stages)
        self.twins: dict[tuple[int, ...], list[nn.Module]] = {}
        """Input shape -> the int8 twin of every stage for it (see the module notes)."""
        self._spare: list[nn.Module] | None = self._quantize()
        self._ranges: list[tuple[float, int]] | None = None
        """Every int8 conv's output scale and zero point, from ``calibrate``."""

    @property
    def calibrated(self) -> bool:
        return self._ranges is not None

    def _quantize(self) -> list[nn.Module]:
        """The int8 twin of every stage (scales set later by ``calibrate``)."""
        if self.device.type != "cpu" or torch.backends.quantized.engine not in QUANTIZED_ENGINES:
            raise NotImplementedError("int8 needs a CPU with an x86 quantized engine")
        from torch.ao.nn import quantized as nnq
        from torch.ao.nn.intrinsic import quantized as nniq

        stages: list[nn.Module] = []
        with quiet():
            for stage in self._fp32:
                layers = [layer for layer in stage if not isinstance(layer, nn.Identity)]
                out: list[nn.Module] = []
                i = 0
                while i < len(layers):
                    layer = layers[i]
                    if isinstance(layer, nn.Conv2d):
                        relu = i + 1 < len(layers) and isinstance(layers[i + 1], nn.ReLU)
                        if layer.padding_mode != "zeros" or layer.bias is None:
                            raise NotImplementedError("int8: only zero-padded convs with a bias")
                        cls = nniq.ConvReLU2d if relu else nnq.Conv2d
                        conv = cls(
                            layer.in_channels, layer.out_channels, layer.kernel_size, layer.stride,
                            layer.padding, layer.dilation, layer.groups,
                        )
                        weight = layer.weight.detach().float()
                        scale = weight.abs().amax(dim=(1, 2, 3)).clamp(min=1e-12) / 127.0
                        zero = torch.zeros(weight.shape[0], dtype=torch.long)
                        conv.set_weight_bias(
                            torch.quantize_per_channel(weight, scale.double(), zero, 0, torch.qint8),
                            layer.bias.detach().float(),
                        )
                        out.append(conv)
                        i += 2 if relu else 1
                    elif isinstance(layer, nn.MaxPool2d):
                        out.append(layer)
                        i += 1
                    else:
                        raise NotImplementedError(f"int8: no quantized {type(layer).__name__}")
                stages.append(nn.Sequential(*out))
        return stages

    @torch.inference_mode()
    def calibrate(self, images: torch.Tensor) -> None:
        """Set every int8 layer's output range from fp32 activations on ``images``.

        A later activation beyond the range is clipped to its end (``INT8_MARGIN``
        leaves headroom).
        """
        x = images.float()
        ranges: list[tuple[float, float]] = []
        for stage in self._fp32:
            layers = [layer for layer in stage if not isinstance(layer, nn.Identity)]
            for i, layer in enumerate(layers):
                x = layer(x)
                if isinstance(layer, nn.Conv2d):
                    relu = i + 1 < len(layers) and isinstance(layers[i + 1], nn.ReLU)
                    lo = 0.0 if relu else float(x.min())
                    ranges.append((lo, float(x.max())))
        self._ranges = []
        for lo, hi in ranges:
            lo, hi = min(lo, 0.0) * INT8_MARGIN, max(hi, 0.0) * INT8_MARGIN
            scale = max(hi - lo, 1e-6) / 255.0
            self._ranges.append((scale, int(min(255, max(0, round(-lo / scale))))))
        for stages in self.twins.values():
            self._set_ranges(stages)

    def _set_ranges(self, stages: list[nn.Module]) -> None:
        assert self._ranges is not None
        convs = [m for stage in stages for m in stage if not isinstance(m, nn.MaxPool2d)]
        for conv, (scale, zero_point) in zip(convs, self._ranges):
            conv.scale, conv.zero_point = scale, zero_point

    def for_shape(self, shape: tuple[int, ...]) -> list[nn.Module]:
        """The twin packed for input ``shape``, made (and calibrated) on first use."""
        stages = self.twins.get(shape)
        if stages is None:
            stages, self._spare = self._spare or self._quantize(), None
            self._set_ranges(stages)
            if len(self.twins) >= INT8_SHAPES:  # a caller of many shapes: keep the newest
                del self.twins[next(iter(self.twins))]
            self.twins[shape] = stages
        return stages

    def features(
        self, images: torch.Tensor, names: Sequence[str], taps: Sequence[str]
    ) -> dict[str, torch.Tensor]:
        """fp32 output of every stage named in ``taps``, of the stages ``names`` (the first ones)."""
        out: dict[str, torch.Tensor] = {}
        with quiet():
            if images.dtype == torch.uint8:
                x = torch._make_per_tensor_quantized_tensor(images, 1.0, 0)
            else:
                x = torch.quantize_per_tensor(images.float(), 1.0, 0, torch.quint8)
            for name, stage in zip(names, self.for_shape(tuple(images.shape))):
                x = stage(x)
                if name in taps:
                    out[name] = x.dequantize()
        return out


@contextmanager
def quiet() -> Iterator[None]:
    """torch 2.13 warns that quantized tensors are deprecated; the pinned version has them."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*quantiz.*deprecated", category=UserWarning)
        yield
