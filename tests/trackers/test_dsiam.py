"""DSiam against its paper: eq. 3-4 (RLR), eq. 2 (CirConv), eq. 9 (fusion), section 3.5
(gradients), section 3.6 (tracking), and its SiamFC inheritance."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from resources.demo_clip import render_sequence
from trackers.dsiam import ARCHITECTURE, PRESETS, DSiamConfig, DSiamNet, DSiamTracker
from trackers.dsiam.network import Features
from trackers.dsiam.transforms import (
    apply_transform,
    background_weights,
    circular_convolve,
    identity_transform,
    regularisation,
    solve_transform,
)
from trackers.inference.embedding import Embedding
from trackers.protocol import Tracker, TrackerError
from trackers.siamfc.config import PRESETS as SIAMFC_PRESETS
from trackers.siamfc.network import SiamFCNet, init_weights
from trackers.types import Box
from trackers.weights.checkpoint import WeightsError, save_checkpoint

CPU = torch.device("cpu")


@pytest.fixture(autouse=True)
def _one_thread():
    # the suite shares a small machine; small convolutions gain little from threads
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def random_net(preset: str, seed: int = 0, **overrides) -> tuple[DSiamConfig, DSiamNet]:
    cfg = replace(PRESETS[preset], **overrides)
    net = DSiamNet.from_config(cfg)
    init_weights(net.siamfc, seed=seed)
    return cfg, net.eval()


def random_features(generator: torch.Generator, batch: int, search: bool) -> Features:
    """conv4/conv5 feature shapes of a 127 exemplar or a 255 search image (Table 1 of SiamFC)."""
    size4, size5 = (24, 22) if search else (8, 6)
    return {
        "conv4": torch.randn(batch, 384, size4, size4, generator=generator),
        "conv5": torch.randn(batch, 256, size5, size5, generator=generator),
    }


# ------------------------------------------------------------------ eq. 2-4: RLR, CirConv
def circulant(x: torch.Tensor) -> torch.Tensor:
    """The matrix C with C @ vec(T) = vec(T * X) for one h x w channel X (module convention:
    (T * X)[i, j] = sum_ab T[a, b] X[(i - a) mod h, (j - b) mod w])."""
    h, w = x.shape
    c = torch.empty(h * w, h * w, dtype=x.dtype)
    for i in range(h):
        for j in range(w):
            for a in range(h):
                for b in range(w):
                    c[i * w + j, a * w + b] = x[(i - a) % h, (j - b) % w]
    return c


@pytest.mark.parametrize("shape", [(2, 4, 5), (3, 6, 6), (1, 3, 3)])
def test_eq4_fft_solution_equals_least_squares_of_eq3(shape):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(*shape, generator=g, dtype=torch.float64)
    y = torch.randn(*shape, generator=g, dtype=torch.float64)
    lam = 0.37
    fast = solve_transform(x, y, lam)
    assert fast.shape == x.shape and fast.dtype == torch.float64
    for ch in range(shape[0]):
        c = circulant(x[ch])
        # eq. 3 per channel: argmin_t ||C t - y||^2 + λ ||t||^2  <=>  (C^T C + λ I) t = C^T y
        normal = c.T @ c + lam * torch.eye(c.shape[1], dtype=torch.float64)
        direct = torch.linalg.solve(normal, c.T @ y[ch].reshape(-1)).reshape(shape[1:])
        torch.testing.assert_close(fast[ch], direct, rtol=1e-9, atol=1e-9)
        # and the solution really is the minimiser: the gradient of eq. 3 vanishes there
        t = fast[ch].reshape(-1)
        grad = c.T @ (c @ t - y[ch].reshape(-1)) + lam * t
        assert grad.abs().max() < 1e-9


def test_fft_circular_convolution_equals_direct_loops():
    g = torch.Generator().manual_seed(1)
    kernel = torch.randn(2, 3, 4, 5, generator=g, dtype=torch.float64)
    x = torch.randn(2, 3, 4, 5, generator=g, dtype=torch.float64)
    fast = circular_convolve(kernel, x)
    direct = torch.zeros_like(x)
    for n in range(2):
        for ch in range(3):
            for i in range(4):
                for j in range(5):
                    direct[n, ch, i, j] = sum(
                        kernel[n, ch, a, b] * x[n, ch, (i - a) % 4, (j - b) % 5]
                        for a in range(4)
                        for b in range(5)
                    )
    torch.testing.assert_close(fast, direct, rtol=1e-10, atol=1e-10)
    # a 1 x C kernel acts on every sample of a batch (one W for all three scales)
    shared = circular_convolve(kernel[:1], x)
    torch.testing.assert_close(shared[1], circular_convolve(kernel[:1], x[1:])[0])
    # the delta at [0, 0] is the identity; a transformation of another size is refused
    torch.testing.assert_close(circular_convolve(identity_transform(x), x), x)
    with pytest.raises(ValueError):
        circular_convolve(kernel[..., :3], x)


def test_learned_transform_maps_x_to_y_and_identity_when_x_equals_y():
    g = torch.Generator().manual_seed(2)
    x = torch.randn(4, 6, 6, generator=g, dtype=torch.float64)
    y = torch.randn(4, 6, 6, generator=g, dtype=torch.float64)
    # small λ: V * X reproduces Y (eq. 5 is what makes f(O1) look like f(O_{t-1}))
    fitted = circular_convolve(solve_transform(x, y, 1e-8), x)
    torch.testing.assert_close(fitted, y, rtol=1e-5, atol=1e-5)
    # learning X -> X gives (nearly) the delta: an unchanged target leaves the exemplar alone
    delta = identity_transform(x)
    torch.testing.assert_close(solve_transform(x, x, 1e-8), delta, rtol=0, atol=1e-6)
    # a huge λ shrinks the transformation to nothing (the ridge term of eq. 3)
    assert solve_transform(x, y, 1e12).abs().max() < 1e-6
    # the release's per-element λ is eq. 4's λ divided by h w
    assert regularisation(2.0, x) == 72.0


def test_solver_gradients_match_finite_differences():
    g = torch.Generator().manual_seed(3)
    x = torch.randn(2, 3, 4, generator=g, dtype=torch.float64, requires_grad=True)
    y = torch.randn(2, 3, 4, generator=g, dtype=torch.float64, requires_grad=True)
    z = torch.randn(2, 3, 4, generator=g, dtype=torch.float64, requires_grad=True)
    lam = torch.tensor(0.5, dtype=torch.float64, requires_grad=True)
    rate = torch.tensor(0.4, dtype=torch.float64, requires_grad=True)

    def f(x, y, z, lam, rate):
        return apply_transform(solve_transform(x, y, lam), z, rate)

    assert torch.autograd.gradcheck(f, (x, y, z, lam, rate))


# ------------------------------------------------------------ eq. 9 and section 3.5
def test_fusion_weights_sum_to_one_and_start_at_conv5_ones_conv4_zeros():
    _, net = random_net("dsiamm")
    weights = net.fusion_weights()
    assert weights.shape == (2, 17, 17)
    # section 3.6: conv5 ones, conv4 zeros (order: conv4, conv5)
    assert torch.equal(weights[0], torch.zeros(17, 17))
    assert torch.equal(weights[1], torch.ones(17, 17))
    with torch.no_grad():
        net.fusion.normal_()
    torch.testing.assert_close(net.fusion_weights().sum(0), torch.ones(17, 17))
    # DSiam has one layer: its weight map is all ones whatever the raw parameter holds
    _, single = random_net("dsiam")
    with torch.no_grad():
        single.fusion.normal_()
    torch.testing.assert_close(single.fusion_weights(), torch.ones(1, 17, 17))


def test_initial_fusion_of_dsiamm_is_its_conv5_score_map():
    g = torch.Generator().manual_seed(4)
    _, net = random_net("dsiamm")
    with torch.no_grad():
        fused, per_layer = net(random_features(g, 1, False), random_features(g, 3, True))
    assert fused.shape == per_layer["conv4"].shape == per_layer["conv5"].shape == (3, 1, 17, 17)
    torch.testing.assert_close(fused, per_layer["conv5"])
    assert not torch.allclose(per_layer["conv4"], per_layer["conv5"])


def test_gradients_reach_lambdas_rates_fusion_maps_and_features():
    # Section 3.5: the loss of eq. 10 on the fused map back-propagates through 'Eltwise',
    # 'CirConv' and 'RLR' into Υ, λv, λw and the features.
    g = torch.Generator().manual_seed(5)
    _, net = random_net("dsiamm")
    # At the paper's initial point conv4's weight map is zero, so nothing of conv4 but its
    # weight map can get a gradient yet; move off it so that every path is exercised.
    with torch.no_grad():
        net.fusion[0].fill_(0.3)
    first = {k: v.requires_grad_() for k, v in random_features(g, 1, False).items()}
    previous = random_features(g, 1, False)
    ground, weighted = random_features(g, 1, True), random_features(g, 1, True)
    search = random_features(g, 2, True)
    v = net.learn_v(first, previous)
    w = net.learn_w(ground, weighted)
    fused, _ = net(first, search, v, w)
    labels = -torch.ones_like(fused)
    labels[..., 7:10, 7:10] = 1.0
    loss = F.softplus(-fused * labels).mean()  # eq. 10
    loss.backward()
    for name in ("log_lambda_v", "log_lambda_w", "v_rate", "w_rate"):
        grad = getattr(net, name).grad
        assert grad is not None and torch.all(grad != 0), name  # both layers
    assert net.fusion.grad is not None
    assert net.fusion.grad[0].abs().sum() > 0 and net.fusion.grad[1].abs().sum() > 0
    assert net.conv4_bias.grad is not None and net.siamfc.bias.grad is not None
    assert all(f.grad is not None and f.grad.abs().sum() > 0 for f in first.values())


def test_gradients_reach_the_embedding_end_to_end():
    _, net = random_net("dsiam", seed=1)
    net.train()
    g = torch.Generator().manual_seed(6)
    exemplars = torch.rand(2, 3, 127, 127, generator=g) * 255
    searches = torch.rand(2, 3, 255, 255, generator=g) * 255
    pair = net.features(exemplars)
    first = {k: f[0:1] for k, f in pair.items()}
    previous = {k: f[1:2] for k, f in pair.items()}
    feats = net.features(searches)
    v = net.learn_v(first, previous)
    w = net.learn_w({k: f[0:1] for k, f in feats.items()}, {k: f[1:2] for k, f in feats.items()})
    # search where G was cut: the frame after a still target
    fused, _ = net(first, {k: f[0:1] for k, f in feats.items()}, v, w)
    fused.mean().backward()
    assert net.siamfc.embedding.conv1[0].weight.grad.abs().sum() > 0
    assert net.log_lambda_v.grad[1] != 0 and net.log_lambda_w.grad[1] != 0


# ------------------------------------------------------------- DSiam contains SiamFC
def test_identity_transforms_reduce_dsiam_to_siamfc():
    cfg, net = random_net("dsiam", seed=2)
    siamfc = net.siamfc  # the very same weights, looked at as SiamFC
    g = torch.Generator().manual_seed(7)
    z = torch.rand(1, 3, 127, 127, generator=g) * 255
    x = torch.rand(3, 3, 255, 255, generator=g) * 255
    with torch.no_grad():
        expected = siamfc.score(siamfc.embed(z), siamfc.embed(x))
        first, search = net.features(z), net.features(x)
        torch.testing.assert_close(first["conv5"], siamfc.embed(z))
        # V and W off (section 3.6)
        off, _ = net(first, search)
        # V and W switched on but equal to the identity, at any rate
        ident = {"conv5": identity_transform(first["conv5"])}
        ident_w = {"conv5": identity_transform(search["conv5"][:1])}
        on, _ = net(first, search, ident, ident_w)
        # V learned from an unchanged target is (nearly) the identity
        learned_v = net.learn_v(first, first)
        learned, _ = net(first, search, learned_v, None)
    torch.testing.assert_close(off, expected, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(on, expected, rtol=1e-4, atol=1e-4)
    scale = expected.abs().max()
    assert (learned - expected).abs().max() < 1e-3 * scale


# --------------------------------------------------------------------- tracking
@pytest.mark.parametrize("preset", ["dsiam", "dsiamm"])
def test_protocol_on_the_demo_clip_with_random_weights(preset):
    frames, boxes = render_sequence(n_frames=6, size=(240, 160))
    # every frame counts as tracked, so V and W are learned after each one
    cfg, net = random_net(preset, success_threshold=-math.inf)
    tracker = DSiamTracker(cfg, net, CPU, name=preset, untrained=True)
    assert isinstance(tracker, Tracker) and tracker.name == preset
    tracker.init(frames[0], boxes[0])
    assert tracker._v is None and tracker._w is None  # off before tracking (section 3.6)
    for frame in frames[1:]:
        result = tracker.update(frame)
        assert result.box.is_valid() and math.isfinite(result.score)
        assert result.untrained is True
        maps = result.score_maps
        # fused (chosen scale, as searched), then each layer at that scale, then each scale
        assert len(maps) == 1 + len(cfg.layers) + cfg.scale_count
        assert maps[0].values.shape == (272, 272) and maps[0].label.startswith("fused")
        for layer, m in zip(cfg.layers, maps[1:]):
            assert m.label.startswith(layer) and m.values.shape == (17, 17)
            assert m.region == maps[0].region
        assert all(m.values.shape == (17, 17) for m in maps[1 + len(cfg.layers) :])
        assert all(np.isfinite(m.values).all() and m.region.is_valid() for m in maps)
        assert maps[0].label.endswith("tracked")  # the peak beat the (here -inf) threshold
    assert tracker._v is not None and set(tracker._v) == set(cfg.layers)
    assert tracker._w is not None and set(tracker._w) == set(cfg.layers)


class NormalisedNet(DSiamNet):
    """A test double with a true similarity (as in test_siamfc): unit-length features at
    every location, so localisation can be checked without trained weights."""

    def features(self, images: torch.Tensor) -> Features:
        return {k: F.normalize(v, dim=1) for k, v in super().features(images).items()}


class NormalisedEmbedding:
    """NormalisedNet's features with the tracker's embedding interface (``features``,
    ``precision``, ``calibrate``): the fast embedding's, unit-length at every location."""

    def __init__(self, net: DSiamNet) -> None:
        self.inner = Embedding(list(net.siamfc.embedding.named_children()), CPU, None)

    @property
    def precision(self) -> str:
        return self.inner.precision

    def calibrate(self, images: torch.Tensor) -> None:
        self.inner.calibrate(images)

    def features(self, images: torch.Tensor, layers) -> Features:
        return {k: F.normalize(v, dim=1) for k, v in self.inner.features(images, layers).items()}


