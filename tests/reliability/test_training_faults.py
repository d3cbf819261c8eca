"""Training: bad resume and init files are one line; a stop or a full disk keeps the last checkpoint.

Training runs outside the window (the app shows the command, see
app.qt.widgets.export_dialog.finetune_instructions), so "closing during training" is a
SIGTERM to ``siamtrack train``: it stops after the step in progress, saves, and exits
with no thread left behind.
"""

from __future__ import annotations

import errno
import os
import pickle
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from tests.media import make_otb
from trackers.siamfc.network import ARCHITECTURE
from trackers.weights.checkpoint import save_checkpoint
from trackers.weights.loading import load_checkpoint
from training.__main__ import main
from training.siamfc_train import RESUME_FORMAT, RESUME_VERSION, resume_path

from .conftest import ROOT

FAST = [
    "--epochs",
    "1",
    "--pairs-per-epoch",
    "4",
    "--batch-size",
    "2",
    "--val",
    "--device",
    "cpu",
    "--threads",
    "1",
]


@pytest.fixture(autouse=True)
def _threads_restored():
    """``--threads`` sets torch's and OpenCV's thread counts for the whole process: put them back."""
    import cv2

    torch_threads, cv_threads = torch.get_num_threads(), cv2.getNumThreads()
    yield
    torch.set_num_threads(torch_threads)
    cv2.setNumThreads(cv_threads)


@pytest.fixture
def data(tmp_path) -> Path:
    return make_otb(tmp_path / "data", "TrainSeq", frames=8)


def args(data: Path, out: Path, cache: Path, *extra: str) -> list[str]:
    return [str(data), "--out", str(out), "--cache-dir", str(cache), *FAST, *extra]


def error_lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("error:")]


def test_a_damaged_resume_state_is_one_line(data, tmp_path, capsys, ledger):
    out = tmp_path / "w.pt"
    state = resume_path(out)
    for damage in (b"\x00garbage", None):
        if damage is None:  # the right format, its contents missing
            torch.save(
                {"format": RESUME_FORMAT, "version": RESUME_VERSION, "architecture": ARCHITECTURE}, state
            )
        else:
            state.write_bytes(damage)
        ledger.tried()
        assert main(args(data, out, tmp_path / "cache", "--resume")) == 1
        errors = error_lines(capsys.readouterr().err)
        assert len(errors) == 1 and str(state) in errors[0], errors


def test_bad_init_weights_are_one_line_and_run_nothing(data, tmp_path, capsys, ledger):
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (Path.touch, (marker,))

    evil = tmp_path / "evil.pt"
    torch.save({"state_dict": Payload()}, evil)
    other = save_checkpoint(
        tmp_path / "rpn.pt", {"a": torch.zeros(1)}, architecture="siamrpn-alexnet", config={}
    )
    raw = tmp_path / "raw.pt"
    raw.write_bytes(pickle.dumps(Payload()))
    for init in (evil, other, raw, tmp_path / "missing.pt"):
        ledger.tried()
        assert main(args(data, tmp_path / "w.pt", tmp_path / "cache", "--init", str(init))) == 1
        errors = error_lines(capsys.readouterr().err)
        assert len(errors) == 1 and init.name in errors[0], errors
    assert not marker.exists() and not (tmp_path / "w.pt").exists()


def test_a_full_disk_at_a_checkpoint_keeps_the_earlier_one(data, tmp_path, monkeypatch, capsys, ledger):
    out = tmp_path / "w.pt"
    assert main(args(data, out, tmp_path / "cache")) == 0
    before = out.read_bytes()
    capsys.readouterr()

    def full(fd: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", full)
    ledger.injected()
    assert main(args(data, out, tmp_path / "cache2", "--seed", "1")) == 1
    errors = error_lines(capsys.readouterr().err)
    assert len(errors) == 1 and "No space left" in errors[0]
    monkeypatch.undo()
    assert out.read_bytes() == before
    load_checkpoint(out, ARCHITECTURE)
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")) == []


def test_sigterm_during_training_saves_and_exits_cleanly(data, tmp_path, ledger):
    out = tmp_path / "w.pt"
    command = [
        sys.executable,
        "-m",
        "training",
        str(data),
        "--out",
        str(out),
        "--cache-dir",
        str(tmp_path / "c"),
        "--epochs",
        "50",
        "--pairs-per-epoch",
        "64",
        "--batch-size",
        "2",
        "--val",
        "--device",
        "cpu",
        "--threads",
        "1",
        "--checkpoint-every",
        "1000",
    ]
    child = subprocess.Popen(command, cwd=ROOT, stderr=subprocess.PIPE, text=True)
    lines: list[str] = []
    try:
        assert child.stderr is not None
        for line in child.stderr:
            lines.append(line)
            if line.startswith("epoch") or "step" in line and "loss" in line:
                break  # training steps are under way
        ledger.injected()
        child.send_signal(signal.SIGTERM)
        started = time.monotonic()
        rest = child.stderr.read()
        child.wait(60)
        stopped_in = time.monotonic() - started
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert child.returncode == 130, "".join(lines) + rest
    assert stopped_in < 30
    assert "continue with --resume" in rest
    load_checkpoint(out, ARCHITECTURE)
    assert torch.load(resume_path(out), weights_only=True)["format"] == RESUME_FORMAT
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")) == []
