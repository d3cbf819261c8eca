"""Checkpoints: our format round-trips, foreign layouts map, unsafe files are refused."""

from __future__ import annotations

import pickle
import zipfile
from pathlib import Path

import pytest
import torch
from torch import nn

from tests.tools import load_tool
from trackers.devices import choose_device
from trackers.protocol import TrackerError
from trackers.siamfc.network import ARCHITECTURE, SiamFCNet, init_weights
from trackers.siamfc.tracker import SiamFCTracker
from trackers.weights.checkpoint import (
    WeightsError,
    dequantize_rows,
    load_own_checkpoint,
    quantize_rows,
    save_checkpoint,
)
from trackers.weights.loading import load_checkpoint


def make_net(seed: int = 0) -> SiamFCNet:
    net = SiamFCNet()
    init_weights(net, seed=seed)
    return net.eval()


def test_round_trip_keeps_tensors_and_metadata(tmp_path):
    net = make_net()
    path = save_checkpoint(
        tmp_path / "w.pt", net.state_dict(), architecture=ARCHITECTURE,
        config={"scale_lr": 0.35}, provenance={"epochs": 3},
    )
    state, meta = load_checkpoint(path, ARCHITECTURE)
    for key, value in net.state_dict().items():
        assert torch.equal(state[key], value)
    assert meta["config"] == {"scale_lr": 0.35}
    assert meta["provenance"] == {"epochs": 3}
    tracker = SiamFCTracker.create("siamfc", weights=path, device="cpu")
    assert tracker.untrained is False


def test_half_precision_checkpoint_loads_as_float(tmp_path):
    path = save_checkpoint(
        tmp_path / "w.pt", make_net().state_dict(), architecture=ARCHITECTURE, config={}, half=True
    )
    state, _ = load_checkpoint(path, ARCHITECTURE)
    assert state["embedding.conv1.0.weight"].dtype == torch.float32


def test_other_architecture_is_refused(tmp_path):
    path = save_checkpoint(
        tmp_path / "w.pt", {"a": torch.zeros(1)}, architecture="siamrpn-alexnet", config={}
    )
    with pytest.raises(WeightsError, match="siamrpn-alexnet"):
        load_checkpoint(path, ARCHITECTURE)


def test_truncated_file_is_refused(tmp_path):
    path = save_checkpoint(tmp_path / "w.pt", make_net().state_dict(), architecture=ARCHITECTURE, config={})
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(WeightsError, match="truncated"):
        load_checkpoint(path, ARCHITECTURE)


def test_missing_file(tmp_path):
    with pytest.raises(WeightsError, match="not found"):
        load_checkpoint(tmp_path / "nope.pt", ARCHITECTURE)


class _Payload:
    """Unpickling this would create a file: the loader must never do it."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_pickle_that_runs_code_is_refused(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pt"
    torch.save({"state_dict": _Payload(marker)}, path)
    with pytest.raises(WeightsError, match="refusing"):
        load_checkpoint(path, ARCHITECTURE)
    assert not marker.exists()
    # and a raw pickle, not even a torch zip file
    raw = tmp_path / "raw.pt"
    raw.write_bytes(pickle.dumps(_Payload(marker)))
    with pytest.raises(WeightsError):
        load_checkpoint(raw, ARCHITECTURE)
    assert not marker.exists()


class _TheirAlexNet(nn.Module):
    """siamfc-pytorch's key layout: backbone.convN.{0: conv, 1: bn}, conv5 without bn."""

    def __init__(self) -> None:
        super().__init__()

        def bn(c):
            return nn.BatchNorm2d(c, eps=1e-6)

        self.conv1 = nn.Sequential(nn.Conv2d(3, 96, 11, 2), bn(96), nn.ReLU(), nn.MaxPool2d(3, 2))
        self.conv2 = nn.Sequential(nn.Conv2d(96, 256, 5, 1, groups=2), bn(256), nn.ReLU(), nn.MaxPool2d(3, 2))
        self.conv3 = nn.Sequential(nn.Conv2d(256, 384, 3, 1), bn(384), nn.ReLU())
        self.conv4 = nn.Sequential(nn.Conv2d(384, 384, 3, 1, groups=2), bn(384), nn.ReLU())
        self.conv5 = nn.Sequential(nn.Conv2d(384, 256, 3, 1, groups=2))

    def forward(self, x):
        return self.conv5(self.conv4(self.conv3(self.conv2(self.conv1(x)))))


