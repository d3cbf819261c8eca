"""The metrics of OTB-style one-pass evaluation, with got10k's definitions.

The numbers must be comparable with published OTB results, so every definition
follows got10k (``got10k/utils/metrics.py`` and ``got10k/experiments/otb.py``):

* IoU on continuous ``x, y, w, h`` boxes (no ``+1``), ``inter / (union + eps)``,
  clipped to [0, 1];
* success curve: fraction of frames with IoU ``>`` each of 21 thresholds in [0, 1];
  its mean is the AUC;
* precision curve: fraction of frames with centre error ``<=`` each of 0..50 px;
  precision is its value at 20 px;
* the first frame's prediction is the ground truth itself;
* curves are computed per sequence and averaged over sequences.

One departure, stated here: frames whose ground truth is absent (NaN) are left
out, as pytracking does, where got10k would count them as failures.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike, NDArray

from trackers.types import Box

SUCCESS_THRESHOLDS: NDArray[np.float64] = np.linspace(0.0, 1.0, 21)
PRECISION_THRESHOLDS: NDArray[np.float64] = np.arange(0, 51, dtype=np.float64)
PRECISION_AT = 20
"""Index into PRECISION_THRESHOLDS (and pixel value) of the reported precision."""



def _as_boxes(boxes: ArrayLike) -> NDArray[np.float64]:
    array = np.asarray(boxes, dtype=np.float64)
    if array.ndim == 1:
        array = array[np.newaxis, :]
    if array.ndim != 2 or array.shape[1] != 4:
        raise ValueError(f"boxes must be N x 4 (x, y, w, h), got shape {array.shape}")
    return array


def iou(a: ArrayLike, b: ArrayLike) -> NDArray[np.float64]:
    """Per-row IoU of two N x 4 arrays of 0-based ``x, y, w, h`` (got10k ``rect_iou``)."""
    a, b = _as_boxes(a), _as_boxes(b)
    if a.shape != b.shape:
        raise ValueError(f"box arrays differ in shape: {a.shape} vs {b.shape}")
    x0 = np.maximum(a[:, 0], b[:, 0])
    y0 = np.maximum(a[:, 1], b[:, 1])
    x1 = np.minimum(a[:, 0] + a[:, 2], b[:, 0] + b[:, 2])
    y1 = np.minimum(a[:, 1] + a[:, 3], b[:, 1] + b[:, 3])
    inter = np.maximum(x1 - x0, 0.0) * np.maximum(y1 - y0, 0.0)
    union = a[:, 2] * a[:, 3] + b[:, 2] * b[:, 3] - inter
    # The one IoU rule of siamtrack (got10k's): the eps keeps 0/0 finite, so a zero union
    # (two empty boxes) gives 0, and shifts other results by ~1e-16 only.
    return np.clip(inter / (union + np.finfo(float).eps), 0.0, 1.0)


def box_iou(a: Box, b: Box) -> float:
    """IoU of two boxes: :func:`iou` on one row, so every IoU in siamtrack follows one rule.

    Zero union (two empty boxes) gives 0, as got10k's ``rect_iou`` does; so does a box with
    a NaN coordinate (an absent box overlaps nothing), where the per-frame metric keeps NaN.
    """
    value = float(iou(a.as_array(), b.as_array())[0])
    return 0.0 if math.isnan(value) else value


def center_error(a: ArrayLike, b: ArrayLike) -> NDArray[np.float64]:
    """Per-row Euclidean distance between box centres, in pixels."""
    a, b = _as_boxes(a), _as_boxes(b)
    if a.shape != b.shape:
        raise ValueError(f"box arrays differ in shape: {a.shape} vs {b.shape}")
    # got10k uses xy + (wh - 1) / 2; the -1/2 cancels in the difference.
    centres_a = a[:, :2] + a[:, 2:] / 2.0
    centres_b = b[:, :2] + b[:, 2:] / 2.0
    return np.sqrt(np.sum((centres_a - centres_b) ** 2, axis=1))


def success_curve(ious: ArrayLike) -> NDArray[np.float64]:
    """Fraction of frames with IoU strictly above each of 21 thresholds in [0, 1]."""
    values = np.asarray(ious, dtype=np.float64).reshape(-1, 1)
    if values.size == 0:
        raise ValueError("success_curve needs at least one frame")
    return np.mean(values > SUCCESS_THRESHOLDS[np.newaxis, :], axis=0)


def precision_curve(errors: ArrayLike) -> NDArray[np.float64]:
    """Fraction of frames with centre error at most each of 0..50 px."""
    values = np.asarray(errors, dtype=np.float64).reshape(-1, 1)
    if values.size == 0:
        raise ValueError("precision_curve needs at least one frame")
    return np.mean(values <= PRECISION_THRESHOLDS[np.newaxis, :], axis=0)


def auc(curve: ArrayLike) -> float:
    """got10k's success score: the mean of the success curve."""
    return float(np.mean(np.asarray(curve, dtype=np.float64)))


def precision_score(curve: ArrayLike) -> float:
    """Precision at 20 px from a precision curve."""
    return float(np.asarray(curve, dtype=np.float64)[PRECISION_AT])


def first_valid_frame(groundtruth: NDArray[np.float64]) -> int | None:
    """Index of the first frame whose ground truth can start a tracker, or None."""
    for index, row in enumerate(groundtruth):
        if Box(*row).is_valid():
            return index
    return None


def sequence_curves(
    predicted: ArrayLike, groundtruth: ArrayLike
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Success and precision curves of one sequence.

    The first valid ground-truth frame is the initialisation frame: its prediction
    is replaced by the ground truth. Frames with NaN ground truth (absent target)
    and frames before the first valid one are left out.
    """
    pred = _as_boxes(predicted).copy()
    gt = _as_boxes(groundtruth)
    count = min(len(pred), len(gt))
    pred, gt = pred[:count], gt[:count]
    start = first_valid_frame(gt)
    if start is None:
        raise ValueError("the ground truth has no valid box")
    pred[start] = gt[start]
    keep = ~np.isnan(gt).any(axis=1)
    keep[:start] = False
    return (
        success_curve(iou(pred[keep], gt[keep])),
        precision_curve(center_error(pred[keep], gt[keep])),
    )

