"""OTB-style evaluation: metric definitions (got10k's), sequence loading, the run, the outputs."""

from __future__ import annotations

import json
import math
import os
import threading
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest

from tests.media import write_video
from trackers.evaluation import (
    PRECISION_THRESHOLDS,
    SUCCESS_THRESHOLDS,
    AnnotatedSequence,
    EvalReport,
    auc,
    center_error,
    evaluate,
    format_table,
    iou,
    load_sequences,
    precision_curve,
    precision_score,
    save_boxes,
    sequence_curves,
    success_curve,
)
from trackers.evaluation.plots import write_plot
from trackers.protocol import Tracker
from trackers.registry import create_tracker
from trackers.types import Box, Frame, TrackResult

REPO = Path(__file__).resolve().parents[2]


def shared_dir() -> Path:
    return Path(os.environ.get("SIAMTRACK_SHARED", REPO.parent / "shared"))


# --------------------------------------------------------------------------- metrics


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        ([0, 0, 10, 10], [0, 0, 10, 10], 1.0),  # identical
        ([0, 0, 10, 10], [20, 20, 10, 10], 0.0),  # disjoint
        ([0, 0, 10, 10], [10, 0, 10, 10], 0.0),  # touching edges: continuous boxes share no area
        ([0, 0, 10, 10], [5, 0, 10, 10], 1 / 3),  # half overlap: 50 / 150
        ([0, 0, 10, 10], [0, 0, 5, 5], 0.25),  # contained: 25 / 100
        ([0, 0, 10, 10], [5, 5, 10, 10], 25 / 175),  # quarter overlap
        ([2.5, 0, 1, 4], [0, 0, 10, 2], 2 / 22),  # fractional coordinates
        ([0, 0, 0, 10], [0, 0, 10, 10], 0.0),  # zero area
    ],
)
def test_iou_hand_computed(a: list[float], b: list[float], expected: float) -> None:
    assert iou([a], [b])[0] == pytest.approx(expected, abs=1e-12)
    assert iou([b], [a])[0] == pytest.approx(expected, abs=1e-12)


def test_iou_is_vectorised_and_checks_shapes() -> None:
    a = np.array([[0, 0, 10, 10], [0, 0, 10, 10]])
    b = np.array([[0, 0, 10, 10], [5, 0, 10, 10]])
    assert iou(a, b) == pytest.approx([1.0, 1 / 3])
    with pytest.raises(ValueError):
        iou(a, b[:1])
    with pytest.raises(ValueError):
        iou(np.zeros((2, 3)), np.zeros((2, 3)))


def test_center_error_hand_computed() -> None:
    assert center_error([[0, 0, 10, 10]], [[3, 4, 10, 10]])[0] == pytest.approx(5.0)
    # centres (5, 5) and (10, 10)
    assert center_error([[0, 0, 10, 10]], [[0, 0, 20, 20]])[0] == pytest.approx(math.sqrt(50))
    assert center_error([[1, 1, 4, 4]], [[1, 1, 4, 4]])[0] == 0.0


def test_success_curve_is_strict_at_thresholds() -> None:
    assert len(SUCCESS_THRESHOLDS) == 21
    half = success_curve([0.5])
    # 0.5 > t for t = 0, 0.05, ..., 0.45 but not for t = 0.5: strict '>'.
    assert list(half) == [1.0] * 10 + [0.0] * 11
    # A perfect frame misses only the last threshold (1.0 > 1.0 is false).
    assert list(success_curve([1.0])) == [1.0] * 20 + [0.0]
    assert list(success_curve([0.0])) == [0.0] * 21
    mixed = success_curve([1.0, 0.5, 0.0, 0.26])
    assert mixed[0] == pytest.approx(3 / 4)  # 0 > 0 is false
    assert mixed[5] == pytest.approx(3 / 4)  # t = 0.25: 1.0, 0.5, 0.26
    assert mixed[6] == pytest.approx(2 / 4)  # t = 0.30
    assert auc(success_curve([1.0])) == pytest.approx(20 / 21)