STILL_BOX = Box(100, 40, 30, 24)


def _still_target(cfg: DSiamConfig, name: str, seed: int) -> tuple[DSiamTracker, np.ndarray]:
    """A NormalisedNet tracker started on a 160x120 random-texture frame at ``STILL_BOX``."""
    import cv2

    small = np.random.default_rng(seed).integers(0, 256, (30, 40, 3), dtype=np.uint8)
    frame = cv2.resize(small, (160, 120), interpolation=cv2.INTER_LINEAR)
    net = NormalisedNet.from_config(cfg)
    init_weights(net.siamfc, seed=0)
    tracker = DSiamTracker(cfg, net, CPU, name=name, embedding=NormalisedEmbedding(net))
    tracker.init(frame, STILL_BOX)
    return tracker, frame


def test_still_target_stays_put_with_transforms_learned_then_lost_target_stays_finite():
    tracker, frame = _still_target(PRESETS["dsiamm"], "dsiamm", seed=0)
    for _ in range(2):
        result = tracker.update(frame)
        for got, want in zip(result.box.as_array(), STILL_BOX.as_array()):
            assert abs(got - want) <= 0.5
        assert result.score > 0 and "tracked" in result.score_map.label
    assert tracker._v is not None  # the second update used learned V and W
    present = result.score
    # the target leaves: a flat frame; box stays in the frame, finite, with a lower score
    gone = np.full_like(frame, 90)
    result = tracker.update(gone)
    assert result.box.is_finite()
    cx, cy = result.box.center()
    assert 0 <= cx <= 160 and 0 <= cy <= 120
    assert math.isfinite(result.score) and result.score < present


