"""Training pairs (SiamFC sections 2.2 and 2.4): centred crops, frame gaps, absent frames, the cache."""

from __future__ import annotations

import math
from dataclasses import replace
from types import SimpleNamespace

import numpy as np
import pytest
import torch

import training.crop_cache as crop_cache
from tests.media import BACKGROUND, TARGET, block_frames, make_otb, otb_line, write_video
from trackers.evaluation import load_sequences
from training.augmentation import Augmentation
from training.crop_cache import center_slice, crop_extents
from training.data import PairDataset
from training.splits import default_split, flight_key, split_by_names


def bright_centroid(image_chw) -> tuple[float, float]:
    """Continuous (x, y) centre of the target pixels: pixel i spans [i, i + 1)."""
    mask = image_chw.numpy()[0] > (BACKGROUND + TARGET) / 2
    ys, xs = np.nonzero(mask)
    return float(xs.mean() + 0.5), float(ys.mean() + 0.5)


def test_crop_extents_match_the_tracker():
    # eq. 7 with p = (w + h) / 4: z = sqrt((w + 2p)(h + 2p)), search = z * 255 / 127
    z, x = crop_extents(14, 10)
    assert z == pytest.approx(math.sqrt(26 * 22))
    assert x == pytest.approx(z * 255 / 127)
    assert center_slice(255, 127) == slice(64, 191)


def test_pairs_are_centred_on_the_target(tmp_path):
    sequences = load_sequences(make_otb(tmp_path))
    ds = PairDataset(sequences, pairs_per_epoch=6, cache_dir=tmp_path / "cache",
                     augmentation=Augmentation.none())
    for i in range(len(ds)):
        exemplar, search, box = ds[i]
        assert box.tolist() == pytest.approx([127.5, 127.5, 255 * 14 / crop_extents(14, 10)[1],
                                              255 * 10 / crop_extents(14, 10)[1]])
        assert exemplar.shape == (3, 127, 127) and search.shape == (3, 255, 255)
        assert exemplar.dtype == search.dtype and str(search.dtype) == "torch.float32"
        assert 0.0 <= float(search.min()) and float(search.max()) <= 255.0
        ex, ey = bright_centroid(exemplar)
        sx, sy = bright_centroid(search)
        assert (ex, ey) == pytest.approx((127 / 2, 127 / 2), abs=0.3)
        assert (sx, sy) == pytest.approx((255 / 2, 255 / 2), abs=0.3)
        # the exemplar is the middle of a search crop at the same scale: the target
        # (14 x 10 px) spans 127 * 14 / z exemplar pixels
        z, _ = crop_extents(14, 10)
        width = int((exemplar.numpy()[0] > 125).any(axis=0).sum())
        assert width == pytest.approx(127 * 14 / z, abs=1.5)


def test_padding_is_the_mean_colour(tmp_path):
    # the target in the frame's top-left corner: the ~48 px search window reaches
    # about 17 px beyond the frame's top and left edges
    sequences = load_sequences(make_otb(tmp_path, origin=(0, 0), frames=1))
    ds = PairDataset(sequences, pairs_per_epoch=1, cache_dir=tmp_path / "cache",
                     augmentation=Augmentation.none())
    _z, search, _box = ds[0]
    corner = search[:, 0, 0].numpy()
    frame_mean = BACKGROUND + (TARGET - BACKGROUND) * 14 * 10 / (96 * 72)
    assert corner == pytest.approx([frame_mean] * 3, abs=1.0)


def test_frames_at_most_t_apart_and_absent_frames_skipped(tmp_path):
    absent = (5, 6, 7)
    sequences = load_sequences(make_otb(tmp_path, frames=20, absent=absent))
    ds = PairDataset(sequences, pairs_per_epoch=200, cache_dir=tmp_path / "cache", max_gap=3)
    seen = set()
    for i in range(len(ds)):
        name, a, b = ds.pair(i)
        assert name == "Synthetic"
        assert abs(a - b) <= 3 and a != b
        assert a not in absent and b not in absent
        seen.update((a, b))
    assert seen == set(range(20)) - set(absent)