def test_precision_curve_is_inclusive_at_thresholds() -> None:
    assert list(PRECISION_THRESHOLDS) == list(range(51))
    at_20 = precision_curve([20.0])
    # 20 <= t from t = 20 on: inclusive '<='.
    assert list(at_20) == [0.0] * 20 + [1.0] * 31
    assert precision_score(at_20) == 1.0
    assert precision_score(precision_curve([20.000001])) == 0.0
    assert list(precision_curve([0.0])) == [1.0] * 51
    assert list(precision_curve([50.5])) == [0.0] * 51
    assert precision_score(precision_curve([0.0, 10.0, 20.0, 30.0])) == pytest.approx(3 / 4)


def test_first_frame_is_ground_truth_and_absent_frames_are_left_out() -> None:
    gt = np.array([[0, 0, 10, 10], [0, 0, 10, 10], [0, 0, 10, 10], [np.nan] * 4], dtype=float)
    pred = np.array([[99, 99, 1, 1], [0, 0, 10, 10], [5, 0, 10, 10], [500, 500, 3, 3]], dtype=float)
    succ, prec = sequence_curves(pred, gt)
    # Evaluated: frame 0 (replaced by GT: IoU 1), frame 1 (IoU 1), frame 2 (IoU 1/3);
    # frame 3 is absent. IoU 1 beats 20 thresholds, 1/3 beats 7 (0 .. 0.30).
    assert auc(succ) == pytest.approx((20 + 20 + 7) / (3 * 21))
    assert precision_score(prec) == 1.0  # errors 0, 0, 5


def test_absent_first_frame_starts_at_the_first_valid_one() -> None:
    gt = np.array([[np.nan] * 4, [0, 0, 10, 10], [0, 0, 10, 10]], dtype=float)
    pred = np.array([[np.nan] * 4, [40, 40, 10, 10], [5, 0, 10, 10]], dtype=float)
    succ, prec = sequence_curves(pred, gt)
    assert auc(succ) == pytest.approx((20 + 7) / (2 * 21))
    assert precision_score(prec) == 1.0


def test_untracked_frames_count_as_failures() -> None:
    gt = np.array([[0, 0, 10, 10]] * 3, dtype=float)
    pred = np.array([[0, 0, 10, 10], [0, 0, 10, 10], [np.nan] * 4])
    succ, prec = sequence_curves(pred, gt)
    assert auc(succ) == pytest.approx(40 / 63)
    assert precision_score(prec) == pytest.approx(2 / 3)


# --- an independent, loop-by-loop reading of got10k's definitions ---------------------------


def loop_iou(a: list[float], b: list[float]) -> float:
    ax0, ay0, ax1, ay1 = a[0], a[1], a[0] + a[2], a[1] + a[3]
    bx0, by0, bx1, by1 = b[0], b[1], b[0] + b[2], b[1] + b[3]
    iw = min(ax1, bx1) - max(ax0, bx0)
    ih = min(ay1, by1) - max(ay0, by0)
    inter = iw * ih if iw > 0 and ih > 0 else 0.0
    union = a[2] * a[3] + b[2] * b[3] - inter
    value = inter / (union + 2.220446049250313e-16)
    return min(max(value, 0.0), 1.0)


def loop_center_error(a: list[float], b: list[float]) -> float:
    # got10k's own centre convention, (w - 1) / 2, to show the offset cancels.
    dx = (a[0] + (a[2] - 1) / 2) - (b[0] + (b[2] - 1) / 2)
    dy = (a[1] + (a[3] - 1) / 2) - (b[1] + (b[3] - 1) / 2)
    return math.sqrt(dx * dx + dy * dy)


