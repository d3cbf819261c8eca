"""Any registered siamtrack tracker as a got10k ``Tracker``.

got10k (PyPI ``got10k`` 0.1.3) runs its experiments on objects with ``name``,
``is_deterministic``, ``init(image, box)`` and ``update(image) -> box``, where
``image`` is a ``PIL.Image`` in RGB and boxes are numpy ``[x, y, w, h]``::

    from got10k.experiments import ExperimentGOT10k
    from trackers.toolkits.got10k_adapter import got10k_tracker

    experiment = ExperimentGOT10k("data/GOT-10k", subset="val")
    experiment.run(got10k_tracker("siamfc"))
    experiment.report(["siamfc"])

got10k is not a dependency of siamtrack: it is imported only when an adapter is
built. It needs ``six`` without declaring it (``pip install got10k six``), and it
pulls matplotlib, Pillow and Shapely; keep it in a venv of its own (see
shared/docs/ECOSYSTEM.md section 1 and tools/vot/README.md for the setup used here).

**Box convention.** got10k does no conversion of its own: ``track()`` hands the
tracker the first line of the dataset's ground-truth file as it is, and scores the
returned boxes against the file's lines as they are. The GOT-10k and OTB files are
1-based (see :mod:`trackers.formats.got10k`), so a got10k box is 1-based while
siamtrack's trackers work in 0-based pixels (:mod:`trackers.types`). The adapter
converts at this edge: 1 is subtracted from ``x, y`` on the way in and added on the
way out (``one_based=False`` turns that off, for a got10k dataset class fed 0-based
files). IoU does not care about a common shift, but the tracker must look at the
right pixels, and got10k's clipping to the image (``rect_iou(..., bound=)``) does.

:func:`got10k_ao` recomputes got10k's GOT-10k AO / SR without got10k, so reports can
be cross-checked (tests/toolkits/test_got10k.py does).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from trackers.protocol import Tracker, TrackerError
from trackers.types import Box, Frame, TrackResult, as_frame

INSTALL_HINT = "pip install got10k six (in a venv of its own; it is not a siamtrack dependency)"


def _got10k_base() -> type:
    """got10k's ``Tracker`` base class, imported on first use."""
    try:
        from got10k.trackers import Tracker as Got10kTracker
    except ImportError as exc:
        raise TrackerError(f"the got10k toolkit is not importable ({exc}); {INSTALL_HINT}") from None
    return Got10kTracker


def to_frame(image: Any) -> Frame:
    """A got10k image (``PIL.Image``, any mode, or an RGB array) as a siamtrack RGB frame."""
    if hasattr(image, "mode") and hasattr(image, "convert"):
        # PIL: got10k already converts to RGB, but a caller of init()/update() may not.
        if image.mode != "RGB":
            image = image.convert("RGB")
        array = np.asarray(image, dtype=np.uint8)
    else:
        array = np.asarray(image)
    return as_frame(np.ascontiguousarray(array))


@functools.cache
def _adapter_class(base: type) -> type:
    """The adapter as a subclass of got10k's ``Tracker``, so that got10k's ``track()``
    (its timing and file loop) is the one that runs."""

    class Got10kAdapter(base):  # type: ignore[misc, valid-type]
        """A siamtrack tracker behind got10k's ``init`` / ``update``."""

        def __init__(self, tracker: Tracker, name: str, *, one_based: bool, is_deterministic: bool) -> None:
            super().__init__(name=name, is_deterministic=is_deterministic)
            self.tracker = tracker
            self.offset = 1.0 if one_based else 0.0
            self.last_result: TrackResult | None = None
            """The full result of the last update (score, score maps), for callers that want more."""

        def init(self, image: Any, box: ArrayLike) -> None:
            x, y, w, h = (float(v) for v in np.asarray(box, dtype=np.float64).reshape(4))
            start = Box(x - self.offset, y - self.offset, w, h)
            if not start.is_valid():
                raise ValueError(f"got10k gave an initial box without positive size: {list(np.ravel(box))}")
            self.last_result = None
            self.tracker.init(to_frame(image), start)

        def update(self, image: Any) -> NDArray[np.float64]:
            result = self.tracker.update(to_frame(image))
            self.last_result = result
            out = result.box.as_array()
            out[:2] += self.offset
            return out

    return Got10kAdapter