# ------------------------------------------------------------------- weights
def test_loads_a_siamfc_checkpoint_and_is_not_untrained(tmp_path):
    siamfc = SiamFCNet()
    init_weights(siamfc, seed=11)
    path = save_checkpoint(
        tmp_path / "siamfc.pt", siamfc.state_dict(), architecture="siamfc-alexnet", config={}
    )
    tracker = DSiamTracker.create("dsiamm", weights=path, device="cpu")
    assert not tracker.untrained and tracker.name == "dsiamm"
    # the tracker folds batch norm into the convs for speed: compare what they compute
    image = torch.rand(1, 3, 127, 127) * 255
    with torch.no_grad():
        torch.testing.assert_close(
            tracker.net.siamfc.embed(image), siamfc.eval().embed(image), rtol=1e-4, atol=1e-2
        )
    # fusion and λ at their initial values (section 3.6 and the config)
    assert torch.equal(tracker.net.fusion_weights()[1], torch.ones(17, 17))
    assert tracker.net.lambda_w("conv5").item() == pytest.approx(PRESETS["dsiamm"].lambda_w)
    frame = np.zeros((90, 120, 3), np.uint8)
    frame[30:60, 40:80] = 200
    tracker.init(frame, Box(40, 30, 40, 30))
    assert tracker.update(frame).untrained is False


