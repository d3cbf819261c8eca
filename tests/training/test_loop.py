"""The shared training loop's features: early stopping, metrics before/after, AMP
choice, several processes under torchrun (gloo on the CPU), and SiamRPN's task."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from tests.media import make_otb
from tests.training.conftest import FAST
from trackers.registry import create_tracker
from trackers.siamfc.network import ARCHITECTURE as SIAMFC_ARCHITECTURE
from trackers.siamfc.network import SiamFCNet, init_weights
from trackers.siamrpn.network import ARCHITECTURE as SIAMRPN_ARCHITECTURE
from trackers.weights.checkpoint import save_checkpoint
from trackers.weights.loading import load_checkpoint
from training import distributed
from training.checkpoints import best_path, epoch_path, resume_path
from training.config import TrainingError
from training.loop import train
from training.precision import precision_for
from training.siamfc_train import SiamFCTask
from training.siamrpn_train import SiamRPNTask, backbone_from_siamfc, ungroup

ROOT = Path(__file__).resolve().parents[2]


def test_amp_choice():
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert precision_for("auto", cpu) is None and precision_for("auto", cuda) is torch.float16
    assert precision_for("bf16", cpu) is torch.bfloat16 and precision_for("off", cuda) is None
    with pytest.raises(TrainingError, match="needs CUDA"):
        precision_for("fp16", cpu)
    with pytest.raises(TrainingError, match="unknown"):
        precision_for("int8", cpu)


@pytest.mark.gpu
@pytest.mark.parametrize("tracker", ["siamfc", "siamrpn", "dsiam"])
def test_each_task_trains_on_cuda_with_fp16(tmp_path, data, tracker):
    from training.dsiam_train import DSiamTask

    task = {"siamfc": SiamFCTask, "siamrpn": SiamRPNTask, "dsiam": DSiamTask}[tracker]()
    train_seqs, val_seqs, cache = data
    options = dict(FAST, device="cuda")
    result = train(task, train_seqs, val_seqs, tmp_path / "g.pt", epochs=1, cache_dir=cache, amp="auto",
                   **options)
    _, meta = load_checkpoint(result.checkpoint, task.architecture)
    assert meta["provenance"]["amp"] == "float16" and result.step >= 1
    assert all(math_finite([loss]) for loss in result.train_losses)


def test_bf16_autocast_trains_on_the_cpu(tmp_path, data):
    train_seqs, val_seqs, cache = data
    result = train(SiamFCTask(), train_seqs, val_seqs, tmp_path / "a.pt", epochs=1, cache_dir=cache,
                   amp="bf16", **FAST)
    _, meta = load_checkpoint(result.checkpoint, SIAMFC_ARCHITECTURE)
    assert meta["provenance"]["amp"] == "bfloat16" and result.step == 2


def test_metrics_before_and_after_are_recorded(tmp_path, data):
    train_seqs, val_seqs, cache = data
    out = tmp_path / "m.pt"
    result = train(SiamFCTask(), train_seqs, val_seqs, out, epochs=1, cache_dir=cache, metric_frames=5,
                   **FAST)
    _, meta = load_checkpoint(out, SIAMFC_ARCHITECTURE)
    metrics = meta["provenance"]["metrics"]
    assert set(metrics) == {"before", "after"} and metrics == result.metrics
    for which in ("before", "after"):
        assert 0.0 <= metrics[which]["auc"] <= 1.0
        assert metrics[which]["sequences"] == ["ValSeq"] and metrics[which]["frames_per_sequence"] == 5


def test_early_stopping_keeps_the_best_epoch(tmp_path, data, monkeypatch):
    train_seqs, val_seqs, cache = data
    # Validation losses 3, 1, 2, 4, 5: the best is epoch 2; with patience 2 the run
    # stops after epoch 4 and the written weights are epoch 2's.
    losses = iter([3.0, 1.0, 2.0, 4.0, 5.0])
    snapshots: list[torch.Tensor] = []

    def fake_validation(task, net, *args, **kwargs):
        snapshots.append(net.state_dict()["embedding.conv1.0.weight"].detach().clone())
        return next(losses)

    monkeypatch.setattr("training.loop.validation_loss", fake_validation)
    out = tmp_path / "e.pt"
    result = train(SiamFCTask(), train_seqs, val_seqs, out, epochs=5, cache_dir=cache, patience=2, **FAST)
    assert result.stopped_early and result.epochs_done == 4 and result.val_losses == [3.0, 1.0, 2.0, 4.0]
    state, meta = load_checkpoint(out, SIAMFC_ARCHITECTURE)
    assert torch.equal(state["embedding.conv1.0.weight"], snapshots[1])
    assert not torch.equal(state["embedding.conv1.0.weight"], snapshots[3])
    assert meta["provenance"]["best_epoch"] == 2
    assert not best_path(out).exists() and resume_path(out).is_file()


@pytest.mark.parametrize("keep", [True, False])
def test_keep_epochs_writes_each_epochs_weights_beside_out(tmp_path, data, monkeypatch, keep):
    train_seqs, val_seqs, cache = data
    snapshots: list[torch.Tensor] = []

    def fake_validation(task, net, *args, **kwargs):
        snapshots.append(net.state_dict()["embedding.conv1.0.weight"].detach().clone())
        return float(len(snapshots))  # every epoch worse: the best (and ``out``) stays epoch 1

    monkeypatch.setattr("training.loop.validation_loss", fake_validation)
    out = tmp_path / "k.pt"
    train(SiamFCTask(), train_seqs, val_seqs, out, epochs=2, cache_dir=cache, keep_epochs=keep, **FAST)
    assert epoch_path(out, 1) == tmp_path / "k.epoch1.pt"
    assert [epoch_path(out, n).is_file() for n in (1, 2, 3)] == [keep, keep, False]
    if keep:
        for n in (1, 2):
            state, meta = load_checkpoint(epoch_path(out, n), SIAMFC_ARCHITECTURE)
            assert torch.equal(state["embedding.conv1.0.weight"], snapshots[n - 1])
            assert meta["provenance"]["epochs_done"] == n
        assert not torch.equal(snapshots[0], snapshots[1])


def test_distributed_helpers_alone():
    assert distributed.share(range(0, 8), distributed.SINGLE) == range(0, 8)
    two = distributed.Context(rank=1, world_size=2)
    assert list(distributed.share(range(8, 16), two)) == [9, 11, 13, 15]
    assert distributed.any_rank(True, distributed.SINGLE, torch.device("cpu")) is True


def test_torchrun_two_processes_with_gloo(tmp_path):
    """``torchrun --nproc_per_node 2 -m training``: both processes step together and rank 0 writes."""
    data = make_otb(tmp_path / "data", "TrainSeq", frames=8)
    out = tmp_path / "ddp.pt"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
        "-m", "training", "--tracker", "siamfc", str(data), "--val", "--out", str(out),
        "--epochs", "1", "--pairs-per-epoch", "8", "--batch-size", "4", "--device", "cpu",
        "--cache-dir", str(tmp_path / "cache"), "--threads", "1",
    ]
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-2000:]
    state, meta = load_checkpoint(out, SIAMFC_ARCHITECTURE)
    prov = meta["provenance"]
    assert prov["world_size"] == 2 and prov["step"] == 2 and prov["batch_size"] == 4
    start = SiamFCNet()
    init_weights(start, seed=0)
    assert not torch.equal(state["embedding.conv1.0.weight"], start.state_dict()["embedding.conv1.0.weight"])
    assert all(torch.isfinite(v).all() for v in state.values() if v.is_floating_point())
    # one progress stream: rank 0 reports, rank 1 stays quiet
    assert done.stderr.count("finished: 1 epochs") == 1


# --------------------------------------------------------------------------- SiamRPN


def test_ungroup_is_the_same_convolution():
    torch.manual_seed(0)
    weight = torch.randn(8, 3, 3, 3)
    x = torch.randn(2, 6, 9, 9)
    assert torch.allclose(F.conv2d(x, weight, groups=2), F.conv2d(x, ungroup(weight, 2)), atol=1e-6)


def test_siamrpn_backbone_from_siamfc_gives_siamfc_features():
    siamfc = SiamFCNet()
    init_weights(siamfc, seed=3)
    siamfc.eval()
    task = SiamRPNTask(freeze_layers=5)
    rpn = task.build(0).eval()
    backbone_from_siamfc(siamfc.state_dict(), rpn)
    image = torch.rand(1, 3, 127, 127) * 255
    with torch.no_grad():
        assert torch.allclose(siamfc.embed(image), rpn.backbone(image), atol=1e-3, rtol=1e-4)


def test_siamrpn_training_from_siamfc_weights(tmp_path, data):
    train_seqs, val_seqs, cache = data
    siamfc = SiamFCNet()
    init_weights(siamfc, seed=1)
    start = save_checkpoint(tmp_path / "fc.pt", siamfc.state_dict(), architecture=SIAMFC_ARCHITECTURE,
                            config={})
    out = tmp_path / "rpn.pt"
    task = SiamRPNTask(freeze_layers=3)
    result = train(task, train_seqs, val_seqs, out, epochs=1, cache_dir=cache, init=start, **FAST)
    assert result.step == 2 and math_finite(result.val_losses)
    state, meta = load_checkpoint(out, SIAMRPN_ARCHITECTURE)
    # section 5.1: the first three conv layers stay as they came
    assert torch.equal(state["backbone.conv1.0.weight"], siamfc.state_dict()["embedding.conv1.0.weight"])
    assert meta["provenance"]["freeze_layers"] == 3
    tracker = create_tracker("siamrpn", weights=out, device="cpu")
    assert not tracker.untrained


def test_siamrpn_loss_falls_on_a_fixed_batch(tmp_path, data):
    train_seqs, _val, cache = data
    # A random backbone must train (batch norm in training mode): frozen, its running
    # statistics of 0 and 1 would pass unnormalised, huge features to the RPN.
    task = SiamRPNTask(freeze_layers=0)
    pairs = task.pairs(train_seqs, pairs_per_epoch=4, cache_dir=cache, max_gap=100, seed=0,
                       augmentation=task.augmentation(), progress=lambda _t: None, cancel=None)
    exemplars, searches, boxes = pairs.batch(range(4))
    net = task.build(0)
    task.train_mode(net)
    optimizer = torch.optim.SGD(task.trainable(net), lr=1e-3, momentum=0.9)
    losses = []
    for _ in range(15):
        loss = task.loss(net, exemplars, searches, boxes)
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(task.trainable(net), task.max_grad_norm)
        optimizer.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < 0.7 * losses[0], losses


def test_siamrpn_regression_weight_and_scale_jitter(tmp_path, data):
    """eq. 5's lambda scales the regression term alone; the jitter reaches the pairs."""
    train_seqs, _val, cache = data
    plain, heavy = SiamRPNTask(freeze_layers=5), SiamRPNTask(freeze_layers=5, reg_weight=4.0)
    assert heavy.cfg.reg_weight == 4.0 and heavy.config["reg_weight"] == 4.0
    assert SiamRPNTask(scale_jitter=0.35).augmentation().scale == 0.35
    assert SiamRPNTask(scale_jitter=0.35).settings()["scale_jitter"] == 0.35
    pairs = plain.pairs(train_seqs, pairs_per_epoch=2, cache_dir=cache, max_gap=100, seed=0,
                        augmentation=plain.augmentation(), progress=lambda _t: None, cancel=None)
    exemplars, searches, boxes = pairs.batch(range(2))
    net = plain.build(0)
    net.eval()
    with torch.no_grad():
        # the anchor sample is seeded by the boxes, so all three see the same anchors
        l1 = plain.loss(net, exemplars, searches, boxes)
        l4 = heavy.loss(net, exemplars, searches, boxes)
        l7 = SiamRPNTask(freeze_layers=5, reg_weight=7.0).loss(net, exemplars, searches, boxes)
    assert l4 > l1  # a regression term, positive, weighted up
    torch.testing.assert_close(l7 - l4, l4 - l1)  # linear in lambda
    with pytest.raises(TrainingError):
        SiamRPNTask(reg_weight=-1.0)
    with pytest.raises(TrainingError):
        SiamRPNTask(scale_jitter=1.5)