def test_siamfc_pytorch_layout_maps_to_the_same_function(tmp_path):
    torch.manual_seed(0)
    theirs = _TheirAlexNet().eval()
    with torch.no_grad():
        for m in theirs.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-1, 1)
                m.running_var.uniform_(0.5, 2)
                m.weight.uniform_(0.5, 1.5)
    path = tmp_path / "siamfc_alexnet_e50.pth"
    torch.save({"backbone." + k: v for k, v in theirs.state_dict().items()}, path)
    tracker = SiamFCTracker.create("siamfc", weights=path, device="cpu")
    image = torch.rand(1, 3, 127, 127) * 255
    with torch.no_grad():
        torch.testing.assert_close(tracker.net.embed(image), theirs(image), rtol=1e-4, atol=1e-3)


def test_state_dict_that_does_not_fit_is_a_tracker_error(tmp_path):
    state = make_net().state_dict()
    state.pop("embedding.conv3.0.weight")
    path = save_checkpoint(tmp_path / "w.pt", state, architecture=ARCHITECTURE, config={})
    with pytest.raises(TrackerError, match="does not fit"):
        SiamFCTracker.create("siamfc", weights=path, device="cpu")


def test_device_choice():
    assert choose_device("cpu").type == "cpu"
    assert choose_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(TrackerError):
        choose_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(TrackerError, match="CUDA"):
            choose_device("cuda")


def test_int8_rows_keep_every_weight_within_half_a_step():
    torch.manual_seed(0)
    weight = torch.randn(6, 4, 3, 3) * torch.tensor([1e-3, 0.1, 1.0, 10.0, 0.0, 3.0]).reshape(6, 1, 1, 1)
    values, scale = quantize_rows(weight)
    assert values.dtype == torch.int8 and scale.shape == (6,)
    back = dequantize_rows(values, scale)
    step = weight.reshape(6, -1).abs().amax(dim=1) / 127.0
    err = (back - weight).reshape(6, -1).abs().amax(dim=1)
    assert torch.all(err <= step / 2 + 1e-7)
    assert torch.equal(back[4], torch.zeros_like(back[4]))  # a zero row stays zero
    # The largest magnitude of each row is exact (it maps to +-127).
    rows = weight.reshape(6, -1)
    peak = rows.abs().argmax(dim=1)
    assert torch.allclose(back.reshape(6, -1)[torch.arange(6), peak], rows[torch.arange(6), peak])


def test_int8_checkpoint_loads_as_float_and_is_smaller(tmp_path):
    net = make_net()
    name = "embedding.conv3.0.weight"
    plain = save_checkpoint(tmp_path / "fp16.pt", net.state_dict(), architecture=ARCHITECTURE, config={},
                            half=True)
    small = save_checkpoint(tmp_path / "int8.pt", net.state_dict(), architecture=ARCHITECTURE, config={},
                            half=True, int8=[name])
    state, meta = load_checkpoint(small, ARCHITECTURE)
    assert "int8" not in meta
    assert set(state) == set(net.state_dict())
    original = net.state_dict()[name]
    assert state[name].dtype == torch.float32 and state[name].shape == original.shape
    step = original.reshape(original.shape[0], -1).abs().amax(dim=1) / 127.0
    error = (state[name] - original).reshape(original.shape[0], -1).abs().amax(dim=1)
    assert torch.all(error <= step / 2 + 1e-7)
    # conv3 is 885k of the 2.3 M parameters: one byte instead of two each.
    assert plain.stat().st_size - small.stat().st_size > 0.9 * original.numel()
    tracker = SiamFCTracker.create("siamfc", weights=small, device="cpu")
    assert tracker.untrained is False


def test_deflated_checkpoint_loads_the_same_tensors_and_is_smaller(tmp_path):
    net = make_net()
    name = "embedding.conv3.0.weight"
    kwargs = dict(architecture=ARCHITECTURE, config={"k": 1}, provenance={"p": "x"}, half=True, int8=[name])
    plain = save_checkpoint(tmp_path / "plain.pt", net.state_dict(), **kwargs)
    packed = save_checkpoint(tmp_path / "packed.pt", net.state_dict(), deflate=True, **kwargs)
    with zipfile.ZipFile(packed) as z:
        assert {i.compress_type for i in z.infolist()} == {zipfile.ZIP_DEFLATED}
    with zipfile.ZipFile(plain) as z:
        assert {i.compress_type for i in z.infolist()} == {zipfile.ZIP_STORED}
    assert packed.stat().st_size < plain.stat().st_size
    (a, meta_a), (b, meta_b) = load_own_checkpoint(plain), load_own_checkpoint(packed)
    assert meta_a == meta_b and a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert SiamFCTracker.create("siamfc", weights=packed, device="cpu").untrained is False


