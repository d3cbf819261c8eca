"""Synthetic pairs pasted from unlabelled clips: exact boxes, reproducibility, the cache, mixing."""

from __future__ import annotations

import threading
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from tests.media import write_video
from training.crop_cache import CacheCancelled
from training.synthetic import MixedPairs, Synthesis, SyntheticPairs
from training.synthetic_frames import unlabelled_sources

SHARED = Path(__file__).resolve().parents[3] / "shared/data/videos/unlabelled"


def write_avi(path: Path, frames: int = 6, size: tuple[int, int] = (160, 120), seed: int = 0) -> Path:
    """An MJPG clip of smoothed random texture (so rectangles have something to track)."""
    rng = np.random.default_rng(seed)
    coarse = (size[1] // 4, size[0] // 4, 3)
    noise = (rng.integers(0, 256, size=coarse, dtype=np.uint8) for _ in range(frames))
    smooth = (cv2.resize(n, size, interpolation=cv2.INTER_LINEAR) for n in noise)
    return write_video(path, smooth, size, fps=25.0)


def coordinate_image(blue: int) -> np.ndarray:
    """160 x 120 RGB whose red is the column and green the row: a pixel says where it came from.

    ``blue`` is constant, so a pasted pixel tells which source it was cut from.
    """
    xs, ys = np.meshgrid(np.arange(160), np.arange(120))
    return np.stack([xs, ys, np.full_like(xs, blue)], axis=2).astype(np.uint8)


def write_coordinate_folder(folder: Path, blue: int, frames: int = 2) -> Path:
    """Lossless frames of the coordinate pattern (``coordinate_image``)."""
    folder.mkdir(parents=True)
    for i in range(frames):
        write_coordinate_still(folder / f"{i:04d}.png", blue)
    return folder


def write_coordinate_still(path: Path, blue: int) -> Path:
    """One lossless photo of the coordinate pattern (``coordinate_image``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), cv2.cvtColor(coordinate_image(blue), cv2.COLOR_RGB2BGR))
    return path


@pytest.fixture
def clips(tmp_path) -> list[Path]:
    return [write_avi(tmp_path / "a.avi", seed=1), write_avi(tmp_path / "b.avi", seed=2)]


@pytest.fixture(params=["folders", "stills"])
def coordinate_pairs(tmp_path, request):
    if request.param == "folders":
        sources = [write_coordinate_folder(tmp_path / "low", 0),
                   write_coordinate_folder(tmp_path / "high", 255)]
    else:  # still photos, one image file each: the motion is all the synthesis's
        sources = [write_coordinate_still(tmp_path / "photos" / "low.png", 0),
                   write_coordinate_still(tmp_path / "photos" / "high.png", 255)]

    def make(seed: int) -> SyntheticPairs:
        exact = replace(Synthesis.exact(), min_std=0.0)
        return SyntheticPairs(sources, pairs_per_epoch=6, seed=seed, synthesis=exact,
                              cache_dir=tmp_path / "cache")

    return make


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_box_is_exactly_where_the_pasted_pixels_are(coordinate_pairs, seed):
    ds = coordinate_pairs(seed)
    for i in range(len(ds)):
        draw = ds.draw(i)
        _exemplar, search, box = ds[i]
        image = search.numpy()
        patch_blue = 0.0 if draw.patch[0] == 0 else 255.0
        mask = np.abs(image[2] - patch_blue) < 128
        rows, cols = np.nonzero(mask)
        cx, cy, w, h = (float(v) for v in box)
        # pixel i spans [i, i + 1): the pasted pixels are the box's, to within half a pixel
        assert cols.min() == pytest.approx(cx - w / 2, abs=0.5)
        assert cols.max() + 1 == pytest.approx(cx + w / 2, abs=0.5)
        assert rows.min() == pytest.approx(cy - h / 2, abs=0.5)
        assert rows.max() + 1 == pytest.approx(cy + h / 2, abs=0.5)
        assert mask.sum() == (cols.max() - cols.min() + 1) * (rows.max() - rows.min() + 1)
        # and they show the rectangle: red/green give the patch-frame point each pixel read
        x, y, rw, rh = draw.rect
        expect_x = x + rw / 2 + (cols + 0.5 - cx) * rw / w - 0.5
        expect_y = y + rh / 2 + (rows + 0.5 - cy) * rh / h - 0.5
        assert np.abs(image[0][mask] - expect_x).max() <= 0.51
        assert np.abs(image[1][mask] - expect_y).max() <= 0.51
        assert abs(cx - 127.5) <= 64 and abs(cy - 127.5) <= 64


def test_feathered_edge_is_soft_and_centred_on_the_box(tmp_path):
    sources = [write_coordinate_folder(tmp_path / "low", 0), write_coordinate_folder(tmp_path / "high", 255)]
    soft = replace(Synthesis.exact(), min_std=0.0, feather_px=(2.0, 4.0))
    ds = SyntheticPairs(sources, pairs_per_epoch=12, synthesis=soft, cache_dir=tmp_path / "cache")
    checked = 0
    for i in range(len(ds)):
        if ds.draw(i).patch[0] != 1:
            continue  # read alpha where the patch is the blue one pasted on no blue
        _exemplar, search, box = ds[i]
        alpha = search.numpy()[2] / 255.0
        cx, cy, w, h = (float(v) for v in box)
        # the ramp is symmetric about the edge (alpha 0.5 there), so it integrates to the box
        assert alpha[int(cy)].sum() == pytest.approx(w, abs=0.3)
        assert alpha[:, int(cx)].sum() == pytest.approx(h, abs=0.3)
        assert ((alpha[int(cy)] > 0.05) & (alpha[int(cy)] < 0.95)).sum() >= 2
        checked += 1
    assert checked >= 3


@pytest.mark.parametrize("seed", [0, 3])
def test_exemplar_is_centred_on_the_target_with_eq7_context(coordinate_pairs, seed):
    ds = coordinate_pairs(seed)
    for i in range(len(ds)):
        draw = ds.draw(i)
        exemplar = ds[i][0].numpy()
        x, y, w, h = draw.rect
        step = draw.exemplar_side / 127
        # pixel 63 is centred at 63.5, the middle: it reads the rectangle's centre
        assert exemplar[0, 63, 63] == pytest.approx(x + w / 2 - 0.5, abs=0.51)
        assert exemplar[1, 63, 63] == pytest.approx(y + h / 2 - 0.5, abs=0.51)
        # and the exemplar covers z frame pixels: neighbours across the target differ by step
        span = int(w / step / 2) - 1
        assert exemplar[0, 63, 63 + span] - exemplar[0, 63, 63 - span] == pytest.approx(
            2 * span * step, abs=1.0)


def test_items_follow_the_contract(clips, tmp_path):
    ds = SyntheticPairs(clips, pairs_per_epoch=5, search_size=239, max_shift_px=40,
                        frames_per_source=3, cache_dir=tmp_path / "cache")
    assert len(ds) == 5
    for i in range(len(ds)):
        exemplar, search, box = ds[i]
        assert exemplar.shape == (3, 127, 127) and search.shape == (3, 239, 239) and box.shape == (4,)
        assert {exemplar.dtype, search.dtype, box.dtype} == {torch.float32}
        for image in (exemplar, search):
            assert 0.0 <= float(image.min()) and float(image.max()) <= 255.0
        assert abs(float(box[0]) - 119.5) <= 40 and abs(float(box[1]) - 119.5) <= 40
        assert float(box[2]) > 0 and float(box[3]) > 0
        draw = ds.draw(i)
        assert draw.background[0] != draw.patch[0]  # two clips: the background is the other one
    exemplars, searches, boxes = ds.batch([0, 3, 4])
    assert exemplars.shape == (3, 3, 127, 127) and searches.shape == (3, 3, 239, 239)
    assert boxes.shape == (3, 4)
    assert torch.equal(boxes[1], ds[3][2])


@pytest.mark.parametrize("aspect", [(0.25, 0.25), (4.0, 4.0), (0.25, 4.0)])
def test_targets_keep_to_the_asked_aspect_range(tmp_path, aspect):
    # a wide 640 x 480 frame, so a 4:1 target fits without hitting the margins
    sources = [write_avi(tmp_path / "a.avi", size=(640, 480), frames=3, seed=1),
               write_avi(tmp_path / "b.avi", size=(640, 480), frames=3, seed=2)]
    ds = SyntheticPairs(sources, pairs_per_epoch=12, seed=3, frames_per_source=3,
                        synthesis=Synthesis(aspect=aspect, target_side=(0.08, 0.2)), cache_dir=tmp_path / "c")
    ratios = []
    for i in range(len(ds)):
        _x, _y, rw, rh = ds.draw(i).rect
        _cx, _cy, w, h = (float(v) for v in ds[i][2])
        assert w / h == pytest.approx(rw / rh, rel=1e-4)  # the search image keeps the shape
        ratios.append(rw / rh)
    assert min(ratios) >= aspect[0] * (1 - 1e-6) and max(ratios) <= aspect[1] * (1 + 1e-6)
    if aspect[0] < aspect[1]:  # log-uniform over 1:4..4:1: both sides of square drawn
        assert min(ratios) < 0.7 and max(ratios) > 1.4


def test_items_are_reproducible_and_change_with_the_epoch(clips, tmp_path):
    messages: list[str] = []
    first = SyntheticPairs(clips, pairs_per_epoch=4, seed=5, frames_per_source=3,
                           cache_dir=tmp_path / "cache", progress=messages.append)
    assert len(messages) == 2
    again = SyntheticPairs(clips, pairs_per_epoch=4, seed=5, frames_per_source=3,
                           cache_dir=tmp_path / "cache", progress=messages.append)
    assert len(messages) == 2  # the second one found every clip cached
    for i in range(4):
        assert all(torch.equal(a, b) for a, b in zip(first[i], again[i]))
    before = first[2]
    first.set_epoch(1)
    after = first[2]
    assert not torch.equal(before[1], after[1])
    first.set_epoch(0)
    assert all(torch.equal(a, b) for a, b in zip(before, first[2]))


def test_cache_holds_the_frames_and_nothing_partial(clips, tmp_path):
    ds = SyntheticPairs(clips, pairs_per_epoch=1, frames_per_source=4, cache_dir=tmp_path / "cache")
    assert ds.counts == [4, 4]
    entries = sorted((tmp_path / "cache" / "synthetic").iterdir())
    assert [e.name.split("-")[0] for e in entries] == ["a", "b"]
    frames = np.load(entries[0] / "frames.npy")
    assert frames.shape == (4, 120, 160, 3) and frames.dtype == np.uint8


def test_cancel_raises_and_keeps_nothing(clips, tmp_path):
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(CacheCancelled):
        SyntheticPairs(clips, pairs_per_epoch=1, cache_dir=tmp_path / "cache", cancel=cancel)
    assert list((tmp_path / "cache" / "synthetic").iterdir()) == []


def test_a_single_clip_pastes_onto_another_of_its_frames(tmp_path):
    ds = SyntheticPairs([write_avi(tmp_path / "only.avi")], pairs_per_epoch=8, frames_per_source=3,
                        cache_dir=tmp_path / "cache")
    for i in range(len(ds)):
        draw = ds.draw(i)
        assert draw.background[0] == 0 and draw.background[1] != draw.patch[1]


def test_unlabelled_sources_expands_folders(tmp_path):
    (tmp_path / "clips").mkdir()
    for name in ("b.MP4", "a.avi", "c.mkv", "d.mov", "notes.txt"):
        (tmp_path / "clips" / name).write_bytes(b"")
    single = tmp_path / "x.avi"
    single.write_bytes(b"")
    found = unlabelled_sources([tmp_path / "clips", single])
    assert [p.name for p in found] == ["a.avi", "b.MP4", "c.mkv", "d.mov", "x.avi"]
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no video files") as err:
        unlabelled_sources([tmp_path / "empty"])
    assert "\n" not in str(err.value)
    with pytest.raises(ValueError, match="no such file"):
        unlabelled_sources([tmp_path / "missing"])


def test_unlabelled_sources_takes_still_photos_only_when_asked(tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    for name in ("b.JPG", "a.png", "c.webp", "d.avi", "notes.txt", ".hidden.jpg"):
        (photos / name).write_bytes(b"")
    (photos / "sub.jpg").mkdir()  # a folder named like an image is not a photo
    assert [p.name for p in unlabelled_sources([photos])] == ["d.avi"]
    found = unlabelled_sources([photos], stills=True)
    assert [p.name for p in found] == ["a.png", "b.JPG", "c.webp", "d.avi"]
    only = tmp_path / "only_photos"
    only.mkdir()
    (only / "x.jpg").write_bytes(b"")
    with pytest.raises(ValueError, match="no video files"):
        unlabelled_sources([only])
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no video or image files") as err:
        unlabelled_sources([tmp_path / "empty"], stills=True)
    assert "\n" not in str(err.value)


def test_a_still_photo_is_one_frame_and_pastes_onto_another_photo(tmp_path):
    photos = [write_coordinate_still(tmp_path / f"p{i}.png", 40 * i) for i in range(3)]
    ds = SyntheticPairs(photos, pairs_per_epoch=10, cache_dir=tmp_path / "cache")
    assert ds.counts == [1, 1, 1]
    cached = ds.frame(2, 0)
    assert cached.shape == (120, 160, 3) and (cached[..., 2] == 80).all()  # RGB, as the clips
    for i in range(len(ds)):
        draw = ds.draw(i)
        assert draw.patch[1] == 0 and draw.background[1] == 0 and draw.background[0] != draw.patch[0]


def test_an_unreadable_still_is_a_one_line_error(tmp_path):
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"not a jpeg")
    good = write_coordinate_still(tmp_path / "good.png", 0)
    with pytest.raises(ValueError, match="broken.jpg: not a readable image") as err:
        SyntheticPairs([good, bad], pairs_per_epoch=2, cache_dir=tmp_path / "cache")
    assert "\n" not in str(err.value)
    assert not any((tmp_path / "cache" / "synthetic").glob("broken*"))  # nothing partial kept


class Tagged(torch.utils.data.Dataset):
    """A stand-in pair dataset whose items say which dataset, epoch and index they are."""

    def __init__(self, tag: float, size: int) -> None:
        self.tag, self.size, self.epoch = tag, size, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.size

    def __getitem__(self, index: int):
        value = torch.tensor([self.tag, self.epoch, index], dtype=torch.float32)
        return value, value, value


def test_mixed_pairs_follow_the_ratio_reproducibly():
    real, synthetic = Tagged(0, 50), Tagged(1, 30)
    never = MixedPairs(real, synthetic, 0.0, pairs_per_epoch=400, seed=3)
    always = MixedPairs(real, synthetic, 1.0, pairs_per_epoch=400, seed=3)
    assert not any(never.is_synthetic(i) for i in range(400))
    assert all(always.is_synthetic(i) for i in range(400))
    mixed = MixedPairs(real, synthetic, 0.3, pairs_per_epoch=400, seed=3)
    chosen = [mixed.is_synthetic(i) for i in range(400)]
    assert sum(chosen) == 116  # about 0.3 * 400; exact for this seed
    for i in (0, 1, 7, 399):
        tag, _epoch, index = mixed[i][0].tolist()
        assert tag == float(chosen[i]) and index == i % (30 if chosen[i] else 50)
    assert chosen == [MixedPairs(real, synthetic, 0.3, pairs_per_epoch=400, seed=3).is_synthetic(i)
                      for i in range(400)]
    mixed.set_epoch(2)
    assert real.epoch == synthetic.epoch == 2 and mixed[5][0][1] == 2
    assert [mixed.is_synthetic(i) for i in range(400)] != chosen
    first, second, third = mixed.batch([0, 1, 2])
    assert first.shape == second.shape == third.shape == (3, 3)
    with pytest.raises(ValueError):
        MixedPairs(real, synthetic, 1.5, pairs_per_epoch=4)


@pytest.mark.slow
def test_real_unlabelled_clip(tmp_path):
    clip = SHARED / "01_dog.mp4"
    if not clip.is_file():
        pytest.skip(f"{clip} is absent")
    ds = SyntheticPairs(unlabelled_sources([clip]), pairs_per_epoch=6, frames_per_source=4,
                        cache_dir=tmp_path / "cache")
    assert ds.counts == [4]
    assert max(ds.frame(0, 0).shape[:2]) <= 640  # downscaled from 1280 x 720
    for i in range(len(ds)):
        exemplar, search, box = ds[i]
        assert exemplar.shape == (3, 127, 127) and search.shape == (3, 255, 255)
        # the target was chosen for its texture
        draw = ds.draw(i)
        x, y, w, h = (int(round(v)) for v in draw.rect)
        region = ds.frame(*draw.patch)[y : y + h, x : x + w].astype(np.float32).mean(axis=2)
        assert region.std() >= ds.synthesis.min_std
        assert float(exemplar.std()) > 1.0 and float(search.std()) > 1.0