def math_finite(values):
    return all(torch.isfinite(torch.tensor(v)) for v in values)


def test_cli_refuses_synthetic_ratio_without_clips(tmp_path, capsys):
    from training.__main__ import main

    data = make_otb(tmp_path / "data", "TrainSeq", frames=8)
    code = main([str(data), "--out", str(tmp_path / "x.pt"), "--synthetic-ratio", "0.5", "--val"])
    assert code == 2 and "--synthetic" in capsys.readouterr().err


@pytest.mark.parametrize("kind", ["videos", "stills"])
def test_cli_mixes_synthetic_pairs(tmp_path, kind):
    import cv2
    import numpy as np

    from tests.media import write_video
    from training.__main__ import main

    clips = tmp_path / "clips"
    clips.mkdir()
    rng = np.random.default_rng(0)
    for name in ("a.avi", "b.avi"):
        frames = [rng.integers(0, 255, (120, 160, 3), dtype=np.uint8) for _ in range(6)]
        if kind == "videos":
            write_video(clips / name, frames, fps=10)
        else:  # still photos: each image file a source of one frame
            cv2.imwrite(str(clips / f"{name[0]}.jpg"), frames[0])
    data = make_otb(tmp_path / "data", "TrainSeq", frames=8)
    out = tmp_path / "mix.pt"
    code = main([str(data), "--out", str(out), "--val", "--epochs", "1", "--pairs-per-epoch", "4",
                 "--batch-size", "2", "--device", "cpu", "--cache-dir", str(tmp_path / "cache"),
                 "--synthetic", str(clips), "--synthetic-ratio", "0.5"])
    assert code == 0
    _, meta = load_checkpoint(out, SIAMFC_ARCHITECTURE)
    assert meta["provenance"]["synthetic_ratio"] == 0.5 and str(clips) in meta["provenance"]["synthetic"]
    json.dumps(meta["provenance"])  # plain data