def loop_scores(pred: list[list[float]], gt: list[list[float]]) -> tuple[float, float]:
    pred = [list(p) for p in pred]
    pred[0] = list(gt[0])
    ious = [loop_iou(p, g) for p, g in zip(pred, gt, strict=True)]
    errors = [loop_center_error(p, g) for p, g in zip(pred, gt, strict=True)]
    succ = []
    for k in range(21):
        t = k / 20
        succ.append(sum(1 for v in ious if v > t) / len(ious))
    prec_at_20 = sum(1 for e in errors if e <= 20) / len(errors)
    return sum(succ) / len(succ), prec_at_20


def random_boxes(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    gt = np.column_stack(
        [
            rng.uniform(0, 300, n),
            rng.uniform(0, 200, n),
            rng.uniform(5, 80, n),
            rng.uniform(5, 80, n),
        ]
    )
    # Predictions near the truth, so every threshold sees both outcomes.
    pred = gt + rng.normal(0, 1, (n, 4)) * np.array([12, 12, 8, 8])
    pred[:, 2:] = np.abs(pred[:, 2:]) + 0.5
    return pred, gt


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matches_a_loop_reimplementation(seed: int) -> None:
    rng = np.random.default_rng(seed)
    pred, gt = random_boxes(rng, 300)
    expected_ious = [loop_iou(p, g) for p, g in zip(pred.tolist(), gt.tolist(), strict=True)]
    expected_errors = [
        loop_center_error(p, g) for p, g in zip(pred.tolist(), gt.tolist(), strict=True)
    ]
    assert iou(pred, gt) == pytest.approx(expected_ious, abs=1e-12)
    assert center_error(pred, gt) == pytest.approx(expected_errors, abs=1e-9)
    succ, prec = sequence_curves(pred, gt)
    expected_auc, expected_prec = loop_scores(pred.tolist(), gt.tolist())
    assert auc(succ) == pytest.approx(expected_auc, abs=1e-12)
    assert precision_score(prec) == pytest.approx(expected_prec, abs=1e-12)


def test_matches_got10k_when_installed() -> None:
    metrics = pytest.importorskip("got10k.utils.metrics", reason="got10k is not installed")
    rng = np.random.default_rng(7)
    pred, gt = random_boxes(rng, 500)
    assert iou(pred, gt) == pytest.approx(metrics.rect_iou(pred.copy(), gt.copy()), abs=1e-12)
    assert center_error(pred, gt) == pytest.approx(
        metrics.center_error(pred.copy(), gt.copy()), abs=1e-9
    )


# --------------------------------------------------------------------------- loading


def write_frames(folder: Path, count: int, size: tuple[int, int] = (48, 32)) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(count):
        image = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
        cv2.imwrite(str(folder / f"{i + 1:04d}.png"), image)


def make_otb(root: Path, name: str, lines: list[str], frames: int | None = None) -> Path:
    folder = root / name
    write_frames(folder / "img", len(lines) if frames is None else frames)
    (folder / "groundtruth_rect.txt").write_text("\n".join(lines) + "\n")
    return folder


def make_video(path: Path, count: int, size: tuple[int, int] = (64, 48)) -> Path:
    rng = np.random.default_rng(1)
    frames = (rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8) for _ in range(count))
    return write_video(path, frames, size, fps=10.0, fourcc="mp4v")


def test_otb_folder_with_mixed_separators_nan_and_short_lines(tmp_path: Path) -> None:
    folder = make_otb(
        tmp_path,
        "seq",
        ["5,6,10,12", "7\t8\t10\t12", "9 10 10 12", "NaN,NaN,NaN,NaN", "nan"],
    )
    (sequence,) = load_sequences([folder])
    assert sequence.name == "seq"
    assert sequence.source == folder
    gt = sequence.groundtruth
    assert gt.shape == (5, 4)
    # 1-based -> 0-based: x and y lose 1, sizes stay.
    assert gt[:3].tolist() == [[4, 5, 10, 12], [6, 7, 10, 12], [8, 9, 10, 12]]
    assert np.isnan(gt[3:]).all()
    # a short line is malformed, not absent: the import fails and names the line
    short = make_otb(tmp_path, "short", ["5,6,10,12", "1,2"])
    with pytest.raises(ValueError, match=r"groundtruth_rect.txt:2"):
        load_sequences([short])


