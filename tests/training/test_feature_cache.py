"""The frozen-backbone feature cache (training/feature_cache.py) and SiamRPN training on it."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch

from tests.training.conftest import FAST
from trackers.registry import create_tracker
from trackers.siamrpn.network import ARCHITECTURE as SIAMRPN_ARCHITECTURE
from trackers.weights.loading import load_checkpoint
from training.checkpoints import resume_path
from training.config import TrainingError
from training.crop_cache import CacheCancelled
from training.feature_cache import FeaturePairs, backbone_digest, cache_features
from training.loop import train
from training.siamrpn_train import SiamRPNTask


def _pairs(task, seqs, cache, count=3):
    return task.pairs(seqs, pairs_per_epoch=count, cache_dir=cache, max_gap=100, seed=0,
                      augmentation=task.augmentation(), progress=lambda _t: None, cancel=None)


def _cache(pairs, net, cache, count, **kw):
    return cache_features(pairs, net.backbone, count=count, pairs_per_epoch=count, description={"d": 1},
                          device=torch.device("cpu"), dtype=None, cache_dir=cache, **kw)


def test_cached_features_are_the_backbones_features_of_the_pairs(data):
    train_seqs, _val, cache = data
    task = SiamRPNTask(freeze_layers=5)
    net = task.build(0)
    pairs = _pairs(task, train_seqs, cache)
    # 7 pairs from a 3-pair dataset: epochs 0, 1 and the first pair of epoch 2
    cached = _cache(pairs, net, cache, 7)
    assert cached.count == 7 and cached.exemplars.dtype == np.float16
    net.eval()
    for j in (0, 4, 6):
        pairs.set_epoch(j // 3)
        exemplar, search, box = pairs.batch([j % 3])
        with torch.no_grad():
            want_ex, want_se = net.backbone(exemplar)[0], net.backbone(search)[0]
        # stored in fp16: compare at its precision, relative to the features' spread
        got_ex = torch.from_numpy(np.asarray(cached.exemplars[j], dtype=np.float32))
        got_se = torch.from_numpy(np.asarray(cached.searches[j], dtype=np.float32))
        assert torch.allclose(got_ex, want_ex, atol=1e-3 * float(want_ex.abs().max()), rtol=1e-3)
        assert torch.allclose(got_se, want_se, atol=1e-3 * float(want_se.abs().max()), rtol=1e-3)
        assert np.array_equal(cached.boxes[j], box[0].numpy())


def test_each_epoch_visits_every_cached_pair_in_a_new_order(tmp_path):
    folder = tmp_path / "f"
    folder.mkdir()
    np.save(folder / "exemplars.npy", np.zeros((5, 2, 1, 1), np.float16))
    searches = np.arange(5, dtype=np.float16).reshape(5, 1, 1, 1).repeat(2, axis=1)
    np.save(folder / "searches.npy", searches)
    np.save(folder / "boxes.npy", np.arange(20, dtype=np.float32).reshape(5, 4))
    pairs = FeaturePairs(folder, pairs_per_epoch=7, seed=0)
    assert len(pairs) == 7

    def seen(epoch):
        pairs.set_epoch(epoch)
        # index 5 and 6 wrap around to the epoch's first two pairs
        return [int(pairs.batch([i])[1][0, 0, 0, 0]) for i in range(7)]

    first, second = seen(0), seen(1)
    assert sorted(first[:5]) == [0, 1, 2, 3, 4] and first[5:] == first[:2]
    assert sorted(second[:5]) == [0, 1, 2, 3, 4] and second != first
    assert seen(0) == first  # seeded
    exemplars, searches, boxes = pairs.batch([0, 1])
    assert exemplars.dtype == searches.dtype == boxes.dtype == torch.float32
    assert boxes.shape == (2, 4) and searches.shape == (2, 2, 1, 1)


def test_the_cache_is_found_again_and_keyed_by_the_backbone(data, monkeypatch):
    train_seqs, _val, cache = data
    task = SiamRPNTask(freeze_layers=5)
    net = task.build(0)
    pairs = _pairs(task, train_seqs, cache)
    first = _cache(pairs, net, cache, 3)
    messages = []
    monkeypatch.setattr(net.backbone, "forward", lambda *_a: pytest.fail("the backbone ran again"))
    again = _cache(pairs, net, cache, 3, progress=messages.append)
    assert again.folder == first.folder and "cached" in messages[0]
    monkeypatch.undo()
    other = task.build(1)  # other weights: another cache
    assert backbone_digest(other.backbone) != backbone_digest(net.backbone)
    assert _cache(pairs, other, cache, 3).folder != first.folder


def test_cancel_leaves_no_half_written_cache(data):
    train_seqs, _val, cache = data
    task = SiamRPNTask(freeze_layers=5)
    net = task.build(0)
    pairs = _pairs(task, train_seqs, cache)
    stop = threading.Event()
    stop.set()
    with pytest.raises(CacheCancelled):
        _cache(pairs, net, cache, 3, cancel=stop)
    assert not any((cache / "features").iterdir())


@pytest.mark.parametrize("frozen", [5, 3])
def test_the_network_on_cached_features_is_the_network_on_images(data, frozen):
    train_seqs, _val, cache = data
    task = SiamRPNTask(freeze_layers=frozen, feature_cache=2)
    net = task.build(0).eval()
    pairs = _pairs(task, train_seqs, cache, count=2)
    exemplars, searches, _boxes = pairs.batch(range(2))
    with torch.no_grad():
        from_images = net(exemplars, searches)
    cached = task.cached_pairs(net, pairs, role="train", pairs_per_epoch=2, description={},
                               device=torch.device("cpu"), dtype=None, cache_dir=cache, seed=0,
                               progress=lambda _t: None, cancel=None)
    assert net.cached_layers == frozen
    channels = 256 if frozen == 5 else 384
    cached.set_epoch(0)
    order = list(np.argsort(cached._order))  # batch item i is cached row _order[i]; rows 0, 1 here
    ex, se, boxes = cached.batch(order)
    assert ex.shape[1] == se.shape[1] == channels
    with torch.no_grad():
        from_features = net(ex, se)
    for a, b in zip(from_images, from_features):
        # the cache holds fp16: as close as that allows
        assert torch.allclose(a, b, atol=2e-3 * float(a.abs().max()), rtol=1e-2)


def test_feature_cache_needs_frozen_layers():
    with pytest.raises(TrainingError, match="frozen"):
        SiamRPNTask(freeze_layers=0, feature_cache=100)
    with pytest.raises(TrainingError):
        SiamRPNTask(freeze_layers=5, feature_cache=-1)
    assert SiamRPNTask(freeze_layers=5, feature_cache=100).settings()["feature_cache"] == 100
    assert SiamRPNTask(freeze_layers=3, feature_cache=100).feature_cache == 100


@pytest.mark.parametrize("frozen", [5, 3])
def test_siamrpn_trains_on_cached_features_and_resumes(tmp_path, data, frozen):
    train_seqs, val_seqs, cache = data
    out = tmp_path / "rpn.pt"
    task = SiamRPNTask(freeze_layers=frozen, feature_cache=6)
    result = train(task, train_seqs, val_seqs, out, epochs=1, cache_dir=cache, **FAST)
    assert result.step == 2 and all(np.isfinite(result.val_losses))
    assert len(list((cache / "features").iterdir())) == 2  # training and validation pairs
    before, meta = load_checkpoint(out, SIAMRPN_ARCHITECTURE)
    assert meta["provenance"]["feature_cache"] == 6
    # the RPN and the unfrozen layers learned, the frozen ones did not
    start = SiamRPNTask(freeze_layers=5).build(0).state_dict()
    assert torch.equal(before["backbone.conv3.0.weight"], start["backbone.conv3.0.weight"])
    assert torch.equal(before["backbone.conv5.0.weight"], start["backbone.conv5.0.weight"]) == (frozen == 5)
    assert not torch.equal(before["rpn.search_reg.weight"], start["rpn.search_reg.weight"])
    # a second epoch resumes from the state beside out, on the same cache
    assert resume_path(out).is_file()
    again = train(SiamRPNTask(freeze_layers=frozen, feature_cache=6), train_seqs, val_seqs, out, epochs=2,
                  cache_dir=cache, **FAST)
    assert again.epochs_done == 2 and again.step == 4
    assert len(list((cache / "features").iterdir())) == 2
    assert not create_tracker("siamrpn", weights=out, device="cpu").untrained


def test_cli_passes_the_feature_cache(tmp_path):
    from training.__main__ import build_parser, make_task

    args = build_parser().parse_args(
        ["x", "--out", str(tmp_path / "o.pt"), "--tracker", "siamrpn", "--freeze-layers", "5",
         "--feature-cache", "64"])
    task = make_task("siamrpn", args)
    assert task.feature_cache == 64 and task.freeze_layers == 5
    # options not given keep the task's defaults; given ones reach it
    assert task.scale_jitter == SiamRPNTask().scale_jitter
    args = build_parser().parse_args(["x", "--out", "o.pt", "--scale-jitter", "0.1", "--reg-weight", "3"])
    task = make_task("siamrpn", args)
    assert task.scale_jitter == 0.1 and task.cfg.reg_weight == 3.0 and task.feature_cache == 0
