"""The command line's contracts: output lines, start frame, and one-line errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from app.cli import main
from tests.media import write_clip
from trackers.siamfc.network import ARCHITECTURE, SiamFCNet, init_weights
from trackers.weights.checkpoint import save_checkpoint

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    """A 12-frame MJPG clip with its exact 0-based boxes."""
    path = tmp_path_factory.mktemp("clip") / "clip.avi"
    return path, write_clip(path, n_frames=12, seed=5)


def box_arg(box) -> str:
    return f"{box.x:g},{box.y:g},{box.w:g},{box.h:g}"


def read_boxes(path: Path) -> np.ndarray:
    return np.loadtxt(path, delimiter=",", ndmin=2)


def test_track_writes_one_zero_based_line_per_frame(clip, tmp_path, capsys):
    path, boxes = clip
    out = tmp_path / "out.txt"
    rc = main(["track", str(path), "--box", box_arg(boxes[0]), "--tracker", "identity", "--out", str(out)])
    assert rc == 0
    lines = read_boxes(out)
    assert lines.shape == (12, 4)
    np.testing.assert_allclose(lines[0], boxes[0].as_array())
    assert "12/12" in capsys.readouterr().err  # progress and summary go to stderr


def test_track_from_start_frame_for_n_frames(clip, tmp_path):
    path, boxes = clip
    out = tmp_path / "out.txt"
    args = ["track", str(path), "--box", box_arg(boxes[4]), "--start-frame", "4", "--frames", "5"]
    assert main(args + ["--tracker", "identity", "--out", str(out)]) == 0
    lines = read_boxes(out)
    assert lines.shape == (5, 4)
    np.testing.assert_allclose(lines[0], boxes[4].as_array())


def test_track_siamfc_runs_and_warns_when_untrained(clip, tmp_path, capsys):
    path, boxes = clip
    out = tmp_path / "out.txt"
    net = SiamFCNet()
    init_weights(net)
    weights = save_checkpoint(tmp_path / "w.pt", net.state_dict(), architecture=ARCHITECTURE, config={})
    args = ["track", str(path), "--box", box_arg(boxes[0]), "--frames", "3", "--tracker", "siamfc-3s"]
    assert main(args + ["--weights", str(weights), "--device", "cpu", "--out", str(out)]) == 0
    assert read_boxes(out).shape == (3, 4)
    assert "RANDOM" not in capsys.readouterr().err


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--box", "1,2,3"], "4 numbers"),
        (["--box", "10,10,0,5"], "positive width"),
        (["--box", "500,500,10,10"], "outside"),
        (["--box", "10,10,20,20", "--start-frame", "99"], "past the end"),
        (["--box", "10,10,20,20", "--tracker", "nope"], "unknown tracker"),
        (["--box", "10,10,20,20", "--tracker", "siamfc", "--weights", "/no/such/weights.pt"], "not found"),
        (["--box", "10,10,20,20", "--frames", "0"], ">= 1"),
    ],
)
def test_track_errors_are_one_line(clip, tmp_path, capsys, extra, message):
    path, _ = clip
    try:
        rc = main(["track", str(path), "--out", str(tmp_path / "o.txt"), *extra])
    except SystemExit as exc:  # argparse's own usage errors
        rc = exc.code
    assert rc == 2
    err = capsys.readouterr().err
    assert message in err
    assert "Traceback" not in err
    assert not (tmp_path / "o.txt").exists()


def test_missing_and_non_video_sources(tmp_path, capsys):
    fake = tmp_path / "notes.mp4"
    fake.write_text("this is not a video")
    for source in (tmp_path / "missing.mp4", fake):
        assert main(["track", str(source), "--box", "1,1,5,5", "--out", str(tmp_path / "o.txt")]) == 2
        err = capsys.readouterr().err.strip()
        assert err.count("\n") == 0 and str(source.name) in err


def test_corrupt_weights_are_one_line(clip, tmp_path, capsys):
    path, boxes = clip
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"\x00" * 100)
    rc = main(
        [
            "track",
            str(path),
            "--box",
            box_arg(boxes[0]),
            "--weights",
            str(bad),
            "--out",
            str(tmp_path / "o.txt"),
        ]
    )
    assert rc == 2
    err = capsys.readouterr().err
    assert "bad.pt" in err and "Traceback" not in err


def test_console_script_error_has_no_traceback(tmp_path):
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "app.cli",
            "track",
            str(tmp_path / "none.mp4"),
            "--box",
            "1,1,5,5",
            "--out",
            "x",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_eval_prints_table_and_writes_json_and_plot(clip, tmp_path, capsys):
    import json

    path, boxes = clip
    gt = path.with_suffix(".txt")
    gt.write_text("".join(f"{b.x + 1:g},{b.y + 1:g},{b.w:g},{b.h:g}\n" for b in boxes))
    out_json, out_png = tmp_path / "r.json", tmp_path / "r.png"
    rc = main(["eval", str(path), "--tracker", "identity", "--tracker", "cv-mil",
               "--json", str(out_json), "--plot", str(out_png)])
    assert rc == 0
    table = capsys.readouterr().out
    assert "identity" in table and "cv-mil" in table and "AUC" in table
    report = json.loads(out_json.read_text())
    seq = report["trackers"]["identity"]["sequences"]["clip"]
    assert set(seq) >= {"auc", "precision", "fps", "frames"} and seq["frames"] == 12
    assert set(report["trackers"]["cv-mil"]["mean"]) == {"auc", "precision", "fps"}
    assert cv2.imread(str(out_png)) is not None


def test_eval_without_ground_truth_is_one_line(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert main(["eval", str(tmp_path / "empty")]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_untrained_siamfc_is_flagged_in_eval_output(clip, tmp_path, capsys, monkeypatch):
    import json

    import trackers.siamfc.tracker as siamfc_tracker

    monkeypatch.setattr(siamfc_tracker, "default_weights_path", lambda: tmp_path / "absent.pt")
    path, boxes = clip
    path.with_suffix(".txt").write_text("".join(f"{b.x + 1:g},{b.y + 1:g},{b.w:g},{b.h:g}\n" for b in boxes))
    out_json = tmp_path / "r.json"
    assert (
        main(["eval", str(path), "--tracker", "siamfc-3s", "--device", "cpu", "--json", str(out_json)]) == 0
    )
    captured = capsys.readouterr()
    assert "RANDOM" in captured.out and "RANDOM" in captured.err
    assert json.loads(out_json.read_text())["trackers"]["siamfc-3s"]["untrained"] is True


def test_convert_otb_to_cvat_and_back(tmp_path, capsys):
    otb = tmp_path / "groundtruth_rect.txt"
    otb.write_text("11,21,30,40\nNaN,NaN,NaN,NaN\n13,23,30,40\n")
    cvat = tmp_path / "track.xml"
    assert main(["convert", str(otb), str(cvat), "--to", "cvat"]) == 0
    assert "<track" in cvat.read_text()
    back = tmp_path / "back.txt"
    assert main(["convert", str(cvat), str(back), "--to", "otb"]) == 0
    assert back.read_text().splitlines() == ["11,21,30,40", "NaN,NaN,NaN,NaN", "13,23,30,40"]


def test_convert_error_is_one_line(tmp_path, capsys):
    bad = tmp_path / "groundtruth_rect.txt"
    bad.write_text("1,2,3,4\n1,2\n")
    assert main(["convert", str(bad), str(tmp_path / "o.xml"), "--to", "cvat"]) == 2
    err = capsys.readouterr().err.strip()
    assert "groundtruth_rect.txt" in err and ":2" in err and "\n" not in err


def test_eval_reads_a_got10k_export(clip, tmp_path, capsys):
    from trackers.formats import export_got10k_dataset
    from trackers.trajectory import Origin, Trajectory

    path, boxes = clip
    trajectory = Trajectory.from_boxes(
        np.stack([b.as_array() for b in boxes]), Origin.KEYFRAME, frame_size=(160, 120)
    )
    folder = export_got10k_dataset(trajectory, path, tmp_path / "dataset", "clip")
    assert main(["eval", str(folder.parent), "--tracker", "identity"]) == 0
    assert "clip" in capsys.readouterr().out


def test_set_overrides_reach_the_tracker_and_unknown_keys_fail(clip, tmp_path, capsys):
    import json

    path, boxes = clip
    path.with_suffix(".txt").write_text("".join(f"{b.x + 1:g},{b.y + 1:g},{b.w:g},{b.h:g}\n" for b in boxes))
    out = tmp_path / "r.json"
    args = ["eval", str(path), "--tracker", "siamfc-3s", "--device", "cpu", "--json", str(out)]
    assert main(args + ["--set", "precision=fp32", "--set", "scale_lr=0.5"]) == 0
    assert "error" not in json.loads(out.read_text())["trackers"]["siamfc-3s"]["sequences"]["clip"]
    # checked before the run: one line naming the key, not an error on every sequence (issue 20.13)
    assert main(args + ["--set", "scale_lrr=0.5"]) == 2
    assert "scale_lrr" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(args + ["--set", "precision"])


def test_eval_first_ctrl_c_reports_what_finished(clip, tmp_path, capsys, monkeypatch):
    import json
    import os
    import shutil
    import signal

    from trackers.evaluation import run as evaluation

    path, boxes = clip
    lines = "".join(f"{b.x + 1:g},{b.y + 1:g},{b.w:g},{b.h:g}\n" for b in boxes)
    folder = tmp_path / "seqs"
    folder.mkdir()
    for name in ("a", "b", "c"):
        shutil.copy(path, folder / f"{name}.avi")
        (folder / f"{name}.txt").write_text(lines)
    real = evaluation._run_sequence
    calls = []

    def run_then_interrupt(*args, **kwargs):
        result = real(*args, **kwargs)
        calls.append(1)
        if len(calls) == 1:  # Ctrl-C after the first sequence
            os.kill(os.getpid(), signal.SIGINT)
        return result

    monkeypatch.setattr(evaluation, "_run_sequence", run_then_interrupt)
    out_json = tmp_path / "r.json"
    # Python's own handler to start from, whatever this test process inherited (a
    # background job starts with SIGINT ignored); the command must put it back.
    inherited = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        rc = main(["eval", str(folder), "--tracker", "identity", "--json", str(out_json)])
        restored = signal.getsignal(signal.SIGINT)
    finally:
        signal.signal(signal.SIGINT, inherited)
    captured = capsys.readouterr()
    # Cut short: the finished runs are kept, marked incomplete, and the exit says so (issue 20.11).
    assert rc == 130 and "1 of 3 runs that finished" in captured.err
    report = json.loads(out_json.read_text())
    assert list(report["trackers"]["identity"]["sequences"]) == ["a"] and report["complete"] is False
    assert restored is signal.default_int_handler


def test_test_doubles_are_accepted_but_never_offered(clip, tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["track", "--help"])
    help_text = capsys.readouterr().out
    assert "siamfc" in help_text and "identity" not in help_text
    assert main(["track", str(clip[0]), "--box", "10,10,20,20", "--frames", "2", "--tracker", "identity",
                 "--out", str(tmp_path / "t.txt")]) == 0
    capsys.readouterr()
    with pytest.raises(SystemExit):
        main(["eval", str(clip[0]), "--tracker", "nope"])
    error = capsys.readouterr().err
    assert "unknown tracker 'nope'" in error and "identity" not in error
