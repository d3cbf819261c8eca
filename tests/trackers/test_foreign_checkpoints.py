"""Public SiamRPN checkpoints: which layouts map onto our SiamRPNNet, and that they map exactly.

No released file is needed: each layout is rebuilt here from its authors' architecture
with random weights (and random batch-norm statistics), saved the way they save it, and
loaded through ``load_checkpoint`` / ``load_into``. The mapped network must then give
the reference module's outputs, channel for channel (see docs/checkpoints.md).
"""

from __future__ import annotations

from collections import OrderedDict

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from trackers.protocol import TrackerError
from trackers.siamrpn.network import ARCHITECTURE, SiamRPNNet
from trackers.weights.checkpoint import WeightsError
from trackers.weights.foreign import map_dasiamrpn
from trackers.weights.loading import load_checkpoint, load_into

ANCHORS = 5


class DaSiamRPNReference(nn.Module):
    """DaSiamRPN's ``SiamRPN(size=1, feature_out=256, anchor=5)`` (SiamRPNotb / SiamRPNvot),
    rebuilt from its architecture: the same module names, order and defaults."""

    def __init__(self, width: int = 1, feature_out: int = 256, anchor: int = ANCHORS) -> None:
        super().__init__()
        c = [3] + [n * width for n in (96, 256, 384, 384, 256)]
        self.featureExtract = nn.Sequential(
            nn.Conv2d(c[0], c[1], kernel_size=11, stride=2),
            nn.BatchNorm2d(c[1]),
            nn.MaxPool2d(kernel_size=3, stride=2),
            nn.ReLU(inplace=True),
            nn.Conv2d(c[1], c[2], kernel_size=5),
            nn.BatchNorm2d(c[2]),
            nn.MaxPool2d(kernel_size=3, stride=2),
            nn.ReLU(inplace=True),
            nn.Conv2d(c[2], c[3], kernel_size=3),
            nn.BatchNorm2d(c[3]),
            nn.ReLU(inplace=True),
            nn.Conv2d(c[3], c[4], kernel_size=3),
            nn.BatchNorm2d(c[4]),
            nn.ReLU(inplace=True),
            nn.Conv2d(c[4], c[5], kernel_size=3),
            nn.BatchNorm2d(c[5]),
        )
        self.anchor = anchor
        self.feature_out = feature_out
        self.conv_r1 = nn.Conv2d(c[5], feature_out * 4 * anchor, 3)
        self.conv_r2 = nn.Conv2d(c[5], feature_out, 3)
        self.conv_cls1 = nn.Conv2d(c[5], feature_out * 2 * anchor, 3)
        self.conv_cls2 = nn.Conv2d(c[5], feature_out, 3)
        self.regress_adjust = nn.Conv2d(4 * anchor, 4 * anchor, 1)

    def temple(self, z: torch.Tensor) -> None:
        z_f = self.featureExtract(z)
        r1 = self.conv_r1(z_f)
        cls1 = self.conv_cls1(z_f)
        side = r1.shape[-1]
        self.r1_kernel = r1.view(self.anchor * 4, self.feature_out, side, side)
        self.cls1_kernel = cls1.view(self.anchor * 2, self.feature_out, side, side)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x_f = self.featureExtract(x)
        delta = self.regress_adjust(F.conv2d(self.conv_r2(x_f), self.r1_kernel))
        score = F.conv2d(self.conv_cls2(x_f), self.cls1_kernel)
        return delta, score


def _randomise(module: nn.Module, seed: int) -> None:
    """Random weights, and batch-norm statistics far from the identity, so that every
    folded difference (eps, channel order, scale) would show."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, nn.Conv2d):
                fan_in = m.weight[0].numel()
                m.weight.copy_(torch.randn(m.weight.shape, generator=generator) * (2.0 / fan_in) ** 0.5)
                m.bias.copy_(torch.randn(m.bias.shape, generator=generator) * 0.1)
            elif isinstance(m, nn.BatchNorm2d):
                m.weight.copy_(torch.rand(m.weight.shape, generator=generator) + 0.5)
                m.bias.copy_(torch.randn(m.bias.shape, generator=generator) * 0.2)
                m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=generator) * 0.5)
                # Small variances make the eps difference matter (1e-5 vs 1e-6).
                m.running_var.copy_(torch.rand(m.running_var.shape, generator=generator) * 2.0 + 1e-4)


@pytest.fixture(scope="module")
def reference() -> DaSiamRPNReference:
    torch.manual_seed(0)
    net = DaSiamRPNReference()
    _randomise(net, seed=1)
    return net.eval()


@pytest.fixture(scope="module")
def crops() -> tuple[torch.Tensor, torch.Tensor]:
    """A 127 exemplar and a 255 search crop, BGR 0..255 as DaSiamRPN's cv2 pipeline feeds them."""
    generator = torch.Generator().manual_seed(2)
    z = torch.rand((1, 3, 127, 127), generator=generator) * 255
    x = torch.rand((1, 3, 255, 255), generator=generator) * 255
    return z, x


