"""Checkpoints and devices.

Our checkpoint is a plain dict saved with ``torch.save``::

    {"format": "siamtrack-checkpoint", "version": 1,
     "architecture": "siamfc-alexnet", "config": {...}, "provenance": {...},
     "state_dict": {name: tensor}}

It holds only tensors, strings, numbers, lists and dicts, so it loads with
``torch.load(weights_only=True)``: a file that would run code when unpickled is
refused, never executed.
"""

from __future__ import annotations

import os
import pickle
import sys
import tempfile
import zipfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from trackers.protocol import TrackerError

FORMAT = "siamtrack-checkpoint"
VERSION = 1


class WeightsError(TrackerError):
    """A weights file that cannot be used; the message names the file and the reason."""


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


def save_checkpoint(
    path: str | Path,
    state_dict: Mapping[str, torch.Tensor],
    *,
    architecture: str,
    config: Mapping[str, Any],
    provenance: Mapping[str, Any] | None = None,
    half: bool = False,
) -> Path:
    """Write atomically: a temporary file in the same folder, then rename over ``path``."""
    path = Path(path)
    tensors = {
        k: (v.detach().to("cpu").half() if half and v.is_floating_point() else v.detach().to("cpu"))
        for k, v in state_dict.items()
    }
    payload = {
        "format": FORMAT,
        "version": VERSION,
        "architecture": architecture,
        "config": dict(config),
        "provenance": dict(provenance or {}),
        "state_dict": tensors,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(payload, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _load_safely(path: Path) -> Any:
    if not path.is_file():
        raise WeightsError(f"weights file not found: {path}")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        # weights_only refuses any global it does not know: that is code, not weights.
        raise WeightsError(
            f"refusing {path}: it is not a plain tensor file and could run code when loaded ({exc})".splitlines()[0]
        ) from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise WeightsError(f"cannot read weights {path}: truncated or not a torch file ({first})") from None


def load_checkpoint(path: str | Path, architecture: str) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Return ``(state_dict, metadata)`` for ``architecture`` from our format or a known foreign one.

    Foreign layouts understood: the siamfc-pytorch checkpoint (``siamfc_alexnet_e50.pth``,
    a bare state dict with keys ``backbone.convN.{0,1}.*``).
    """
    path = Path(path)
    data = _load_safely(path)
    if isinstance(data, dict) and data.get("format") == FORMAT:
        found = data.get("architecture")
        if found != architecture:
            raise WeightsError(f"{path} holds weights for {found!r}, not {architecture!r}")
        state = {k: v.float() if v.is_floating_point() else v for k, v in data["state_dict"].items()}
        meta = {k: v for k, v in data.items() if k != "state_dict"}
        return state, meta
    if isinstance(data, dict) and architecture == "siamfc-alexnet" and _is_siamfc_pytorch(data):
        return map_siamfc_pytorch(data), {
            "format": "siamfc-pytorch",
            "architecture": architecture,
            "config": {},
            "provenance": {"source": str(path), "layout": "huanglianghua/siamfc-pytorch"},
        }
    raise WeightsError(f"{path} is not a siamtrack checkpoint for {architecture!r} nor a layout we know")


def _is_siamfc_pytorch(data: Mapping[str, Any]) -> bool:
    return "backbone.conv1.0.weight" in data and "backbone.conv5.0.weight" in data


def map_siamfc_pytorch(data: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename siamfc-pytorch keys to ours.

    Their conv5 has no batch norm; ours does (section 2.6 puts one after every linear
    layer), so it becomes an exact identity: weight 1, bias 0, mean 0, var 1 - eps.
    """
    state: dict[str, torch.Tensor] = {}
    for key, value in data.items():
        if not key.startswith("backbone."):
            continue
        state["embedding." + key[len("backbone.") :]] = value.float() if value.is_floating_point() else value
    eps = 1e-6
    state["embedding.conv5.1.weight"] = torch.ones(256)
    state["embedding.conv5.1.bias"] = torch.zeros(256)
    state["embedding.conv5.1.running_mean"] = torch.zeros(256)
    state["embedding.conv5.1.running_var"] = torch.full((256,), 1.0 - eps)
    state["embedding.conv5.1.num_batches_tracked"] = torch.tensor(0)
    state["bias"] = torch.zeros(1)
    return state


def load_into(module: nn.Module, path: str | Path, architecture: str, what: str) -> dict[str, Any]:
    """Load ``path`` (of ``architecture``) into ``module`` strictly; return the metadata."""
    state, meta = load_checkpoint(path, architecture)
    try:
        module.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise TrackerError(f"{path} does not fit the {what} network: {str(exc).splitlines()[0]}") from None
    return meta


def load_or_random(
    net: nn.Module,
    *,
    weights: str | Path | None,
    default_path: Path,
    name: str,
    init: Callable[[nn.Module], None],
    load: Callable[[nn.Module, Path], object],
) -> bool:
    """Load the given weights, else the bundled default; with neither, initialise ``net``
    randomly and say so on stderr. Returns True when the network is untrained.

    A ``weights`` path the user gave must exist: only the bundled default may be missing.
    """
    path = Path(weights) if weights is not None else default_path
    if weights is None and not path.is_file():
        init(net)
        print(
            f"WARNING: {name} has no trained weights ({path} is missing): it runs on RANDOM "
            "weights and its boxes mean little. Train some with `siamtrack train`.",
            file=sys.stderr,
        )
        return True
    load(net, path)
    return False
