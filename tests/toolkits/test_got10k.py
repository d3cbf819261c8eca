"""The got10k adapter: box conventions at the edge, and a real ExperimentGOT10k run.

got10k is not a siamtrack dependency. The tests that need it skip when it is not
importable; to run them (see tools/vot/README.md)::

    python3 -m venv /tmp/g10kvenv
    /tmp/g10kvenv/bin/pip install got10k six numpy==<the app's numpy>
    PYTHONPATH=/tmp/g10kvenv/lib/python3.11/site-packages .venv/bin/pytest tests/toolkits
"""

from __future__ import annotations

import math
import sys
import types
from pathlib import Path

import cv2
import numpy as np
import pytest

from resources.demo_clip import hidden_fraction, render_sequence
from trackers.identity import IdentityTracker
from trackers.protocol import TrackerError
from trackers.registry import create_tracker
from trackers.toolkits.got10k_adapter import (
    bound_boxes,
    got10k_ao,
    got10k_sequence_ious,
    got10k_tracker,
)
from trackers.types import Box

SKIP_REASON = (
    "got10k is not importable (pip install got10k six in a separate venv; see this module's docstring)"
)


def _require_got10k():
    return pytest.importorskip("got10k.experiments", reason=SKIP_REASON)


# --------------------------------------------------------------------------- without got10k


class _FakeBase:
    """Stands in for got10k.trackers.Tracker where got10k is not installed."""

    def __init__(self, name: str, is_deterministic: bool = False) -> None:
        self.name = name
        self.is_deterministic = is_deterministic


@pytest.fixture
def fake_got10k(monkeypatch: pytest.MonkeyPatch) -> None:
    package = types.ModuleType("got10k")
    trackers_module = types.ModuleType("got10k.trackers")
    trackers_module.Tracker = _FakeBase  # type: ignore[attr-defined]
    package.trackers = trackers_module  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "got10k", package)
    monkeypatch.setitem(sys.modules, "got10k.trackers", trackers_module)


def test_missing_got10k_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    # A None entry in sys.modules makes the import raise ImportError, installed or not.
    monkeypatch.setitem(sys.modules, "got10k", None)
    monkeypatch.setitem(sys.modules, "got10k.trackers", None)
    with pytest.raises(TrackerError, match="pip install got10k six"):
        got10k_tracker("identity")


def test_adapter_shifts_one_based_boxes_at_the_edge(fake_got10k: None) -> None:
    adapter = got10k_tracker("identity")
    assert isinstance(adapter, _FakeBase)
    assert adapter.name == "identity" and adapter.is_deterministic
    frame = np.zeros((50, 60, 3), np.uint8)
    # got10k hands over the 1-based line of groundtruth.txt ...
    adapter.init(frame, np.array([11.0, 21.0, 30.0, 20.0]))
    # ... the siamtrack tracker sees 0-based pixels ...
    assert isinstance(adapter.tracker, IdentityTracker)
    assert adapter.tracker._box == Box(10.0, 20.0, 30.0, 20.0)
    # ... and got10k gets its own convention back.
    out = adapter.update(frame)
    np.testing.assert_array_equal(out, [11.0, 21.0, 30.0, 20.0])
    assert adapter.last_result is not None and adapter.last_result.box == Box(10.0, 20.0, 30.0, 20.0)


def test_adapter_without_shift_and_with_a_label(fake_got10k: None) -> None:
    adapter = got10k_tracker("identity", one_based=False, label="mine", is_deterministic=False)
    assert adapter.name == "mine" and not adapter.is_deterministic
    frame = np.zeros((50, 60, 3), np.uint8)
    adapter.init(frame, [11, 21, 30, 20])
    np.testing.assert_array_equal(adapter.update(frame), [11.0, 21.0, 30.0, 20.0])


def test_adapter_refuses_an_empty_initial_box(fake_got10k: None) -> None:
    adapter = got10k_tracker("identity")
    with pytest.raises(ValueError, match="positive size"):
        adapter.init(np.zeros((10, 10, 3), np.uint8), [1, 1, 0, 5])


def test_bound_boxes_moves_a_box_back_into_the_frame() -> None:
    # got10k's rule: clip x to [0, W], then w to [0, W - x]: the box is moved, not cut.
    out = bound_boxes([[-5.0, 10.0, 20.0, 10.0], [95.0, -3.0, 20.0, 200.0]], (100, 50))
    np.testing.assert_array_equal(out, [[0.0, 10.0, 20.0, 10.0], [95.0, 0.0, 5.0, 50.0]])


