"""SiamFC against its paper: Table 1 shapes, eq. 1, eq. 2, crops, scale search and damping."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from trackers.siamfc.config import PRESETS, SiamFCConfig, with_paper_search
from trackers.siamfc.network import AlexNetEmbedding, SiamFCNet, cross_correlation, init_weights
from trackers.siamfc.search import damped_scale
from trackers.siamfc.tracker import SiamFCTracker, fast_embedding
from trackers.types import Box


class NormalisedNet(SiamFCNet):
    """A test double with a true similarity: unit-length features at every location make
    phi(z) * phi(x) largest exactly where the search window equals the exemplar, so the
    tracker's geometry can be checked without trained weights."""

    def embed(self, image: torch.Tensor) -> torch.Tensor:
        return F.normalize(super().embed(image), dim=1)


class NormalisedEmbedding:
    """NormalisedNet's phi with the tracker's embedding interface (call, ``precision``,
    ``calibrate``): the fast embedding's features made unit-length at every location."""

    def __init__(self, net: SiamFCNet) -> None:
        self.inner = fast_embedding(net, torch.device("cpu"), None)

    @property
    def precision(self) -> str:
        return self.inner.precision

    def calibrate(self, images: torch.Tensor) -> None:
        self.inner.calibrate(images)

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.inner(images), dim=1)


def make_tracker(preset: str = "siamfc", **overrides) -> SiamFCTracker:
    torch.manual_seed(0)
    net = NormalisedNet()
    init_weights(net, seed=0)
    cfg = PRESETS[preset]
    if overrides:
        from dataclasses import replace

        cfg = replace(cfg, **overrides)
    return SiamFCTracker(cfg, net, torch.device("cpu"), name=preset, embedding=NormalisedEmbedding(net))


