"""SiamRPN against its paper: section 3.1 shapes, eq. 2 correlation, eq. 3 / 12 coding,
section 3.3 sampling, eq. 4-6 loss, eq. 13-14 penalty, one-shot detection (section 4)."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from resources.demo_clip import render_sequence
from trackers.geometry import exemplar_extent
from trackers.inference.embedding import Embedding
from trackers.protocol import Tracker, TrackerError
from trackers.siamrpn.anchors import anchor_grid, anchor_shapes, cell_offsets, center_mask
from trackers.siamrpn.config import PRESETS, SiamRPNConfig
from trackers.siamrpn.network import (
    ARCHITECTURE,
    AlexNetBackbone,
    SiamRPNNet,
    UpChannelRPN,
    init_weights,
    pairwise_correlation,
)
from trackers.siamrpn.targets import (
    anchor_targets,
    box_iou,
    decode,
    encode,
    flatten_outputs,
    rpn_loss,
    sample_labels,
    smooth_l1,
)
from trackers.siamrpn.tracker import SiamRPNTracker, overall_scale, shape_penalty
from trackers.types import Box
from trackers.weights.checkpoint import WeightsError, save_checkpoint

CFG = SiamRPNConfig()


@pytest.fixture(scope="module")
def untrained() -> SiamRPNTracker:
    """One seeded random network for the whole module: building it is the slow part."""
    return SiamRPNTracker.create("siamrpn", weights=None, device="cpu")


@pytest.fixture(scope="module")
def backbone() -> AlexNetBackbone:
    net = AlexNetBackbone()
    init_weights(net, seed=0)
    return net.eval()


def textured(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    import cv2

    small = rng.integers(0, 256, (max(h // 4, 2), max(w // 4, 2), 3), dtype=np.uint8)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)


# ------------------------------------------------------------------ network (3.1, 3.2)
def test_section31_backbone_shapes_no_groups_no_padding(backbone):
    with torch.no_grad():
        assert backbone(torch.zeros(1, 3, 127, 127)).shape == (1, 256, 6, 6)
        assert backbone(torch.zeros(1, 3, 255, 255)).shape == (1, 256, 22, 22)
    # "the groups from conv2 and conv4 are removed": full input channels in every filter
    assert backbone.conv2[0].weight.shape == (256, 96, 5, 5)
    assert backbone.conv4[0].weight.shape == (384, 384, 3, 3)
    convs = [m for m in SiamRPNNet().modules() if isinstance(m, nn.Conv2d)]
    assert all(c.groups == 1 for c in convs)
    assert all(c.padding == (0, 0) for c in convs)


def test_rpn_output_shapes(untrained):
    net = untrained.net
    k = CFG.anchor_count
    with torch.no_grad():
        exemplar = net.exemplar_branch(torch.rand(1, 3, 127, 127) * 255)
        # 2k and 4k groups of C x 4 x 4 (section 3.2, Fig. 2)
        assert exemplar.cls.shape == (1, 2 * k, 256, 4, 4)
        assert exemplar.reg.shape == (1, 4 * k, 256, 4, 4)
        a_cls, a_reg = net.detect(exemplar, torch.rand(1, 3, 255, 255) * 255)
    assert a_cls.shape == (1, 10, 17, 17)
    assert a_reg.shape == (1, 20, 17, 17)
    # [phi(x)] keeps C channels, 22 -> 20
    assert net.rpn.search_cls.out_channels == net.rpn.search_reg.out_channels == 256


def test_a_checkpoint_with_the_old_template_names_loads(tmp_path):
    """Checkpoints written before the RPN's exemplar convs were renamed (``rpn.template_cls``,
    ``rpn.template_reg``) load into the network as they are, through a file too."""
    net = SiamRPNNet()
    init_weights(net, seed=3)
    old = {k.replace("rpn.exemplar_", "rpn.template_"): v for k, v in net.state_dict().items()}
    assert "rpn.template_cls.weight" in old and not any("exemplar" in k for k in old)
    fresh = SiamRPNNet()
    fresh.load_state_dict(old, strict=True)
    for key, value in net.state_dict().items():
        assert torch.equal(fresh.state_dict()[key], value), key
    assert "rpn.template_cls.weight" in old  # the caller's dict is left as it was
    path = save_checkpoint(tmp_path / "old.pt", old, architecture=ARCHITECTURE, config={})
    loaded = SiamRPNTracker.create("siamrpn", weights=path, device="cpu")
    assert torch.equal(loaded.net.rpn.exemplar_cls.weight, net.rpn.exemplar_cls.weight)


def test_the_bundled_weights_load_whatever_their_key_names():
    from trackers.siamrpn.tracker import default_weights_path
    from trackers.weights.loading import load_checkpoint

    if not default_weights_path().is_file():
        pytest.skip("no bundled SiamRPN weights in this checkout")
    state, _ = load_checkpoint(default_weights_path(), ARCHITECTURE)
    tracker = SiamRPNTracker.create("siamrpn", device="cpu")
    assert tracker.untrained is False
    name = "rpn.template_cls.weight" if "rpn.template_cls.weight" in state else "rpn.exemplar_cls.weight"
    assert torch.equal(tracker.net.rpn.exemplar_cls.weight, state[name])


def test_pairwise_correlation_equals_brute_force_loop():
    g = torch.Generator().manual_seed(0)
    exemplar = torch.randn(2, 3, 4, 2, 2, generator=g)  # N=2 pairs, K=3 groups of C=4
    search = torch.randn(2, 4, 5, 6, generator=g)
    out = pairwise_correlation(exemplar, search)
    assert out.shape == (2, 3, 4, 5)
    brute = torch.zeros(2, 3, 4, 5)
    for n in range(2):
        for c in range(3):
            for i in range(4):
                for j in range(5):
                    brute[n, c, i, j] = (exemplar[n, c] * search[n, :, i : i + 2, j : j + 2]).sum()
    torch.testing.assert_close(out, brute, rtol=1e-5, atol=1e-5)
    # one exemplar shared by every search region, as in tracking
    shared = pairwise_correlation(exemplar[:1], search)
    for n in range(2):
        torch.testing.assert_close(shared[n : n + 1], pairwise_correlation(exemplar[:1], search[n : n + 1]))


def test_up_channel_rpn_groups_exemplar_channels():
    # Section 3.2: group c of A_cls is exemplar channels c*C .. (c+1)*C - 1 of [phi(z)]_cls.
    torch.manual_seed(0)
    rpn = UpChannelRPN(anchor_count=2, channels=3).eval()
    z = torch.randn(1, 3, 4, 4)
    x = torch.randn(1, 3, 7, 7)
    with torch.no_grad():
        a_cls, a_reg = rpn(rpn.exemplar_branch(z), x)
        up_cls, up_reg = rpn.exemplar_cls(z)[0], rpn.exemplar_reg(z)[0]  # 12 x 2 x 2, 24 x 2 x 2
        xs_cls, xs_reg = rpn.search_cls(x)[0], rpn.search_reg(x)[0]  # 3 x 5 x 5
        scale = (3 * 2 * 2) ** -0.5
        assert a_cls.shape == (1, 4, 4, 4) and a_reg.shape == (1, 8, 4, 4)
        brute_cls, brute_reg = torch.zeros(4, 4, 4), torch.zeros(8, 4, 4)
        for i in range(4):
            for j in range(4):
                for c in range(4):
                    window = xs_cls[:, i : i + 2, j : j + 2]
                    brute_cls[c, i, j] = (up_cls[3 * c : 3 * c + 3] * window).sum() * scale
                for c in range(8):
                    window = xs_reg[:, i : i + 2, j : j + 2]
                    brute_reg[c, i, j] = (up_reg[3 * c : 3 * c + 3] * window).sum() * scale
        torch.testing.assert_close(a_cls[0], brute_cls, rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(a_reg[0], rpn.reg_adjust(brute_reg[None])[0], rtol=1e-4, atol=1e-5)


# ------------------------------------------------------------------ anchors (3.3, 4.3)
def test_anchors_one_scale_five_ratios_on_the_stride_grid():
    assert CFG.anchor_ratios == (0.33, 0.5, 1.0, 2.0, 3.0)
    assert CFG.anchor_count == 5 and CFG.score_size == 17 and CFG.anchor_size == 64
    shapes = anchor_shapes(64, CFG.anchor_ratios)
    np.testing.assert_allclose(shapes[:, 0] * shapes[:, 1], 64.0**2)
    np.testing.assert_allclose(shapes[:, 1] / shapes[:, 0], CFG.anchor_ratios)
    grid = anchor_grid(CFG)
    assert grid.shape == (5, 17, 17, 4)
    # the middle cell sits on the search centre, neighbours 8 px apart
    assert grid[0, 8, 8, :2].tolist() == [127.5, 127.5]
    assert grid[0, 8, 9, 0] - grid[0, 8, 8, 0] == 8 and grid[0, 9, 8, 1] - grid[0, 8, 8, 1] == 8
    assert cell_offsets(17, 8)[0] == -64
    mask = center_mask(17, 7)
    assert mask.sum() == 49 and mask[5:12, 5:12].all()


# ------------------------------------------------------------------ coding (eq. 3, 12)
centres = st.floats(-100, 400)
sides = st.floats(1, 400)
log_size_change = st.floats(-4, 4)  # within decode's exponent clip, DELTA_CLIP = 4.135


@settings(max_examples=60, deadline=None)
@given(
    anchor=st.tuples(centres, centres, sides, sides),
    gt_centre=st.tuples(centres, centres),
    gt_log_size=st.tuples(log_size_change, log_size_change),
)
def test_encode_then_decode_round_trips(anchor, gt_centre, gt_log_size):
    a = torch.tensor(anchor, dtype=torch.float64)
    w, h = anchor[2] * math.exp(gt_log_size[0]), anchor[3] * math.exp(gt_log_size[1])
    t = torch.tensor([*gt_centre, w, h], dtype=torch.float64)
    torch.testing.assert_close(decode(a, encode(a, t)), t, rtol=1e-9, atol=1e-8)


def test_encode_is_equation3_and_decode_of_zero_is_the_anchor():
    anchors = torch.from_numpy(anchor_grid(CFG)).reshape(-1, 4)
    gt = torch.tensor([130.0, 120.0, 70.0, 40.0], dtype=torch.float64)
    d = encode(anchors, gt)
    a = anchors[3]
    expected = [(130 - a[0]) / a[2], (120 - a[1]) / a[3], math.log(70 / a[2]), math.log(40 / a[3])]
    torch.testing.assert_close(d[3], torch.tensor(expected, dtype=torch.float64))
    torch.testing.assert_close(decode(anchors, torch.zeros_like(anchors)), anchors)
    # absurd deltas stay finite (clipped exponent)
    assert torch.isfinite(decode(anchors, torch.full_like(anchors, 1e6))).all()


# ------------------------------------------------------------------ sampling (section 3.3)
def test_sampling_on_real_anchors_respects_thresholds_and_limits():
    anchors = torch.from_numpy(anchor_grid(CFG)).reshape(-1, 4)
    for seed, gt in enumerate(
        [(131.5, 124.5, 80.0, 50.0), (127.5, 127.5, 64.0, 64.0), (100.0, 150.0, 30.0, 100.0)]
    ):
        gt = torch.tensor(gt, dtype=torch.float64)
        labels, targets = anchor_targets(anchors, gt, CFG, torch.Generator().manual_seed(seed))
        ious = box_iou(anchors, gt)
        positives, negatives = labels == 1, labels == 0
        assert positives.sum() <= 16
        assert positives.sum() + negatives.sum() == 64
        assert (ious[positives] > 0.6).all() and (ious[negatives] < 0.3).all()
        assert targets.shape == (anchors.shape[0], 4)
    # the first two boxes have matching anchors
    labels, _ = anchor_targets(
        anchors, torch.tensor([127.5, 127.5, 64.0, 64.0]), CFG, torch.Generator().manual_seed(0)
    )
    assert (labels == 1).sum() > 0


def test_sampling_caps_positives_and_is_seeded():
    ious = torch.rand(5 * 17 * 17, generator=torch.Generator().manual_seed(3))
    a = sample_labels(ious, generator=torch.Generator().manual_seed(7))
    b = sample_labels(ious, generator=torch.Generator().manual_seed(7))
    c = sample_labels(ious, generator=torch.Generator().manual_seed(8))
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert (a == 1).sum() == 16 and (a == 0).sum() == 48
    assert (ious[a == 1] > 0.6).all() and (ious[a == 0] < 0.3).all()
    # few candidates: everything that qualifies is taken, no more than exist
    few = torch.tensor([0.9, 0.7, 0.5, 0.1, 0.2])
    assert sample_labels(few).tolist() == [1, 1, -1, 0, 0]


# ------------------------------------------------------------------ loss (eq. 4-6)
def test_smooth_l1_is_equation4():
    x = torch.tensor([0.0, 0.05, -0.1, 0.5, -2.0])
    s2 = 9.0
    expected = [0.0, 0.5 * s2 * 0.05**2, 0.5 * s2 * 0.01, 0.5 - 0.5 / s2, 2.0 - 0.5 / s2]
    torch.testing.assert_close(smooth_l1(x, 3.0), torch.tensor(expected))


def test_flatten_outputs_matches_anchor_order():
    k, s = 5, 17
    a_cls = torch.arange(2 * k * s * s, dtype=torch.float32).reshape(1, 2 * k, s, s)
    a_reg = torch.arange(4 * k * s * s, dtype=torch.float32).reshape(1, 4 * k, s, s)
    cls, reg = flatten_outputs(a_cls, a_reg, k)
    index = (3 * s + 4) * s + 5  # anchor 3, row 4, column 5
    assert cls[0, index].tolist() == [a_cls[0, 6, 4, 5].item(), a_cls[0, 7, 4, 5].item()]  # odd = fg
    assert reg[0, index].tolist() == a_reg[0, 12:16, 4, 5].tolist()


def test_loss_is_finite_and_decreases_under_sgd():
    torch.manual_seed(0)
    net = SiamRPNNet()
    init_weights(net, seed=0)
    net.train()
    # A 191-pixel search image (9 x 9 anchors) instead of 255 keeps the test fast; the
    # network is fully convolutional, nothing else changes.
    cfg = replace(CFG, search_size=191, center_size=7)
    g = torch.Generator().manual_seed(0)
    z = torch.rand(1, 3, 127, 127, generator=g) * 255
    x = torch.rand(1, 3, 191, 191, generator=g) * 255
    anchors = torch.from_numpy(anchor_grid(cfg)).reshape(-1, 4)
    assert anchors.shape == (5 * 9 * 9, 4)
    gt = torch.tensor([95.5 + 4, 95.5 - 3, 80.0, 50.0], dtype=torch.float64)
    labels, targets = anchor_targets(anchors, gt, cfg, torch.Generator().manual_seed(1))
    assert (labels == 1).any()
    # Section 5.1 keeps the first three conv layers fixed; it also makes this test faster.
    for layer in (net.backbone.conv1, net.backbone.conv2, net.backbone.conv3):
        layer.requires_grad_(False)
    optimiser = torch.optim.SGD([p for p in net.parameters() if p.requires_grad], lr=1e-5)
    losses = []
    for _ in range(3):
        loss, l_cls, l_reg = rpn_loss(*net(z, x), labels[None], targets[None], reg_weight=1.0, sigma=3.0)
        assert torch.isfinite(loss) and l_reg > 0 and l_cls > 0
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        losses.append(loss.item())
    assert losses[1] < losses[0] and losses[2] < losses[1]


# ------------------------------------------------------------------ penalty (eq. 13, 14)
def test_penalty_is_one_for_unchanged_box_and_grows_with_change():
    for w, h in [(40.0, 30.0), (63.5, 63.5), (12.25, 80.0)]:
        assert shape_penalty(w, h, w, h, 0.055) == 1.0
    w, h, k = 50.0, 40.0, 0.055
    by_scale = [float(shape_penalty(w * f, h * f, w, h, k)) for f in (1.0, 1.05, 1.2, 1.5, 2.0)]
    by_ratio = [float(shape_penalty(w * f, h / f, w, h, k)) for f in (1.0, 1.05, 1.2, 1.5, 2.0)]
    shrink = [float(shape_penalty(w / f, h / f, w, h, k)) for f in (1.0, 1.05, 1.2, 1.5, 2.0)]
    for values in (by_scale, by_ratio, shrink):
        assert values[0] == 1.0
        assert all(a > b for a, b in zip(values, values[1:]))  # stronger suppression
    # shrinking and growing by the same factor count the same (max(s/s', s'/s))
    assert shrink == pytest.approx(by_scale)
    # eq. 14: (w + p)(h + p) = s^2 with p = (w + h) / 2 is the eq. 15 square
    assert overall_scale(30.0, 20.0) == pytest.approx(exemplar_extent(30.0, 20.0, 0.5))
    # k = 0 switches it off
    assert shape_penalty(100.0, 10.0, w, h, 0.0) == 1.0


# ------------------------------------------------------------------ config
def test_paper_constants_are_the_defaults():
    assert (CFG.exemplar_size, CFG.search_size, CFG.total_stride, CFG.context) == (127, 255, 8, 0.5)
    assert (CFG.positive_iou, CFG.negative_iou, CFG.max_positives, CFG.samples_per_pair) == (0.6, 0.3, 16, 64)
    # section 4.3's settings, tuned on the distillation run's 8 validation items (Fig. 11
    # makes g data-dependent; the paper gives no k, window weight or rate): see config.py
    # (the window 0.30 until the 23rd session)
    assert (CFG.center_size, CFG.penalty_k, CFG.window_influence, CFG.lr) == (17, 0.15, 0.35, 0.6)
    assert PRESETS["siamrpn"] == CFG
    # lists (TOML) become tuples
    assert SiamRPNConfig(anchor_ratios=[0.5, 1, 2]).anchor_ratios == (0.5, 1.0, 2.0)
    with pytest.raises(ValueError):
        SiamRPNConfig(center_size=8)


def test_unknown_config_key_and_preset_are_errors():
    with pytest.raises(ValueError, match="penalty_kk"):
        SiamRPNTracker.create("siamrpn", config={"penalty_kk": 0.1}, device="cpu")
    with pytest.raises(TrackerError):
        SiamRPNTracker.create("siamrpn-big", device="cpu")


# ------------------------------------------------------------------ tracking (section 4)
class CountingEmbedding:
    """The tracker's embedding, calling ``count`` on every call (the embedding's interface:
    call, ``precision``, ``calibrate``)."""

    def __init__(self, inner, count) -> None:
        self.inner, self.count = inner, count
        self.precision = inner.precision

    def calibrate(self, images: torch.Tensor) -> None:
        self.inner.calibrate(images)

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        self.count()
        return self.inner(images)


def test_exemplar_branch_runs_once(untrained):
    calls = {"exemplar_cls": 0, "exemplar_reg": 0, "backbone": 0}

    def counter(name):
        def hook(*_):
            calls[name] += 1

        return hook

    net = untrained.net
    handles = [
        getattr(net.rpn, n).register_forward_hook(counter(n)) for n in ("exemplar_cls", "exemplar_reg")
    ]
    tracker = SiamRPNTracker(untrained.config, net, torch.device("cpu"),
                             embedding=CountingEmbedding(untrained.embedding, counter("backbone")))
    try:
        frame = textured(np.random.default_rng(0), 120, 160)
        tracker.init(frame, Box(60, 40, 30, 25))
        assert calls == {"exemplar_cls": 1, "exemplar_reg": 1, "backbone": 1}
        for _ in range(3):
            tracker.update(frame)
        # the detection branch ran 3 more times, the exemplar branch never again
        assert calls == {"exemplar_cls": 1, "exemplar_reg": 1, "backbone": 4}
    finally:
        for h in handles:
            h.remove()


def test_protocol_on_synthetic_sequence(untrained):
    tracker = untrained
    assert isinstance(tracker, Tracker) and tracker.name == "siamrpn"
    frames, boxes = render_sequence(n_frames=6, size=(240, 160))
    tracker.init(frames[0], boxes[0])
    previous = boxes[0]
    for frame in frames[1:]:
        result = tracker.update(frame)
        assert result.box.is_valid() and math.isfinite(result.score)
        assert 0.0 <= result.score <= 1.0
        assert result.untrained is tracker.untrained
        assert len(result.score_maps) == 1 + 5
        assert all(m.values.shape == (17, 17) and m.values.dtype == np.float32 for m in result.score_maps)
        assert all(np.isfinite(m.values).all() for m in result.score_maps)
        first = result.score_maps[0].values
        np.testing.assert_allclose(first, np.max([m.values for m in result.score_maps[1:]], axis=0))
        assert [m.label for m in result.score_maps[1:]] == [
            f"anchor ratio h/w {r:g}" for r in CFG.anchor_ratios
        ]
        # maps lie over the 17 x 8 search pixels around the last position
        extent = exemplar_extent(previous.w, previous.h, 0.5) * 255 / 127
        region = result.score_maps[0].region
        assert region.center() == pytest.approx(previous.center())
        assert region.w == pytest.approx(17 * 8 / 255 * extent)
        previous = result.box


def test_untrained_tracker_says_so(capsys):
    tracker = SiamRPNTracker.create("siamrpn", weights=None, device="cpu")
    if not tracker.untrained:
        pytest.skip("bundled weights exist; untrained path not reachable with weights=None")
    assert "WARNING" in capsys.readouterr().err
    frame = np.zeros((100, 100, 3), np.uint8)
    tracker.init(frame, Box(40, 40, 20, 20))
    result = tracker.update(frame)
    assert result.untrained is True and result.box.is_finite()


def test_checkpoint_round_trip_and_wrong_architecture(untrained, tmp_path):
    path = save_checkpoint(
        tmp_path / "rpn.pt", untrained.net.state_dict(), architecture=ARCHITECTURE, config={}, half=True
    )
    loaded = SiamRPNTracker.create("siamrpn", weights=path, device="cpu")
    assert loaded.untrained is False
    want = untrained.net.rpn.reg_adjust.weight.detach().half().float()
    torch.testing.assert_close(loaded.net.rpn.reg_adjust.weight.detach(), want)
    other = save_checkpoint(
        tmp_path / "fc.pt", {"bias": torch.zeros(1)}, architecture="siamfc-alexnet", config={}
    )
    with pytest.raises(WeightsError, match="siamfc-alexnet"):
        SiamRPNTracker.create("siamrpn", weights=other, device="cpu")


def test_init_rejects_bad_boxes(untrained):
    frame = np.zeros((50, 50, 3), np.uint8)
    for bad in (Box(0, 0, 0, 10), Box(0, 0, -5, 10), Box(float("nan"), 0, 10, 10)):
        with pytest.raises(ValueError):
            untrained.init(frame, bad)


# ------------------------------------------------------------------ hand-built network
class UnitEmbedding:
    """The backbone's fast embedding with its features made unit-length at every location
    (the embedding's interface: call, ``precision``, ``calibrate``)."""

    def __init__(self, backbone: AlexNetBackbone) -> None:
        self.inner = Embedding(list(backbone.named_children()), torch.device("cpu"), None)
        self.precision = self.inner.precision

    def calibrate(self, images: torch.Tensor) -> None:
        self.inner.calibrate(images)

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.inner(images), dim=1)