def test_pairs_are_reproducible_and_change_with_the_epoch(tmp_path):
    sequences = load_sequences(make_otb(tmp_path, frames=20))
    ds = PairDataset(sequences, pairs_per_epoch=8, cache_dir=tmp_path / "cache", seed=3)
    first = [ds.pair(i) for i in range(8)]
    z0, x0, _ = ds[2]
    again = PairDataset(sequences, pairs_per_epoch=8, cache_dir=tmp_path / "cache", seed=3)
    assert [again.pair(i) for i in range(8)] == first
    z1, x1, _ = again[2]
    assert np.array_equal(z0.numpy(), z1.numpy()) and np.array_equal(x0.numpy(), x1.numpy())
    ds.set_epoch(1)
    assert [ds.pair(i) for i in range(8)] != first


def test_augmented_pairs_stay_near_the_centre(tmp_path):
    sequences = load_sequences(make_otb(tmp_path))
    aug = Augmentation(grayscale=0.0, blur=0.0)
    ds = PairDataset(sequences, pairs_per_epoch=10, cache_dir=tmp_path / "cache", augmentation=aug)
    for i in range(len(ds)):
        exemplar, search, _box = ds[i]
        assert exemplar.shape == (3, 127, 127) and search.shape == (3, 255, 255)
        # stretch about the centre and at most 2 px of shift: the positive stays central
        sx, sy = bright_centroid(search)
        assert abs(sx - 127.5) <= 2.5 and abs(sy - 127.5) <= 2.5


def bright_extent(image):
    mask = image.numpy()[0] > 125
    cols, rows = np.flatnonzero(mask.any(axis=0)), np.flatnonzero(mask.any(axis=1))
    return cols[0], rows[0], cols[-1] + 1, rows[-1] + 1


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_boxes_follow_translation_and_scale(tmp_path, seed):
    # SiamRPN's augmentation: tens of pixels of shift and +-20 % scale, on crops cached
    # with a margin so that the shifted search image still shows the frame.
    sequences = load_sequences(make_otb(tmp_path, size=(240, 200), origin=(110, 90)))
    aug = Augmentation(translate_px=40.0, scale=0.2, stretch=0.0, grayscale=0.0, brightness=0.0,
                       channel_gain=0.0, offset=0.0, blur=0.0)
    ds = PairDataset(sequences, pairs_per_epoch=12, cache_dir=tmp_path / "cache", augmentation=aug,
                     seed=seed, search_margin=48)
    offsets = []
    for i in range(len(ds)):
        _exemplar, search, box = ds[i]
        x0, y0, x1, y1 = bright_extent(search)
        cx, cy, w, h = box.tolist()
        # the bright target's pixels match the box to within the bilinear edge
        assert (x0, y0, x1, y1) == pytest.approx((cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2), abs=1.0)
        offsets.append(abs(cx - 127.5) + abs(cy - 127.5))
    assert max(offsets) > 20  # the augmentation did move the target


def test_grayscale_pairs(tmp_path):
    sequences = load_sequences(make_otb(tmp_path))
    ds = PairDataset(sequences, pairs_per_epoch=40, cache_dir=tmp_path / "cache",
                     augmentation=Augmentation(grayscale=1.0))
    z, x, _ = ds[0]
    for image in (z, x):
        channels = image.numpy()
        assert np.allclose(channels[0], channels[1]) and np.allclose(channels[1], channels[2])


def test_cache_is_reused_without_decoding(tmp_path, monkeypatch):
    sequences = load_sequences(make_otb(tmp_path))
    cache = tmp_path / "cache"
    PairDataset(sequences, pairs_per_epoch=2, cache_dir=cache)
    entries = list(cache.iterdir())
    assert len(entries) == 1 and (entries[0] / "crops.npy").is_file()
    assert np.load(entries[0] / "crops.npy", mmap_mode="r").shape == (12, 255, 255, 3)

    def no_decoding(path):
        raise AssertionError(f"{path} was decoded again")

    monkeypatch.setattr(crop_cache, "open_source", no_decoding)
    ds = PairDataset(sequences, pairs_per_epoch=2, cache_dir=cache)
    ds[0]
    assert list(cache.iterdir()) == entries