def test_bundled_weights_stay_under_the_repositorys_file_size_limit():
    """The house rule: no committed file over 20,000 KB (SiamRPN's int8 file is deflated for it)."""
    folder = Path(__file__).resolve().parents[2] / "resources" / "weights"
    sizes = {p.name: p.stat().st_size for p in folder.glob("*.pt")}
    assert {"siamfc.pt", "siamrpn.pt", "dsiam.pt"} <= set(sizes)
    assert all(size < 20_000 * 1024 for size in sizes.values()), sizes


def test_int8_of_an_unknown_weight_is_an_error(tmp_path):
    with pytest.raises(ValueError, match="nope"):
        save_checkpoint(tmp_path / "w.pt", {"a": torch.zeros(2, 2)}, architecture=ARCHITECTURE, config={},
                        int8=["nope"])


def test_damaged_int8_section_is_refused(tmp_path):
    path = save_checkpoint(tmp_path / "w.pt", {"a": torch.ones(2, 3)}, architecture=ARCHITECTURE, config={},
                           int8=["a"])
    data = torch.load(path, weights_only=True)
    data["int8"]["a"]["scale"] = torch.ones(5)
    torch.save(data, path)
    with pytest.raises(WeightsError, match="int8 entry 'a'"):
        load_checkpoint(path, ARCHITECTURE)
    data["int8"] = [1, 2]
    torch.save(data, path)
    with pytest.raises(WeightsError, match="int8 section"):
        load_checkpoint(path, ARCHITECTURE)


def test_ship_weights_stores_large_weights_as_int8(tmp_path):
    ship = load_tool("ship_weights")
    net = make_net()
    source = save_checkpoint(tmp_path / "trained.pt", net.state_dict(), architecture=ARCHITECTURE,
                             config={"scale_lr": 0.3}, provenance={"epochs": 2})
    target = tmp_path / "shipped.pt"
    # conv3 (885k weights) and conv4 (664k) pass the bar; conv5 (442k) and the rest stay fp16.
    assert ship.main(["--int8", "600000", str(source), str(target)]) == 0
    with zipfile.ZipFile(target) as z:
        assert all(i.compress_type == zipfile.ZIP_DEFLATED for i in z.infolist())
    data = torch.load(target, weights_only=True)
    assert sorted(data["int8"]) == ["embedding.conv3.0.weight", "embedding.conv4.0.weight"]
    assert data["state_dict"]["embedding.conv1.0.weight"].dtype == torch.float16
    state, meta = load_checkpoint(target, ARCHITECTURE)
    assert meta["config"] == {"scale_lr": 0.3}
    assert meta["provenance"]["epochs"] == 2 and meta["provenance"]["shipped_from"] == "trained.pt"
    assert meta["provenance"]["int8"] == sorted(data["int8"])
    assert set(state) == set(net.state_dict())
    assert ship.main([str(tmp_path / "missing.pt"), str(target)]) == 2


def test_ship_weights_fp32_keeps_the_trained_tensors_bit_for_bit(tmp_path):
    ship = load_tool("ship_weights")
    net = make_net()
    source = save_checkpoint(tmp_path / "trained.pt", net.state_dict(), architecture=ARCHITECTURE,
                             config={}, provenance={"epochs": 6})
    target = tmp_path / "shipped.pt"
    assert ship.main(["--fp32", str(source), str(target)]) == 0
    state, meta = load_checkpoint(target, ARCHITECTURE)
    assert meta["provenance"]["stored"] == "fp32" and meta["provenance"]["int8"] == []
    for name, tensor in net.state_dict().items():
        assert torch.equal(state[name], tensor), name
    half = tmp_path / "half.pt"
    assert ship.main([str(source), str(half)]) == 0
    rounded, meta = load_checkpoint(half, ARCHITECTURE)
    assert meta["provenance"]["stored"] == "fp16"
    assert not all(torch.equal(rounded[k], v) for k, v in net.state_dict().items() if v.is_floating_point())


def test_load_own_checkpoint_names_the_architecture_and_refuses_foreign_files(tmp_path):
    path = save_checkpoint(tmp_path / "w.pt", make_net().state_dict(), architecture=ARCHITECTURE, config={},
                           int8=["embedding.conv3.0.weight"])
    state, meta = load_own_checkpoint(path)
    assert meta["architecture"] == ARCHITECTURE
    assert state["embedding.conv3.0.weight"].dtype == torch.float32
    foreign = tmp_path / "bare.pth"
    torch.save(make_net().state_dict(), foreign)
    with pytest.raises(WeightsError, match="not a siamtrack checkpoint"):
        load_own_checkpoint(foreign)