def test_folder_of_folders_is_sorted_by_name(tmp_path: Path) -> None:
    for name in ["b_seq", "a_seq", "c_seq"]:
        make_otb(tmp_path, name, ["1,1,4,4", "2,2,4,4"])
    (tmp_path / "not_a_sequence").mkdir()
    names = [s.name for s in load_sequences([tmp_path])]
    assert names == ["a_seq", "b_seq", "c_seq"]
    # A single path works as well as a list.
    assert [s.name for s in load_sequences(tmp_path)] == names


def test_video_with_txt_beside_it(tmp_path: Path) -> None:
    video = make_video(tmp_path / "clip.mp4", 5)
    (tmp_path / "clip.txt").write_text("11,21,8,6\n12,21,8,6\n")
    make_video(tmp_path / "unlabelled.mp4", 3)
    (sequence,) = load_sequences([video])
    assert sequence.name == "clip"
    assert sequence.source == video
    assert sequence.groundtruth.tolist() == [[10, 20, 8, 6], [11, 20, 8, 6]]
    # Scanning the folder picks the labelled video and ignores the unlabelled one.
    assert [s.name for s in load_sequences([tmp_path])] == ["clip"]


def test_malformed_line_names_file_and_line(tmp_path: Path) -> None:
    folder = make_otb(tmp_path, "bad", ["1,1,4,4", "2,2,4,4", "3,x,4,4"])
    with pytest.raises(ValueError, match=r"groundtruth_rect\.txt:3"):
        load_sequences([folder])
    (folder / "groundtruth_rect.txt").write_text("1,1,4,4\n1,2,3,4,5\n")
    with pytest.raises(ValueError, match=r"groundtruth_rect\.txt:2"):
        load_sequences([folder])


def test_missing_ground_truth_names_the_path(tmp_path: Path) -> None:
    video = make_video(tmp_path / "lonely.mp4", 2)
    with pytest.raises(ValueError, match="lonely"):
        load_sequences([video])
    folder = tmp_path / "noseq"
    write_frames(folder / "img", 2)
    with pytest.raises(ValueError, match="noseq"):
        load_sequences([folder])
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ValueError, match="empty"):
        load_sequences([empty])


# --------------------------------------------------------------------------- running


def identity_factory(name: str) -> Tracker:
    return create_tracker(name)


# Frame 0's box is (4, 4, 10, 10) 0-based. Frame 1 is shifted 5 px (IoU 1/3, error 5),
# frame 2 absent, frame 3 shifted 20 px (IoU 0, error exactly 20).
TINY_GT = ["5,5,10,10", "10,5,10,10", "NaN,NaN,NaN,NaN", "25,5,10,10"]
TINY_AUC = (20 + 7 + 0) / (3 * 21)


def test_identity_tracker_gives_a_hand_computed_auc(tmp_path: Path) -> None:
    sequences = load_sequences([make_otb(tmp_path, "tiny", TINY_GT)])
    messages: list[str] = []
    report = evaluate(sequences, ["identity"], identity_factory, progress=messages.append)
    result = report.results["identity"]["tiny"]
    assert result.auc == pytest.approx(TINY_AUC)
    assert result.precision == 1.0
    assert result.frames == 4
    assert result.fps > 0
    assert result.boxes.tolist() == [[4, 4, 10, 10]] * 4
    assert report.success_curves["identity"] == pytest.approx(result.success_curve)
    assert report.precision_curves["identity"][19] == pytest.approx(2 / 3)
    assert any("tiny" in m for m in messages)


