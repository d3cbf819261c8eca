"""SiamRPN's constants, with the values of Li et al. 2018 as defaults.

Where the paper gives no number, the value is the one of the authors' released
tracking code (the DaSiamRPN repository, whose ``TrackerConfig`` also runs their
SiamRPN models); each such field says so.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from trackers.config import MAX_CROP, SEARCH_RANGES, Range, check_ranges, score_cells


@dataclass(frozen=True, slots=True)
class SiamRPNConfig:
    # --- crops (section 5.1, eq. 15) -------------------------------------------------
    # Exemplar A x A with (w + p)(h + p) = A^2, p = (w + h) / 2, resized to 127; the
    # detection patch has double that side, resized to 255.
    exemplar_size: int = 127
    search_size: int = 255
    # Eq. 15's p = (w + h) / 2 as the factor of (w + h) that exemplar_extent() takes:
    # the same square as SiamFC's eq. 7.
    context: float = 0.5
    # Total stride of the modified AlexNet (section 3.1, inherited from SiamFC).
    total_stride: int = 8

    # --- anchors (section 3.3) ---------------------------------------------------------
    # "only one scale with different ratios of anchor is adopted and the anchor ratios
    # we adopted are [0.33, 0.5, 1, 2, 3]". A ratio is height / width (section 4.3 calls
    # r "the ratio of height and width"; the released code builds anchors that way).
    anchor_ratios: tuple[float, ...] = (0.33, 0.5, 1.0, 2.0, 3.0)
    # The paper gives no anchor size. Released code: scales = [8] on a base of
    # total_stride = 8 pixels, i.e. every anchor has the area of a 64 x 64 square in the
    # 255 search image, which is about the size a target takes there (127 / 2 = 63.5 for
    # a square target with eq. 15's context).
    anchor_scale: float = 8.0

    # --- proposal selection (section 4.3) ----------------------------------------------
    # Keep only the centre g x g cells of the 17 x 17 map. Fig. 4 illustrates "center
    # size 7"; Fig. 11 shows that the best g depends on the data (4 for VID alone, larger
    # with Youtube-BB), so it is a setting to tune, not a constant. The four settings of
    # section 4.3 below (g, k, the window's weight, the size rate) were chosen together for
    # the distilled weights on the 8 validation items their run kept out of training
    # (out/distill/val_large.txt: DTB70_Surfing06, VOT-TIR2015_horse, UAV123_10fps_group2_1..3,
    # UAVDT_S0310, DTB70_Gull2, OTB100_Biker), never on the held-out 11: mean success AUC
    # 0.473 with the previous (11, 0.055, 0.42, 0.295), 0.522 with g = 17 alone, 0.526 with
    # the window at 0.30 alone, 0.570 with both and the rate at 0.6, 0.575 with k = 0.15 too
    # (0.569 at k = 0.02, 0.538 at the rate 0.8, 0.547 with the window at 0.20). README,
    # Weights, has the whole sweep. g = 17 is every cell, as the released code does: with
    # g < 17 a fast target that moves past the centre cells is lost (most of the gain is
    # frames the smaller g lost altogether).
    center_size: int = 17
    # k of eq. 13. The paper gives no value; released code: 0.055 (pysot's AlexNet SiamRPN:
    # 0.16). 0.15 here, chosen as above.
    penalty_k: float = 0.15
    # Weight of the cosine window mixed into the penalised scores (section 4.3 adds a
    # cosine window but gives no weight); released code: 0.42 (pysot's: 0.40). 0.30 chosen as
    # above in the 12th session; 0.35 since the 23rd, by a rule written first on the same 8
    # items with the shipped file and today's inference (0.571 against 0.548 at 0.30 and 0.551
    # at 0.25; a 287 or 319-pixel search region scored 0.532 / 0.534; README, "23rd session").
    window_influence: float = 0.35
    # Base rate of the linear interpolation of the target size (section 4.3, last
    # sentence; no value given), scaled per frame by the chosen proposal's penalty x
    # score. Released code: lr = 0.295. The weights shipped before issue 16's distillation
    # had a size regression that did not carry over to unseen video, and the default was 0
    # (a frozen box). The distilled weights (trained with NanoTrack's per-cell boxes as
    # targets) follow scale: 0.697 at 0.295 against 0.558 at 0 on the two validation items
    # of their first run; on the 8 items, 0.6 (with the settings above) as measured above.
    lr: float = 0.6
    # Smallest tracked side in frame pixels; released code clips the size to >= 10.
    min_size: float = 10.0
    # Not from the paper: the arithmetic the backbone runs in (trackers/inference/); the
    # RPN, its correlations and the decoding always run in fp32.
    precision: str = "auto"

    # --- training (section 3.3, eq. 3-6) -----------------------------------------------
    # th_hi and th_lo: positives IoU > 0.6, negatives IoU < 0.3.
    positive_iou: float = 0.6
    negative_iou: float = 0.3
    # "at most 16 positive samples and totally 64 samples from one training pair".
    max_positives: int = 16
    samples_per_pair: int = 64
    # lambda of eq. 5; the paper gives no value. 1 as in Faster R-CNN's released RPN
    # code, which eq. 5 follows.
    reg_weight: float = 1.0
    # sigma of eq. 4; the paper gives no value. 3 as Faster R-CNN's released RPN code
    # ("employ the loss function that is used in Faster R-CNN", section 3.2).
    smooth_l1_sigma: float = 3.0

    def __post_init__(self) -> None:
        # TOML and checkpoints hand over lists; keep a hashable, immutable tuple.
        ratios = self.anchor_ratios
        wrong = ValueError(f"SiamRPNConfig.anchor_ratios must be a list of numbers, got {ratios!r}")
        if isinstance(ratios, (str, bytes)) or not hasattr(ratios, "__iter__"):
            raise wrong
        try:
            object.__setattr__(self, "anchor_ratios", tuple(float(r) for r in ratios))
        except (TypeError, ValueError):
            raise wrong from None
        check_ranges(self, RANGES)
        if not self.anchor_ratios or any(not (r > 0 and math.isfinite(r)) for r in self.anchor_ratios):
            raise ValueError("anchor_ratios must be positive numbers")
        if self.anchor_scale <= 0:
            raise ValueError("anchor_scale must be positive")
        if self.search_size <= self.exemplar_size:
            raise ValueError("search_size must exceed exemplar_size")
        if (self.search_size - self.exemplar_size) % self.total_stride != 0:
            raise ValueError("search_size - exemplar_size must be a multiple of total_stride")
        if self.center_size < 1 or self.center_size % 2 == 0 or self.center_size > self.score_size:
            raise ValueError(f"center_size must be odd and within 1..{self.score_size}")
        if not 0.0 <= self.window_influence <= 1.0:
            raise ValueError("window_influence must lie in [0, 1]")
        if not 0.0 <= self.lr <= 1.0:
            raise ValueError("lr must lie in [0, 1]")
        if self.penalty_k < 0:
            raise ValueError("penalty_k must be >= 0 (a negative k would reward shape changes)")
        if not 0.0 <= self.negative_iou <= self.positive_iou <= 1.0:
            raise ValueError("need 0 <= negative_iou <= positive_iou <= 1")
        if not 0 <= self.max_positives <= self.samples_per_pair:
            raise ValueError("need 0 <= max_positives <= samples_per_pair")

    @property
    def score_size(self) -> int:
        """17 for 127 / 255: one cell per stride-8 shift of the exemplar in the search region."""
        return score_cells(self)

    @property
    def anchor_count(self) -> int:
        """k of section 3.2: one anchor per ratio, one scale."""
        return len(self.anchor_ratios)

    @property
    def anchor_size(self) -> float:
        """Side of the square whose area every anchor has, in search-image pixels (64)."""
        return self.total_stride * self.anchor_scale


RANGES: dict[str, Range] = {
    **SEARCH_RANGES,
    # 103: the RPN's 3x3 exemplar convolutions need 3x3 backbone features (87 gives 1x1, each
    # further 8 pixels one more cell)
    "exemplar_size": Range(103, MAX_CROP, integer=True),
    "anchor_scale": Range(0.0, 64.0, low_open=True),
    "center_size": Range(1, 257, integer=True),
    "penalty_k": Range(0.0, 100.0),
    "lr": Range(0.0, 1.0),
    "min_size": Range(0.0, 1e5),
    "positive_iou": Range(0.0, 1.0),
    "negative_iou": Range(0.0, 1.0),
    "max_positives": Range(0, 1e6, integer=True),
    "samples_per_pair": Range(1, 1e6, integer=True),
    "reg_weight": Range(0.0, 1e6),
    "smooth_l1_sigma": Range(0.0, 1e6, low_open=True),
}
"""What each numeric field may be (``trackers.config.check_ranges``)."""

PRESETS: dict[str, SiamRPNConfig] = {
    "siamrpn": SiamRPNConfig(),
}
