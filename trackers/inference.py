"""Making a trained network cheap to run: batch norm folded away, reduced precision.

Both are pure speed measures; ``siamtrack eval`` decides whether they are kept (bf16 is
the default on a CPU only while its AUC stays within 0.005 of fp32, see README).

int8 (:class:`Embedding`) is the CPU default where the CPU has int8 dot products. Checked
with ``siamtrack eval --tracker siamfc-3s --set precision=int8`` against ``fp32`` on the five
held-out sequences in ``../shared/data/sequences`` (Dog1, Subway, Jogging-1, Jogging-2,
bag): mean AUC 0.6890 against 0.6904 (-0.0014), Dog1 +0.003, Subway +0.001, no sequence
more than 0.008 off. What did not pay on the 2-core AVX512 EPYC, measured: TorchScript
trace + freeze (+ optimize_for_inference) 0.95-0.99x of eager, conv2/4/5 ungrouped 0.9x
or split in two 0.75x, since oneDNN runs the grouped convs at the machine's bf16 peak
already (about 220 GMAC/s); so the eager modules stay.
"""

from __future__ import annotations

import copy
import re
import warnings
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from trackers.geometry import crop_square

PRECISIONS = ("auto", "fp32", "bf16", "fp16", "int8")
QUANTIZED_ENGINES = ("x86", "fbgemm", "onednn")
"""torch's quantized engines with int8 convolutions for x86 CPUs."""


def fold_batchnorm(module: nn.Module) -> nn.Module:
    """Fold every ``Conv2d`` directly followed by a ``BatchNorm2d`` inside an ``nn.Sequential``.

    In eval mode batch norm is an affine map per channel, so it can live in the conv's
    weights and bias: one pass over memory less per layer. The BN becomes an Identity, so
    indices into the Sequential (and code that walks conv1..conv5) keep working. Only for
    inference: the folded module no longer trains like the paper's network.
    """
    for child in module.children():
        if isinstance(child, nn.Sequential):
            layers = list(child)
            for i in range(len(layers) - 1):
                conv, norm = layers[i], layers[i + 1]
                if isinstance(conv, nn.Conv2d) and isinstance(norm, nn.BatchNorm2d):
                    child[i] = fuse_conv_bn_eval(conv.eval(), norm.eval())
                    child[i + 1] = nn.Identity()
        fold_batchnorm(child)
    return module


def cpu_has_bf16() -> bool:
    """oneDNN runs bf16 convolutions natively (AVX512-BF16 or AMX); elsewhere bf16 is emulated and slow."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def cpu_has_vnni() -> bool:
    """The CPU has int8 dot-product instructions (AVX512-VNNI, AVX-VNNI or AMX), which make
    the quantized engine's int8 convolutions twice as fast as bf16 ones; without them int8
    gains little. Read from /proc/cpuinfo, so False off Linux."""
    try:
        flags = Path("/proc/cpuinfo").read_text(errors="replace")
    except OSError:
        return False
    return re.search(r"\b(avx512_vnni|avx_vnni|amx_int8)\b", flags) is not None


def int8_available() -> bool:
    return cpu_has_vnni() and torch.backends.quantized.engine in QUANTIZED_ENGINES


def resolve_precision(requested: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype for ``requested`` on ``device``; None means plain fp32."""
    if requested not in PRECISIONS:
        raise ValueError(f"unknown precision {requested!r}; choose one of {', '.join(PRECISIONS)}")
    if requested == "fp32":
        return None
    if requested == "bf16":
        return torch.bfloat16
    if requested == "fp16":
        if device.type != "cuda":
            raise ValueError("fp16 needs a CUDA device; on a CPU use bf16")
        return torch.float16
    if requested == "int8":
        if device.type != "cpu":
            raise ValueError("int8 runs on a CPU only; on a GPU use fp16")
        return torch.qint8
    # auto: half precision on a GPU; on a CPU int8 where it has int8 dot products, else
    # bf16 where it runs that natively (README, Measured: both keep the AUC of fp32)
    if device.type == "cuda":
        return torch.float16
    if int8_available():
        return torch.qint8
    return torch.bfloat16 if cpu_has_bf16() else None