def test_ground_truth_longer_or_shorter_than_the_frames(tmp_path: Path) -> None:
    long_gt = make_otb(tmp_path, "long_gt", TINY_GT + ["5,5,10,10"] * 3, frames=4)
    short_gt = make_otb(tmp_path, "short_gt", TINY_GT[:2], frames=6)
    report = evaluate(load_sequences([long_gt, short_gt]), ["identity"], identity_factory)
    assert report.results["identity"]["long_gt"].frames == 4
    assert report.results["identity"]["long_gt"].auc == pytest.approx(TINY_AUC)
    assert report.results["identity"]["short_gt"].frames == 2
    assert report.results["identity"]["short_gt"].auc == pytest.approx((20 + 7) / 42)


def test_absent_first_frame_starts_later(tmp_path: Path) -> None:
    folder = make_otb(tmp_path, "late", ["NaN,NaN,NaN,NaN"] + TINY_GT)
    report = evaluate(load_sequences([folder]), ["identity"], identity_factory)
    result = report.results["identity"]["late"]
    assert result.frames == 4
    assert np.isnan(result.boxes[0]).all()
    assert result.auc == pytest.approx(TINY_AUC)


class ExplodingTracker:
    name = "exploding"

    def init(self, frame: Frame, box: Box) -> None:
        self._box = box

    def update(self, frame: Frame) -> TrackResult:
        raise RuntimeError("boom\non two lines")


def make_two(tmp_path: Path) -> list[AnnotatedSequence]:
    return load_sequences(
        [make_otb(tmp_path, "one", TINY_GT), make_otb(tmp_path, "two", TINY_GT[:2])]
    )


def test_json_contract(tmp_path: Path) -> None:
    report = evaluate(make_two(tmp_path), ["identity"], identity_factory)
    data = report.to_json()
    assert list(data) == ["trackers", "complete"] and data["complete"] is True
    assert list(data["trackers"]) == ["identity"]
    entry = data["trackers"]["identity"]
    assert set(entry) == {"mean", "sequences"}
    assert set(entry["mean"]) == {"auc", "precision", "fps"}
    assert list(entry["sequences"]) == ["one", "two"]
    for seq in entry["sequences"].values():
        assert set(seq) == {"auc", "precision", "fps", "frames", "frames_expected", "frames_decoded"}
        assert type(seq["frames"]) is int
        assert seq["frames_decoded"] == seq["frames_expected"]  # nothing damaged: every frame scored
        for key in ("auc", "precision", "fps"):
            assert type(seq[key]) is float
    for value in entry["mean"].values():
        assert type(value) is float
    assert entry["mean"]["auc"] == pytest.approx((TINY_AUC + 27 / 42) / 2)
    # Plain types all the way down: strict JSON round-trips it unchanged.
    assert json.loads(json.dumps(data, allow_nan=False)) == data


def test_a_failing_sequence_is_recorded_and_excluded(tmp_path: Path) -> None:
    sequences = make_two(tmp_path)
    built: list[str] = []

    def factory(name: str) -> Tracker:
        built.append(name)
        # Fails on the first sequence only: a fresh tracker is built after a failure.
        return ExplodingTracker() if len(built) == 1 else create_tracker("identity")

    report = evaluate(sequences, ["mixed"], factory)
    data = report.to_json()["trackers"]["mixed"]
    assert "boom" in data["sequences"]["one"]["error"]
    assert "\n" not in data["sequences"]["one"]["error"]
    assert "error" not in data["sequences"]["two"]
    assert data["mean"]["auc"] == pytest.approx(data["sequences"]["two"]["auc"])
    assert len(built) == 2
    table = format_table(report)
    assert "1 failed, excluded" in table
    assert "boom" in table
    json.dumps(report.to_json(), allow_nan=False)


