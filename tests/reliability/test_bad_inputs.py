"""Issue 20's bad-input suite: every command, every item, each with the outcome it must have.

Each input tried is counted in ``TALLY`` (see conftest) as exactly one outcome: clean (a
one-line error with a non-zero exit, or correct work), crash, traceback, hang, silent wrong
result, or a file replaced; the totals are printed at the end of the run. Commands run in
process (``app.cli.main``) except where a signal, a possible segfault or a hang is the point:
those run in a subprocess with a generous timeout, and the test asserts that it ended.

Everything is seeded and synthetic (tmp_path); nothing here writes to a real /dev file: a
"device" is a symlink to /dev/null (refused before anything is opened) or a FIFO from os.mkfifo.
"""

from __future__ import annotations

import errno
import json
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from app.cli import main
from tests.training.conftest import make_otb

from .conftest import ROOT, TALLY, write_video

HANG_TIMEOUT = 120.0
"""Seconds a subprocess may take before it counts as a hang (generous: the machine is busy)."""

CLIP_FRAMES = 20
CLIP_SIZE = (64, 48)
BOX = "10,10,20,20"


# --------------------------------------------------------------------------- harness


def _run(argv: list, capsys) -> tuple[int, str, str]:
    try:
        rc = main([str(a) for a in argv])
    except SystemExit as exc:  # argparse
        rc = exc.code if isinstance(exc.code, int) else 2
    captured = capsys.readouterr()
    return rc, captured.out, captured.err


def _classify(rc: int | None, err: str, *, want_rc: int | None, want_in: str | None) -> str:
    if rc is None:
        return "hang"
    if rc < 0:
        return "crash"
    if "Traceback" in err or "internal error" in err:
        return "traceback"
    if (want_rc is None and rc == 0) or (want_rc is not None and rc != want_rc):
        return "wrong"
    if want_in is not None and want_in not in err:
        return "wrong"
    return "clean"


def refused(capsys, argv: list, want_in: str | None = None, code: int = 2) -> str:
    """Run ``siamtrack ARGV`` in process; it must end with a one-line error and exit ``code``."""
    try:
        rc, _out, err = _run(argv, capsys)
    except BaseException:
        TALLY.record("traceback")
        raise
    outcome = TALLY.record(_classify(rc, err, want_rc=code, want_in=want_in))
    assert outcome == "clean", (argv, rc, err)
    errors = [line for line in err.splitlines() if "error" in line]
    assert len(errors) == 1, err
    return err


def works(capsys, argv: list, code: int = 0, want_in: str | None = None) -> tuple[str, str]:
    """Run ``siamtrack ARGV`` in process; it must do its work and exit ``code``."""
    try:
        rc, out, err = _run(argv, capsys)
    except BaseException:
        TALLY.record("traceback")
        raise
    outcome = TALLY.record(_classify(rc, err, want_rc=code, want_in=want_in))
    assert outcome == "clean", (argv, rc, err)
    return out, err


def judged(outcome: str, detail: object = "") -> None:
    """Record a check made by hand (a file kept, a box clipped) and assert it came out clean."""
    TALLY.record(outcome)
    assert outcome == "clean", detail


def _env() -> dict[str, str]:
    return {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "OMP_NUM_THREADS": "1",
        "QT_QPA_PLATFORM": "offscreen",
        "PYTHONDONTWRITEBYTECODE": "1",
    }


def run_process(args: list, timeout: float = HANG_TIMEOUT) -> tuple[int | None, str, str]:
    """``python -m app.cli ARGS`` in a subprocess: (exit status or -signal, stdout, stderr); None on a hang."""
    try:
        done = subprocess.run(
            [sys.executable, "-m", "app.cli", *map(os.fsdecode, args)], env=_env(), cwd=ROOT,
            capture_output=True, text=True, errors="replace", timeout=timeout,
        )
    except subprocess.TimeoutExpired:
        return None, "", ""
    return done.returncode, done.stdout, done.stderr


# --------------------------------------------------------------------------- data


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    """A 20-frame 64x48 clip with its 1-based ground truth beside it (``clip.txt``)."""
    folder = tmp_path_factory.mktemp("clip")
    video = write_video(folder / "clip.avi", CLIP_FRAMES, CLIP_SIZE)
    lines = [f"{6 + 2 * i},{11},20,20" for i in range(CLIP_FRAMES)]
    (folder / "clip.txt").write_text("\n".join(lines) + "\n")
    return video


def labelled(folder: Path, clip: Path, name: str, lines: list[str] | str) -> Path:
    """A copy of ``clip`` as ``folder/name.avi`` with ``lines`` as its ground truth."""
    folder.mkdir(parents=True, exist_ok=True)
    video = folder / f"{name}.avi"
    video.write_bytes(clip.read_bytes())
    text = lines if isinstance(lines, str) else "\n".join(lines) + "\n"
    (folder / f"{name}.txt").write_text(text)
    return video


