"""Speed measures must not change what the trackers compute (beyond rounding)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from trackers.geometry import crop_square
from trackers.inference import crop_squares, fold_batchnorm, resolve_precision
from trackers.siamfc.network import SiamFCNet, init_weights


def test_folded_batchnorm_computes_the_same_embedding():
    net = SiamFCNet().eval()
    init_weights(net, seed=1)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-1, 1)
                m.running_var.uniform_(0.5, 2.0)
        image = torch.rand(2, 3, 127, 127) * 255
        before = net.embed(image)
        fold_batchnorm(net)
        assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in net.modules())
        after = net.embed(image)
    torch.testing.assert_close(after, before, rtol=1e-4, atol=1e-2)


@pytest.mark.parametrize("cx, cy", [(60.0, 40.0), (3.5, 2.0), (115.25, 77.75)])
def test_gpu_crop_equals_cpu_crop(cx, cy):
    rng = np.random.default_rng(0)
    frame = rng.integers(0, 256, (80, 120, 3), dtype=np.uint8)
    fill = frame.reshape(-1, 3).mean(axis=0)
    extents = [30.0, 47.3, 90.0]
    expected = np.stack([crop_square(frame, cx, cy, e, 31, fill) for e in extents]).astype(np.float32)
    tensor = torch.from_numpy(frame).permute(2, 0, 1).float()
    got = crop_squares(tensor, cx, cy, torch.tensor(extents), 31, torch.from_numpy(fill).float())
    got = got.permute(0, 2, 3, 1).numpy()
    # cv2 rounds to uint8 and uses fixed-point weights: at most a couple of levels apart
    assert np.abs(got - expected).max() <= 2.0
    assert np.abs(got - expected).mean() < 0.6


def test_precision_choices():
    cpu = torch.device("cpu")
    assert resolve_precision("fp32", cpu) is None
    assert resolve_precision("bf16", cpu) is torch.bfloat16
    with pytest.raises(ValueError):
        resolve_precision("fp16", cpu)
    with pytest.raises(ValueError):
        resolve_precision("fp8", cpu)
    assert resolve_precision("auto", torch.device("cuda")) is torch.float16


def test_siamfc_gpu_crop_path_matches_cpu_path(monkeypatch):
    """The CUDA branch of SiamFC's search-region cut, run on the CPU, gives the same batch."""
    from trackers.siamfc.tracker import SiamFCTracker
    from trackers.types import Box

    tracker = SiamFCTracker.create("siamfc-3s", device="cpu", config={"precision": "fp32"})
    rng = np.random.default_rng(2)
    frame = rng.integers(0, 256, (120, 160, 3), dtype=np.uint8)
    tracker.init(frame, Box(50, 40, 30, 20))
    extents = tracker._search_extent * tracker._scale_factors
    cpu = tracker._search_images(frame, extents)

    class FakeCuda:
        type = "cuda"

    fake = FakeCuda()
    original_to = torch.Tensor.to

    def to_without_cuda(self, *args, **kwargs):
        args = tuple(a for a in args if a is not fake)
        if kwargs.get("device") is fake:
            del kwargs["device"]
        return original_to(self, *args, **kwargs)

    monkeypatch.setattr(tracker, "device", fake)
    monkeypatch.setattr(torch.Tensor, "to", to_without_cuda)
    gpu = tracker._search_images(frame, extents)
    assert gpu.shape == cpu.shape == (3, 3, 255, 255)
    assert (gpu - cpu).abs().max() <= 2.0