def test_dsiam_checkpoint_round_trip_and_user_overrides(tmp_path):
    _, net = random_net("dsiamm", seed=3)
    with torch.no_grad():
        net.fusion.normal_()
        net.log_lambda_v.fill_(math.log(0.25))
    path = save_checkpoint(
        tmp_path / "dsiam.pt", net.state_dict(), architecture=ARCHITECTURE, config={}
    )
    loaded = DSiamTracker.create("dsiam", weights=path, device="cpu")
    torch.testing.assert_close(loaded.net.fusion, net.fusion)
    assert loaded.net.lambda_v("conv5").item() == pytest.approx(0.25)
    # a value the user typed beats the checkpoint's
    typed = DSiamTracker.create("dsiam", weights=path, device="cpu", config={"lambda_v": 3.0})
    assert typed.net.lambda_v("conv5").item() == pytest.approx(3.0)
    # other architectures are refused with a message naming what DSiam takes
    other = save_checkpoint(
        tmp_path / "rpn.pt", {"w": torch.zeros(1)}, architecture="siamrpn-alexnet", config={}
    )
    with pytest.raises(WeightsError, match="dsiam-alexnet"):
        DSiamTracker.create("dsiam", weights=other, device="cpu")


def test_untrained_tracker_says_so(caplog, tmp_path, monkeypatch):
    import trackers.dsiam.tracker as module

    monkeypatch.setattr(module, "default_weights_path", lambda: tmp_path / "absent.pt")
    tracker = DSiamTracker.create("dsiam", weights=None, device="cpu")
    assert tracker.untrained
    assert "WARNING" in caplog.text and "RANDOM" in caplog.text  # the library's logger