def _saved(tmp_path, state: dict, name: str = "SiamRPNotb.model", legacy: bool = False):
    path = tmp_path / name
    # The released .model files are bare state dicts from torch.save(net.state_dict()).
    torch.save(state, path, _use_new_zipfile_serialization=not legacy)
    return path


def _close(ours: torch.Tensor, theirs: torch.Tensor) -> None:
    scale = float(theirs.abs().max())
    torch.testing.assert_close(ours, theirs, rtol=1e-4, atol=1e-5 * scale)


@pytest.fixture(scope="module")
def net(reference: nn.Module, tmp_path_factory: pytest.TempPathFactory) -> SiamRPNNet:
    """Our network, loaded strictly from the reference's file through the public path."""
    net = SiamRPNNet(anchor_count=ANCHORS)
    path = _saved(tmp_path_factory.mktemp("dasiamrpn"), reference.state_dict())
    meta = load_into(net, path, ARCHITECTURE, "SiamRPN")
    assert meta["format"] == "dasiamrpn"
    return net.eval()


@pytest.fixture(scope="module")
def outputs(reference, net, crops) -> dict[str, torch.Tensor]:
    z_bgr, x_bgr = crops
    with torch.no_grad():
        reference.temple(z_bgr)
        delta, score = reference(x_bgr)
        # Ours is fed RGB, theirs BGR: the mapping reversed conv1's input channels.
        a_cls, a_reg = net.detect(net.exemplar_branch(z_bgr.flip(1)), x_bgr.flip(1))
    return {"delta": delta, "score": score, "a_cls": a_cls, "a_reg": a_reg}


def test_dasiamrpn_backbone_gives_the_same_features(reference, net, crops) -> None:
    z_bgr, x_bgr = crops
    with torch.no_grad():
        for crop in (z_bgr, x_bgr):
            _close(net.backbone(crop.flip(1)), reference.featureExtract(crop))


def test_dasiamrpn_heads_give_the_same_outputs_channel_for_channel(outputs) -> None:
    delta, score, a_cls, a_reg = outputs["delta"], outputs["score"], outputs["a_cls"], outputs["a_reg"]
    assert a_cls.shape == score.shape == (1, 2 * ANCHORS, 17, 17)
    assert a_reg.shape == delta.shape == (1, 4 * ANCHORS, 17, 17)
    # Theirs is channel-major (value c of anchor a at c * k + a), ours anchor-major.
    for a in range(ANCHORS):
        for c in range(2):
            _close(a_cls[:, 2 * a + c], score[:, c * ANCHORS + a])
        for c in range(4):
            _close(a_reg[:, 4 * a + c], delta[:, c * ANCHORS + a])


def test_dasiamrpn_foreground_probabilities_match_their_tracker_reading(outputs) -> None:
    """What each tracker takes from the maps: theirs softmax(view(2, -1))[1] (run_SiamRPN.py),
    ours softmax over each anchor's (background, foreground) pair (siamrpn/tracker.py)."""
    delta, score, a_cls, a_reg = outputs["delta"], outputs["score"], outputs["a_cls"], outputs["a_reg"]
    theirs = F.softmax(score.permute(1, 2, 3, 0).contiguous().view(2, -1), dim=0)[1].reshape(ANCHORS, 17, 17)
    ours = torch.softmax(a_cls[0].reshape(ANCHORS, 2, 17, 17), dim=1)[:, 1]
    torch.testing.assert_close(ours, theirs, rtol=1e-4, atol=1e-5)
    theirs_delta = delta.permute(1, 2, 3, 0).contiguous().view(4, -1).reshape(4, ANCHORS, 17, 17)
    ours_delta = a_reg[0].reshape(ANCHORS, 4, 17, 17).permute(1, 0, 2, 3)
    _close(ours_delta, theirs_delta)


def test_dasiamrpn_old_files_load(reference, tmp_path) -> None:
    # The 2018 releases predate num_batches_tracked and torch's zip format.
    state = OrderedDict((k, v) for k, v in reference.state_dict().items() if "num_batches_tracked" not in k)
    path = _saved(tmp_path, state, "SiamRPNvot.model", legacy=True)
    mapped, meta = load_checkpoint(path, ARCHITECTURE)
    assert meta["format"] == "dasiamrpn" and meta["provenance"]["source"] == str(path)
    net = SiamRPNNet(anchor_count=ANCHORS)
    net.load_state_dict(mapped, strict=True)
    assert int(mapped["backbone.conv1.1.num_batches_tracked"]) == 0