def got10k_tracker(
    name: str,
    *,
    weights: str | Path | None = None,
    device: str = "auto",
    model_dir: str | Path | None = None,
    config: Mapping[str, Any] | None = None,
    label: str | None = None,
    one_based: bool = True,
    is_deterministic: bool = True,
) -> Any:
    """A got10k ``Tracker`` running the siamtrack tracker registered under ``name``.

    ``label`` is the name got10k files results under (default: ``name``).
    ``is_deterministic`` defaults to True because every registered tracker gives the
    same boxes for the same frames (no sampling at test time); got10k then runs one
    repetition instead of three. Pass False for a tracker whose CUDA kernels are not
    deterministic, so that got10k checks for itself.
    """
    from trackers.registry import create_tracker

    base = _got10k_base()
    tracker = create_tracker(name, weights=weights, device=device, model_dir=model_dir, config=config)
    cls = _adapter_class(base)
    return cls(tracker, label or name, one_based=one_based, is_deterministic=is_deterministic)


# --------------------------------------------------------------------------- scoring


def bound_boxes(boxes: ArrayLike, resolution: tuple[float, float]) -> NDArray[np.float64]:
    """got10k's ``rect_iou(..., bound=(W, H))`` clipping, reproduced exactly.

    It clips ``x`` to ``[0, W]`` and then ``w`` to ``[0, W - x]`` (same for y, h). That
    is not the intersection with the image (:meth:`Box.clipped`): a box hanging off
    the left edge is moved right, keeping its width. GOT-10k's scores are defined by
    this code, so it is copied as is.
    """
    out = np.array(boxes, dtype=np.float64, copy=True).reshape(-1, 4)
    width, height = float(resolution[0]), float(resolution[1])
    out[:, 0] = np.clip(out[:, 0], 0.0, width)
    out[:, 1] = np.clip(out[:, 1], 0.0, height)
    out[:, 2] = np.clip(out[:, 2], 0.0, width - out[:, 0])
    out[:, 3] = np.clip(out[:, 3], 0.0, height - out[:, 1])
    return out


def got10k_sequence_ious(
    predicted: ArrayLike, groundtruth: ArrayLike, cover: ArrayLike, resolution: tuple[float, float]
) -> NDArray[np.float64]:
    """Per-frame IoUs that GOT-10k's AO averages, for one sequence and one run.

    As ``ExperimentGOT10k.report()``: frame 0 (the initialisation) is skipped, both
    box sets are bounded by the resolution, and only frames with ``cover > 0`` (some
    of the target visible) are kept. Boxes are in the files' own coordinates.
    """
    from trackers.evaluation import iou

    pred = np.asarray(predicted, dtype=np.float64).reshape(-1, 4)
    gt = np.asarray(groundtruth, dtype=np.float64).reshape(-1, 4)
    visible = np.asarray(cover, dtype=np.float64).reshape(-1)
    if not (len(pred) == len(gt) == len(visible)):
        raise ValueError(f"lengths differ: {len(pred)} boxes, {len(gt)} ground truth, {len(visible)} cover")
    ious = iou(bound_boxes(pred[1:], resolution), bound_boxes(gt[1:], resolution))
    return ious[visible[1:] > 0]


def got10k_ao(sequence_ious: list[ArrayLike]) -> dict[str, float]:
    """AO and SR (and SR at 0.75) over all frames of all sequences and runs, frame-weighted.

    got10k concatenates the per-frame IoUs before averaging, so a long sequence weighs
    more than a short one. SR is the fraction with IoU strictly above 0.5.
    """
    values = np.concatenate([np.asarray(v, dtype=np.float64).reshape(-1) for v in sequence_ious])
    if values.size == 0:
        raise ValueError("no frames to score")
    return {
        "ao": float(np.mean(values)),
        "sr": float(np.mean(values > 0.5)),
        "sr75": float(np.mean(values > 0.75)),
    }