def test_sequence_ious_skip_frame_zero_and_invisible_frames() -> None:
    gt = np.array([[0, 0, 10, 10], [0, 0, 10, 10], [0, 0, 10, 10], [0, 0, 10, 10]], float)
    pred = np.array([[50, 50, 10, 10], [0, 0, 10, 10], [5, 0, 10, 10], [50, 50, 10, 10]], float)
    ious = got10k_sequence_ious(pred, gt, [8, 8, 8, 0], (100, 100))
    np.testing.assert_allclose(ious, [1.0, 5 / 15])
    scores = got10k_ao([ious, [0.0]])
    assert math.isclose(scores["ao"], (1.0 + 5 / 15 + 0.0) / 3)
    assert math.isclose(scores["sr"], 1 / 3)


# --------------------------------------------------------------------------- with got10k


def test_bound_and_iou_match_got10k_rect_iou() -> None:
    _require_got10k()
    from got10k.utils.metrics import rect_iou

    rng = np.random.default_rng(3)
    n = 500
    # Boxes that straddle every edge of a 120 x 80 frame, and some wholly outside it.
    a = np.column_stack([rng.uniform(-40, 150, n), rng.uniform(-40, 110, n), rng.uniform(1, 80, (n, 2))])
    b = np.column_stack([rng.uniform(-40, 150, n), rng.uniform(-40, 110, n), rng.uniform(1, 80, (n, 2))])
    theirs = rect_iou(a.copy(), b.copy(), bound=(120, 80))
    # Frame 0 is skipped by ours: prepend a dummy one.
    ours = got10k_sequence_ious(np.vstack([a[:1], a]), np.vstack([b[:1], b]), np.full(n + 1, 8), (120, 80))
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-12)


def _cover_level(box: Box, size: tuple[int, int]) -> int:
    """GOT-10k's 0..8 visible-ratio level (0 = invisible) from the bar's overlap."""
    return int(round(8 * (1.0 - hidden_fraction(box, size))))


def _write_got10k_sequence(folder: Path, n_frames: int, size: tuple[int, int], seed: int) -> None:
    """One GOT-10k val sequence, as the dataset ships it: 1-based boxes, label files, meta."""
    frames, boxes = render_sequence(n_frames, size, seed)
    folder.mkdir(parents=True)
    for index, frame in enumerate(frames):
        bgr = cv2.cvtColor(frame, cv2.COLOR_RGB2BGR)
        assert cv2.imwrite(str(folder / f"{index + 1:08d}.jpg"), bgr, [cv2.IMWRITE_JPEG_QUALITY, 95])
    cover = [_cover_level(b, size) for b in boxes]
    lines = {
        "groundtruth.txt": [",".join(f"{v:g}" for v in b.to_one_based()) for b in boxes],
        "cover.label": [str(c) for c in cover],
        "absence.label": ["1" if c == 0 else "0" for c in cover],
        "cut_by_image.label": [
            "1" if (b.x < 0 or b.y < 0 or b.x + b.w > size[0] or b.y + b.h > size[1]) else "0" for b in boxes
        ],
    }
    for name, rows in lines.items():
        (folder / name).write_text("\n".join(rows) + "\n", encoding="utf-8")
    (folder / "meta_info.ini").write_text(
        f"[METAINFO]\nobject_class: demo object\nmotion_class: gliding\nresolution: ({size[0]}, {size[1]})\n",
        encoding="utf-8",
    )


# name -> (frames, (W, H), texture seed). The first one has a frame where the bar hides
# the whole target (cover 0), so the cover filter is exercised.
SEQUENCES = {"GOT-10k_Val_000001": (60, (320, 180), 0), "GOT-10k_Val_000002": (30, (256, 192), 1)}


@pytest.fixture(scope="module")
def got10k_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("got10k")
    for name, (n, size, seed) in SEQUENCES.items():
        _write_got10k_sequence(root / "val" / name, n, size, seed)
    (root / "val" / "list.txt").write_text("\n".join(SEQUENCES) + "\n", encoding="utf-8")
    return root


