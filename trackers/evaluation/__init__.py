"""OTB-style one-pass evaluation with got10k's definitions, laid out as got10k lays it out:

* ``metrics``: IoU (the one IoU of siamtrack), centre error, success and precision curves, AUC;
* ``datasets``: annotated sequences and their ground truth (``load_sequences``);
* ``run``: a tracker over sequences (``evaluate``);
* ``report``: the results, their JSON contract, the text table, the per-frame boxes;
* ``plots``: success and precision plots (imported on its own: it needs OpenCV).

The names below are the public API, re-exported so ``from trackers.evaluation import ...`` works.
"""

from trackers.evaluation.datasets import (
    MAX_COORDINATE,
    OTB_GROUNDTRUTH,
    AnnotatedSequence,
    box_problem,
    load_sequences,
    read_groundtruth,
)
from trackers.evaluation.metrics import (
    PRECISION_AT,
    PRECISION_THRESHOLDS,
    SUCCESS_THRESHOLDS,
    auc,
    box_iou,
    center_error,
    first_valid_frame,
    iou,
    precision_curve,
    precision_score,
    sequence_curves,
    success_curve,
)
from trackers.evaluation.report import EvalReport, SequenceResult, format_table, save_boxes
from trackers.evaluation.run import PROGRESS_EVERY, evaluate

__all__ = [
    "MAX_COORDINATE",
    "OTB_GROUNDTRUTH",
    "PRECISION_AT",
    "PRECISION_THRESHOLDS",
    "PROGRESS_EVERY",
    "SUCCESS_THRESHOLDS",
    "AnnotatedSequence",
    "EvalReport",
    "SequenceResult",
    "auc",
    "box_iou",
    "box_problem",
    "center_error",
    "evaluate",
    "first_valid_frame",
    "format_table",
    "iou",
    "load_sequences",
    "precision_curve",
    "precision_score",
    "read_groundtruth",
    "save_boxes",
    "sequence_curves",
    "success_curve",
]
