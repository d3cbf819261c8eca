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
from tests.media import make_otb

from .conftest import ROOT, TALLY, write_square_clip

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


# --------------------------------------------------------------------------- data


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    """A 20-frame 64x48 clip with its 1-based ground truth beside it (``clip.txt``)."""
    folder = tmp_path_factory.mktemp("clip")
    video = write_square_clip(folder / "clip.avi", CLIP_FRAMES, CLIP_SIZE)
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
    judged(
        "clean" if target.is_file() and target.stat().st_size > 0 else "wrong", "the target was not written"
    )


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
        refused(
            capsys, ["train", data, "--out", out, "--epochs", "1", "--val", "--device", "cpu"], "cannot write"
        )
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
    from trackers.weights.checkpoint import save_checkpoint

    target = tmp_path / "store" / "w.pt"
    target.parent.mkdir()
    link = tmp_path / "w.pt"
    os.symlink(target, link)
    save_checkpoint(link, {"a": torch.zeros(2)}, architecture="x", config={})
    judged("clean" if link.is_symlink() and target.is_file() else "replaced")


# =========================================================================== 2. signals


def _slow_clip(folder: Path) -> Path:
    """Long enough that a signal lands mid-run, small enough to write fast: 400 frames."""
    return write_square_clip(folder / "long.avi", 400, (32, 24))


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
        "def slow(self, frame):\n"
        f"    Path({str(started)!r}).touch(); time.sleep(0.02); return real(self, frame)\n"
        "m.IdentityTracker.update = slow\n"
        "from app.cli import main\n"
        f"sys.exit(main(['track', {str(clip)!r}, '--box', '4,4,10,10', '--tracker', 'identity',"
        f" '--out', {str(out)!r}]))\n"
    )
    process = subprocess.Popen(
        [sys.executable, "-c", script],
        env=_env(),
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
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
        "import trackers.evaluation.run as e\n"
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
        done = subprocess.run(
            [sys.executable, "-c", script],
            env=_env(),
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=HANG_TIMEOUT,
        )
    except subprocess.TimeoutExpired:
        judged("hang")
    outcome = _classify(done.returncode, done.stderr, want_rc=128 + signal.SIGTERM, want_in="interrupted")
    data = json.loads(report.read_text()) if report.exists() else {}
    if outcome == "clean" and not (
        data.get("complete") is False and data["trackers"]["identity"]["sequences"]
    ):
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
    judged(
        "clean" if sorted(p.name for p in tmp_path.iterdir()) == ["plot.png"] else "wrong", "temporary left"
    )


def test_gui_screenshot_on_a_full_disk_keeps_the_earlier_png(tmp_path, qtbot, monkeypatch):
    from PySide6.QtWidgets import QLabel

    from app.qt.gui import _save_screenshot

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

TRAIN_FAST = [
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
    "--metric-frames",
    "0",
]


@pytest.fixture
def restore_threads():
    import cv2

    before = torch.get_num_threads(), cv2.getNumThreads()
    yield
    torch.set_num_threads(before[0])
    cv2.setNumThreads(before[1])


def test_a_diverged_training_run_keeps_the_last_good_checkpoint(tmp_path, capsys, restore_threads):
    data = make_otb(tmp_path / "data", "Seq", frames=8)
    target = tmp_path / "store" / "w.pt"
    target.parent.mkdir()
    out = tmp_path / "w.pt"
    os.symlink(target, out)  # train --out through a link (item 1): the weights land in its target
    cache = tmp_path / "cache"
    works(capsys, ["train", data, "--out", out, "--cache-dir", cache, *TRAIN_FAST])
    judged("clean" if out.is_symlink() and target.is_file() else "replaced", "the link became a file")
    good = out.read_bytes()
    rc, _o, err = _run(
        ["train", data, "--out", out, "--cache-dir", cache, *TRAIN_FAST, "--lr", "1e10", "1e10"], capsys
    )
    judged(_classify(rc, err, want_rc=1, want_in="non-finite" if "non-finite" in err else "loss became"), err)
    judged("clean" if out.read_bytes() == good else "replaced", "a diverged run overwrote the good weights")


def test_non_finite_weights_are_refused_naming_file_and_tensor(tmp_path, clip, capsys):
    from trackers.siamfc.network import ARCHITECTURE, SiamFCNet
    from trackers.weights.checkpoint import WeightsError, save_checkpoint
    from trackers.weights.loading import load_checkpoint

    state = SiamFCNet().state_dict()
    name = next(k for k, v in state.items() if v.is_floating_point())
    state[name] = state[name].clone()
    state[name].view(-1)[0] = float("inf")
    bad = tmp_path / "diverged.pt"
    save_checkpoint(bad, state, architecture=ARCHITECTURE, config={})
    with pytest.raises(WeightsError, match=f"diverged.pt.*{name}"):
        load_checkpoint(bad, ARCHITECTURE)
    for precision in ("fp16", "fp32"):
        refused(
            capsys,
            [
                "track",
                clip,
                "--box",
                BOX,
                "--weights",
                bad,
                "--device",
                "cpu",
                "--set",
                f"precision={precision}",
                "--out",
                tmp_path / "o.txt",
            ],
            name,
        )


# =========================================================================== 5. stale temporaries


def test_stale_frame_cache_temporaries_are_removed_at_start(tmp_path, clip):
    import app.model.frame_cache as frame_cache
    from trackers.sources import open_source

    root = tmp_path / "cache"
    folder = root / "somevideo-png1up-cv4"
    folder.mkdir(parents=True)
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
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


# =========================================================================== batches in a subprocess

_BATCH = r"""
import contextlib, io, json, sys
from app.cli import main
for argv in json.loads(sys.stdin.read()):
    err = io.StringIO()
    print(json.dumps({"start": True}), flush=True)
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            rc = main(argv)
        except SystemExit as exc:
            rc = exc.code if isinstance(exc.code, int) else 2
        except BaseException as exc:
            import traceback
            traceback.print_exc()
            rc = 1
    print(json.dumps({"rc": rc, "err": err.getvalue()}), flush=True)
"""


def run_batch(cases: list[list], timeout: float = HANG_TIMEOUT) -> list[tuple[int | None, str]]:
    """Run ``main(argv)`` for each case in ONE subprocess (imports paid once), for inputs that
    might crash it or block it. Per case: (exit status, stderr); a case the process died in
    gets (-signal, ""), one it never finished within ``timeout`` gets (None, "")."""
    payload = json.dumps(
        [[os.fsdecode(a) if isinstance(a, (bytes, Path)) else str(a) for a in c] for c in cases]
    )
    process = subprocess.Popen(
        [sys.executable, "-c", _BATCH],
        env=_env(),
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        out, _err = process.communicate(payload.encode("utf-8", "surrogatepass"), timeout=timeout)
        hung = False
    except subprocess.TimeoutExpired:
        process.kill()
        out, _err = process.communicate()
        hung = True
    results: list[tuple[int | None, str]] = []
    for line in out.decode("utf-8", "replace").splitlines():
        record = json.loads(line)
        if "rc" in record:
            results.append((record["rc"], record["err"]))
    if len(results) < len(cases):  # the case that was running when it ended
        results.append((None, "") if hung else (process.returncode, ""))
    while len(results) < len(cases):
        results.append((None, ""))
    return results


def judge_batch(cases: list[list], wanted: list[tuple[int | None, str | None]]) -> None:
    """Each case must end with its (exit status, text on stderr); None = any non-zero status."""
    results = run_batch(cases)
    outcomes = []
    for (rc, err), (want_rc, want_in) in zip(results, wanted):
        outcome = _classify(rc, err, want_rc=want_rc, want_in=want_in)
        TALLY.record(outcome)
        outcomes.append((outcome, rc, err.strip().splitlines()[-1:] if err else ""))
    assert all(o[0] == "clean" for o in outcomes), outcomes


# =========================================================================== 6. names not UTF-8


@pytest.mark.gui  # the last command opens the window (in a child)
def test_file_names_that_are_not_utf8_open_in_every_command(tmp_path, clip):
    folder = Path(os.fsdecode(bytes(tmp_path) + b"/caf\xe9"))  # Latin-1 e-acute: not UTF-8
    folder.mkdir()
    video = labelled(folder, clip, os.fsdecode(b"clip\xff"), (clip.with_suffix(".txt")).read_text())
    out = tmp_path / "out.txt"
    cases = [
        ["track", video, "--box", BOX, "--tracker", "identity", "--frames", "5", "--out", out],
        ["eval", video, "--tracker", "identity"],
        ["effort", video, "--tracker", "identity"],
        ["bench", video, "--tracker", "identity", "--frames", "3", "--box", BOX],
        ["gui", video, "--box", BOX, "--tracker", "identity", "--track", "--exit-when-done"],
    ]
    judge_batch(cases, [(0, None)] * len(cases))
    assert len(out.read_text().splitlines()) == 5


# =========================================================================== 7. threads


@pytest.mark.parametrize("threads", ["100000", "0", "-3", "x"])
def test_absurd_thread_counts_are_refused(threads, tmp_path, clip, capsys, restore_threads):
    for argv in (
        ["track", clip, "--box", BOX, "--tracker", "identity", "--out", tmp_path / "o.txt"],
        ["eval", clip, "--tracker", "identity"],
        ["effort", clip, "--tracker", "identity"],
        ["bench", "--tracker", "identity", "--frames", "2"],
        ["train", clip, "--out", tmp_path / "w.pt"],
    ):
        refused(capsys, [*argv, "--threads", threads])


# =========================================================================== 8. absurd boxes


@pytest.mark.parametrize("line", ["1,1,1e154,1e154", "1,1,inf,20", "-1e300,5,20,20", "5,5,20,2e6"])
def test_absurd_ground_truth_boxes_are_refused_naming_file_and_line(line, tmp_path, clip, capsys):
    lines = [f"{6 + 2 * i},11,20,20" for i in range(CLIP_FRAMES)]
    lines[3] = line
    video = labelled(tmp_path / "seq", clip, "bad", lines)
    gt = video.with_suffix(".txt").name
    for argv in (
        ["eval", video, "--tracker", "identity"],
        ["train", video, "--out", tmp_path / "w.pt", "--epochs", "1", "--val", "--device", "cpu"],
    ):
        with np.errstate(all="raise"):  # a numpy overflow warning would be an error here
            refused(capsys, argv, f"{gt}:4: ")


def test_effort_on_an_overflowing_box_ends(tmp_path, clip):
    lines = [f"{6 + 2 * i},11,20,20" for i in range(CLIP_FRAMES)]
    lines[0] = "1,1,1e154,1e154"  # effort used to loop forever on this
    video = labelled(tmp_path / "seq", clip, "bad", lines)
    judge_batch([["effort", video, "--tracker", "identity"]], [(2, "bad.txt:1: ")])


# =========================================================================== 9. FIFOs as input


def test_fifos_as_input_are_refused_not_waited_on(tmp_path, clip):
    fifo_video = tmp_path / "pipe.avi"
    os.mkfifo(fifo_video)
    seq = tmp_path / "seq"
    seq.mkdir()
    video = seq / "clip.avi"
    video.write_bytes(clip.read_bytes())
    os.mkfifo(seq / "clip.txt")  # a FIFO ground truth
    otb = tmp_path / "gt.txt"
    otb.write_text("11,11,20,20\n")
    project = tmp_path / "pipe.siamtrack.json"
    os.mkfifo(project)
    weights = tmp_path / "pipe.pt"
    os.mkfifo(weights)
    fifo_in = tmp_path / "in.xml"
    os.mkfifo(fifo_in)
    cases = [
        (["track", fifo_video, "--box", BOX, "--out", tmp_path / "o.txt"], "not a regular file"),
        (["eval", video, "--tracker", "identity"], "not a regular file"),  # its ground truth is the FIFO
        (["eval", fifo_video, "--tracker", "identity"], "not a regular file"),
        (["effort", video, "--tracker", "identity"], "not a regular file"),
        (["bench", fifo_video, "--tracker", "identity", "--box", BOX], "not a regular file"),
        (["convert", otb, tmp_path / "o.xml", "--to", "cvat", "--video", fifo_video], "not a regular file"),
        (["convert", fifo_in, tmp_path / "o.txt", "--from", "cvat", "--to", "otb"], "not a regular file"),
        (["train", project, "--out", tmp_path / "w.pt"], "not a regular file"),
        (["train", video, "--out", tmp_path / "w.pt"], "not a regular file"),
        (["gui", project, "--exit-when-done"], "not a regular file"),
        (["gui", fifo_video, "--exit-when-done"], "not a regular file"),
        (["track", video, "--box", BOX, "--weights", weights, "--out", tmp_path / "o.txt"], "not a regular"),
    ]
    train_init = ["train", clip, "--init", weights, "--out", tmp_path / "w.pt", "--cache-dir", tmp_path / "c"]
    judge_batch(
        [c for c, _ in cases] + [[*train_init, *TRAIN_FAST]],
        [(2, w) for _, w in cases] + [(1, "not a regular file")],
    )


# =========================================================================== 10. bench memory


def test_bench_caps_the_generated_clip_and_streams_it(tmp_path, capsys):
    refused(capsys, ["bench", "--tracker", "identity", "--frames", "100000000"], "SOURCE")
    from resources.demo_clip import iter_sequence, render_sequence
    from trackers.evaluation.bench import generate_clip

    frames, boxes = render_sequence(n_frames=4, size=(64, 48))
    streamed = list(iter_sequence(n_frames=4, size=(64, 48)))
    same = all(np.array_equal(a, f) and b == box for (f, box), a, b in zip(streamed, frames, boxes))
    judged("clean" if same and len(streamed) == 4 else "wrong", "the streamed clip differs")
    path, box = generate_clip(tmp_path, 3, size=(64, 48))
    judged(
        "clean"
        if path.is_file() and box == f"{boxes[0].x:g},{boxes[0].y:g},{boxes[0].w:g},{boxes[0].h:g}"
        else "wrong"
    )


# =========================================================================== 11. results that are not whole


def test_eval_exits_non_zero_when_a_sequence_failed(tmp_path, clip, media, capsys):
    folder = tmp_path / "seqs"
    labelled(folder, clip, "good", clip.with_suffix(".txt").read_text())
    broken = folder / "broken.avi"
    broken.write_bytes(media["random_bytes.avi"].read_bytes())
    (folder / "broken.txt").write_text(clip.with_suffix(".txt").read_text())
    report = tmp_path / "r.json"
    works(capsys, ["eval", folder, "--tracker", "identity", "--json", report], code=1, want_in="1 run failed")
    data = json.loads(report.read_text())
    sequences = data["trackers"]["identity"]["sequences"]
    judged("clean" if "error" in sequences["broken"] and "error" not in sequences["good"] else "wrong", data)


def test_a_damaged_video_is_scored_with_a_note_and_its_frame_counts(tmp_path, media, capsys):
    damaged = media["truncated_half.avi"]
    lines = [f"{6 + 2 * i},11,20,20" for i in range(20)]
    video = labelled(tmp_path / "seq", damaged, "damaged", lines)
    report = tmp_path / "r.json"
    _out, err = works(capsys, ["eval", video, "--tracker", "identity", "--json", report], want_in="note:")
    seq = json.loads(report.read_text())["trackers"]["identity"]["sequences"]["damaged"]
    judged("clean" if seq["frames_decoded"] < seq["frames_expected"] == 20 else "wrong", seq)
    works(capsys, ["effort", video, "--tracker", "identity"], want_in="decode")


def test_train_notes_a_damaged_video(tmp_path, media, capsys, restore_threads):
    lines = [f"{6 + 2 * i},11,20,20" for i in range(20)]
    video = labelled(tmp_path / "seq", media["truncated_half.avi"], "damaged", lines)
    works(
        capsys,
        ["train", video, "--out", tmp_path / "w.pt", "--cache-dir", tmp_path / "cache", *TRAIN_FAST],
        want_in="annotated frames decode",
    )


@pytest.mark.parametrize("command", ["eval", "effort"])
def test_a_short_ground_truth_is_said_not_silently_cut(command, tmp_path, clip, capsys):
    video = labelled(tmp_path / "seq", clip, "short", [f"{6 + 2 * i},11,20,20" for i in range(5)])
    _out, err = works(capsys, [command, video, "--tracker", "identity"], want_in="5 lines")


# =========================================================================== 12. boxes past the frame


def test_a_first_box_larger_than_the_frame_is_clipped_with_a_note(tmp_path, clip, capsys):
    out = tmp_path / "o.txt"
    works(
        capsys,
        ["track", clip, "--box", "0,0,100000,100000", "--tracker", "identity", "--frames", "3", "--out", out],
        want_in="clipped to 0,0,64,48",
    )
    boxes = [[float(v) for v in line.split(",")] for line in out.read_text().splitlines()]
    inside = all(x >= 0 and y >= 0 and x + w <= 64 and y + h <= 48 for x, y, w, h in boxes)
    judged("clean" if inside and len(boxes) == 3 else "wrong", boxes)
    refused(capsys, ["track", clip, "--box", "500,500,10,10", "--out", out], "outside")
    # bench too, on its source's frames and on the generated 1280x720 clip
    refused(
        capsys, ["bench", clip, "--tracker", "identity", "--frames", "2", "--box", "500,500,10,10"], "outside"
    )
    refused(
        capsys, ["bench", "--tracker", "identity", "--frames", "2", "--box", "5000,5000,10,10"], "outside"
    )
    works(
        capsys,
        ["bench", clip, "--tracker", "identity", "--frames", "2", "--box", "50,40,100,100"],
        want_in="clipped",
    )


# =========================================================================== 13. config values


@pytest.mark.parametrize(
    "item",
    [
        "context=nan",
        "context=-1",
        "total_stride=0",
        "exemplar_size=0",
        "scale_step=0",
        "upsample=0",
        "search_size=100000",
        "scale_count=4",
        "window_influence=inf",
        "exemplar_size=abc",
        "score_scale=0",
    ],
)
def test_config_values_that_make_no_sense_are_refused_naming_the_field(item, tmp_path, clip, capsys):
    field = item.split("=")[0]
    out = tmp_path / "o.txt"
    refused(capsys, ["track", clip, "--box", BOX, "--device", "cpu", "--set", item, "--out", out], field)
    refused(capsys, ["eval", clip, "--tracker", "siamfc-3s", "--set", item], field)
    judged("clean" if not out.exists() else "wrong")


@pytest.mark.parametrize(
    "tracker,item",
    [
        ("siamrpn", "center_size=4"),
        ("siamrpn", "lr=2"),
        ("siamrpn", "anchor_ratios=1"),
        ("siamrpn", "exemplar_size=87"),
        ("dsiam", "v_rate=nan"),
        ("dsiam", "lambda_w=0"),
        ("dsiam", "search_size=1023"),
    ],
)
def test_other_trackers_check_their_fields_too(tracker, item, clip, capsys):
    refused(capsys, ["eval", clip, "--tracker", tracker, "--set", item], item.split("=")[0])


# =========================================================================== 14. options, nesting, counts


@pytest.mark.parametrize(
    "option",
    [
        ["--freeze-layers", "99"],
        ["--freeze-layers", "-1"],
        ["--feature-cache", "-5"],
        ["--scale-jitter", "-5"],
        ["--scale-jitter", "nan"],
        ["--synthetic-ratio", "nan"],
        ["--synthetic-ratio", "2"],
        ["--epochs", "0"],
        ["--lr", "nan", "1"],
        ["--batch-size", "0"],
        ["--val-tail", "1.5"],
        ["--max-gap", "-1"],
    ],
)
def test_training_options_out_of_range_are_one_line(option, tmp_path, capsys):
    data = make_otb(tmp_path / "data", "Seq", frames=6)
    refused(capsys, ["train", "--tracker", "siamrpn", data, "--out", tmp_path / "w.pt", *option], option[0])


def _project(tmp_path: Path, clip: Path, frame_count: int, boxes: int = 1, bom: bool = False) -> Path:
    from app.model.project import content_hash

    frames = [{"index": i, "box": [10, 10, 20, 20], "origin": "keyframe"} for i in range(boxes)]
    data = {
        "format": "siamtrack-project",
        "version": 1,
        "video": {
            "path": str(clip),
            "content_hash": content_hash(clip),
            "frame_count": frame_count,
            "frame_size": [64, 48],
        },
        "frames": frames,
    }
    path = tmp_path / f"p{frame_count}-{boxes}.siamtrack.json"
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + json.dumps(data).encode("utf-8"))
    return path


def test_a_project_for_more_frames_than_its_video_is_refused_by_train(tmp_path, clip, capsys):
    from app.model.project import load_project

    good = _project(tmp_path, clip, CLIP_FRAMES)
    load_project(good)  # the layout is right: only the counts below are wrong
    for project in (_project(tmp_path, clip, 9_999_999), _project(tmp_path, clip, 25, boxes=25)):
        refused(capsys, ["train", project, "--out", tmp_path / "w.pt", "--val"], "frames but its video")


def test_files_nested_200000_deep_are_one_line(tmp_path, clip, capsys):
    deep = "[" * 200_000 + "]" * 200_000
    project = tmp_path / "deep.siamtrack.json"
    project.write_text(deep)
    refused(capsys, ["train", project, "--out", tmp_path / "w.pt"], "nested too deeply")
    coco = tmp_path / "deep.json"
    coco.write_text('{"images": ' + deep + "}")
    refused(capsys, ["convert", coco, tmp_path / "o.txt", "--from", "coco", "--to", "otb"])
    from app.model.project import ProjectError, load_project

    with pytest.raises(ProjectError, match="nested too deeply"):
        load_project(project)


# =========================================================================== 15. smaller things


def test_plot_without_a_suffix_says_where_it_wrote(tmp_path, clip, capsys):
    target = tmp_path / "plots"
    _out, err = works(capsys, ["eval", clip, "--tracker", "identity", "--plot", target])
    judged("clean" if f"wrote {target}.png" in err and Path(f"{target}.png").is_file() else "wrong", err)


@pytest.mark.parametrize(
    "option",
    [
        ["--rejoin-iou", "5"],
        ["--rejoin-iou", "nan"],
        ["--rejoin-frames", "-1"],
        ["--rejoin-frames", "0"],
        ["--iou", "nan"],
    ],
)
def test_effort_policy_values_out_of_range_are_refused(option, clip, capsys):
    refused(capsys, ["effort", clip, "--tracker", "identity", *option], option[0])


def test_a_project_with_a_byte_order_mark_is_read(tmp_path, clip, capsys, restore_threads):
    from app.model.project import load_project

    project = _project(tmp_path, clip, CLIP_FRAMES, boxes=CLIP_FRAMES, bom=True)
    session = load_project(project)
    judged("clean" if session.frame_count == CLIP_FRAMES else "wrong")
    works(
        capsys, ["train", project, "--out", tmp_path / "w.pt", "--cache-dir", tmp_path / "cache", *TRAIN_FAST]
    )


def test_a_project_held_by_another_instance_is_not_overwritten(tmp_path, clip):
    from app.model import project_lock
    from app.model.project import load_project, save_project

    project = _project(tmp_path, clip, CLIP_FRAMES)
    before = project.read_bytes()
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from app.model import project_lock; "
            f"project_lock.acquire({str(project)!r}); print('held', flush=True); sys.stdin.read()",
        ],
        env=_env(),
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        session = load_project(project)  # reading needs no lock
        with pytest.raises(project_lock.ProjectLockedError, match=f"pid {holder.pid}"):
            save_project(session, project)
        judged("clean" if project.read_bytes() == before else "replaced")
        # the app's second instance: the project opens, says who holds it, and refuses to save
        from app.model.document import VideoDocument

        document = VideoDocument.open(project)
        try:
            said = document.journal_problem or ""
            judged("clean" if f"pid {holder.pid}" in said else "wrong", said)
            document.session.clear(0, 1)
            with pytest.raises(project_lock.ProjectLockedError):
                document.save()
            judged("clean" if project.read_bytes() == before else "replaced")
        finally:
            document.close()
    finally:
        holder.stdin.close()
        holder.wait(timeout=HANG_TIMEOUT)
    save_project(session, project)  # the holder is gone: this process may save
    judged("clean" if not project_lock.lock_path(project).exists() else "wrong", "a lock left behind")
    project_lock.acquire(project)  # as an open document holds it
    judged("clean" if project_lock.lock_path(project).exists() else "wrong")
    project_lock.release(project)
    assert not project_lock.lock_path(project).exists()