def test_cancelled_cache_build_leaves_nothing(tmp_path):
    sequences = load_sequences(make_otb(tmp_path))
    with pytest.raises(crop_cache.CacheCancelled):
        PairDataset(sequences, pairs_per_epoch=2, cache_dir=tmp_path / "cache",
                    cancel=SimpleNamespace(is_set=lambda: True))
    assert list((tmp_path / "cache").iterdir()) == []


def test_a_source_shorter_than_its_ground_truth_caches_the_frames_it_has(tmp_path, capsys):
    """The cache keeps the rows that decoded, rewritten atomically inside the entry."""
    folder = make_otb(tmp_path, frames=12)
    for image in sorted((folder / "img").iterdir())[8:]:
        image.unlink()  # 12 lines of ground truth, 8 frames
    cache = tmp_path / "cache"
    PairDataset(load_sequences(folder), pairs_per_epoch=2, cache_dir=cache)
    (entry,) = cache.iterdir()
    assert np.load(entry / "crops.npy").shape == (8, 255, 255, 3)
    assert np.load(entry / "frames.npy").tolist() == list(range(8))
    assert sorted(p.name for p in entry.iterdir()) == ["crops.npy", "fills.npy", "frames.npy", "meta.json"]
    assert list(cache.iterdir()) == [entry]
    assert "only 8 of its 12 annotated frames decode" in capsys.readouterr().err


def test_cache_builds_from_a_video(tmp_path):
    frames = block_frames(8)  # 96x72, the block from (20, 30): the frames make_otb writes
    path = write_video(tmp_path / "clip.avi", [image for image, _ in frames])
    path.with_suffix(".txt").write_text("".join(otb_line(box) + "\n" for _, box in frames))
    ds = PairDataset(load_sequences(path), pairs_per_epoch=3, cache_dir=tmp_path / "cache",
                     augmentation=Augmentation.none())
    for i in range(3):
        sx, sy = bright_centroid(ds[i][1])
        assert (sx, sy) == pytest.approx((127.5, 127.5), abs=1.0)


def seq(name):
    return SimpleNamespace(name=name)


def test_flight_keys_keep_segments_together():
    assert flight_key("UAV123_10fps_group1_3") == "UAV123_10fps_group1"
    assert flight_key("UAV123_10fps_person12_2") == "UAV123_10fps_person12"
    assert flight_key("OTB100_Jogging-2") == "OTB100_Jogging"
    assert flight_key("UAV123_10fps_car10") == "UAV123_10fps_car10"
    assert flight_key("DTB70_Surfing06") == "DTB70_Surfing06"


def test_split_by_names_takes_whole_flights_and_exact_names_first():
    names = ["A_group1_1", "A_group1_2", "A_car1", "A_car10", "B_Jogging-1", "B_Jogging-2", "C_x"]
    sequences = [seq(n) for n in names]
    train, val = split_by_names(sequences, ["A_group1_2", "A_car1", "B_Jogging-1"])
    assert [s.name for s in val] == ["A_group1_1", "A_group1_2", "A_car1", "B_Jogging-1", "B_Jogging-2"]
    assert [s.name for s in train] == ["A_car10", "C_x"]
    _train, val = split_by_names(sequences, ["A_group"])
    assert [s.name for s in val] == ["A_group1_1", "A_group1_2"]
    with pytest.raises(ValueError, match="matches no sequence"):
        split_by_names(sequences, ["nothing"])


def test_default_split_is_deterministic_and_keeps_flights_together():
    names = [f"S{i}" for i in range(20)] + [f"F_g{k}_{j}" for k in range(3) for j in range(1, 4)]
    sequences = [seq(n) for n in names]
    train, val = default_split(sequences)
    assert val and train
    assert {s.name for s in train} | {s.name for s in val} == set(names)
    train_keys = {flight_key(s.name) for s in train}
    assert not train_keys & {flight_key(s.name) for s in val}
    # order of the input does not matter
    _t, val2 = default_split(list(reversed(sequences)))
    assert {s.name for s in val2} == {s.name for s in val}
    # about 15 %
    assert 2 <= len(val) <= 8
    assert default_split([seq("only_1"), seq("only_2")]) == ([seq("only_1"), seq("only_2")], [])