def autocast(device: torch.device, dtype: torch.dtype | None) -> AbstractContextManager[object]:
    if dtype == torch.qint8:  # int8 is Embedding's own; plain torch code runs it as bf16
        dtype = torch.bfloat16 if cpu_has_bf16() else None
    if dtype is None:
        return nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def precision_name(dtype: torch.dtype | None) -> str:
    return {None: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16", torch.qint8: "int8"}[dtype]


def crop_batch(crops: np.ndarray, device: torch.device) -> torch.Tensor:
    """N x H x W x 3 uint8 crops -> N x 3 x H x W uint8 on ``device``, channels_last.

    No copy on a CPU (a permuted view of the array) and no conversion: :class:`Embedding`
    casts once, to the dtype it runs in.
    """
    return torch.from_numpy(np.ascontiguousarray(crops)).to(device).permute(0, 3, 1, 2)


def crop_squares(
    frame: torch.Tensor,
    cx: float,
    cy: float,
    extents: np.ndarray | torch.Tensor,
    out: int,
    fill: np.ndarray | torch.Tensor,
) -> torch.Tensor:
    """Every scale's square crop in one ``grid_sample`` call, on whatever device ``frame`` is.

    The GPU twin of ``trackers.geometry.crop_square``: ``frame`` is 3 x H x W float (RGB,
    0..255, uploaded once per frame), or 4 x H x W with a fourth channel of ones (see
    below; ``FrameCrops`` adds it once per frame), ``extents`` the S crop sides in frame
    pixels (host values), and the result S x 3 x out x out. Output pixel j is centred at
    ``c - e/2 + (j + 0.5) e/out`` in continuous frame coordinates, as on the CPU path. With
    ``align_corners=False``, grid_sample's -1 and +1 are the frame's outer edges
    (continuous 0 and W), so the normalised coordinate is ``2 x / W - 1``. Outside the
    frame the crop takes ``fill`` (SiamFC Fig. 2), blended at the border exactly as a
    constant border would be.
    """
    channels, height, width = frame.shape
    if channels == 3:
        # a fourth channel of ones tells how much of each output pixel lies inside the frame
        frame = torch.cat([frame, torch.ones_like(frame[:1])], dim=0)
    sides = np.asarray(extents, dtype=np.float64).reshape(-1, 1)
    count = sides.shape[0]
    steps = (np.arange(out, dtype=np.float64) + 0.5) / out
    gx = 2.0 * (cx - sides / 2 + steps[None, :] * sides) / width - 1.0  # S x out
    gy = 2.0 * (cy - sides / 2 + steps[None, :] * sides) / height - 1.0
    # grid and fill computed on the host and sent in one small upload
    packed = np.concatenate([gx.ravel(), gy.ravel(), np.asarray(fill, dtype=np.float64).ravel()])
    packed = torch.from_numpy(packed.astype(np.float32)).to(frame.device, non_blocking=True)
    packed = packed.to(frame.dtype)
    n = count * out
    gx_d = packed[:n].reshape(count, 1, out).expand(count, out, out)
    gy_d = packed[n : 2 * n].reshape(count, out, 1).expand(count, out, out)
    colour = packed[2 * n : 2 * n + 3]
    grid = torch.stack([gx_d, gy_d], dim=-1)
    sampled = torch.nn.functional.grid_sample(
        frame[None].expand(count, -1, -1, -1), grid, mode="bilinear", padding_mode="zeros",
        align_corners=False,
    )
    inside = sampled[:, 3:4]
    return sampled[:, :3] + (1.0 - inside) * colour[None, :, None, None]


class FrameCrops:
    """Square crops of one frame, as batches on the network's device.

    On a GPU the frame is uploaded once, at the first crop, and every crop of that frame
    (all scales of the search region, DSiam's template and background regions) is cut
    there by :func:`crop_squares`: one upload per frame instead of one per crop (issue 7,
    GPU path). On a CPU, OpenCV's warpAffine (``trackers.geometry.crop_square``) is faster
    than grid_sample, and the crops stay uint8 for :class:`Embedding` to cast once.
    ``on_device`` forces the tensor path on any device, which is how the CPU tests check
    the GPU path against the OpenCV one.
    """

    def __init__(self, frame: np.ndarray, device: torch.device, on_device: bool | None = None) -> None:
        self.frame = frame
        self.device = device
        self.on_device = device.type == "cuda" if on_device is None else on_device
        self._image: torch.Tensor | None = None

    def image(self) -> torch.Tensor:
        """The frame as 4 x H x W float on the device, RGB and a channel of ones (see
        :func:`crop_squares`), uploaded on first use."""
        if self._image is None:
            with warnings.catch_warnings():
                # frames may be read-only views; the tensor is only read, then copied
                warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
                host = torch.from_numpy(np.ascontiguousarray(self.frame))
            upload = host.to(self.device, non_blocking=True)
            rgb = upload.permute(2, 0, 1).float()
            self._image = torch.cat([rgb, torch.ones_like(rgb[:1])], dim=0)
        return self._image

    def squares(self, cx: float, cy: float, extents: np.ndarray, out: int, fill: np.ndarray) -> torch.Tensor:
        """N x 3 x out x out crops centred at (cx, cy), side ``extents[i]`` frame pixels,
        padded with ``fill`` outside the frame; channels_last."""
        extents = np.atleast_1d(np.asarray(extents, dtype=np.float64))
        if self.on_device:
            crops = crop_squares(self.image(), float(cx), float(cy), extents, out, fill)
            return crops.contiguous(memory_format=torch.channels_last)
        crops = np.stack([crop_square(self.frame, cx, cy, float(e), out, fill) for e in extents])
        return crop_batch(crops, self.device)


# ------------------------------------------------------------------ the per-frame embedding
INT8_MARGIN = 1.0
"""Headroom over the largest activation seen while calibrating (see ``Embedding.calibrate``)."""
INT8_SHAPES = 8
"""Input shapes an int8 Embedding keeps a packed twin for (a tracker uses two or three)."""

Stages = Sequence[tuple[str, nn.Sequential]]


class Embedding:
    """An embedding as a tracker runs it on every frame: one call, fp32 features out.

    ``stages`` are the embedding's blocks in order (SiamFC's conv1..conv5), each a
    Sequential of Conv2d, BatchNorm2d, ReLU and MaxPool2d. The blocks are copied (and
    batch norm folded in the copies), so the caller's network keeps its weights: its
    checkpoints and training are untouched.

    How it runs, by ``dtype`` (from :func:`resolve_precision`):

    * None: fp32, weights in channels_last.
    * bf16 or fp16 on a GPU: autocast, as before.
    * bf16 on a CPU: the weights themselves in bf16 and the crops cast once, instead of
      autocast casting every weight on every call (same arithmetic, fewer passes).
    * int8 (``torch.qint8``, CPU only): oneDNN/fbgemm int8 convolutions, twice the
      multiply-adds per cycle of bf16 on AVX512-VNNI. Weights are quantized per output
      channel; activations per tensor, with ranges measured by :meth:`calibrate` on the
      first frame (the tracker's exemplar and search regions). The input crops are uint8
      already, so the first layer sees them exactly. Until calibrated it runs bf16.
      oneDNN keeps the convolution it compiled for the first input shape a packed
      weight sees and recompiles for any other shape on every call (1.8x slower, 36
      against 20 ms for SiamFC's three scales), so every input shape (exemplar,
      search batch, DSiam's pair) gets its own twin, packed once.

    Anything it cannot convert (another layer type, no quantized engine) falls back to
    the next precision down; ``precision`` says what it actually runs.
    """

    def __init__(self, stages: Stages, device: torch.device, dtype: torch.dtype | None) -> None:
        if device.type == "cuda":
            # fixed input shapes every frame: let cuDNN pick its fastest kernels once
            torch.backends.cudnn.benchmark = True
        self.device = device
        self.names = [name for name, _ in stages]
        copies = nn.ModuleList(copy.deepcopy(stage) for _, stage in stages).to(device).eval()
        fold_batchnorm(copies)
        self._fp32 = list(copies.to(memory_format=torch.channels_last))
        self._int8: dict[tuple[int, ...], list[nn.Module]] | None = None
        """Input shape -> the int8 twin of every stage for it (see the class notes)."""
        self._int8_spare: list[nn.Module] | None = None
        self._ranges: list[tuple[float, int]] | None = None
        """Every int8 conv's output scale and zero point, from ``calibrate``."""
        self._cast: torch.dtype | None = None  # CPU: weights and input in this dtype
        self._autocast: torch.dtype | None = None  # GPU: autocast to this dtype
        self._fast = self._fp32
        if dtype == torch.qint8:
            try:
                self._int8_spare = self._quantize()
                self._int8 = {}
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

    # ------------------------------------------------------------------ int8
    def _quantize(self) -> list[nn.Module]:
        """The int8 twin of every stage (scales set later by ``calibrate``)."""
        if self.device.type != "cpu" or torch.backends.quantized.engine not in QUANTIZED_ENGINES:
            raise NotImplementedError("int8 needs a CPU with an x86 quantized engine")
        from torch.ao.nn import quantized as nnq
        from torch.ao.nn.intrinsic import quantized as nniq

        stages: list[nn.Module] = []
        with _quiet():
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

        The tracker calls it once per track, on the first frame's crops, so the ranges
        fit that video. A later activation beyond the range is clipped to its end
        (``INT8_MARGIN`` leaves headroom). No-op unless running int8.
        """
        if self._int8 is None:
            return
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
        for stages in self._int8.values():
            self._set_ranges(stages)

    def _set_ranges(self, stages: list[nn.Module]) -> None:
        assert self._ranges is not None
        convs = [m for stage in stages for m in stage if not isinstance(m, nn.MaxPool2d)]
        for conv, (scale, zero_point) in zip(convs, self._ranges):
            conv.scale, conv.zero_point = scale, zero_point

    def _int8_for(self, shape: tuple[int, ...]) -> list[nn.Module]:
        assert self._int8 is not None
        stages = self._int8.get(shape)
        if stages is None:
            stages, self._int8_spare = self._int8_spare or self._quantize(), None
            self._set_ranges(stages)
            if len(self._int8) >= INT8_SHAPES:  # a caller of many shapes: keep the newest
                del self._int8[next(iter(self._int8))]
            self._int8[shape] = stages
        return stages

    # ------------------------------------------------------------------ running
    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        """fp32 features of ``images`` (N x 3 x H x W, uint8 or float 0..255): the last stage."""
        return self.features(images, self.names[-1:])[self.names[-1]]

    @torch.inference_mode()
    def features(self, images: torch.Tensor, taps: Sequence[str]) -> dict[str, torch.Tensor]:
        """fp32 output of every stage named in ``taps``; stages after the last tap do not run."""
        last = max(self.names.index(name) for name in taps)
        out: dict[str, torch.Tensor] = {}
        if self._int8 is not None and self._ranges is not None:
            with _quiet():
                if images.dtype == torch.uint8:
                    x = torch._make_per_tensor_quantized_tensor(images, 1.0, 0)
                else:
                    x = torch.quantize_per_tensor(images.float(), 1.0, 0, torch.quint8)
                for name, stage in zip(self.names[: last + 1], self._int8_for(tuple(images.shape))):
                    x = stage(x)
                    if name in taps:
                        out[name] = x.dequantize()
            return out
        x = images.to(self._cast) if self._cast is not None else images.float()
        with autocast(self.device, self._autocast):
            for name, stage in zip(self.names[: last + 1], self._fast):
                x = stage(x)
                if name in taps:
                    out[name] = x.float()
        return out


@contextmanager
def _quiet() -> Iterator[None]:
    """torch 2.13 warns that quantized tensors are deprecated; the pinned version has them."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*quantiz.*deprecated", category=UserWarning)
        yield