class SimilarityRPN(nn.Module):
    """A test double of the RPN with a known answer, on :class:`UnitEmbedding`'s features.
    Its exemplar branch keeps the exemplar's features as they are. A_cls: the foreground
    logit of every anchor is the cosine similarity of unit-length features between the
    exemplar and each search window (largest, 1, exactly where the window equals the
    exemplar). A_reg: constant deltas that decode each anchor to a fixed size (search
    pixels) at its own centre."""

    def __init__(self, size: tuple[float, float]) -> None:
        super().__init__()
        self.anchor_count = CFG.anchor_count
        shapes = torch.from_numpy(anchor_shapes(CFG.anchor_size, CFG.anchor_ratios))
        self.register_buffer("dwdh", torch.log(torch.tensor(size, dtype=torch.float64) / shapes))  # k x 2

    def exemplar_branch(self, exemplar_features):
        return exemplar_features

    def forward(self, exemplar_features, features):
        similarity = F.conv2d(features, exemplar_features) / (
            exemplar_features.shape[-1] * exemplar_features.shape[-2]
        )
        k, s = self.anchor_count, similarity.shape[-1]
        a_cls = torch.zeros(1, 2 * k, s, s)
        # Odd channels: foreground (eq. 10). Random features are nearly parallel (cosine
        # ~0.98 anywhere), hence the steep logit: p = 0.993 at an exact match.
        a_cls[:, 1::2] = 1000.0 * (similarity - 0.995)
        a_reg = torch.zeros(1, 4 * k, s, s, dtype=torch.float64)
        a_reg[:, 2::4] = self.dwdh[:, 0, None, None]
        a_reg[:, 3::4] = self.dwdh[:, 1, None, None]
        return a_cls, a_reg


