"""Which torch device a tracker or a training run uses."""

from __future__ import annotations

import torch

from trackers.protocol import TrackerError


def choose_device(device: str = "auto") -> torch.device:
    """``auto`` picks CUDA when there is one; ``cuda`` without CUDA is an error, not a silent CPU."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cpu":
        return torch.device("cpu")
    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise TrackerError("--device cuda was asked for, but torch sees no CUDA device")
        return torch.device(device)
    raise TrackerError(f"unknown device {device!r}; use auto, cpu or cuda")