# -------------------------------------------------------------------- config
def test_presets_and_constants():
    assert PRESETS["dsiam"].layers == ("conv5",)
    assert PRESETS["dsiamm"].layers == ("conv4", "conv5")
    # the window, chosen for each preset on the 8-item split (17th session)
    assert (PRESETS["dsiam"].window_influence, PRESETS["dsiamm"].window_influence) == (0.25, 0.176)
    # V and W learned only above a peak of 5 for dsiam; DSiamM keeps the paper's 0 (17th session)
    assert (PRESETS["dsiam"].success_threshold, PRESETS["dsiamm"].success_threshold) == (5.0, 0.0)
    cfg = DSiamConfig()
    # section 3.6: three scales; the rest of the search is SiamFC-3s's but for the values
    # chosen on the validation split (README): step 1.05, damping 0.6, window 0.25 (17th session)
    assert cfg.scale_count == 3
    assert (cfg.scale_step, cfg.scale_lr, cfg.window_influence) == (1.05, 0.6, 0.25)
    # ... and the paper's 255 / 17 geometry, not SiamFC's tracking presets' 319 / 25: the
    # fusion maps are learned at 17x17 (23rd session)
    assert cfg.search_config() == replace(SIAMFC_PRESETS["siamfc-3s"], scale_step=1.05, scale_lr=0.6,
                                          window_influence=0.25, search_size=255, score_size=17)
    assert cfg.success_threshold == 0.0
    # release values where the paper is silent
    assert (cfg.lambda_v, cfg.lambda_w, cfg.v_rate, cfg.w_rate) == (1e-5, 10.0, 0.49, 0.29)
    # layers are kept shallow to deep whatever order they are given in
    assert DSiamConfig(layers=["conv5", "conv4"]).layers == ("conv4", "conv5")
    for bad in ({"layers": ()}, {"layers": ("conv3",)}, {"lambda_v": 0.0}, {"scale_count": 2}):
        with pytest.raises(ValueError):
            DSiamConfig(**bad)


