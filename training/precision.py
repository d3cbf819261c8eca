"""Mixed precision for training: which autocast dtype ``--amp`` means, and the context for it."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import torch

from training.config import AMP_CHOICES, TrainingError


def precision_for(amp: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype for ``--amp``: ``auto`` is fp16 on CUDA and off on the CPU.

    bf16 on the CPU is offered (it roughly halves the convolutions' cost on CPUs with
    AVX-512 BF16) but not the default: fp32 master weights keep it stable, yet its
    7-bit mantissa makes the small late learning rates of section 4.1 partly vanish.
    """
    if amp not in AMP_CHOICES:
        raise TrainingError(f"unknown --amp {amp!r}; choose one of {', '.join(AMP_CHOICES)}")
    if amp == "auto":
        return torch.float16 if device.type == "cuda" else None
    if amp == "off":
        return None
    if amp == "fp16" and device.type != "cuda":
        raise TrainingError("--amp fp16 needs CUDA; on the CPU use bf16 or off")
    return torch.float16 if amp == "fp16" else torch.bfloat16


@contextlib.contextmanager
def autocast(device: torch.device, dtype: torch.dtype | None) -> Iterator[None]:
    if dtype is None:
        yield
        return
    with torch.autocast(device_type=device.type, dtype=dtype):
        yield


def move_optimizer_state(state: Any, device: torch.device) -> None:
    for buffers in state.values():
        for key, value in buffers.items():
            if isinstance(value, torch.Tensor):
                buffers[key] = value.to(device)