# =========================================================================== 1. outputs


def _outputs(tmp_path: Path, clip: Path) -> dict[str, list]:
    """Every command that writes an output file, with OUT where the output path goes.

    Output names in these tests end in ``.png``, so ``--plot`` writes exactly there."""
    otb = tmp_path / "otb.txt"
    otb.write_text("11,11,20,20\n12,11,20,20\n")
    return {
        "track": ["track", clip, "--box", BOX, "--tracker", "identity", "--frames", "3", "--out", "OUT"],
        "eval --json": ["eval", clip, "--tracker", "identity", "--json", "OUT"],
        "eval --plot": ["eval", clip, "--tracker", "identity", "--plot", "OUT"],
        "effort --json": ["effort", clip, "--tracker", "identity", "--json", "OUT"],
        "convert": ["convert", otb, "OUT", "--from", "otb", "--to", "mot"],
    }


def _with(argv: list, out: Path) -> list:
    return [out if a == "OUT" else a for a in argv]


COMMANDS_WITH_OUTPUT = ["track", "eval --json", "eval --plot", "effort --json", "convert"]


@pytest.mark.parametrize("command", COMMANDS_WITH_OUTPUT)
def test_an_output_through_a_symlink_lands_in_its_target(command, tmp_path, clip, capsys):
    argv = _outputs(tmp_path, clip)[command]
    target = tmp_path / "real" / "result.png"
    target.parent.mkdir()
    link = tmp_path / "link.png"
    os.symlink(target, link)
    works(capsys, _with(argv, link))
    judged("clean" if link.is_symlink() else "replaced", "the link became a regular file")
    judged("clean" if target.is_file() and target.stat().st_size > 0 else "wrong", "the target was not written")


@pytest.mark.parametrize("command", COMMANDS_WITH_OUTPUT)
def test_a_fifo_or_a_device_as_output_is_refused_before_the_run(command, tmp_path, clip, capsys):
    argv = _outputs(tmp_path, clip)[command]
    fifo = tmp_path / "pipe.png"
    os.mkfifo(fifo)
    device = tmp_path / "device.png"
    os.symlink("/dev/null", device)  # refused on stat: nothing is opened, nothing written
    for special in (fifo, device):
        err = refused(capsys, _with(argv, special), "not a regular file")
        kept = stat.S_ISFIFO(os.stat(fifo).st_mode) and device.is_symlink()
        judged("clean" if kept else "replaced", err)
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)


def test_train_and_bench_outputs_are_checked_before_the_run(tmp_path, capsys):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    data = make_otb(tmp_path / "data", "Seq", frames=6)
    for out in (fifo, tmp_path):
        refused(capsys, ["train", data, "--out", out, "--epochs", "1", "--val", "--device", "cpu"], "cannot write")
    # bench refuses before it generates a clip or starts a worker
    refused(capsys, ["bench", "--tracker", "identity", "--frames", "2", "--json", fifo], "not a regular file")
    judged("clean" if stat.S_ISFIFO(os.stat(fifo).st_mode) else "replaced")


def test_an_output_that_is_a_folder_is_refused_before_the_run(tmp_path, clip, capsys, monkeypatch):
    import trackers.run

    ran = []
    real = trackers.run.track_frames
    monkeypatch.setattr(trackers.run, "track_frames", lambda *a, **k: ran.append(1) or real(*a, **k))
    refused(capsys, ["track", clip, "--box", BOX, "--tracker", "identity", "--out", tmp_path], "is a folder")
    judged("clean" if not ran else "wrong", "the run went ahead with a folder as --out")
    refused(capsys, ["eval", clip, "--tracker", "identity", "--json", tmp_path], "is a folder")
    refused(capsys, ["effort", clip, "--tracker", "identity", "--json", tmp_path], "is a folder")


def test_outputs_follow_the_umask_and_keep_an_existing_mode(tmp_path, clip, capsys):
    mask = os.umask(0o027)
    try:
        new = tmp_path / "new.txt"
        works(capsys, ["track", clip, "--box", BOX, "--tracker", "identity", "--frames", "2", "--out", new])
        judged("clean" if stat.S_IMODE(new.stat().st_mode) == 0o640 else "wrong", oct(new.stat().st_mode))
        old = tmp_path / "old.json"
        old.write_text("{}")
        old.chmod(0o604)
        works(capsys, ["eval", clip, "--tracker", "identity", "--json", old])
        judged("clean" if stat.S_IMODE(old.stat().st_mode) == 0o604 else "wrong", oct(old.stat().st_mode))
    finally:
        os.umask(mask)