def test_unknown_config_key_and_preset_are_errors():
    with pytest.raises(ValueError, match="lamda_v"):
        DSiamTracker.create("dsiam", config={"lamda_v": 1.0}, device="cpu")
    with pytest.raises(TrackerError, match="dsiamm"):
        DSiamTracker.create("dsiam-xl", device="cpu")


def test_background_weights_peak_at_the_centre():
    weights = background_weights(255, sigma=40.0)
    assert weights.shape == (255, 255) and weights.dtype == np.float32
    assert weights[127, 127] == pytest.approx(1.0) and weights.max() == pytest.approx(1.0)
    assert weights[0, 0] == 0.0  # the taper reaches zero at the border
    np.testing.assert_allclose(weights, weights.T, atol=1e-7)
    flat = background_weights(255, sigma=1e9, taper=False)
    assert flat.min() > 0.999


@pytest.mark.parametrize("threshold, learned", [(-math.inf, True), (1e9, False)])
def test_v_and_w_are_learned_only_above_the_success_threshold(threshold, learned):
    """Section 3.6 re-learns V and W only on a successful frame; the dsiam preset raises the bar
    (17th session). Under it the box is still tracked, with V and W off, and the map says so."""
    tracker, frame = _still_target(replace(PRESETS["dsiam"], success_threshold=threshold), "dsiam", seed=1)
    for _ in range(2):
        result = tracker.update(frame)
        assert all(abs(g - w) <= 0.5 for g, w in zip(result.box.as_array(), STILL_BOX.as_array()))
    assert (tracker._v is not None, tracker._w is not None) == (learned, learned)
    label = result.score_map.label
    assert label.endswith("tracked") if learned else label.endswith("peak under 1e+09, V and W off")


def test_maps_that_are_not_finite_are_labelled_lost_not_under_the_threshold():
    tracker, frame = _still_target(PRESETS["dsiam"], "dsiam", seed=1)
    forward = tracker.net.forward

    def poisoned(*args, **kwargs):
        fused, per_layer = forward(*args, **kwargs)
        return fused * float("nan"), {layer: m * float("nan") for layer, m in per_layer.items()}

    tracker.net.forward = poisoned
    result = tracker.update(frame)
    assert result.box.is_finite() and result.score == 0.0
    assert result.score_map.label.endswith("maps not finite, lost")
    assert tracker._v is None and tracker._w is None