def test_cli_synthetic_aspect_is_recorded_and_checked(tmp_path, capsys, monkeypatch):
    import cv2
    import numpy as np

    import training.synthetic
    from training.__main__ import main

    made = []

    class Recording(training.synthetic.SyntheticPairs):
        def __init__(self, *args, **kwargs):
            made.append(kwargs["synthesis"])
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(training.synthetic, "SyntheticPairs", Recording)

    photos = tmp_path / "photos"
    photos.mkdir()
    rng = np.random.default_rng(0)
    for name in "ab":
        cv2.imwrite(str(photos / f"{name}.jpg"), rng.integers(0, 255, (240, 320, 3), dtype=np.uint8))
    data = make_otb(tmp_path / "data", "TrainSeq", frames=8)
    common = [str(data), "--val", "--epochs", "1", "--pairs-per-epoch", "4", "--batch-size", "2",
              "--device", "cpu", "--cache-dir", str(tmp_path / "cache"), "--synthetic", str(photos),
              "--synthetic-ratio", "0.5"]
    assert main([*common, "--out", str(tmp_path / "bad.pt"), "--synthetic-aspect", "4", "2"]) == 2
    assert "--synthetic-aspect 4 2" in capsys.readouterr().err
    assert not (tmp_path / "bad.pt").exists()
    out = tmp_path / "wide.pt"
    assert main([*common, "--out", str(out), "--synthetic-aspect", "0.25", "4"]) == 0
    _, meta = load_checkpoint(out, SIAMFC_ARCHITECTURE)
    assert meta["provenance"]["synthetic"] == f"{photos} aspect 0.25-4"
    assert made and {m.aspect for m in made} == {(0.25, 4.0)}  # the pairs were drawn with it