class SimilarityNet(nn.Module):
    """A network double in SiamRPNNet's shape: a backbone and an RPN (:class:`SimilarityRPN`)."""

    def __init__(self, backbone: AlexNetBackbone, size: tuple[float, float]) -> None:
        super().__init__()
        self.backbone = backbone
        self.rpn = SimilarityRPN(size)

    @property
    def anchor_count(self) -> int:
        return self.rpn.anchor_count


def double_tracker(backbone, box: Box, cfg: SiamRPNConfig = CFG) -> SiamRPNTracker:
    # the box's size in search-image pixels: 127 / extent of eq. 15
    scale = cfg.exemplar_size / exemplar_extent(box.w, box.h, cfg.context)
    net = SimilarityNet(backbone, (box.w * scale, box.h * scale))
    return SiamRPNTracker(cfg, net, torch.device("cpu"), embedding=UnitEmbedding(backbone))  # type: ignore[arg-type]


@pytest.mark.parametrize("box", [Box(100, 80, 40, 30), Box(37.5, 61.25, 23, 57)])
def test_zero_motion_returns_initial_box(backbone, box):
    frame = textured(np.random.default_rng(1), 240, 320)
    tracker = double_tracker(backbone, box)
    tracker.init(frame, box)
    for _ in range(2):
        result = tracker.update(frame)
        np.testing.assert_allclose(result.box.as_array(), box.as_array(), atol=1e-6)
        assert result.score > 0.99


