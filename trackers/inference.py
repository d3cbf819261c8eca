"""Making a trained network cheap to run: batch norm folded away, reduced precision.

Both are pure speed measures; ``siamtrack eval`` decides whether they are kept (bf16 is
the default on a CPU only while its AUC stays within 0.005 of fp32, see README).
"""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext

import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

PRECISIONS = ("auto", "fp32", "bf16", "fp16")


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
    # auto: half precision on a GPU; bf16 on a CPU that runs it natively
    if device.type == "cuda":
        return torch.float16
    return torch.bfloat16 if cpu_has_bf16() else None


def autocast(device: torch.device, dtype: torch.dtype | None) -> AbstractContextManager[object]:
    if dtype is None:
        return nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def precision_name(dtype: torch.dtype | None) -> str:
    return {None: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}[dtype]


def crop_squares(
    frame: torch.Tensor,
    cx: float,
    cy: float,
    extents: torch.Tensor,
    out: int,
    fill: torch.Tensor,
) -> torch.Tensor:
    """Every scale's square crop in one ``grid_sample`` call, on whatever device ``frame`` is.

    The GPU twin of ``trackers.geometry.crop_square``: ``frame`` is 3 x H x W float (RGB,
    0..255, uploaded once per frame), ``extents`` the S crop sides in frame pixels, and
    the result S x 3 x out x out. Output pixel j is centred at ``c - e/2 + (j + 0.5) e/out``
    in continuous frame coordinates, as on the CPU path. With ``align_corners=False``,
    grid_sample's -1 and +1 are the frame's outer edges (continuous 0 and W), so the
    normalised coordinate is ``2 x / W - 1``. Outside the frame the crop takes ``fill``
    (SiamFC Fig. 2), blended at the border exactly as a constant border would be.
    """
    _, height, width = frame.shape
    count = extents.shape[0]
    steps = (torch.arange(out, device=frame.device, dtype=frame.dtype) + 0.5) / out
    extents = extents.to(device=frame.device, dtype=frame.dtype)[:, None]
    xs = cx - extents / 2 + steps[None, :] * extents  # S x out
    ys = cy - extents / 2 + steps[None, :] * extents
    gx = (2.0 * xs / width - 1.0)[:, None, :].expand(count, out, out)
    gy = (2.0 * ys / height - 1.0)[:, :, None].expand(count, out, out)
    grid = torch.stack([gx, gy], dim=-1)
    # a fourth channel of ones tells how much of each output pixel lies inside the frame
    padded = torch.cat([frame, torch.ones_like(frame[:1])], dim=0)[None].expand(count, -1, -1, -1)
    sampled = torch.nn.functional.grid_sample(
        padded, grid, mode="bilinear", padding_mode="zeros", align_corners=False
    )
    inside = sampled[:, 3:4]
    return sampled[:, :3] + (1.0 - inside) * fill.to(frame.device, frame.dtype)[None, :, None, None]