def test_cli_keep_epochs(tmp_path):
    from training.__main__ import main

    data = make_otb(tmp_path / "data", "TrainSeq", frames=8)
    out = tmp_path / "kept.pt"
    assert main([str(data), "--out", str(out), "--val", "--epochs", "1", "--pairs-per-epoch", "2",
                 "--batch-size", "2", "--device", "cpu", "--cache-dir", str(tmp_path / "cache"),
                 "--keep-epochs"]) == 0
    assert out.is_file() and epoch_path(out, 1).is_file()


def test_cli_val_tail_holds_out_the_end_of_each_sequence(tmp_path):
    from training.__main__ import main

    data = make_otb(tmp_path / "data", "TrainSeq", frames=30, size=(160, 72))
    out = tmp_path / "tail.pt"
    code = main([str(data), "--out", str(out), "--val", "--val-tail", "0.2", "--epochs", "1",
                 "--pairs-per-epoch", "4", "--batch-size", "2", "--val-pairs", "2", "--device", "cpu",
                 "--metric-frames", "30", "--cache-dir", str(tmp_path / "cache")])
    assert code == 0
    _, meta = load_checkpoint(out, SIAMFC_ARCHITECTURE)
    prov = meta["provenance"]
    assert prov["train_sequences"] == ["TrainSeq-train"] and prov["val_sequences"] == ["TrainSeq-heldout"]
    assert set(prov["metrics"]) == {"before", "after"}


def test_cli_val_tail_needs_enough_boxes(tmp_path, capsys):
    from training.__main__ import main

    data = make_otb(tmp_path / "data", "TrainSeq", frames=8)
    code = main([str(data), "--out", str(tmp_path / "x.pt"), "--val", "--val-tail", "0.2"])
    assert code == 2 and "fine-tuning needs at least 20" in capsys.readouterr().err


def test_metric_frames_count_from_the_first_box():
    import numpy as np

    from trackers.evaluation import AnnotatedSequence
    from training.metrics import truncated

    gt = np.full((50, 4), np.nan)
    gt[30:] = [1, 2, 3, 4]
    cut = truncated(AnnotatedSequence("tail", Path("x"), gt), 10)
    assert len(cut.groundtruth) == 40 and np.isfinite(cut.groundtruth[30:]).all()
    assert truncated(AnnotatedSequence("tail", Path("x"), gt), 100).groundtruth is gt


