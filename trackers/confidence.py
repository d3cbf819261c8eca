"""A tracker's raw peak score mapped to a confidence in [0, 1] that means the same for every tracker.

SiamFC's peak is about 10, SiamRPN's lies in 0-1 and DSiam's elsewhere again, so one
threshold cannot serve them all. Each Siamese tracker gets a logistic map

    confidence = 1 / (1 + exp(-(a * score + b)))

fitted so that the confidence estimates P(IoU > 0.5 with the ground truth) on that
frame. The two numbers per tracker in ``CALIBRATION`` were fitted on training
sequences only (``../shared/data/sequences`` minus the held-out OTB100_Dog1,
OTB100_Jogging-1, OTB100_Jogging-2, OTB100_Subway, VOT2015_bag and OTB100_Coke) with
the bundled weights, by

    python tools/calibrate_confidence.py --frames 100

which prints the table below. New default weights change the scores: rerun it then.
A tracker without an entry (the OpenCV peers, test doubles) keeps its score clipped
to [0, 1] (the OpenCV peers already score in [0, 1]), and ``is_calibrated`` says so.
"""

from __future__ import annotations

import math

CALIBRATION: dict[str, tuple[float, float]] = {
    # name: (a, b), fitted as described above; see tools/calibrate_confidence.py
    "siamfc": (0.5803, -0.3143),  # 928 frames, 86% IoU>0.5, scores 0.716-11, Brier 0.096
    "siamfc-3s": (0.7113, -1.002),  # 928 frames, 79% IoU>0.5, scores 0.431-10.4, Brier 0.115
    "siamrpn": (8.614, -5.054),  # 928 frames, 91% IoU>0.5, scores 0.574-0.999, Brier 0.046
    "dsiam": (0.3919, -0.08531),  # 928 frames, 84% IoU>0.5, scores 1.94-8.48, Brier 0.120
    "dsiamm": (0.5518, -1.356),  # 928 frames, 77% IoU>0.5, scores 2.21-8.5, Brier 0.154
}


def is_calibrated(tracker: str) -> bool:
    return tracker in CALIBRATION


def confidence(tracker: str, score: float | None) -> float | None:
    """The calibrated confidence of ``tracker``'s raw ``score``; None for no (or a NaN) score."""
    if score is None or not math.isfinite(score):
        return None
    params = CALIBRATION.get(tracker)
    if params is None:
        return min(1.0, max(0.0, float(score)))
    a, b = params
    z = a * float(score) + b
    # the two branches keep exp() from overflowing for large |z|
    if z >= 0:
        return 1.0 / (1.0 + math.exp(-z))
    e = math.exp(z)
    return e / (1.0 + e)
