"""The bundled SiamRPN's box follows the target's size (issue 16): section 4.3's size update.

A synthetic clip whose target (the demo clip's object on its background, standing still)
grows to 1.5x or shrinks to 0.6x of its first size over 40 frames. With the paper's size
update (the default rate, 0.6: trackers/siamrpn/config.py) the box's size, sqrt(w * h), must end
much nearer the true size than with the size frozen at the first frame's (rate 0, the
previous default). Exact ground truth, no randomness: the clip and the tracker are fixed.

A still, tall target shows what the shipped weights still get wrong (a strict xfail): the box
loses the target's shape, which the teacher keeps.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from resources.demo_clip import object_texture, render_background, render_frame
from tests.tools import load_tool
from trackers.registry import create_tracker
from trackers.siamrpn.config import PRESETS
from trackers.siamrpn.tracker import SiamRPNTracker, default_weights_path
from trackers.types import Box

# the still-target check is shared with tools/siamrpn_shape.py, which prints it for any weights
still_shape = load_tool("siamrpn_shape").still_shape

SIZE = (480, 270)


def zoom_clip(end_scale: float, frames: int = 40) -> tuple[list[np.ndarray], list[Box]]:
    background, texture = render_background(SIZE, 0), object_texture((120, 90), 0)
    images, boxes = [], []
    for t in range(frames):
        s = 1.0 + (end_scale - 1.0) * t / (frames - 1)
        w, h = round(60 * s), round(45 * s)
        box = Box(SIZE[0] // 2 - w // 2, SIZE[1] // 2 - h // 2, w, h)
        images.append(render_frame(background, texture, box, Box(0, 0, 0, 0), np.zeros((0, 0, 3), np.uint8)))
        boxes.append(box)
    return images, boxes


def final_size_ratio(images: list[np.ndarray], boxes: list[Box], lr: float | None) -> float:
    config = {} if lr is None else {"lr": lr}
    tracker = SiamRPNTracker.create("siamrpn", device="cpu", config={**config, "precision": "fp32"})
    tracker.init(images[0], boxes[0])
    for image in images[1:]:
        box = tracker.update(image).box
    return math.sqrt(box.w * box.h) / math.sqrt(boxes[-1].w * boxes[-1].h)


@pytest.mark.parametrize("end_scale", [1.5, 0.6])
def test_the_bundled_siamrpn_box_follows_a_growing_and_a_shrinking_target(end_scale):
    if not default_weights_path().is_file():
        pytest.skip("no bundled SiamRPN weights in this checkout")
    assert PRESETS["siamrpn"].lr == pytest.approx(0.6)  # the paper's size update is the default
    images, boxes = zoom_clip(end_scale)
    frozen = final_size_ratio(images, boxes, lr=0.0)
    assert frozen == pytest.approx(1.0 / end_scale, rel=0.03)  # rate 0 keeps the first size
    follows = final_size_ratio(images, boxes, lr=None)
    assert abs(follows - 1.0) < 0.7 * abs(frozen - 1.0), (follows, frozen)


@pytest.mark.xfail(
    strict=True,
    reason="issue 16, still open: the distilled regression under-predicts a long side (one step on "
    "a 30 x 90 target: 32 x 81 search pixels where the teacher says 33 x 102), and the size update "
    "compounds it: after 30 frames the box is about 28 x 40",
)
def test_the_bundled_siamrpn_keeps_a_still_tall_targets_shape():
    if not default_weights_path().is_file():
        pytest.skip("no bundled SiamRPN weights in this checkout")
    student = SiamRPNTracker.create("siamrpn", device="cpu", config={"precision": "fp32"})
    w, h = still_shape(student, (30, 90))
    assert h / w == pytest.approx(3.0, rel=0.2), (w, h)


def test_the_teacher_keeps_a_still_tall_targets_shape():
    # what the student above should learn: NanoTrack (cv-nano, bundled) keeps it
    w, h = still_shape(create_tracker("cv-nano"), (30, 90))
    assert h / w == pytest.approx(3.0, rel=0.1), (w, h)
