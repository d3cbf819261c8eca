"""Two CPU steps of SiamFC training on a synthetic sequence: weights move, files load, resume, cancel."""

from __future__ import annotations

import threading

import pytest
import torch

from tests.media import make_otb
from tests.training.conftest import FAST
from trackers.siamfc.network import ARCHITECTURE, SiamFCNet, init_weights
from trackers.siamfc.tracker import SiamFCTracker
from trackers.weights.loading import load_checkpoint
from training.__main__ import main
from training.siamfc_train import (
    TrainingError,
    learning_rate,
    resume_path,
    train_siamfc,
)


def test_learning_rate_is_geometric_from_1e2_to_1e5():
    rates = [learning_rate(e, 4) for e in range(4)]
    assert rates[0] == pytest.approx(1e-2) and rates[-1] == pytest.approx(1e-5)
    assert rates[1] / rates[0] == pytest.approx(rates[2] / rates[1]) == pytest.approx(0.1)
    assert learning_rate(0, 1) == 1e-2


def test_two_steps_change_the_weights_and_write_a_usable_checkpoint(tmp_path, data):
    train, val, cache = data
    out = tmp_path / "out" / "siamfc.pt"
    result = train_siamfc(train, val, out, epochs=1, cache_dir=cache, **FAST)
    assert not result.cancelled and result.step == 2 and result.epochs_done == 1
    assert result.checkpoint == out and out.is_file() and resume_path(out).is_file()

    state, meta = load_checkpoint(out, ARCHITECTURE)
    start = SiamFCNet()
    init_weights(start, seed=0)
    before = start.state_dict()
    assert not torch.equal(state["embedding.conv1.0.weight"], before["embedding.conv1.0.weight"])
    assert not torch.equal(state["embedding.conv5.0.weight"], before["embedding.conv5.0.weight"])
    prov = meta["provenance"]
    assert prov["train_sequences"] == ["TrainSeq"] and prov["val_sequences"] == ["ValSeq"]
    assert prov["epochs_done"] == 1 and prov["step"] == 2 and prov["finished"] is True
    assert len(prov["val_loss"]) == 1 and prov["val_loss"][0] > 0

    tracker = SiamFCTracker.create("siamfc", weights=out, device="cpu")
    assert not tracker.untrained
    # the resume state is plain data too
    resume = torch.load(resume_path(out), weights_only=True)
    assert resume["step"] == 2 and "momentum_buffer" in next(iter(resume["optimizer"]["state"].values()))


def test_resume_continues_the_step_count(tmp_path, data):
    train, val, cache = data
    out = tmp_path / "siamfc.pt"
    train_siamfc(train, val, out, epochs=1, cache_dir=cache, **FAST)
    result = train_siamfc(train, val, out, epochs=2, cache_dir=cache, resume=True, **FAST)
    assert result.step == 4 and result.epochs_done == 2
    assert len(result.train_losses) == 2 and len(result.val_losses) == 2
    _state, meta = load_checkpoint(out, ARCHITECTURE)
    assert meta["provenance"]["step"] == 4 and meta["provenance"]["resumed"] is True
    # other data cannot be resumed into silently
    with pytest.raises(TrainingError, match="training sequences"):
        train_siamfc(val, [], out, epochs=3, cache_dir=cache, resume=True, **FAST)


def test_cancel_stops_and_saves_then_resume_finishes(tmp_path, data):
    train, val, cache = data
    out = tmp_path / "siamfc.pt"
    cancel = threading.Event()

    def progress(event):
        if event.phase == "train" and event.step == 1:
            cancel.set()

    result = train_siamfc(train, val, out, epochs=1, cache_dir=cache, cancel=cancel,
                          progress=progress, **FAST)
    assert result.cancelled and result.step == 1 and result.epochs_done == 0
    _state, meta = load_checkpoint(out, ARCHITECTURE)
    assert meta["provenance"]["step"] == 1 and meta["provenance"]["finished"] is False
    assert torch.load(resume_path(out), weights_only=True)["step_in_epoch"] == 1

    result = train_siamfc(train, val, out, epochs=1, cache_dir=cache, resume=True, **FAST)
    assert not result.cancelled and result.step == 2 and result.epochs_done == 1


def test_command_line(tmp_path, capsys):
    folder = make_otb(tmp_path / "data", "OnlySeq", frames=6)
    out = tmp_path / "cli.pt"
    rc = main(["--tracker", "siamfc", str(folder), "--out", str(out), "--epochs", "1",
               "--pairs-per-epoch", "2", "--batch-size", "2", "--device", "cpu", "--val",
               "--cache-dir", str(tmp_path / "cache"), "--threads", "1"])
    assert rc == 0 and out.is_file()
    err = capsys.readouterr().err
    assert "validating on 0 sequences" in err and "epoch 1/1 step 1/1" in err
    assert main(["--tracker", "siamfc", str(folder), "--out", str(out), "--val", "Nope",
                 "--device", "cpu"]) == 2
