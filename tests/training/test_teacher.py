"""Distillation from NanoTrack: alignment of its maps with ours, the teacher cache, the
losses, resume, pseudo-labels, and the bundled model files."""

from __future__ import annotations

import threading

import cv2
import numpy as np
import pytest
import torch

from tests.media import write_video
from tests.training.conftest import FAST
from trackers.geometry import crop_square, exemplar_extent
from trackers.nanotrack import NanoTrackNet, cell_positions, resample_to_grid
from training.checkpoints import resume_path
from training.config import TrainingError
from training.distill import Teacher, resample_matrix, soft_balanced_bce, soft_targets
from training.loop import train
from training.siamfc_train import SiamFCTask
from training.siamrpn_train import SiamRPNTask

FILL = (120.0, 120.0, 120.0)


def _scene(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    noise = (rng.random((720, 720, 3)) * 60 + 90).astype(np.uint8)
    return cv2.GaussianBlur(noise, (0, 0), 8)


def _target() -> np.ndarray:
    texture = (np.random.default_rng(1).random((16, 16, 3)) * 255).astype(np.uint8)
    return cv2.resize(texture, (64, 48), interpolation=cv2.INTER_NEAREST)


def _place(background: np.ndarray, cx: float, cy: float) -> np.ndarray:
    image = background.copy()
    target = _target()
    x0, y0 = int(round(cx - 32)), int(round(cy - 24))
    image[y0 : y0 + 48, x0 : x0 + 64] = target
    return image


def _pair(dx_search_px: float, dy_search_px: float) -> tuple[np.ndarray, np.ndarray, float]:
    """Exemplar centred on a 64 x 48 target; search image with the target moved by
    ``dx, dy`` search-image pixels from its centre. Returns the crops and the scale."""
    background = _scene()
    z = exemplar_extent(64, 48)
    scale = 127.0 / z  # crop pixels per frame pixel
    exemplar = crop_square(_place(background, 360, 360), 360, 360, z, 127, FILL)
    moved = _place(background, 360 + dx_search_px / scale, 360 + dy_search_px / scale)
    search = crop_square(moved, 360, 360, z * 255 / 127, 255, FILL)
    return exemplar, search, scale


@pytest.fixture(scope="module")
def nano():
    return NanoTrackNet()


def test_the_bundled_model_files_load_with_no_model_dir(monkeypatch):
    from trackers.opencv import MODEL_DIR_ENV, OpenCVTracker, resolve_model_dir

    monkeypatch.delenv(MODEL_DIR_ENV, raising=False)
    folder = resolve_model_dir()
    assert (folder / "nanotrack-v2" / "nanotrack_backbone_sim.onnx").is_file()
    assert (folder / "vittrack" / "vitTracker.onnx").is_file()
    assert (folder / "README.md").read_text().count("Apache-2.0") >= 2
    frame = np.zeros((120, 160, 3), dtype=np.uint8)
    frame[40:80, 60:100] = 200
    from trackers.types import Box

    for kind in ("nano", "vit"):
        tracker = OpenCVTracker(kind)
        tracker.init(frame, Box(60, 40, 40, 40))
        assert tracker.update(frame).box is not None


@pytest.mark.parametrize("dx, dy", [(0, 0), (32, 0), (0, -48), (-16, 40)])
def test_teacher_cells_line_up_with_the_search_image(nano, dx, dy):
    exemplar, search, scale = _pair(dx, dy)
    maps = nano(exemplar, search)
    # the peak sits at the NanoTrack cell nearest to the target's centre (16 px cells)
    row, col = np.unravel_index(int(np.argmax(maps.foreground)), maps.foreground.shape)
    positions = cell_positions()
    assert abs(positions[col] - (127.5 + dx)) <= 8 and abs(positions[row] - (127.5 + dy)) <= 8
    # its box is the target: centre within 2 px, size within 10 %
    cx, cy, w, h = maps.best_box()
    assert abs(cx - (127.5 + dx)) < 2.0 and abs(cy - (127.5 + dy)) < 2.0
    assert abs(w / (64 * scale) - 1) < 0.15 and abs(h / (48 * scale) - 1) < 0.15
    # resampled onto SiamFC's 17 x 17 map (8 px cells), the peak is at 8 + offset / 8
    grid = resample_to_grid(maps.foreground, 17, 8)
    ys, xs = np.nonzero(grid >= grid.max() - 1e-3)
    assert abs(np.mean(xs) - (8 + dx / 8)) <= 1.0 and abs(np.mean(ys) - (8 + dy / 8)) <= 1.0


def test_resampling_reads_nanotrack_cells_exactly_at_even_cells():
    rng = np.random.default_rng(0)
    teacher = rng.random((16, 16)).astype(np.float32)
    grid = resample_to_grid(teacher, 17, 8)
    # SiamFC cell j sits at NanoTrack cell 4 + j / 2
    for j in range(0, 17, 2):
        for i in range(0, 17, 2):
            assert grid[j, i] == pytest.approx(teacher[4 + j // 2, 4 + i // 2])
    assert grid[1, 1] == pytest.approx(teacher[4:6, 4:6].mean())
    # the matrix form is the same resampling
    matrix = resample_matrix(17, 8).numpy()
    np.testing.assert_allclose(matrix @ teacher @ matrix.T, grid, atol=1e-6)
    maps = torch.from_numpy(rng.random((2, 5, 16, 16)).astype(np.float32))
    np.testing.assert_allclose(soft_targets(maps, 17, 8)[1].numpy(),
                               resample_to_grid(maps[1, 0].numpy(), 17, 8), atol=1e-6)


def test_teacher_cache_hits_and_misses(tmp_path):
    exemplar, search, _ = _pair(16, 0)
    ex = torch.from_numpy(exemplar.transpose(2, 0, 1).astype(np.float32))[None].repeat(3, 1, 1, 1)
    se = torch.from_numpy(search.transpose(2, 0, 1).astype(np.float32))[None].repeat(3, 1, 1, 1)
    first = Teacher(tmp_path, {"run": 1}, pairs_per_epoch=10)
    maps = first.maps(ex, se, epoch=0, indices=[0, 1, 2])
    assert (first.hits, first.misses) == (0, 3)
    assert maps.shape == (3, 5, 16, 16)
    first.flush()
    again = Teacher(tmp_path, {"run": 1}, pairs_per_epoch=10)
    cached = again.maps(ex, se, epoch=0, indices=[2, 1, 5])
    assert (again.hits, again.misses) == (2, 1)
    np.testing.assert_array_equal(cached[0].numpy(), maps[2].numpy())  # fp16 either way
    # another epoch or another run: nothing to reuse
    assert again.maps(ex[:1], se[:1], epoch=1, indices=[0]) is not None and again.misses == 2
    other = Teacher(tmp_path, {"run": 2}, pairs_per_epoch=10)
    other.maps(ex[:1], se[:1], epoch=0, indices=[0])
    assert (other.hits, other.misses) == (0, 1)


def test_soft_bce_is_balanced_and_lowest_at_the_targets():
    targets = torch.zeros(1, 17, 17)
    targets[0, 7:10, 7:10] = 1.0
    right = torch.where(targets > 0.5, 8.0, -8.0)
    wrong = -right
    assert soft_balanced_bce(right, targets) < 0.01 < soft_balanced_bce(wrong, targets)
    # all-background logits are not rewarded for the many background cells alone
    background = torch.full((1, 17, 17), -8.0)
    assert soft_balanced_bce(background, targets) > 3.0


def _teacher_batch(task, pairs, cache, count=4):
    exemplars, searches, boxes = pairs.batch(range(count))
    teacher = Teacher(cache, {"t": task.name}, pairs_per_epoch=count)
    return exemplars, searches, boxes, teacher.maps(exemplars, searches, epoch=0, indices=list(range(count)))


@pytest.mark.parametrize("tracker", ["siamfc", "siamrpn"])
def test_each_distillation_loss_falls_on_a_fixed_batch(data, tracker):
    train_seqs, _val, cache = data
    task = SiamFCTask() if tracker == "siamfc" else SiamRPNTask(freeze_layers=0)
    pairs = task.pairs(train_seqs, pairs_per_epoch=4, cache_dir=cache, max_gap=100, seed=0,
                       augmentation=task.augmentation(), progress=lambda _t: None, cancel=None)
    # two pairs keep the SiamRPN case (a 17.7 M-parameter head, trained whole) affordable
    exemplars, searches, boxes, maps = _teacher_batch(task, pairs, cache, count=2)
    net = task.build(0)
    task.train_mode(net)
    optimizer = torch.optim.SGD(task.trainable(net), lr=1e-3 if tracker == "siamrpn" else 1e-2, momentum=0.9)
    losses = []
    for _ in range(10):
        loss = task.distill_loss(net, exemplars, searches, boxes, maps, 0.5)
        optimizer.zero_grad()
        loss.backward()
        if task.max_grad_norm:
            torch.nn.utils.clip_grad_norm_(task.trainable(net), task.max_grad_norm)
        optimizer.step()
        losses.append(float(loss.detach()))
    assert all(np.isfinite(losses)) and losses[-1] < 0.8 * losses[0], losses
    # weight 0 is the task's own loss
    with torch.no_grad():
        net.eval()
        assert float(task.distill_loss(net, exemplars, searches, boxes, maps, 0.0)) == pytest.approx(
            float(task.loss(net, exemplars, searches, boxes)), rel=1e-5)


def test_training_with_the_teacher_records_it_and_resumes(tmp_path, data):
    from trackers.siamfc.network import ARCHITECTURE
    from trackers.weights.loading import load_checkpoint

    train_seqs, val_seqs, cache = data
    out = tmp_path / "distilled.pt"
    options = dict(FAST, epochs=2, pairs_per_epoch=4, batch_size=2, cache_dir=cache, teacher="nano",
                   teacher_weight=0.5, checkpoint_every=1)
    cancel = threading.Event()
    steps = []

    def progress(event):
        if event.phase == "train":
            steps.append(event.step)
            if event.step == 3:
                cancel.set()

    first = train(SiamFCTask(), train_seqs, val_seqs, out, progress=progress, cancel=cancel, **options)
    assert first.cancelled and resume_path(out).is_file()
    second = train(SiamFCTask(), train_seqs, val_seqs, out, **options)
    assert not second.cancelled and second.step == 4 and second.epochs_done == 2
    _weights, meta = load_checkpoint(out, ARCHITECTURE)
    provenance = meta["provenance"]
    assert provenance["teacher"] == "nano" and provenance["teacher_weight"] == 0.5
    assert "NanoTrack" in provenance["teacher_model"]
    # the teacher's answers for both epochs are on disk, once per pair
    stored = sorted(p.name for p in (cache / "teacher").glob("*/*.done.npy"))
    assert stored == ["epoch0000.done.npy", "epoch0001.done.npy"]
    # a resumed run with another teacher weight is another run
    with pytest.raises(TrainingError, match="teacher_weight"):
        train(SiamFCTask(), train_seqs, val_seqs, out, **{**options, "teacher_weight": 0.9})
    with pytest.raises(TrainingError, match="teacher weight"):
        train(SiamFCTask(), train_seqs, val_seqs, tmp_path / "x.pt", **{**options, "teacher_weight": 2.0})


def test_a_task_without_distillation_says_so(tmp_path, data):
    from training.dsiam_train import DSiamTask

    with pytest.raises(TrainingError, match="no distillation"):
        DSiamTask().distill_loss(None, None, None, None, None, 0.5)


def _moving_clip(path, frames=24):
    background = cv2.resize(_scene(3), (320, 240))
    target = cv2.resize(_target(), (40, 30), interpolation=cv2.INTER_NEAREST)
    images, truth = [], []
    for i in range(frames):
        image = background.copy()
        x, y = 60 + 4 * i, 90 + (i % 5)
        image[y : y + 30, x : x + 40] = target
        images.append(image)
        truth.append((x, y, 40, 30))
    write_video(path, images, fps=10, fourcc="mp4v")
    return truth


def test_teacher_labels_keep_only_consistent_stretches(tmp_path):
    from trackers.evaluation.metrics import box_iou
    from trackers.types import Box
    from training.pseudo_labels import PseudoLabelSettings, label_stretch, pseudo_sequences
    from training.pseudo_labels import teacher_factory as nano_factory

    clip = tmp_path / "clip.mp4"
    truth = _moving_clip(clip)
    from trackers.sources import open_source

    with open_source(clip) as source:
        frames = list(source.iter_from(0))
    settings = PseudoLabelSettings(stretch=12)
    start = Box(*truth[0])
    boxes = label_stretch(nano_factory(None), frames[:12], start, settings)
    assert len(boxes) == 12
    assert all(box_iou(box, Box(*t)) > 0.6 for box, t in zip(boxes, truth[:12]))
    # the layout: sequences named per object slot and phase, NaN outside their stretches
    layout = PseudoLabelSettings(stretch=8, phases=3)
    sequences, summary = pseudo_sequences([clip], tmp_path / "cache", layout)
    assert summary["clips"] == 1 and summary["stretches_tried"] == 6
    for sequence in sequences:
        assert sequence.groundtruth.shape == (24, 4)
        labelled = np.flatnonzero(~np.isnan(sequence.groundtruth[:, 0]))
        assert labelled.size and np.all(np.diff(labelled) >= 1)
    # cached: a second call does not label again
    again, _ = pseudo_sequences([clip], tmp_path / "cache", layout)
    assert [s.name for s in again] == [s.name for s in sequences]
    for a, b in zip(again, sequences):
        np.testing.assert_array_equal(a.groundtruth, b.groundtruth)


def test_teacher_weight_zero_trains_on_the_own_loss_and_asks_the_teacher_nothing(tmp_path, data, monkeypatch):
    # --teacher nano --teacher-weight 0: the teacher's boxes (its labelled clips) are the only signal
    from training.distill import Teacher

    train_seqs, val_seqs, cache = data
    asked = []
    monkeypatch.setattr(Teacher, "maps", lambda self, *a, **k: asked.append(1))
    options = dict(FAST, epochs=1, pairs_per_epoch=4, batch_size=2, cache_dir=cache, teacher="nano",
                   teacher_weight=0.0)
    result = train(SiamFCTask(), train_seqs, val_seqs, tmp_path / "boxes.pt", **options)
    assert not result.cancelled and result.step == 2 and asked == []


def test_teacher_label_objects_and_aspect_reach_the_labelling(tmp_path, monkeypatch):
    import training.pseudo_labels as pseudo_labels
    from tests.media import make_otb
    from training.__main__ import main

    seen = []

    def fake(clips, cache_dir, settings=None, **kwargs):
        seen.append(settings)
        return [], {"clips": 1, "stretches_tried": 0, "stretches_kept": 0, "frames_labelled": 0}

    monkeypatch.setattr(pseudo_labels, "pseudo_sequences", fake)
    folder = make_otb(tmp_path / "data", "OnlySeq", frames=6)
    clip = tmp_path / "clip.mp4"
    _moving_clip(clip, frames=4)
    common = ["--tracker", "siamfc", str(folder), "--out", str(tmp_path / "t.pt"), "--epochs", "1",
              "--pairs-per-epoch", "2", "--batch-size", "2", "--device", "cpu", "--val",
              "--cache-dir", str(tmp_path / "cache"), "--threads", "1", "--teacher", "nano",
              "--teacher-weight", "0", "--teacher-label", str(clip)]
    assert main(common + ["--teacher-label-objects", "5"]) == 0
    assert main(common + ["--out", str(tmp_path / "u.pt")]) == 0
    assert [s.objects for s in seen] == [5, pseudo_labels.PseudoLabelSettings.objects]
    with pytest.raises(SystemExit):  # argparse: "expected a number in [1, inf)"
        main(common + ["--teacher-label-objects", "0"])
    # --teacher-label-aspect: the start boxes' aspect range reaches the labelling too
    assert [s.max_aspect for s in seen] == [2.0, 2.0]
    assert main(common + ["--out", str(tmp_path / "v.pt"), "--teacher-label-aspect", "3.5"]) == 0
    assert seen[-1].max_aspect == 3.5
    assert main(common + ["--teacher-label-aspect", "0.5"]) == 2  # a clear error, not a traceback


def test_the_teacher_labels_synthetic_pairs_cut_from_still_photos(tmp_path):
    """tools/distill.sh siamrpn-wide: teacher maps on a mix of real pairs and pairs from photos."""
    from tests.media import make_otb
    from tests.training.test_synthetic import write_coordinate_still
    from trackers.siamrpn.network import ARCHITECTURE
    from trackers.weights.loading import load_checkpoint
    from training.__main__ import main

    photos = tmp_path / "photos"
    for i in range(3):
        write_coordinate_still(photos / f"p{i}.png", 60 * i)
    folder = make_otb(tmp_path / "data", "OnlySeq", frames=6)
    out = tmp_path / "rpn.pt"
    args = ["--tracker", "siamrpn", str(folder), "--out", str(out), "--epochs", "1", "--pairs-per-epoch", "4",
            "--batch-size", "2", "--device", "cpu", "--val", "--cache-dir", str(tmp_path / "cache"),
            "--threads", "1", "--teacher", "nano", "--teacher-weight", "0.5",
            "--synthetic", str(photos), "--synthetic-ratio", "0.5"]
    assert main(args) == 0
    _, meta = load_checkpoint(out, ARCHITECTURE)
    prov = meta["provenance"]
    assert prov["teacher"] == "nano" and prov["synthetic_ratio"] == 0.5 and str(photos) in prov["synthetic"]
    maps = list((tmp_path / "cache" / "teacher").rglob("*.npy"))
    assert maps  # each pair, real or synthetic, cost the teacher once and was cached


def test_start_boxes_reach_the_asked_aspect_and_default_labels_keep_their_cache_key(tmp_path, monkeypatch):
    """--teacher-label-aspect: the teacher's start boxes span 1:A..A:1; the default stays 1:2..2:1
    and keeps the cache key of labels made before the setting existed."""
    import hashlib
    import json
    from dataclasses import asdict

    from training import pseudo_labels
    from training.pseudo_labels import LABEL_VERSION, PseudoLabelSettings, _clip_key, pick_boxes

    rng = np.random.default_rng(3)
    frame = rng.integers(0, 255, (240, 320, 3), dtype=np.uint8)

    def ratios(max_aspect):
        boxes = [b for seed in range(40)
                 for b in pick_boxes(frame, 3, np.random.default_rng(seed), 8, max_aspect)]
        return np.array([b.w / b.h for b in boxes])

    default = ratios(2.0)
    assert default.min() >= 0.5 - 1e-9 and default.max() <= 2.0 + 1e-9
    wide = ratios(4.0)
    assert wide.min() >= 0.25 - 1e-9 and wide.max() <= 4.0 + 1e-9
    assert (wide < 0.45).any() and (wide > 2.2).any()  # beyond the default's range, both ways
    with pytest.raises(ValueError, match="max_aspect"):
        PseudoLabelSettings(max_aspect=0.5)

    clip = tmp_path / "clip.mp4"
    clip.write_bytes(b"x")
    monkeypatch.setattr(pseudo_labels, "source_fingerprint", lambda path: "fp")
    old_fields = {k: v for k, v in asdict(PseudoLabelSettings()).items() if k != "max_aspect"}
    old_key = hashlib.sha1(json.dumps({"v": LABEL_VERSION, "source": "fp", "settings": old_fields},
                                      sort_keys=True).encode("utf-8")).hexdigest()[:16]
    assert _clip_key(clip, PseudoLabelSettings()) == old_key
    assert _clip_key(clip, PseudoLabelSettings(max_aspect=3.0)) != old_key


def test_teacher_share_draws_that_share_of_the_real_pairs_from_teacher_labelled_sequences(tmp_path):
    from tests.media import make_otb
    from trackers.evaluation import AnnotatedSequence, load_sequences
    from training.augmentation import Augmentation
    from training.synthetic import MixedPairs
    from training.task import task_pairs

    labelled = load_sequences(make_otb(tmp_path / "data", "Labelled", frames=8))
    other = load_sequences(make_otb(tmp_path / "data", "Other", frames=8, origin=(40, 20)))[0]
    taught = [AnnotatedSequence(f"teacher-clip-o{k}p0", other.source, other.groundtruth) for k in range(3)]
    common = dict(task=SiamFCTask(), pairs_per_epoch=400, cache_dir=tmp_path / "cache", max_gap=100, seed=3,
                  augmentation=Augmentation.none(), report=lambda **kw: None, cancel=None, extra_pairs=None,
                  extra_ratio=0.0)
    uniform = task_pairs(sequences=labelled + taught, **common)
    names = [uniform.pair(i)[0] for i in range(400)]
    assert 0.65 < sum(n.startswith("teacher-") for n in names) / 400 < 0.85  # 3 of 4 sequences

    mixed = task_pairs(sequences=labelled + taught, teacher_share=0.2, **common)
    assert isinstance(mixed, MixedPairs)
    drawn = []
    for i in range(400):
        child = mixed.synthetic if mixed.is_synthetic(i) else mixed.real
        drawn.append(child.pair(i % len(child))[0])
    share = sum(n.startswith("teacher-") for n in drawn) / 400
    assert 0.14 < share < 0.26
    assert {n for n in drawn if not n.startswith("teacher-")} == {"Labelled"}
    assert mixed.batch([0, 1])[0].shape == (2, 3, 127, 127)
    with pytest.raises(TrainingError, match="0 teacher-labelled"):
        task_pairs(sequences=labelled, teacher_share=0.5, **common)


def test_cli_teacher_share_is_recorded_and_needs_teacher_labels(tmp_path, monkeypatch, capsys):
    import training.pseudo_labels as pseudo_labels
    from tests.media import make_otb
    from trackers.evaluation import AnnotatedSequence, load_sequences
    from trackers.siamfc.network import ARCHITECTURE
    from trackers.weights.loading import load_checkpoint
    from training.__main__ import main

    other = load_sequences(make_otb(tmp_path / "data2", "Other", frames=6, origin=(40, 20)))[0]
    stretches = [AnnotatedSequence("teacher-clip-o0p0", other.source, other.groundtruth)]

    def fake(clips, cache_dir, settings=None, **kwargs):
        return list(stretches), {"clips": 1, "stretches_tried": 1, "stretches_kept": len(stretches),
                                 "frames_labelled": 6}

    monkeypatch.setattr(pseudo_labels, "pseudo_sequences", fake)
    folder = make_otb(tmp_path / "data", "OnlySeq", frames=6)
    clip = tmp_path / "clip.mp4"
    _moving_clip(clip, frames=4)
    base = ["--tracker", "siamfc", str(folder), "--epochs", "1", "--pairs-per-epoch", "2",
            "--batch-size", "2", "--device", "cpu", "--val", "--cache-dir", str(tmp_path / "cache"),
            "--threads", "1", "--teacher", "nano", "--teacher-weight", "0"]
    out = tmp_path / "s.pt"
    share = ["--teacher-label", str(clip), "--teacher-share", "0.3"]
    assert main(base + ["--out", str(out), *share]) == 0
    _, meta = load_checkpoint(out, ARCHITECTURE)
    assert meta["provenance"]["teacher_share"] == 0.3
    assert main(base + ["--out", str(tmp_path / "n.pt"), "--teacher-share", "0.3"]) == 2
    assert "--teacher-share needs --teacher-label" in capsys.readouterr().err
    stretches.clear()  # the teacher kept nothing: a clear error, not a traceback
    assert main(base + ["--out", str(tmp_path / "e.pt"), *share]) == 1
    assert "0 teacher-labelled" in capsys.readouterr().err