def test_dasiamrpn_layout_is_only_read_for_siamrpn(reference, tmp_path) -> None:
    path = _saved(tmp_path, reference.state_dict())
    with pytest.raises(WeightsError, match="nor a layout we know"):
        load_checkpoint(path, "siamfc-alexnet")


def test_siamrpn_big_is_refused_with_the_reason(tmp_path) -> None:
    # SiamRPNBIG: SiamRPN(size=2, feature_out=512): every width doubled. Only the first
    # tensors matter for the check; a full BIG model would be 8x the memory.
    state = {
        "featureExtract.0.weight": torch.zeros(192, 3, 11, 11),
        "conv_cls1.weight": torch.zeros(1, 1, 3, 3),
        "regress_adjust.weight": torch.zeros(20, 20, 1, 1),
    }
    with pytest.raises(WeightsError, match="SiamRPNBIG"):
        load_checkpoint(_saved(tmp_path, state, "SiamRPNBIG.model"), ARCHITECTURE)


def test_incomplete_dasiamrpn_file_names_a_missing_key(reference, tmp_path) -> None:
    state = dict(reference.state_dict())
    del state["conv_r2.bias"]
    with pytest.raises(WeightsError, match="missing"):
        load_checkpoint(_saved(tmp_path, state), ARCHITECTURE)


def test_map_dasiamrpn_keeps_the_source_untouched(reference) -> None:
    state = {k: v.clone() for k, v in reference.state_dict().items()}
    before = {k: v.clone() for k, v in state.items()}
    mapped = map_dasiamrpn(state)
    for key, value in before.items():
        assert torch.equal(state[key], value), key
    # And the mapping does change what must change.
    assert not torch.equal(mapped["backbone.conv1.0.weight"], state["featureExtract.0.weight"])
    assert not torch.equal(mapped["backbone.conv1.1.running_var"], state["featureExtract.1.running_var"])


# --------------------------------------------------------------------------- pysot


def _pysot_dwxcorr_keys(prefix: str = "") -> dict[str, torch.Tensor]:
    """The key layout of pysot's siamrpn_alex_dwxcorr: AlexNetLegacy ``backbone.features.*``
    (the same backbone as DaSiamRPN) and a DepthwiseRPN ``rpn_head`` (cls / loc branches,
    each conv_kernel + conv_search (conv 3x3 + BN) and a head of 1x1 convs)."""
    keys: dict[str, torch.Tensor] = {}
    convs = ((3, 96, 11), (96, 256, 5), (256, 384, 3), (384, 384, 3), (384, 256, 3))
    for i, (cin, cout, k) in zip((0, 4, 8, 11, 14), convs):
        keys[f"backbone.features.{i}.weight"] = torch.zeros(cout, cin, k, k)
        keys[f"backbone.features.{i}.bias"] = torch.zeros(cout)
        for p in ("weight", "bias", "running_mean", "running_var"):
            keys[f"backbone.features.{i + 1}.{p}"] = torch.zeros(cout)
    for branch, out in (("cls", 2 * ANCHORS), ("loc", 4 * ANCHORS)):
        for part in ("conv_kernel", "conv_search"):
            keys[f"rpn_head.{branch}.{part}.0.weight"] = torch.zeros(256, 256, 3, 3)
            for p in ("weight", "bias", "running_mean", "running_var"):
                keys[f"rpn_head.{branch}.{part}.1.{p}"] = torch.zeros(256)
        keys[f"rpn_head.{branch}.head.0.weight"] = torch.zeros(256, 256, 1, 1)
        for p in ("weight", "bias", "running_mean", "running_var"):
            keys[f"rpn_head.{branch}.head.1.{p}"] = torch.zeros(256)
        keys[f"rpn_head.{branch}.head.3.weight"] = torch.zeros(out, 256, 1, 1)
        keys[f"rpn_head.{branch}.head.3.bias"] = torch.zeros(out)
    return {prefix + k: v for k, v in keys.items()}


@pytest.mark.parametrize("wrapped", [False, True], ids=["bare", "state_dict+module."])
def test_pysot_depthwise_checkpoint_is_refused_with_the_reason(tmp_path, wrapped: bool) -> None:
    state = _pysot_dwxcorr_keys("module." if wrapped else "")
    payload = {"state_dict": state, "epoch": 20} if wrapped else state
    path = _saved(tmp_path, payload, "siamrpn_alex_dwxcorr.pth")
    with pytest.raises(WeightsError, match="depth-wise"):
        load_checkpoint(path, ARCHITECTURE)
    # WeightsError is a TrackerError: the CLI and the app show it as one line.
    assert issubclass(WeightsError, TrackerError)