def test_tracker_that_cannot_be_built(tmp_path: Path) -> None:
    def factory(name: str) -> Tracker:
        return create_tracker(name)

    report = evaluate(make_two(tmp_path), ["no-such-tracker"], factory)
    data = report.to_json()["trackers"]["no-such-tracker"]
    assert all("unknown tracker" in s["error"] for s in data["sequences"].values())
    assert data["mean"] == {"auc": None, "precision": None, "fps": None}


def test_cancel_stops_and_says_so(tmp_path: Path) -> None:
    cancel = threading.Event()
    cancel.set()
    report = evaluate(make_two(tmp_path), ["identity"], identity_factory, cancel=cancel)
    assert report.cancelled
    assert report.results["identity"] == {}


def test_table_lists_every_row(tmp_path: Path) -> None:
    report = evaluate(make_two(tmp_path), ["identity"], identity_factory)
    lines = format_table(report).splitlines()
    assert lines[0].split() == ["tracker", "sequence", "AUC", "Prec@20", "fps", "frames"]
    rows = [line.split() for line in lines[2:] if line.strip()]
    assert [r[1] for r in rows] == ["one", "two", "mean"]
    assert rows[0][2] == f"{TINY_AUC:.3f}"
    assert rows[2][-1] == "6"


def test_save_boxes(tmp_path: Path) -> None:
    folder = make_otb(tmp_path / "data", "late", ["NaN,NaN,NaN,NaN"] + TINY_GT)
    report = evaluate(load_sequences([folder]), ["identity"], identity_factory)
    out = save_boxes(report, tmp_path / "out")
    lines = (out / "identity" / "late.txt").read_text().splitlines()
    assert lines[0] == "nan,nan,nan,nan"
    assert [float(v) for v in lines[1].split(",")] == [4, 4, 10, 10]
    assert len(lines) == 5
    assert json.loads((out / "report.json").read_text()) == report.to_json()


def test_write_plot(tmp_path: Path) -> None:
    report = evaluate(make_two(tmp_path), ["identity"], identity_factory)
    path = write_plot(report, tmp_path / "plots" / "otb.png")
    image = cv2.imread(str(path))
    assert image is not None and image.shape[0] > 300 and image.shape[1] > 2 * image.shape[0]
    # Something was drawn besides the white page: axes, text and the curve's colour.
    assert (image < 128).any()
    empty = write_plot(EvalReport(trackers=["x"], sequences=[]), tmp_path / "empty")
    assert empty.suffix == ".png" and cv2.imread(str(empty)) is not None


# --------------------------------------------------------------------------- real data


@pytest.mark.slow
def test_csrt_on_a_real_sequence() -> None:
    folder = shared_dir() / "data" / "sequences" / "OTB100_Football1"
    if not folder.is_dir():
        pytest.skip(f"shared data not found at {folder} (set SIAMTRACK_SHARED)")
    sequences = load_sequences([folder])
    make: Callable[[str], Tracker] = create_tracker
    report = evaluate(sequences, ["cv-csrt"], make)
    data = report.to_json()["trackers"]["cv-csrt"]
    seq = data["sequences"]["OTB100_Football1"]
    assert "error" not in seq
    assert set(seq) == {"auc", "precision", "fps", "frames", "frames_expected", "frames_decoded"}
    assert seq["frames"] == len(sequences[0].groundtruth)
    assert 0.0 <= seq["auc"] <= 1.0 and 0.0 <= seq["precision"] <= 1.0
    assert seq["fps"] > 0


def test_no_import_cycle_between_evaluation_and_formats():
    """The annotated-sequence class lives in trackers.types, so the formats that build one
    (got10k) need nothing of trackers.evaluation, which reads them (issue 19, item 2)."""
    grimp = pytest.importorskip("grimp")
    graph = grimp.build_graph("trackers")
    for module in ("trackers.evaluation.datasets", "trackers.evaluation.run"):
        assert graph.find_shortest_chain(importer="trackers.formats.got10k", imported=module) is None
    assert graph.find_shortest_chain(importer="trackers.types", imported="trackers.evaluation") is None
