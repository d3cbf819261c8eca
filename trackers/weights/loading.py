"""A weights file into a network: ours or a foreign layout, else the bundled default, else random."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from trackers.protocol import TrackerError
from trackers.weights.checkpoint import FORMAT, WeightsError, check_finite, load_safely, read_ours
from trackers.weights.foreign import read_foreign

log = logging.getLogger(__name__)


def load_checkpoint(path: str | Path, architecture: str) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Return ``(state_dict, metadata)`` for ``architecture`` from our format or a known foreign one.

    Foreign layouts understood: the siamfc-pytorch checkpoint (``siamfc_alexnet_e50.pth``,
    a bare state dict with keys ``backbone.convN.{0,1}.*``) and DaSiamRPN's
    (:mod:`trackers.weights.foreign`). Weights that are not all finite are refused, naming
    the file and the tensor.
    """
    path = Path(path)
    state, meta = _load_checkpoint(path, architecture)
    return check_finite(path, state), meta


def _load_checkpoint(path: Path, architecture: str) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    data = load_safely(path)
    if isinstance(data, dict) and data.get("format") == FORMAT:
        found = data.get("architecture")
        if found != architecture:
            raise WeightsError(f"{path} holds weights for {found!r}, not {architecture!r}")
        return read_ours(path, data)
    foreign = read_foreign(path, data, architecture)
    if foreign is not None:
        return foreign
    raise WeightsError(f"{path} is not a siamtrack checkpoint for {architecture!r} nor a layout we know")


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
    randomly and say so (a warning on this module's logger). Returns True when the network is untrained.

    A ``weights`` path the user gave must exist: only the bundled default may be missing.
    """
    path = Path(weights) if weights is not None else default_path
    if weights is None and not path.is_file():
        init(net)
        log.warning(
            "WARNING: %s has no trained weights (%s is missing): it runs on RANDOM "
            "weights and its boxes mean little. Train some with `siamtrack train`.",
            name,
            path,
        )
        return True
    load(net, path)
    return False
