"""DSiam's joint training on clips (Guo et al. 2017, section 3.5): data, unroll, gradients, loop."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.media import make_otb
from trackers.dsiam.network import ARCHITECTURE, DSiamNet
from trackers.dsiam.transforms import background_weights
from trackers.evaluation import load_sequences
from trackers.registry import create_tracker
from trackers.sources import open_source
from trackers.types import Box
from trackers.weights.loading import load_checkpoint
from training.augmentation import Augmentation
from training.checkpoints import resume_path
from training.config import TrainingError
from training.dsiam_train import ClipDataset, DSiamTask, default_init, train_dsiam
from training.loop import train

SIAMFC = default_init()


@pytest.fixture
def seqs(tmp_path):
    train_seq = load_sequences(make_otb(tmp_path / "data", "TrainSeq", frames=12, absent=(5,)))
    val_seq = load_sequences(make_otb(tmp_path / "data", "ValSeq", frames=5, origin=(40, 20)))
    return train_seq, val_seq


def started(task: DSiamTask) -> torch.nn.Module:
    net = task.build(0)
    assert "SiamFC" in task.load_init(net, SIAMFC)
    task.train_mode(net)
    return net


# --------------------------------------------------------------------------- data


def test_clips_are_ordered_within_max_gap_reproducible_and_cut_from_the_cache(tmp_path, seqs):
    train_seq, _ = seqs
    options = dict(clips_per_epoch=24, clip_length=3, frame_step=2, max_gap=6, cache_dir=tmp_path)
    ds = ClipDataset(train_seq, **options)
    valid = list(ds.sequences[0].frames)
    assert 5 not in valid
    for i in range(len(ds)):
        name, first, frames = ds.clip(i)
        assert name == "TrainSeq" and len(frames) == 3
        assert first < frames[0] < frames[1] < frames[2] and frames[-1] - first <= 6
        # successive search frames at most frame_step valid frames apart
        rows = [valid.index(f) for f in frames]
        assert all(1 <= b - a <= 2 for a, b in zip(rows, rows[1:]))

    exemplars, searches, boxes = ds.batch(range(4))
    assert exemplars.shape == (4, 3, 127, 127) and searches.shape == (4, 3, 3, 255, 255)
    assert boxes.shape == (4, 3, 4) and exemplars.dtype == searches.dtype == torch.float32
    # centred on the target, up to the 2 px translation and 5 % stretch
    assert torch.all((boxes[..., :2] - 127.5).abs() <= 2.5) and torch.all(boxes[..., 2:] > 0)

    again = ClipDataset(train_seq, **options)
    for got, expected in zip(again.batch(range(4)), (exemplars, searches, boxes)):
        assert torch.equal(got, expected)
    again.set_epoch(1)
    assert [again.clip(i) for i in range(len(ds))] != [ds.clip(i) for i in range(len(ds))]

    # without augmentation the images are the cached canonical crops themselves
    plain = ClipDataset(train_seq, augmentation=Augmentation.none(), **options)
    exemplar, search, _ = plain[0]
    _, first, frames = plain.clip(0)
    crops, _fills = plain._crops(0)
    row = valid.index(frames[1])
    assert torch.equal(search[1], torch.from_numpy(np.asarray(crops[row], np.float32)).permute(2, 0, 1))
    inner = np.asarray(crops[valid.index(first)][64:191, 64:191], np.float32)
    assert torch.equal(exemplar, torch.from_numpy(inner).permute(2, 0, 1))


def test_a_sequence_too_short_for_a_clip_repeats_its_last_frame(tmp_path):
    short = load_sequences(make_otb(tmp_path / "data", "Short", frames=2))
    ds = ClipDataset(short, clips_per_epoch=4, clip_length=3, cache_dir=tmp_path)
    for i in range(len(ds)):
        _, first, frames = ds.clip(i)
        assert first <= frames[0] <= frames[1] <= frames[2]
    assert ds.batch([0])[1].shape == (1, 3, 3, 255, 255)


# --------------------------------------------------------------------------- unroll


def test_unrolled_forward_is_the_trackers_recurrence():
    """Step 1 with V, W off; step t with V from f(O_1), f(O_{t-1}) and W from f(G_{t-1}),
    f(Ḡ_{t-1}), O_{t-1} embedded on its own here (the forward slices it out of G's features)."""
    task = DSiamTask(preset="dsiamm")
    net = started(task)
    net.eval()
    gen = torch.Generator().manual_seed(3)
    exemplars = torch.rand(2, 3, 127, 127, generator=gen) * 255
    searches = torch.rand(2, 3, 3, 255, 255, generator=gen) * 255
    background = torch.from_numpy(
        background_weights(255, task.cfg.background_sigma, task.cfg.background_taper)
    )
    with torch.no_grad():
        maps = net(exemplars, searches)
        assert maps.shape == (2, 3, 1, 17, 17)
        first = net.features(exemplars)
        for t in range(3):
            current = net.features(searches[:, t])
            plain, _ = DSiamNet.forward(net, first, current)
            if t == 0:
                torch.testing.assert_close(maps[:, 0], plain)
                continue
            previous = searches[:, t - 1]
            v = net.learn_v(first, net.features(previous[:, :, 64:191, 64:191]))
            w = net.learn_w(net.features(previous), net.features(previous * background))
            expected, _ = DSiamNet.forward(net, first, current, v, w)
            torch.testing.assert_close(maps[:, t], expected, atol=1e-4, rtol=1e-4)
            assert not torch.allclose(maps[:, t], plain, atol=1e-3)  # the transforms act


def test_gradients_reach_fusion_maps_lambdas_and_rates_not_the_frozen_embedding(tmp_path, seqs):
    train_seq, _ = seqs
    ds = ClipDataset(train_seq, clips_per_epoch=2, clip_length=2, cache_dir=tmp_path)
    task = DSiamTask(clip_length=2)
    net = started(task)
    assert net.training and not net.siamfc.embedding.training  # batch norm stays as SiamFC's
    loss = task.loss(net, *ds.batch(range(2)))
    assert torch.isfinite(loss) and loss.item() > 0
    loss.backward()
    for name in ("fusion", "log_lambda_v", "log_lambda_w", "v_rate", "w_rate"):
        grad = getattr(net, name).grad
        assert grad is not None and torch.isfinite(grad).all() and grad.abs().sum() > 0, name
    for name, parameter in net.siamfc.named_parameters():
        assert not parameter.requires_grad and parameter.grad is None, name
    groups = task.trainable(net)
    assert len(groups) == 1 and groups[0]["weight_decay"] == 0.0
    # λ stay positive whatever the step: DSiamNet learns log λ
    assert net.lambda_v("conv5") > 0 and net.lambda_w("conv4") > 0

    # one layer: eq. 9's weight is identically one, so the fusion maps are not trained
    single = DSiamTask(preset="dsiam").build(0)
    assert not single.fusion.requires_grad and not single.conv4_bias.requires_grad
    # the embedding when asked for, with the run's weight decay
    whole = DSiamTask(train_embedding=True)
    net = whole.build(0)
    groups = whole.trainable(net)
    assert len(groups) == 2 and "weight_decay" not in groups[1]
    assert all(p.requires_grad for p in net.siamfc.parameters())


def test_loss_goes_down_on_a_fixed_batch(tmp_path, seqs):
    train_seq, _ = seqs
    ds = ClipDataset(train_seq, clips_per_epoch=1, clip_length=2, cache_dir=tmp_path)
    batch = ds.batch([0])
    task = DSiamTask(clip_length=2)
    net = started(task)
    optimizer = torch.optim.SGD(task.trainable(net), lr=1.0, momentum=0.9)
    losses = []
    for _ in range(12):
        loss = task.loss(net, *batch)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.8 * losses[0], losses


# --------------------------------------------------------------------------- the loop


def test_train_writes_a_checkpoint_the_tracker_tracks_with_and_resumes(tmp_path, seqs):
    train_seq, val_seq = seqs
    out = tmp_path / "out" / "dsiam.pt"
    fast = dict(pairs_per_epoch=8, batch_size=2, val_pairs=2, device="cpu", cache_dir=tmp_path / "cache")
    task = DSiamTask(clip_length=2)
    result = train(task, train_seq, val_seq, out, epochs=1, init=SIAMFC, **fast)
    assert not result.cancelled and result.step == 4 and result.epochs_done == 1
    assert out.is_file() and resume_path(out).is_file()
    state, meta = load_checkpoint(out, ARCHITECTURE)
    start = started(DSiamTask())
    assert not torch.equal(state["fusion"], start.fusion.detach())  # the fusion maps learned
    assert torch.equal(state["siamfc.embedding.conv1.0.weight"], start.siamfc.embedding.conv1[0].weight)
    assert meta["provenance"]["clip_length"] == 2 and meta["provenance"]["layers"] == "conv4+conv5"
    assert np.isfinite(meta["provenance"]["val_loss"][0])

    for preset in ("dsiam", "dsiamm"):
        tracker = create_tracker(preset, weights=out, device="cpu")
        assert not tracker.untrained
        torch.testing.assert_close(tracker.net.fusion.detach(), state["fusion"])
        with open_source(val_seq[0].source) as source:
            frames = list(source.iter_from(0, 3))
        tracker.init(frames[0], Box(*val_seq[0].groundtruth[0]))
        for frame in frames[1:]:
            result_box = tracker.update(frame).box
            assert np.isfinite([result_box.x, result_box.y, result_box.w, result_box.h]).all()

    # resume to a second epoch through train_dsiam (same task, init defaulting to SiamFC)
    result = train_dsiam(train_seq, val_seq, out, clip_length=2, epochs=2, resume=True, **fast)
    assert result.step == 8 and result.epochs_done == 2 and len(result.val_losses) == 2
    _state, meta = load_checkpoint(out, ARCHITECTURE)
    assert meta["provenance"]["resumed"] is True and meta["provenance"]["step"] == 8
    with pytest.raises(TrainingError, match="clip_length"):
        train_dsiam(train_seq, val_seq, out, clip_length=3, epochs=3, resume=True, **fast)


def test_train_dsiam_refuses_synthetic_pairs(seqs, tmp_path):
    with pytest.raises(TrainingError, match="clips"):
        train_dsiam(seqs[0], [], tmp_path / "x.pt", extra_ratio=0.5, extra_pairs=lambda n: None)


def test_dsiam_trains_beside_the_teacher_at_weight_zero_and_refuses_a_teacher_term(tmp_path, seqs):
    # tools/distill.sh dsiam: the teacher's labelled clips are DSiam's teacher signal; a map term is not
    train_seq, val_seq = seqs
    fast = dict(pairs_per_epoch=4, batch_size=2, val_pairs=2, device="cpu", cache_dir=tmp_path / "cache",
                teacher="nano")
    out = tmp_path / "dsiam.pt"
    result = train(DSiamTask(clip_length=2), train_seq, val_seq, out, epochs=1, init=SIAMFC,
                   teacher_weight=0.0, **fast)
    assert not result.cancelled and result.step == 2
    _state, meta = load_checkpoint(out, ARCHITECTURE)
    assert meta["provenance"]["teacher"] == "nano" and "NanoTrack" in meta["provenance"]["teacher_model"]
    with pytest.raises(TrainingError, match="no distillation"):
        train(DSiamTask(clip_length=2), train_seq, val_seq, tmp_path / "x.pt", epochs=1, init=SIAMFC,
              teacher_weight=0.5, **fast)


def test_flip_mirrors_a_whole_clip_and_its_boxes(tmp_path, seqs):
    train_seq, _ = seqs
    options = dict(clips_per_epoch=6, clip_length=3, frame_step=2, max_gap=6, cache_dir=tmp_path)
    plain = ClipDataset(train_seq, augmentation=Augmentation(translate_px=6.0), **options)
    mirrored = ClipDataset(train_seq, augmentation=Augmentation(translate_px=6.0, flip=1.0), **options)
    for i in range(len(plain)):
        z, x, boxes = plain[i]
        fz, fx, fboxes = mirrored[i]
        assert torch.equal(fz, z.flip(-1)) and torch.equal(fx, x.flip(-1))
        assert torch.allclose(fboxes[:, 0], 255 - boxes[:, 0]) and torch.equal(fboxes[:, 1:], boxes[:, 1:])
