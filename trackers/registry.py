"""A plain registry from tracker names to factories.

Every factory takes the same keyword arguments, so callers (CLI, app, benchmark)
never special-case a tracker:

* ``weights``: a checkpoint path, or None for the bundled default;
* ``device``: ``"auto"``, ``"cpu"`` or ``"cuda"`` (ignored by the OpenCV peers);
* ``model_dir``: where the OpenCV DNN peers find their ONNX files;
* ``config``: overrides of the tracker's config dataclass (unknown keys raise).

Imports happen inside the factories so that listing the names costs nothing.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from trackers.protocol import Tracker, TrackerError

Factory = Callable[..., Tracker]


def _siamese(module: str, cls: str, preset: str) -> Factory:
    """A Siamese tracker's factory: ``cls.create(preset, ...)`` from ``module``, imported on use."""

    def make(
        *,
        weights: str | Path | None = None,
        device: str = "auto",
        model_dir: str | Path | None = None,
        config: Mapping[str, Any] | None = None,
    ) -> Tracker:
        tracker_class = getattr(importlib.import_module(module), cls)
        return tracker_class.create(preset, weights=weights, device=device, config=config)

    return make


def _opencv(kind: str) -> Factory:
    def make(
        *,
        weights: str | Path | None = None,
        device: str = "auto",
        model_dir: str | Path | None = None,
        config: Mapping[str, Any] | None = None,
    ) -> Tracker:
        from trackers.opencv import OpenCVTracker

        return OpenCVTracker(kind, model_dir=model_dir)

    return make


def _identity(
    *,
    weights: str | Path | None = None,
    device: str = "auto",
    model_dir: str | Path | None = None,
    config: Mapping[str, Any] | None = None,
) -> Tracker:
    from trackers.identity import IdentityTracker

    return IdentityTracker()


TRACKERS: dict[str, Factory] = {
    "siamfc": _siamese("trackers.siamfc.tracker", "SiamFCTracker", "siamfc"),
    "siamfc-3s": _siamese("trackers.siamfc.tracker", "SiamFCTracker", "siamfc-3s"),
    "siamrpn": _siamese("trackers.siamrpn.tracker", "SiamRPNTracker", "siamrpn"),
    "dsiam": _siamese("trackers.dsiam.tracker", "DSiamTracker", "dsiam"),
    "dsiamm": _siamese("trackers.dsiam.tracker", "DSiamTracker", "dsiamm"),
    "cv-mil": _opencv("mil"),
    "cv-kcf": _opencv("kcf"),
    "cv-csrt": _opencv("csrt"),
    "cv-nano": _opencv("nano"),
    "cv-vit": _opencv("vit"),
    "identity": _identity,
}
TEST_DOUBLES = frozenset({"identity"})
"""Registered for tests and scripts; user-facing lists (the app's, ``--tracker`` choices) leave them out."""


def create_tracker(
    name: str,
    *,
    weights: str | Path | None = None,
    device: str = "auto",
    model_dir: str | Path | None = None,
    config: Mapping[str, Any] | None = None,
) -> Tracker:
    """Build the tracker registered under ``name``; raise TrackerError with a readable reason."""
    try:
        factory = TRACKERS[name]
    except KeyError:
        known = ", ".join(sorted(TRACKERS))
        raise TrackerError(f"unknown tracker {name!r}; choose one of: {known}") from None
    return factory(weights=weights, device=device, model_dir=model_dir, config=config)