def test_follows_moving_target_one_cell_per_frame_and_drops_score_when_it_leaves(backbone):
    # The whole scene pans by (8, 8) px per frame, so the exemplar's window (target and
    # context) reappears exactly. A square of side 63.5 has eq. 15 extent 127: one search
    # pixel per frame pixel, and one score-map cell is 8 frame pixels.
    rng = np.random.default_rng(2)
    scene = textured(rng, 260, 320)
    start = Box(96, 60, 63.5, 63.5)
    tracker = double_tracker(backbone, start)
    present = []
    for i in range(4):
        frame = np.ascontiguousarray(scene[30 - 8 * i : 230 - 8 * i, 30 - 8 * i : 290 - 8 * i])
        if i == 0:
            tracker.init(frame, start)
            continue
        result = tracker.update(frame)
        assert result.box.center() == pytest.approx((127.75 + 8 * i, 91.75 + 8 * i), abs=1e-6)
        assert result.box.w == pytest.approx(63.5)
        present.append(result.score)
    # the target is gone: the box stays finite and inside the frame, the score drops
    elsewhere = textured(np.random.default_rng(3), 200, 260)
    for _ in range(2):
        result = tracker.update(elsewhere)
        cx, cy = result.box.center()
        assert result.box.is_valid() and 0 <= cx <= 260 and 0 <= cy <= 200
        assert result.score < 0.5 < min(present)