def test_flip_mirrors_both_images_and_the_box_and_leaves_unflipped_pairs_as_they_were(tmp_path):
    # SiamRPN-style translation so the box is off-centre and the mirror shows in cx
    sequences = load_sequences(make_otb(tmp_path, size=(240, 200), origin=(110, 90)))
    base = dict(translate_px=40.0, scale=0.2, grayscale=0.0, blur=0.0)
    options = dict(pairs_per_epoch=8, cache_dir=tmp_path / "cache", search_margin=48, seed=3)
    plain = PairDataset(sequences, augmentation=Augmentation(**base), **options)
    always = PairDataset(sequences, augmentation=Augmentation(**base, flip=1.0), **options)
    half = PairDataset(sequences, augmentation=Augmentation(**base, flip=0.5), **options)
    assert Augmentation().flip == 0.0 and Augmentation.none().flip == 0.0
    flipped = 0
    for i in range(len(plain)):
        z, x, box = plain[i]
        fz, fx, fbox = always[i]
        # the flip is the last draw: the same pair, mirrored left to right
        assert torch.equal(fz, z.flip(-1)) and torch.equal(fx, x.flip(-1))
        assert fbox.tolist() == pytest.approx([255 - box[0].item(), *box[1:].tolist()])
        x0, y0, x1, y1 = bright_extent(fx)
        cx, cy, w, h = fbox.tolist()
        assert (x0, y0, x1, y1) == pytest.approx((cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2), abs=1.0)
        hz, hx, hbox = half[i]
        if torch.equal(hx, x):
            assert torch.equal(hz, z) and torch.equal(hbox, box)
        else:
            assert torch.equal(hx, fx) and torch.equal(hz, fz) and torch.equal(hbox, fbox)
            flipped += 1
    assert 0 < flipped < len(plain)


def test_negative_pairs_take_the_search_image_from_another_flight_and_leave_the_rest_as_they_were(tmp_path):
    # Alpha_1 and Alpha_2 are one flight: a negative pair of one never takes the other
    sequences = load_sequences([
        make_otb(tmp_path, name="Alpha_1", origin=(20, 30)),
        make_otb(tmp_path, name="Alpha_2", origin=(40, 20)),
        make_otb(tmp_path, name="Beta", size=(120, 90), origin=(60, 40)),
    ])
    assert Augmentation().negative == 0.0 and Augmentation.none().negative == 0.0
    # no random change but the negatives, so a negative's search image is its source crop as it is
    datasets = [PairDataset(sequences, augmentation=replace(Augmentation.none(), negative=share),
                            pairs_per_epoch=40, cache_dir=tmp_path / "cache", seed=5) for share in (0.0, 0.5)]
    plain, mixed = datasets
    negatives = 0
    for i in range(len(plain)):
        (z, x, box), (mz, mx, mbox) = plain[i], mixed[i]
        assert torch.equal(mz, z) and mixed.pair(i) == plain.pair(i)  # the item's own draws are unchanged
        found = mixed.negative(i)
        if found is None:
            assert torch.equal(mx, x) and torch.equal(mbox, box)
            continue
        negatives += 1
        name, frame = found
        mine = plain.pair(i)[0]
        assert flight_key(name) != flight_key(mine)
        assert torch.isnan(mbox).all()
        # with no other change the search image is the other sequence's centred crop at that frame
        other = mixed.names.index(name)
        row = int(np.flatnonzero(mixed.sequences[other].frames == frame)[0])
        crop = mixed._crops(other)[0][row]
        assert torch.equal(mx, torch.from_numpy(np.ascontiguousarray(crop.transpose(2, 0, 1))).float())
    assert 0 < negatives < len(plain)
    assert plain.negative(0) is None
    # the same epoch draws the same negatives; another epoch others
    assert [mixed.negative(i) for i in range(40)] == [mixed.negative(i) for i in range(40)]
    before = [mixed.negative(i) for i in range(40)]
    mixed.set_epoch(1)
    assert [mixed.negative(i) for i in range(40)] != before


def test_negative_pairs_need_two_flights(tmp_path):
    one_flight = load_sequences([make_otb(tmp_path, name="Alpha_1"), make_otb(tmp_path, name="Alpha_2")])
    with pytest.raises(ValueError, match="two flights"):
        PairDataset(one_flight, pairs_per_epoch=4, cache_dir=tmp_path / "cache",
                    augmentation=Augmentation(negative=0.2))