# =========================================================================== seeded fuzz of the arguments


def test_seeded_bad_arguments_on_every_command(tmp_path, clip, capsys):
    """Random malformed boxes, numbers and --set values (seed 20) on every command: each one line."""
    rng = np.random.default_rng(20)
    junk = ["", "nan", "inf", "-inf", "1e400", "0x10", "1,2", "1,2,3,4,5", "a,b,c,d", "-5", "1e-400", "٣"]

    def bad_box() -> str:
        parts = [
            str(rng.choice(junk)) if rng.random() < 0.5 else f"{rng.uniform(-1e6, 1e6):g}" for _ in range(4)
        ]
        parts[2] = str(rng.choice(["0", "-1", "nan", "inf"]))
        return ",".join(parts[: int(rng.integers(2, 6))])

    out = tmp_path / "o.txt"
    for _ in range(12):
        refused(capsys, ["track", clip, "--box", bad_box(), "--out", out])
        # (not junk's last: int() reads the Arabic-Indic digit as 3, a fine frame count)
        refused(capsys, ["track", clip, "--box", BOX, "--frames", str(rng.choice(junk[1:-1])), "--out", out])
        refused(capsys, ["bench", "--tracker", "identity", "--box", bad_box()])
        refused(capsys, ["effort", clip, "--iou", str(rng.choice(["nan", "-1", "2", "inf"]))])
        refused(
            capsys,
            [
                "eval",
                clip,
                "--set",
                f"{rng.choice(['context', 'scale_step', 'upsample'])}="
                f"{rng.choice(['nan', '-1', '0', '1e9', 'x'])}",
            ],
        )
        refused(capsys, ["train", clip, "--out", out, "--epochs", str(rng.choice(["0", "-1", "nan", "x"]))])
        refused(
            capsys, ["convert", clip.with_suffix(".txt"), out, "--to", str(rng.choice(["", "otb2", "x"]))]
        )
        refused(capsys, ["gui", clip, "--box", bad_box(), "--exit-when-done"])
        refused(capsys, ["trax", "--tracker", str(rng.choice(["", "nope", "siamfc2"]))])
    judged("clean" if not out.exists() else "wrong", "a refused run wrote its output")