def _our_ao(root: Path, results: Path, name: str) -> tuple[dict[str, float], dict[str, float]]:
    """AO/SR from got10k's own record files, recomputed without got10k: overall and per sequence."""
    all_ious, per_sequence = [], {}
    for seq, (_n, size, _seed) in SEQUENCES.items():
        folder = root / "val" / seq
        gt = np.loadtxt(folder / "groundtruth.txt", delimiter=",")
        cover = np.loadtxt(folder / "cover.label")
        pred = np.loadtxt(results / "GOT-10k" / name / seq / f"{seq}_001.txt", delimiter=",")
        ious = got10k_sequence_ious(pred, gt, cover, size)
        per_sequence[seq] = got10k_ao([ious])["ao"]
        all_ious.append(ious)
    return got10k_ao(all_ious), per_sequence


@pytest.mark.parametrize("name", ["identity", "cv-csrt"])
def test_experiment_got10k_scores_what_we_score(
    name: str, got10k_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    experiments = _require_got10k()
    try:
        adapter = got10k_tracker(name, device="cpu")
    except TrackerError as exc:
        pytest.skip(f"{name} is not available here: {exc}")

    # Keep what the adapter returned, before got10k rounds it to 3 decimals on disk.
    returned: list[np.ndarray] = []
    update = adapter.update

    def recording_update(image):
        box = update(image)
        returned.append(np.array(box, dtype=np.float64))
        return box

    adapter.update = recording_update

    results, reports = tmp_path / "results", tmp_path / "reports"
    experiment = experiments.ExperimentGOT10k(
        str(got10k_root), subset="val", result_dir=str(results), report_dir=str(reports)
    )
    experiment.run(adapter)
    performance = experiment.report([name])[name]
    capsys.readouterr()  # got10k prints its progress on stdout

    for seq in SEQUENCES:
        folder = results / "GOT-10k" / name / seq
        # is_deterministic: one repetition only.
        assert sorted(p.name for p in folder.glob(f"{seq}_[0-9]*.txt")) == [f"{seq}_001.txt"]

    ours, ours_per_sequence = _our_ao(got10k_root, results, name)
    theirs = performance["overall"]
    assert math.isclose(ours["ao"], theirs["ao"], rel_tol=0, abs_tol=1e-12), (ours, theirs["ao"])
    assert math.isclose(ours["sr"], theirs["sr"], rel_tol=0, abs_tol=1e-12)
    # got10k does not report SR0.75; its 101-bin success curve holds it at index 75.
    assert math.isclose(ours["sr75"], theirs["succ_curve"][75], rel_tol=0, abs_tol=1e-12)
    for seq, ao in ours_per_sequence.items():
        assert math.isclose(ao, performance["seq_wise"][seq]["ao"], rel_tol=0, abs_tol=1e-12)

    # The record files are what the adapter returned, to got10k's 3 decimals.
    total = sum(n for n, _size, _seed in SEQUENCES.values())
    assert len(returned) == total - len(SEQUENCES)
    on_disk = np.vstack(
        [
            np.loadtxt(results / "GOT-10k" / name / seq / f"{seq}_001.txt", delimiter=",")[1:]
            for seq in SEQUENCES
        ]
    )
    np.testing.assert_allclose(on_disk, np.vstack(returned), rtol=0, atol=5e-4 + 1e-9)

    # The adapter handed the tracker 0-based boxes and the frames got10k read: the same
    # tracker run directly on the same decoded frames, from the 0-based first box, gives
    # the same boxes (returned minus the 1-based shift).
    from PIL import Image

    direct = []
    for seq in SEQUENCES:
        folder = got10k_root / "val" / seq
        gt = np.loadtxt(folder / "groundtruth.txt", delimiter=",")
        files = sorted(folder.glob("*.jpg"))
        tracker = create_tracker(name, device="cpu")
        frames = [np.asarray(Image.open(f).convert("RGB")) for f in files]
        tracker.init(frames[0], Box(gt[0, 0] - 1, gt[0, 1] - 1, gt[0, 2], gt[0, 3]))
        direct.extend(tracker.update(frame).box.as_array() for frame in frames[1:])
    shifted = np.vstack(returned) - np.array([1.0, 1.0, 0.0, 0.0])
    np.testing.assert_allclose(shifted, np.vstack(direct), rtol=0, atol=1e-9)
    print(f"\n{name}: AO ours {ours['ao']:.6f} got10k {theirs['ao']:.6f}; SR {theirs['sr']:.4f}")