def test_a_misspelt_option_is_refused_not_defaulted(tmp_path, data):
    from training.config import TrainConfig

    train_seqs, val_seqs, cache = data
    with pytest.raises(TrainingError, match="unknown training option.*epoch"):
        train(SiamFCTask(), train_seqs, val_seqs, tmp_path / "w.pt", epoch=3, cache_dir=cache, **FAST)
    config = TrainConfig(epochs=2)
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.epochs = 3
    # the task's defaults fill what was left out, once
    filled = config.for_task(SiamFCTask())
    assert filled.batch_size == SiamFCTask.default_batch_size and filled.lr_start == SiamFCTask.lr_start
    with pytest.raises(TrainingError, match="teacher weight"):
        TrainConfig(teacher="nano", teacher_weight=1.5)


def test_the_flip_option_reaches_the_augmentation_and_the_recorded_settings():
    from training.config import TrainConfig

    task = SiamFCTask()
    assert TrainConfig().for_task(task).augmentation == task.augmentation()
    flipped = TrainConfig(hflip=0.5).for_task(task)
    assert flipped.augmentation.flip == 0.5
    assert flipped.augmentation == dataclasses.replace(task.augmentation(), flip=0.5)
    # recorded only when used, so a run from before the option resumes with the same settings
    assert "hflip" not in TrainConfig().for_task(task).run_settings(None, 1, {})
    assert flipped.run_settings(None, 1, {})["hflip"] == 0.5
    with pytest.raises(TrainingError, match="flip probability"):
        TrainConfig(hflip=1.5)


def test_a_fine_tune_records_what_its_start_trained_on(tmp_path, data):
    """provenance["inherited_sequences"]: the --init file's own and inherited sequences, kept on resume."""
    from trackers.weights.provenance import learnt_from, read_provenance

    train_seqs, val_seqs, cache = data
    siamfc = SiamFCNet()
    init_weights(siamfc, seed=1)
    lineage = {"train_sequences": ["Old"], "inherited_sequences": ["Older"]}
    start = save_checkpoint(tmp_path / "start.pt", siamfc.state_dict(), architecture=SIAMFC_ARCHITECTURE,
                            config={}, provenance=lineage)
    out = tmp_path / "tuned.pt"
    train(SiamFCTask(), train_seqs, val_seqs, out, epochs=1, cache_dir=cache, init=str(start), **FAST)
    prov = read_provenance(out)
    assert prov["inherited_sequences"] == ["Old", "Older"] and prov["train_sequences"] == ["TrainSeq"]
    assert learnt_from(prov) == {"Old", "Older", "TrainSeq"}
    # resumed for a second epoch, the record stays
    train(SiamFCTask(), train_seqs, val_seqs, out, epochs=2, cache_dir=cache, init=str(start), resume=True,
          **FAST)
    assert read_provenance(out)["inherited_sequences"] == ["Old", "Older"]
    # from random weights nothing is inherited
    fresh = tmp_path / "fresh.pt"
    train(SiamFCTask(), train_seqs, val_seqs, fresh, epochs=1, cache_dir=cache, **FAST)
    assert read_provenance(fresh)["inherited_sequences"] == []


def test_the_negative_pairs_option_reaches_the_augmentation_and_is_refused_where_it_cannot_work():
    from training.config import TrainConfig
    from training.dsiam_train import DSiamTask
    from training.siamrpn_train import SiamRPNTask

    task = SiamFCTask()
    chosen = TrainConfig(negative_pairs=0.2).for_task(task)
    assert chosen.augmentation == dataclasses.replace(task.augmentation(), negative=0.2)
    assert "negative_pairs" not in TrainConfig().for_task(task).run_settings(None, 1, {})
    assert chosen.run_settings(None, 1, {})["negative_pairs"] == 0.2
    with pytest.raises(TrainingError, match="negative pairs"):
        TrainConfig(negative_pairs=1.0)
    for other in (SiamRPNTask(), DSiamTask()):
        with pytest.raises(TrainingError, match="does not train on negative pairs"):
            train(other, [object()], [], "w.pt", negative_pairs=0.2)
    with pytest.raises(TrainingError, match="no teacher's map"):
        train(task, [object()], [], "w.pt", negative_pairs=0.2, teacher="nano", teacher_weight=0.5)
