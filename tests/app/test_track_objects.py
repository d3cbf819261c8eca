"""``siamtrack track`` with several ``--box``: MOT 1.1 out, one decode, batched crops, same boxes."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from app.cli import main
from tests.media import write_clip
from trackers.batch import make_trackers
from trackers.evaluation import read_groundtruth
from trackers.formats import mot
from trackers.registry import create_tracker
from trackers.run import track_frames, track_frames_multi
from trackers.siamfc.network import ARCHITECTURE, SiamFCNet, init_weights
from trackers.sources import open_source
from trackers.types import Box
from trackers.weights.checkpoint import save_checkpoint

JOGGING = Path(__file__).resolve().parents[3] / "shared" / "data" / "sequences"


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    path = tmp_path_factory.mktemp("clip") / "clip.avi"
    return path, write_clip(path, n_frames=10, seed=5)


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    torch.manual_seed(0)
    net = SiamFCNet()
    init_weights(net)
    return save_checkpoint(
        tmp_path_factory.mktemp("w") / "w.pt", net.state_dict(), architecture=ARCHITECTURE, config={}
    )


def test_several_boxes_write_mot_with_one_based_frames_and_ids_in_box_order(clip, tmp_path):
    path, _ = clip
    out = tmp_path / "out.txt"
    rc = main(
        [
            "track",
            str(path),
            "--box",
            "10,20,30,40",
            "--box",
            "50.5,5,8,9",
            "--start-frame",
            "2",
            "--tracker",
            "identity",
            "--out",
            str(out),
        ]
    )
    assert rc == 0
    lines = out.read_text().splitlines()
    assert len(lines) == 2 * 8
    assert lines[0] == "3,1,11.000,21.000,30.000,40.000,1.0000,-1,-1,-1"
    assert lines[1] == "3,2,51.500,6.000,8.000,9.000,1.0000,-1,-1,-1"
    assert lines[-1].startswith("10,2,")
    # our MOT reader (1-based frames and pixels) gives each object's boxes back
    first = mot.read(out, track=1, frame_count=10)
    assert first[2].box == Box(10, 20, 30, 40) and first[9].box == Box(10, 20, 30, 40)


def test_a_box_outside_the_frame_names_its_object(clip, tmp_path, capsys):
    path, _ = clip
    rc = main(
        [
            "track",
            str(path),
            "--box",
            "1,1,5,5",
            "--box",
            "900,900,5,5",
            "--tracker",
            "identity",
            "--out",
            str(tmp_path / "o.txt"),
        ]
    )
    assert rc == 2
    err = capsys.readouterr().err
    assert "object 2" in err and "Traceback" not in err and not (tmp_path / "o.txt").exists()


def test_batched_siamfc_gives_each_object_its_one_object_boxes(clip, tmp_path, weights):
    """fp32: batching changes no box (batch norm is folded, a crop's features are its own)."""
    path, boxes = clip
    second = Box(boxes[0].x + 40, boxes[0].y + 10, 20, 20)
    common = [
        "--tracker",
        "siamfc-3s",
        "--weights",
        str(weights),
        "--device",
        "cpu",
        "--set",
        "precision=fp32",
    ]
    singles = []
    for k, box in enumerate((boxes[0], second)):
        out = tmp_path / f"one{k}.txt"
        assert (
            main(
                [
                    "track",
                    str(path),
                    "--box",
                    f"{box.x:g},{box.y:g},{box.w:g},{box.h:g}",
                    *common,
                    "--out",
                    str(out),
                ]
            )
            == 0
        )
        singles.append(np.loadtxt(out, delimiter=","))
    out = tmp_path / "many.txt"
    assert (
        main(
            [
                "track",
                str(path),
                "--box",
                f"{boxes[0].x:g},{boxes[0].y:g},{boxes[0].w:g},{boxes[0].h:g}",
                "--box",
                f"{second.x:g},{second.y:g},20,20",
                *common,
                "--out",
                str(out),
            ]
        )
        == 0
    )
    rows = np.loadtxt(out, delimiter=",")
    for k in range(2):
        mine = rows[rows[:, 1] == k + 1][:, 2:6]
        mine[:, :2] -= 1.0
        np.testing.assert_allclose(mine, singles[k], atol=2e-3)


def test_objects_stop_on_their_own(clip, weights):
    path, boxes = clip
    with open_source(path) as source:
        frames = [source[i] for i in range(6)]
    first = create_tracker("siamfc-3s", weights=weights, device="cpu", config={"precision": "fp32"})
    trackers = make_trackers(first, 3)
    assert trackers[1].batch_key() == trackers[0].batch_key()
    # a twin searching a different image side (siamfc's 319 beside siamfc-3s's 255) is never
    # stacked into the same batch
    other = first.spawn()
    other.config = replace(other.config, search_size=319, score_size=25)
    assert other.batch_key() != first.batch_key()
    b = boxes[0]
    steps = list(
        track_frames_multi(trackers, frames, [b, b, b], lengths=[6, 3, None], keep_going=lambda k: k != 2)
    )
    assert [s.results[1] is None for s in steps] == [False] * 3 + [True] * 3
    assert all(s.results[2] is None for s in steps[1:]) and steps[0].results[2] is not None
    single = [
        s.result.box
        for s in track_frames(
            create_tracker("siamfc-3s", weights=weights, device="cpu", config={"precision": "fp32"}),
            frames,
            b,
        )
    ]
    assert [s.results[0].box for s in steps] == pytest.approx(single)


def _auc(boxes: np.ndarray, truth: np.ndarray) -> float:
    from trackers.evaluation import auc, sequence_curves

    return auc(sequence_curves(boxes, truth)[0])


@pytest.mark.slow
@pytest.mark.skipif(not (JOGGING / "OTB100_Jogging-1").is_dir(), reason="../shared/data/sequences is absent")
def test_jogging_two_targets_in_one_run_score_what_one_object_runs_score(tmp_path):
    """The two Jogging targets in the same frames (first 40 frames, bundled SiamFC weights, fp32)."""
    folder = JOGGING / "OTB100_Jogging-1"
    truths = [read_groundtruth(JOGGING / f"OTB100_Jogging-{k}" / "groundtruth_rect.txt")[:40] for k in (1, 2)]
    common = ["--tracker", "siamfc-3s", "--device", "cpu", "--frames", "40", "--set", "precision=fp32"]
    box_args = [f"{t[0][0]:g},{t[0][1]:g},{t[0][2]:g},{t[0][3]:g}" for t in truths]
    singles = []
    for k in range(2):
        out = tmp_path / f"one{k}.txt"
        assert main(["track", str(folder), "--box", box_args[k], *common, "--out", str(out)]) == 0
        singles.append(_auc(np.loadtxt(out, delimiter=","), truths[k]))
    out = tmp_path / "both.txt"
    assert (
        main(["track", str(folder), "--box", box_args[0], "--box", box_args[1], *common, "--out", str(out)])
        == 0
    )
    rows = np.loadtxt(out, delimiter=",")
    for k in range(2):
        mine = rows[rows[:, 1] == k + 1][:, 2:6]
        mine[:, :2] -= 1.0
        assert _auc(mine, truths[k]) == pytest.approx(singles[k], abs=1e-6)


@pytest.mark.parametrize("name", ["siamfc", "siamrpn", "dsiam"])
def test_every_siamese_tracker_gives_each_object_its_one_object_boxes_in_fp32(clip, name):
    """SiamFC and SiamRPN batch (shared network), DSiam runs one by one; none changes a box."""
    path, boxes = clip
    with open_source(path) as source:
        frames = [source[i] for i in range(5)]
    second = Box(boxes[0].x + 40, boxes[0].y + 10, 20, 20)

    def make():
        return create_tracker(name, device="cpu", config={"precision": "fp32"})

    trackers = make_trackers(make(), 2, make)
    assert (trackers[1].__class__ is trackers[0].__class__) and (
        (getattr(trackers[1], "batch_key", lambda: None)() == getattr(trackers[0], "batch_key", lambda: 0)())
        == (name != "dsiam")
    )
    steps = list(track_frames_multi(trackers, frames, [boxes[0], second]))
    for k, box in enumerate((boxes[0], second)):
        alone = [s.result.box for s in track_frames(make(), frames, box)]
        assert [s.results[k].box for s in steps] == pytest.approx(alone)
