"""Which arithmetic a network runs in: fp32, bf16, fp16 or int8, by request and device."""

from __future__ import annotations

import re
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path

import torch

PRECISIONS = ("auto", "fp32", "bf16", "fp16", "int8")
QUANTIZED_ENGINES = ("x86", "fbgemm", "onednn")
"""torch's quantized engines with int8 convolutions for x86 CPUs."""


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