def test_target_leaving_the_frame_gives_clamped_finite_box(untrained):
    frame = textured(np.random.default_rng(4), 120, 160)
    untrained.init(frame, Box(140, 100, 30, 30))  # partly outside already
    for _ in range(3):
        result = untrained.update(np.zeros_like(frame))
        cx, cy = result.box.center()
        assert result.box.is_valid() and 0 <= cx <= 160 and 0 <= cy <= 120
        assert result.box.w <= 160 and result.box.h <= 120
        assert math.isfinite(result.score)


def test_size_is_smoothed_with_penalty_times_score_times_lr(backbone):
    # The double proposes a 1.2x larger box at the centre: the size moves by
    # rate = penalty x score x lr of the way (section 4.3).
    cfg = CFG
    box = Box(100, 80, 40, 30)
    frame = textured(np.random.default_rng(5), 240, 320)
    tracker = double_tracker(backbone, box, cfg)
    tracker.net.rpn.dwdh += math.log(1.2)
    tracker.init(frame, box)
    result = tracker.update(frame)
    penalty = shape_penalty(48.0, 36.0, 40.0, 30.0, cfg.penalty_k)
    rate = penalty * result.score * cfg.lr
    assert result.box.w == pytest.approx(40 * (1 - rate) + 48 * rate, rel=1e-5)
    assert result.box.center() == pytest.approx(box.center(), abs=1e-6)
    assert 40 < result.box.w < 48
    # Rate 0 keeps the first box's size whatever the proposal says.
    still = double_tracker(backbone, box, replace(CFG, lr=0.0))
    still.net.rpn.dwdh += math.log(1.2)
    still.init(frame, box)
    kept = still.update(frame).box
    assert (kept.w, kept.h) == pytest.approx((40.0, 30.0), abs=1e-9)


def test_config_with_other_center_size_and_no_window(backbone):
    cfg = replace(CFG, center_size=11, window_influence=0.0)
    box = Box(100, 80, 40, 30)
    tracker = double_tracker(backbone, box)
    tracker = SiamRPNTracker(cfg, tracker.net, torch.device("cpu"), embedding=tracker.embedding)  # type: ignore[arg-type]
    frame = textured(np.random.default_rng(6), 240, 320)
    tracker.init(frame, box)
    np.testing.assert_allclose(tracker.update(frame).box.as_array(), box.as_array(), atol=1e-6)
