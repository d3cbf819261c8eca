"""Frame sources: ordering, pixel normalisation, frame-accurate video access, errors."""

from __future__ import annotations

import os
import random
import struct
from pathlib import Path

import cv2
import numpy as np
import pytest

from tests.media import write_video
from trackers.sources import (
    CACHE_FRAMES,
    ImageFolderSource,
    SourceError,
    VideoSource,
    frame_sort_key,
    open_source,
)

N_FRAMES = 20
VIDEO_SIZE = (64, 48)  # width, height


def shared_data() -> Path:
    env = os.environ.get("SIAMTRACK_SHARED")
    shared = Path(env) if env else Path(__file__).resolve().parents[2] / ".." / "shared"
    return shared / "data"


def _bgr(rgb: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(rgb[..., ::-1])


def _pattern(i: int) -> np.ndarray:
    """RGB frame i: a bright bar whose position encodes i, so decoded frames can be told apart."""
    width, height = VIDEO_SIZE
    frame = np.full((height, width, 3), 40, np.uint8)
    frame[:, 3 * i : 3 * i + 3] = (250, 200, 30)
    frame[(2 * i) % height, :] = (30, 90, 240)
    return frame


def _write_video(path: Path, fourcc: str, n_frames: int) -> Path:
    frames = (_bgr(_pattern(i)) for i in range(n_frames))
    return write_video(path, frames, VIDEO_SIZE, fps=25.0, fourcc=fourcc)


def _write_image(path: Path, image: np.ndarray) -> None:
    assert cv2.imwrite(str(path), image), path


def _message_ok(error: pytest.ExceptionInfo[SourceError], path: Path) -> None:
    text = str(error.value)
    assert str(path) in text
    assert "\n" not in text


@pytest.fixture(scope="module")
def mp4(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _write_video(tmp_path_factory.mktemp("video") / "clip.mp4", "mp4v", N_FRAMES)


# --- image folders ------------------------------------------------------------------------


def test_sort_key_is_numeric_with_a_stable_name_tiebreak() -> None:
    names = ["10.jpg", "000001.jpg", "2.jpg", "0001.jpg", "1.jpg", "000010.jpg", "3.jpg"]
    ordered = [p.name for p in sorted((Path(n) for n in names), key=frame_sort_key)]
    assert ordered == ["000001.jpg", "0001.jpg", "1.jpg", "2.jpg", "3.jpg", "000010.jpg", "10.jpg"]


def test_sort_key_keeps_prefixes_apart() -> None:
    names = ["img10.png", "img9.png", "frame_2.png", "frame_11.png"]
    ordered = [p.name for p in sorted((Path(n) for n in names), key=frame_sort_key)]
    assert ordered == ["frame_2.png", "frame_11.png", "img9.png", "img10.png"]


def test_folder_frames_come_in_numeric_order(tmp_path: Path) -> None:
    for number in (10, 2, 1, 33):
        _write_image(tmp_path / f"{number}.png", np.full((4, 5, 3), number, np.uint8))
    (tmp_path / "notes.txt").write_text("not a frame")
    with open_source(tmp_path) as source:
        assert isinstance(source, ImageFolderSource)
        assert len(source) == 4
        assert [int(f[0, 0, 0]) for f in source] == [1, 2, 10, 33]
        assert int(source[-1][0, 0, 0]) == 33


def test_image_folder_normalises_every_pixel_format(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    rgb = rng.integers(0, 256, size=(6, 7, 3), dtype=np.uint8)
    grey = rng.integers(0, 256, size=(6, 7), dtype=np.uint8)
    alpha = rng.integers(0, 256, size=(6, 7, 1), dtype=np.uint8)
    _write_image(tmp_path / "1.png", _bgr(rgb))
    _write_image(tmp_path / "2.png", grey)
    _write_image(tmp_path / "3.png", _bgr(rgb).astype(np.uint16) * 257)  # 16-bit colour
    _write_image(tmp_path / "4.png", grey.astype(np.uint16) * 257)  # 16-bit grey
    _write_image(tmp_path / "5.png", np.concatenate([_bgr(rgb), alpha], axis=2))  # BGRA
    _write_image(tmp_path / "6.bmp", _bgr(rgb[:3, :5]))  # a smaller frame keeps its size
    grey_rgb = np.repeat(grey[..., None], 3, axis=2)
    expected = [rgb, grey_rgb, rgb, grey_rgb, rgb, rgb[:3, :5]]

    source = open_source(tmp_path)
    assert source.size == (7, 6)
    assert source.fps == 30.0
    frames = list(source)
    assert len(frames) == len(source) == 6
    for i, (frame, want) in enumerate(zip(frames, expected, strict=True)):
        assert frame.dtype == np.uint8 and frame.shape == want.shape, i
        np.testing.assert_array_equal(frame, want, err_msg=f"frame {i}")
        np.testing.assert_array_equal(source[i], want, err_msg=f"source[{i}]")


def test_otb_layout_reads_img_folder(tmp_path: Path) -> None:
    (tmp_path / "img").mkdir()
    for number in range(1, 4):
        frame = np.full((8, 8, 3), 60 * number, np.uint8)
        _write_image(tmp_path / "img" / f"{number:04d}.jpg", frame)
    (tmp_path / "groundtruth_rect.txt").write_text("1,1,2,2\n" * 3)
    with open_source(tmp_path) as source:
        assert len(source) == 3
        assert source.size == (8, 8)
        assert [abs(int(f.mean()) - 60 * (i + 1)) <= 2 for i, f in enumerate(source)] == [True] * 3


def test_unreadable_frame_file_names_the_file(tmp_path: Path) -> None:
    _write_image(tmp_path / "1.png", np.zeros((4, 4, 3), np.uint8))
    broken = tmp_path / "2.png"
    broken.write_bytes(b"not a png at all")
    source = open_source(tmp_path)
    with pytest.raises(SourceError) as error:
        source[1]
    _message_ok(error, broken)
    with pytest.raises(SourceError):
        list(source)
    # When frame 0 is the broken one, opening already fails.
    (tmp_path / "0.png").write_bytes(b"")
    with pytest.raises(SourceError) as error:
        open_source(tmp_path)
    _message_ok(error, tmp_path / "0.png")


# --- videos -------------------------------------------------------------------------------


def test_video_basics(mp4: Path) -> None:
    with open_source(mp4) as source:
        assert isinstance(source, VideoSource)
        assert source.size == VIDEO_SIZE
        assert source.fps == pytest.approx(25.0)
        assert len(source) == N_FRAMES


def test_video_sequential_frames_are_the_written_ones(mp4: Path) -> None:
    frames = list(open_source(mp4))
    assert len(frames) == N_FRAMES
    for i, frame in enumerate(frames):
        assert frame.shape == (VIDEO_SIZE[1], VIDEO_SIZE[0], 3) and frame.dtype == np.uint8
        errors = [np.abs(frame.astype(int) - _pattern(j)).mean() for j in range(N_FRAMES)]
        assert int(np.argmin(errors)) == i  # also proves the channels come out RGB


def test_random_access_matches_sequential_decoding_exactly(mp4: Path) -> None:
    frames = list(open_source(mp4))
    order = list(range(N_FRAMES)) * 2
    random.Random(3).shuffle(order)
    order += [N_FRAMES - 1, 0, 5, 4, 3, 17, 2]  # explicit jumps back and forth
    with open_source(mp4) as source:
        for i in order:
            np.testing.assert_array_equal(source[i], frames[i], err_msg=f"frame {i}")
        np.testing.assert_array_equal(source[-1], frames[-1])
        np.testing.assert_array_equal(source[-N_FRAMES], frames[0])
        np.testing.assert_array_equal(source[np.int64(7)], frames[7])
        assert len(source._cache) <= CACHE_FRAMES
        for bad in (N_FRAMES, N_FRAMES + 5, -N_FRAMES - 1):
            with pytest.raises(IndexError):
                source[bad]


def test_index_past_the_end_before_counting(mp4: Path) -> None:
    source = open_source(mp4)
    with pytest.raises(IndexError):
        source[N_FRAMES]
    assert len(source) == N_FRAMES


def test_iter_from_ranges(mp4: Path) -> None:
    frames = list(open_source(mp4))
    source = open_source(mp4)

    def same(got: list[np.ndarray], want: list[np.ndarray]) -> bool:
        return len(got) == len(want) and all(np.array_equal(a, b) for a, b in zip(got, want))

    assert same(list(source.iter_from(5, 9)), frames[5:9])
    assert same(list(source.iter_from(15)), frames[15:])
    assert same(list(source.iter_from(0, 100)), frames)
    assert list(source.iter_from(N_FRAMES + 3)) == []
    assert list(source.iter_from(7, 7)) == []
    assert same(list(source.iter_from(-3)), frames[-3:])
    assert same(list(source.iter_from(2, -15)), frames[2:5])


def test_streaming_does_not_count_frames(mp4: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(self: VideoSource) -> int:
        raise AssertionError("counted all frames")

    monkeypatch.setattr(VideoSource, "_count_frames", refuse)
    source = open_source(mp4)
    assert bool(source)
    assert len(list(source.iter_from(3, 6))) == 3
    assert source[4].shape[:2] == (VIDEO_SIZE[1], VIDEO_SIZE[0])
    # Not list(source): list() asks len() for a size hint first, which would count.
    assert len(list(source.iter_from())) == N_FRAMES
    assert len(source) == N_FRAMES  # learnt from streaming to the end, not by counting


def test_uppercase_suffix_and_mjpg_avi(tmp_path: Path) -> None:
    path = _write_video(tmp_path / "CLIP.AVI", "MJPG", 5)
    with open_source(str(path)) as source:
        assert len(source) == 5
        assert len(list(source)) == 5


def test_frames_are_read_only(mp4: Path, tmp_path: Path) -> None:
    _write_image(tmp_path / "1.png", np.zeros((4, 4, 3), np.uint8))
    for source in (open_source(mp4), open_source(tmp_path)):
        for frame in (source[0], next(iter(source))):
            assert not frame.flags.writeable
            with pytest.raises(ValueError):
                frame[0, 0, 0] = 1


def test_closed_source_refuses(mp4: Path) -> None:
    with open_source(mp4) as source:
        source[1]
    with pytest.raises(SourceError):
        source[2]


def test_header_that_claims_twice_the_frames(tmp_path: Path) -> None:
    n = 9
    path = _write_video(tmp_path / "liar.avi", "MJPG", n)
    data = bytearray(path.read_bytes())
    avih, strh = data.find(b"avih"), data.find(b"strh")
    assert avih > 0 and strh > 0 and data[strh + 8 : strh + 12] == b"vids"
    # dwTotalFrames of the main header, and dwLength of the video stream header.
    for offset in (avih + 8 + 16, strh + 8 + 32):
        assert struct.unpack_from("<I", data, offset) == (n,)
        struct.pack_into("<I", data, offset, 2 * n)
    path.write_bytes(data)

    capture = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
    assert capture.get(cv2.CAP_PROP_FRAME_COUNT) == 2 * n  # the lie is visible to OpenCV
    capture.release()
    with open_source(path) as source:
        assert len(source) == n
        assert len(list(source)) == n
        source[n - 1]
        with pytest.raises(IndexError):
            source[n]


# --- errors -------------------------------------------------------------------------------


def test_missing_path(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.mp4"
    with pytest.raises(SourceError) as error:
        open_source(missing)
    _message_ok(error, missing)


def test_folder_without_images(tmp_path: Path) -> None:
    (tmp_path / "readme.txt").write_text("no frames here")
    (tmp_path / "img").mkdir()
    with pytest.raises(SourceError) as error:
        open_source(tmp_path)
    _message_ok(error, tmp_path)


def test_text_file_named_mp4(tmp_path: Path) -> None:
    fake = tmp_path / "fake.mp4"
    fake.write_text("this is not a video\n")
    with pytest.raises(SourceError) as error:
        open_source(fake)
    _message_ok(error, fake)


def test_video_without_frames(tmp_path: Path) -> None:
    empty = _write_video(tmp_path / "empty.avi", "MJPG", 0)
    assert empty.stat().st_size > 0  # a real container, just with nothing in it
    with pytest.raises(SourceError) as error:
        open_source(empty)
    _message_ok(error, empty)


def test_unsupported_file_type(tmp_path: Path) -> None:
    other = tmp_path / "notes.txt"
    other.write_text("hello")
    with pytest.raises(SourceError) as error:
        open_source(other)
    _message_ok(error, other)
    assert isinstance(error.value, ValueError)


# --- real data ----------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize(
    ("name", "claimed", "decoded"), [("vtest.avi", 682, 341), ("oneperson.mp4", 443, 442)]
)
def test_real_videos_count_decoded_frames(name: str, claimed: int, decoded: int) -> None:
    path = shared_data() / "videos" / "unlabelled" / name
    if not path.exists():
        pytest.skip(f"shared data not found: {path} (set SIAMTRACK_SHARED to the shared folder)")
    capture = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
    assert capture.get(cv2.CAP_PROP_FRAME_COUNT) == claimed
    capture.release()
    with open_source(path) as source:
        assert len(source) == decoded
        last = source[decoded - 1]
        assert last.shape == (source.size[1], source.size[0], 3)
        with pytest.raises(IndexError):
            source[decoded]
        tail = list(source.iter_from(decoded - 3))
        assert len(tail) == 3
        np.testing.assert_array_equal(tail[-1], last)


@pytest.mark.slow
def test_real_otb_sequence() -> None:
    folder = shared_data() / "sequences" / "OTB100_Bird2"
    if not folder.exists():
        pytest.skip(f"shared data not found: {folder} (set SIAMTRACK_SHARED to the shared folder)")
    lines = (folder / "groundtruth_rect.txt").read_text().split()
    with open_source(folder) as source:
        assert len(source) == len(lines)
        assert source[0].shape == (source.size[1], source.size[0], 3)
