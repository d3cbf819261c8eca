"""Eq. 3-6 of SiamFC (section 2.2): labels and the class-balanced logistic loss."""

from __future__ import annotations

import math

import pytest
import torch

from training.losses import balanced_logistic_loss, balanced_weights, siamfc_labels


def test_labels_17x17_radius_16_stride_8_has_13_positives():
    labels = siamfc_labels(17, 16.0, 8)
    assert labels.shape == (17, 17)
    # 8 * ||u - c|| <= 16 means ||u - c|| <= 2: the centre, 4 at distance 1,
    # 4 at sqrt(2) and 4 at distance 2 (sqrt(5) and beyond fall outside).
    assert int((labels > 0).sum()) == 13
    assert set(labels.unique().tolist()) == {-1.0, 1.0}
    assert labels[8, 8] == 1 and labels[8, 10] == 1 and labels[10, 8] == 1 and labels[9, 9] == 1
    assert labels[8, 11] == -1 and labels[10, 9] == -1 and labels[0, 0] == -1
    assert torch.equal(labels, labels.T) and torch.equal(labels, labels.flip(0))


def test_labels_radius_scales_with_stride():
    # R smaller than one stride: only the centre cell is positive.
    assert int((siamfc_labels(17, 7.9, 8) > 0).sum()) == 1
    # stride 4 with R = 16 is distance 4 in cells: 49 lattice points in a disc of radius 4
    assert int((siamfc_labels(17, 16.0, 4) > 0).sum()) == 49


def test_balanced_weights_sum_to_half_per_class():
    labels = siamfc_labels(17, 16.0, 8)
    weights = balanced_weights(labels)
    assert float(weights[labels > 0].sum()) == pytest.approx(0.5)
    assert float(weights[labels < 0].sum()) == pytest.approx(0.5)
    assert float(weights[8, 8]) == pytest.approx(0.5 / 13)
    assert float(weights[0, 0]) == pytest.approx(0.5 / (289 - 13))


def test_balanced_loss_by_hand_on_a_2x2_map():
    labels = torch.tensor([[1.0, -1.0], [-1.0, -1.0]])
    scores = torch.tensor([[2.0, 1.0], [-1.0, 0.0]])
    # eq. 3 per cell: log(1 + exp(-y v)); the single positive weighs 1/2, each of the
    # three negatives 1/6.
    positive = math.log(1 + math.exp(-2.0))
    negatives = [math.log(1 + math.exp(1.0)), math.log(1 + math.exp(-1.0)), math.log(2.0)]
    expected = 0.5 * positive + sum(negatives) / 6.0
    assert float(balanced_logistic_loss(scores, labels)) == pytest.approx(expected, rel=1e-6)
    # N x 1 x H x W with the label map shared by the batch: the mean over the pairs
    batch = torch.stack([scores, torch.zeros(2, 2)])[:, None]
    both = float(balanced_logistic_loss(batch, labels))
    assert both == pytest.approx((expected + math.log(2.0)) / 2, rel=1e-6)


def test_balanced_loss_is_log2_at_zero_and_large_scores_stay_finite():
    labels = siamfc_labels(17, 16.0, 8)
    assert float(balanced_logistic_loss(torch.zeros(3, 1, 17, 17), labels)) == pytest.approx(math.log(2))
    huge = labels * -1e4  # confidently wrong everywhere: loss ~ 1e4, not inf
    loss = balanced_logistic_loss(huge[None, None], labels)
    assert math.isfinite(float(loss)) and float(loss) == pytest.approx(1e4, rel=1e-3)


def test_balanced_loss_gradient_pushes_positives_up_and_negatives_down():
    labels = siamfc_labels(5, 8.0, 8)
    scores = torch.zeros(1, 1, 5, 5, requires_grad=True)
    balanced_logistic_loss(scores, labels).backward()
    grad = scores.grad[0, 0]
    assert (grad[labels > 0] < 0).all() and (grad[labels < 0] > 0).all()


def test_a_negative_pair_is_labelled_minus_one_everywhere_and_weighs_as_a_whole_map():
    import torch.nn.functional as F

    from training.siamfc_train import SiamFCTask

    task = SiamFCTask()
    boxes = torch.tensor([[127.5, 127.5, 40.0, 30.0], [float("nan")] * 4])
    labels = task.pair_labels(boxes, torch.device("cpu"))
    assert labels.shape == (2, 1, 17, 17)
    assert torch.equal(labels[0, 0], siamfc_labels(17, 16, 8))
    assert bool((labels[1] == -1).all())
    # every pair positive: the shared centred map, as before the option existed
    assert torch.equal(task.pair_labels(boxes[:1], torch.device("cpu")), siamfc_labels(17, 16, 8))
    scores = torch.randn(2, 1, 17, 17, generator=torch.Generator().manual_seed(0))
    loss = balanced_logistic_loss(scores, labels)
    positive = balanced_logistic_loss(scores[:1], siamfc_labels(17, 16, 8))
    negative = F.softplus(scores[1]).mean()  # log(1 + exp(v)) with weight 1/289 on each cell
    assert float(loss) == pytest.approx(float((positive + negative) / 2), rel=1e-6)