def textured(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    small = rng.integers(0, 256, (max(h // 4, 2), max(w // 4, 2), 3), dtype=np.uint8)
    import cv2

    return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)


def test_table1_feature_sizes():
    net = AlexNetEmbedding().eval()
    with torch.no_grad():
        assert net(torch.zeros(1, 3, 127, 127)).shape == (1, 256, 6, 6)
        assert net(torch.zeros(2, 3, 255, 255)).shape == (2, 256, 22, 22)
    # Table 1's channel maps: conv2 256x48, conv4 384x192, conv5 256x192 -> two groups
    assert net.conv2[0].weight.shape == (256, 48, 5, 5)
    assert net.conv4[0].weight.shape == (384, 192, 3, 3)
    assert net.conv5[0].weight.shape == (256, 192, 3, 3)
    assert net.conv1[0].weight.shape == (96, 3, 11, 11)
    # no padding anywhere; batch norm after every conv; no ReLU after conv5
    convs = [m for m in net.modules() if isinstance(m, torch.nn.Conv2d)]
    assert all(c.padding == (0, 0) for c in convs)
    assert sum(isinstance(m, torch.nn.BatchNorm2d) for m in net.modules()) == 5
    assert not isinstance(net.conv5[-1], torch.nn.ReLU)


def test_score_map_is_17x17_and_one_pass_covers_all_scales():
    net = SiamFCNet().eval()
    init_weights(net)
    with torch.no_grad():
        z = net.embed(torch.rand(1, 3, 127, 127) * 255)
        x = net.embed(torch.rand(5, 3, 255, 255) * 255)
        scores = net.score(z, x)
    assert scores.shape == (5, 1, 17, 17)


def test_equation1_embedding_commutes_with_translation_by_stride():
    # h(L_{k tau} x) = L_tau h(x): shifting the input by 8k pixels shifts the features by k.
    net = AlexNetEmbedding().eval()
    init_weights(net, seed=3)
    g = torch.Generator().manual_seed(1)
    big = torch.rand(1, 3, 255 + 8 * 3, 255 + 8 * 3, generator=g) * 255
    with torch.no_grad():
        full = net(big)
        for k in (1, 2, 3):
            shifted = net(big[:, :, 8 * k : 8 * k + 255, 8 * k : 8 * k + 255])
            torch.testing.assert_close(shifted, full[:, :, k : k + 22, k : k + 22], rtol=1e-4, atol=1e-3)
        # a shift that is not a multiple of the stride does not commute
        off = net(big[:, :, 4 : 4 + 255, 4 : 4 + 255])
        assert not torch.allclose(off, full[:, :, 0:22, 0:22], rtol=1e-3, atol=1e-2)


def test_cross_correlation_equals_brute_force_inner_products():
    g = torch.Generator().manual_seed(2)
    z = torch.randn(1, 4, 3, 3, generator=g)
    x = torch.randn(2, 4, 7, 8, generator=g)
    out = cross_correlation(z, x)
    assert out.shape == (2, 1, 5, 6)
    for n in range(2):
        for i in range(5):
            for j in range(6):
                expected = float((z[0] * x[n, :, i : i + 3, j : j + 3]).sum())
                assert out[n, 0, i, j].item() == pytest.approx(expected, rel=1e-5, abs=1e-5)
    # one exemplar per search image, as in training
    zs = torch.randn(2, 4, 3, 3, generator=g)
    batched = cross_correlation(zs, x)
    for n in range(2):
        torch.testing.assert_close(batched[n : n + 1], cross_correlation(zs[n : n + 1], x[n : n + 1]))


def test_bias_and_scale_of_equation2():
    net = SiamFCNet(score_scale=0.5).eval()
    with torch.no_grad():
        net.bias.fill_(2.0)
        z = torch.ones(1, 1, 2, 2)
        x = torch.ones(1, 1, 3, 3)
        assert torch.allclose(net.score(z, x), torch.full((1, 1, 2, 2), 0.5 * 4 + 2.0))


def test_paper_constants_are_the_defaults():
    cfg = SiamFCConfig()
    assert (cfg.exemplar_size, cfg.search_size, cfg.total_stride, cfg.score_size) == (127, 255, 8, 17)
    assert cfg.upsampled_size == 272
    assert cfg.scale_factors() == pytest.approx([1.025**i for i in (-2, -1, 0, 1, 2)])
    assert cfg.scale_lr == 0.35
    assert PRESETS["siamfc-3s"].scale_factors() == pytest.approx([1.025**-1, 1.0, 1.025])
    # siamfc tracks in a larger region with the same weights (23rd session); siamfc-3s,
    # training and DSiam keep the paper's geometry
    assert (PRESETS["siamfc"].search_size, PRESETS["siamfc"].score_size) == (319, 25)
    assert (PRESETS["siamfc-3s"].search_size, PRESETS["siamfc-3s"].score_size) == (255, 17)
    for preset in PRESETS.values():
        assert with_paper_search(preset) == replace(preset, search_size=255, score_size=17)
    from training.siamfc_train import SiamFCTask

    assert (SiamFCTask().cfg.search_size, SiamFCTask().cfg.score_size) == (255, 17)


def test_unknown_config_key_is_an_error():
    with pytest.raises(ValueError, match="scale_lrr"):
        SiamFCTracker.create("siamfc", config={"scale_lrr": 0.3}, device="cpu")


def test_damped_scale():
    assert damped_scale(1.0, 0.35) == 1.0
    assert damped_scale(1.025, 0.35) == pytest.approx(1 + 0.35 * 0.025)
    assert damped_scale(1.025**-2, 0.0) == 1.0
    assert damped_scale(1.1, 1.0) == pytest.approx(1.1)


@pytest.mark.parametrize("preset", ["siamfc", "siamfc-3s"])
@pytest.mark.parametrize("box", [Box(100, 80, 40, 30), Box(37.5, 61.25, 23, 57), Box(2, 3, 50, 50)])
def test_zero_motion_returns_initial_box(preset, box):
    rng = np.random.default_rng(0)
    frame = textured(rng, 240, 320)
    tracker = make_tracker(preset)
    tracker.init(frame, box)
    for _ in range(5):
        result = tracker.update(frame)
        for got, want in zip(result.box.as_array(), box.as_array()):
            assert abs(got - want) <= 0.5
    cells = tracker.config.score_size  # 25 for siamfc's 319-pixel search region, 17 for siamfc-3s
    assert cells == (tracker.config.search_size - 127) // 8 + 1
    assert result.score_maps[0].values.shape == (16 * cells, 16 * cells)
    assert len(result.score_maps) == 1 + tracker.config.scale_count
    assert all(m.values.shape == (cells, cells) for m in result.score_maps[1:])


def test_follows_translating_object_and_maps_displacement_to_frame_pixels():
    rng = np.random.default_rng(1)
    background = textured(rng, 240, 320)
    obj = rng.integers(0, 256, (32, 40, 3), dtype=np.uint8)
    # the released window weight: this checks the displacement's mapping, and the untrained
    # double's flat map lets a heavier window pull the peak by a further fraction of a pixel
    tracker = make_tracker("siamfc-3s", window_influence=0.176)
    errors = []
    for i in range(12):
        frame = background.copy()
        x, y = 60 + 6 * i, 70 + 4 * i
        frame[y : y + 32, x : x + 40] = obj
        truth = Box(x, y, 40, 32)
        if i == 0:
            tracker.init(frame, truth)
            continue
        got = tracker.update(frame).box
        cx, cy = got.center()
        tx, ty = truth.center()
        errors.append(max(abs(cx - tx), abs(cy - ty)))
    # one up-sampled cell is 0.5 search pixels; allow a couple of them
    assert max(errors) < 2.0


def test_a_larger_search_region_reaches_a_jump_the_paper_size_cannot():
    # 40x32 target: x_sz = 144 frame pixels for 255 search pixels (0.566 px each). A 17x17
    # map reaches 8 cells * 8 = 64 search pixels (36 frame pixels) from the centre; search_size
    # 303 gives 23x23 cells and 88 search pixels (50 frame pixels). The target jumps 47.
    rng = np.random.default_rng(4)
    background = textured(rng, 240, 360)
    obj = rng.integers(0, 256, (32, 40, 3), dtype=np.uint8)
    errors = {}
    for search, cells in ((255, 17), (303, 23)):
        tracker = make_tracker("siamfc-3s", window_influence=0.176, search_size=search, score_size=cells)
        for i, x in enumerate((120, 167)):
            frame = background.copy()
            frame[100:132, x : x + 40] = obj
            if i == 0:
                tracker.init(frame, Box(x, 100, 40, 32))
            else:
                result = tracker.update(frame)
        errors[search] = abs(result.box.center()[0] - (167 + 20))
        assert result.score_maps[0].values.shape == (16 * cells, 16 * cells)
        assert all(m.values.shape == (cells, cells) for m in result.score_maps[1:])
    assert errors[303] < 2.0
    assert errors[255] > 8.0


@pytest.mark.parametrize(
    "search,cells,fix",
    [(303, 17, "set score_size=23"), (255, 19, "set score_size=17"),
     (300, 23, "e.g. search_size=295 with score_size=22")],
)
def test_a_search_size_without_its_score_size_is_refused(search, cells, fix):
    with pytest.raises(ValueError, match="score_size") as refused:
        make_tracker(search_size=search, score_size=cells)
    assert refused.value.args[0].endswith(fix)


def test_scale_search_grows_box_with_growing_object_damped():
    import cv2

    rng = np.random.default_rng(2)
    pattern = rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)
    # no scale penalty: the untrained double's features only weakly tell scales apart
    tracker = make_tracker("siamfc", scale_penalty=1.0)
    sizes = []
    for i in range(10):
        side = int(round(40 * 1.06**i))
        frame = np.full((300, 300, 3), 128, dtype=np.uint8)
        obj = cv2.resize(pattern, (side, side), interpolation=cv2.INTER_NEAREST)
        x0 = 150 - side // 2
        frame[x0 : x0 + side, x0 : x0 + side] = obj
        box = Box(x0, x0, side, side)
        if i == 0:
            tracker.init(frame, box)
            sizes.append(box.w)
            continue
        sizes.append(tracker.update(frame).box.w)
    # grows every frame, but damped: never by more than one scale step at rate 0.35
    growth = np.diff(sizes) / np.array(sizes[:-1])
    assert np.all(growth > 0)
    assert np.all(growth <= 0.35 * (1.025**2 - 1) + 1e-9)
    assert sizes[-1] > sizes[0] * 1.05


def test_score_map_region_is_centred_on_previous_position():
    rng = np.random.default_rng(3)
    frame = textured(rng, 200, 200)
    tracker = make_tracker("siamfc")
    box = Box(80, 90, 30, 20)
    tracker.init(frame, box)
    result = tracker.update(frame)
    for m in result.score_maps:
        assert m.region.center() == pytest.approx(box.center())
    # 25 cells * 8 px of a 319 px search image covering x_sz frame pixels (siamfc's larger
    # region at the paper's scale: eq. 7's exemplar side times 319 / 127)
    assert (tracker.config.search_size, tracker.config.score_size) == (319, 25)
    context = 0.5 * (30 + 20)
    x_sz = np.sqrt((30 + context) * (20 + context)) * 319 / 127
    middle = result.score_maps[1 + tracker.config.scale_count // 2]
    assert middle.region.w == pytest.approx(200 / 319 * x_sz)


def test_target_leaving_the_frame_gives_clamped_finite_box():
    rng = np.random.default_rng(4)
    background = textured(rng, 120, 160)
    obj = rng.integers(0, 256, (20, 20, 3), dtype=np.uint8)
    tracker = make_tracker("siamfc-3s")
    frame = background.copy()
    frame[50:70, 130:150] = obj
    tracker.init(frame, Box(130, 50, 20, 20))
    for _ in range(20):
        result = tracker.update(background)  # the object is gone
        assert result.box.is_finite()
        cx, cy = result.box.center()
        assert 0 <= cx <= 160 and 0 <= cy <= 120
        assert np.isfinite(result.score)


def test_untrained_tracker_says_so(caplog, tmp_path, monkeypatch):
    import trackers.siamfc.tracker as module

    # as on a machine where the bundled weights are missing
    monkeypatch.setattr(module, "default_weights_path", lambda: tmp_path / "absent.pt")
    tracker = SiamFCTracker.create("siamfc-3s", weights=None, device="cpu")
    assert tracker.untrained
    # a warning on the library's logger (the CLI prints it on stderr)
    assert "RANDOM" in caplog.text and caplog.records[-1].name == "trackers.weights.loading"
    frame = np.zeros((100, 100, 3), np.uint8)
    tracker.init(frame, Box(40, 40, 20, 20))
    assert tracker.update(frame).untrained is True


def test_init_rejects_bad_boxes():
    tracker = make_tracker()
    frame = np.zeros((50, 50, 3), np.uint8)
    for bad in (Box(0, 0, 0, 10), Box(0, 0, -5, 10), Box(float("nan"), 0, 10, 10)):
        with pytest.raises(ValueError):
            tracker.init(frame, bad)


def test_bundled_weights_are_trained_and_load():
    from trackers.siamfc.tracker import default_weights_path
    from trackers.weights.loading import load_checkpoint

    path = default_weights_path()
    assert path.is_file(), "resources/weights/siamfc.pt must ship with the project"
    _, meta = load_checkpoint(path, "siamfc-alexnet")
    provenance = meta["provenance"]
    # the validation sequences were held out of training, whole
    assert set(provenance["val_sequences"]).isdisjoint(provenance["train_sequences"])
    assert SiamFCTracker.create("siamfc", device="cpu").untrained is False