def test_a_checkpoint_through_a_symlink_keeps_the_link(tmp_path):
    from trackers.weights import save_checkpoint

    target = tmp_path / "store" / "w.pt"
    target.parent.mkdir()
    link = tmp_path / "w.pt"
    os.symlink(target, link)
    save_checkpoint(link, {"a": torch.zeros(2)}, architecture="x", config={})
    judged("clean" if link.is_symlink() and target.is_file() else "replaced")


# =========================================================================== 2. signals


def _slow_clip(folder: Path) -> Path:
    """Long enough that a signal lands mid-run, small enough to write fast: 400 frames."""
    return write_video(folder / "long.avi", 400, (32, 24))


def _wait_for(path: Path, process: subprocess.Popen, timeout: float = HANG_TIMEOUT) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end and process.poll() is None:
        if path.exists():
            return True
        time.sleep(0.05)
    return False


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP])
def test_sigterm_and_sighup_during_track_keep_the_frames_done(signum, tmp_path):
    clip = _slow_clip(tmp_path)
    out = tmp_path / "out.txt"
    started = tmp_path / "started"
    # A tracker slow enough to be caught mid-run: identity, with a pause per frame; it
    # touches a file once it has begun so the signal lands while frames are being tracked.
    script = (
        "import sys, time; from pathlib import Path\n"
        "import trackers.identity as m\n"
        "real = m.IdentityTracker.update\n"
        f"def slow(self, frame):\n    Path({str(started)!r}).touch(); time.sleep(0.02); return real(self, frame)\n"
        "m.IdentityTracker.update = slow\n"
        "from app.cli import main\n"
        f"sys.exit(main(['track', {str(clip)!r}, '--box', '4,4,10,10', '--tracker', 'identity', '--out', {str(out)!r}]))\n"
    )
    process = subprocess.Popen([sys.executable, "-c", script], env=_env(), cwd=ROOT,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert _wait_for(started, process), "the run never started"
        time.sleep(0.3)
        process.send_signal(signum)
        _out, err = process.communicate(timeout=HANG_TIMEOUT)
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()
        judged("hang")
    rc = process.returncode
    lines = out.read_text().splitlines() if out.exists() else []
    outcome = _classify(rc, err, want_rc=128 + signum, want_in="interrupted")
    if outcome == "clean" and not (0 < len(lines) < 400):
        outcome = "wrong"
    judged(outcome, (rc, len(lines), err))


def test_sigterm_during_eval_keeps_the_finished_sequences(tmp_path, clip):
    folder = tmp_path / "seqs"
    lines = [f"{6 + 2 * (i % 10)},11,20,20" for i in range(CLIP_FRAMES)]
    for name in ("a", "b", "c"):
        labelled(folder, clip, name, lines)
    report = tmp_path / "r.json"
    started = tmp_path / "started"
    script = (
        "import sys, os, signal; from pathlib import Path\n"
        "import trackers.evaluation as e\n"
        "real = e._run_sequence\n"
        "def once(*a, **k):\n"
        "    result = real(*a, **k)\n"
        f"    if not Path({str(started)!r}).exists():\n"
        f"        Path({str(started)!r}).touch(); os.kill(os.getpid(), signal.SIGTERM)\n"
        "    return result\n"
        "e._run_sequence = once\n"
        "from app.cli import main\n"
        f"sys.exit(main(['eval', {str(folder)!r}, '--tracker', 'identity', '--json', {str(report)!r}]))\n"
    )
    try:
        done = subprocess.run([sys.executable, "-c", script], env=_env(), cwd=ROOT, capture_output=True,
                              text=True, timeout=HANG_TIMEOUT)
    except subprocess.TimeoutExpired:
        judged("hang")
    outcome = _classify(done.returncode, done.stderr, want_rc=128 + signal.SIGTERM, want_in="interrupted")
    data = json.loads(report.read_text()) if report.exists() else {}
    if outcome == "clean" and not (data.get("complete") is False and data["trackers"]["identity"]["sequences"]):
        outcome = "wrong"
    judged(outcome, (done.returncode, done.stderr, data))


# =========================================================================== 3. full disk


def _full_disk(monkeypatch):
    def fsync(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", fsync)


def test_eval_plot_on_a_full_disk_keeps_the_earlier_png(tmp_path, clip, capsys, monkeypatch):
    plot = tmp_path / "plot.png"
    works(capsys, ["eval", clip, "--tracker", "identity", "--plot", plot])
    before = plot.read_bytes()
    _full_disk(monkeypatch)
    refused(capsys, ["eval", clip, "--tracker", "identity", "--plot", plot], "No space left")
    judged("clean" if plot.read_bytes() == before else "replaced", "the earlier plot was truncated")
    judged("clean" if sorted(p.name for p in tmp_path.iterdir()) == ["plot.png"] else "wrong", "temporary left")


def test_gui_screenshot_on_a_full_disk_keeps_the_earlier_png(tmp_path, qtbot, monkeypatch):
    from PySide6.QtWidgets import QLabel

    from app.gui import _save_screenshot

    widget = QLabel("siamtrack")
    qtbot.addWidget(widget)
    shot = tmp_path / "shot.png"
    assert _save_screenshot(widget, shot) is None
    before = shot.read_bytes()
    assert before.startswith(b"\x89PNG")
    _full_disk(monkeypatch)
    problem = _save_screenshot(widget, shot)
    judged("clean" if problem and "No space left" in problem else "wrong", problem)
    judged("clean" if shot.read_bytes() == before else "replaced", "the earlier screenshot was truncated")


def test_gui_screenshot_into_a_fifo_is_refused_before_the_window_opens(tmp_path, clip, capsys):
    fifo = tmp_path / "shot.png"
    os.mkfifo(fifo)
    refused(capsys, ["gui", clip, "--screenshot", fifo, "--exit-when-done"], "not a regular file")


# =========================================================================== 4. diverged training

TRAIN_FAST = ["--epochs", "1", "--pairs-per-epoch", "4", "--batch-size", "2", "--val", "--device", "cpu",
              "--threads", "1", "--metric-frames", "0"]


@pytest.fixture
def restore_threads():
    import cv2

    before = torch.get_num_threads(), cv2.getNumThreads()
    yield
    torch.set_num_threads(before[0])
    cv2.setNumThreads(before[1])


def test_a_diverged_training_run_keeps_the_last_good_checkpoint(tmp_path, capsys, restore_threads):
    data = make_otb(tmp_path / "data", "Seq", frames=8)
    out = tmp_path / "w.pt"
    cache = tmp_path / "cache"
    works(capsys, ["train", data, "--out", out, "--cache-dir", cache, *TRAIN_FAST])
    good = out.read_bytes()
    rc, _o, err = _run(["train", data, "--out", out, "--cache-dir", cache, *TRAIN_FAST, "--lr", "1e10", "1e10"], capsys)
    judged(_classify(rc, err, want_rc=1, want_in="non-finite" if "non-finite" in err else "loss became"), err)
    judged("clean" if out.read_bytes() == good else "replaced", "a diverged run overwrote the good weights")


def test_non_finite_weights_are_refused_naming_file_and_tensor(tmp_path, clip, capsys):
    from trackers.siamfc.network import ARCHITECTURE, SiamFCNet
    from trackers.weights import WeightsError, load_checkpoint, save_checkpoint

    state = SiamFCNet().state_dict()
    name = next(k for k, v in state.items() if v.is_floating_point())
    state[name] = state[name].clone()
    state[name].view(-1)[0] = float("inf")
    bad = tmp_path / "diverged.pt"
    save_checkpoint(bad, state, architecture=ARCHITECTURE, config={})
    with pytest.raises(WeightsError, match=f"diverged.pt.*{name}"):
        load_checkpoint(bad, ARCHITECTURE)
    for precision in ("fp16", "fp32"):
        refused(capsys, ["track", clip, "--box", BOX, "--weights", bad, "--device", "cpu",
                         "--set", f"precision={precision}", "--out", tmp_path / "o.txt"], name)


# =========================================================================== 5. stale temporaries


def test_stale_frame_cache_temporaries_are_removed_at_start(tmp_path, clip):
    import app.frame_cache as frame_cache
    from trackers.sources import open_source

    root = tmp_path / "cache"
    folder = root / "somevideo-png1up-cv4"
    folder.mkdir(parents=True)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(dead.stdout)
    stale = folder / f"frames.{dead_pid}.{'a' * 32}.tmp"
    stale.write_bytes(b"\0" * 1000)
    live = folder / f"frames.{os.getppid()}.{'b' * 32}.tmp"  # a live process may be indexing
    live.write_bytes(b"\0" * 10)
    old_atomic = folder / ".index.json.x1y2.tmp"
    old_atomic.write_text("{")
    os.utime(old_atomic, (time.time() - 7200, time.time() - 7200))
    kept = folder / "frames.pack"
    kept.write_bytes(b"pack")
    with open_source(clip) as source:
        cache = frame_cache.FrameCache(source, disk_dir=root)
        cache.close()
    judged("clean" if not stale.exists() and not old_atomic.exists() else "wrong", "stale temporaries left")
    judged("clean" if live.exists() and kept.exists() else "wrong", "a live or finished file was removed")
