"""Image folders: odd pixel formats work, mixed sizes and broken frames stop a run with a message.

* grayscale, 16-bit, alpha, grey + alpha and palette frames decode to RGB and track;
* a folder whose frames differ in size stops a run at the first odd frame, naming it;
  the frames tracked before it are kept (the CLI writes them, the app keeps them);
* a frame file that does not decode (signature only, header only, text, a PNG whose
  header claims 100000 x 100000 pixels) is a one-line message naming the file.
"""

from __future__ import annotations

import shutil
import struct
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest

from app.cli import main
from trackers.run import FrameSizeError, track_frames
from trackers.sources import SourceError, open_source
from trackers.trajectory import Origin
from trackers.types import Box

from .conftest import BROKEN, dialog_text

BROKEN_FOLDERS = sorted(p.name for p in (BROKEN / "images").iterdir())


def textured(height: int, width: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    image = np.full((height, width, 3), 60, np.uint8)
    image[12:36, 10:34] = rng.integers(0, 256, (24, 24, 3), dtype=np.uint8)
    return image


def png(pixels: np.ndarray, colour_type: int, palette: bytes | None = None) -> bytes:
    """A PNG written by hand, for the colour types OpenCV will not write (grey + alpha, palette)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data))
            + kind
            + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
        )

    height, width = pixels.shape[:2]
    rows = b"".join(b"\x00" + pixels[y].tobytes() for y in range(height))  # filter 0 per row
    head = struct.pack(">IIBBBBB", width, height, 8, colour_type, 0, 0, 0)
    extra = chunk(b"PLTE", palette) if palette is not None else b""
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", head)
        + extra
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def pixel_formats(folder: Path) -> Path:
    """Six 64x48 frames: 8-bit BGR, grey, 16-bit, BGRA, grey + alpha, palette."""
    folder.mkdir()
    base = [textured(48, 64, i) for i in range(6)]
    cv2.imwrite(str(folder / "0001.png"), base[0])
    cv2.imwrite(str(folder / "0002.png"), cv2.cvtColor(base[1], cv2.COLOR_BGR2GRAY))
    cv2.imwrite(str(folder / "0003.png"), base[2].astype(np.uint16) * 257)
    cv2.imwrite(str(folder / "0004.png"), cv2.cvtColor(base[3], cv2.COLOR_BGR2BGRA))
    grey = cv2.cvtColor(base[4], cv2.COLOR_BGR2GRAY)
    (folder / "0005.png").write_bytes(png(np.dstack([grey, np.full_like(grey, 200)]), colour_type=4))
    indices = (cv2.cvtColor(base[5], cv2.COLOR_BGR2GRAY) // 16).astype(np.uint8)
    palette = bytes(v for i in range(16) for v in (i * 16, 255 - i * 16, 128))
    (folder / "0006.png").write_bytes(png(indices, colour_type=3, palette=palette))
    return folder


def mixed_sizes(folder: Path) -> Path:
    folder.mkdir()
    for i, (w, h) in enumerate([(64, 48), (64, 48), (64, 48), (80, 60), (64, 48)]):
        cv2.imwrite(str(folder / f"{i + 1:04d}.png"), textured(h, w, i))
    return folder


def test_grey_16_bit_and_alpha_frames_decode_to_rgb_and_track(tmp_path, capsys, ledger):
    folder = pixel_formats(tmp_path / "formats")
    ledger.tried(5)  # the five unusual pixel formats
    with open_source(folder) as source:
        frames = list(source.iter_from())
        assert [f.shape for f in frames] == [(48, 64, 3)] * 6
        assert all(f.dtype == np.uint8 for f in frames)
    for tracker in ("identity", "cv-csrt"):
        out = tmp_path / f"{tracker}.txt"
        args = ["track", str(folder), "--box", "10,12,24,24", "--tracker", tracker, "--device", "cpu"]
        assert main(args + ["--out", str(out)]) == 0, capsys.readouterr().err
        assert len(out.read_text().splitlines()) == 6


def test_mixed_sizes_stop_the_cli_with_one_line_and_keep_the_frames_before(tmp_path, capsys, ledger):
    folder = mixed_sizes(tmp_path / "mixed")
    out = tmp_path / "out.txt"
    ledger.tried()
    rc = main(["track", str(folder), "--box", "10,12,24,24", "--tracker", "identity", "--out", str(out)])
    assert rc == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if "error" in line]
    assert len(errors) == 1
    assert "frame 3 (0004.png) is 80x60 but frame 0 is 64x48" in errors[0]
    assert len(out.read_text().splitlines()) == 3  # frames 0..2 were tracked and kept


def test_mixed_sizes_stop_the_run_loop_with_a_frame_size_error(tmp_path, ledger):
    from trackers.registry import create_tracker

    folder = mixed_sizes(tmp_path / "mixed")
    ledger.tried()
    steps = []
    with open_source(folder) as source, pytest.raises(FrameSizeError) as info:
        for step in track_frames(create_tracker("identity"), source.iter_from(), Box(10, 12, 24, 24)):
            steps.append(step)
    assert len(steps) == 3 and info.value.step == 3
    assert info.value.size == (80, 60) and info.value.expected == (64, 48)
    assert isinstance(info.value, ValueError) and "\n" not in str(info.value)


def test_mixed_sizes_in_the_app_end_the_run_with_a_dialog_and_keep_the_frames(
    tmp_path, window_factory, qtbot, ledger
):
    folder = mixed_sizes(tmp_path / "mixed")
    window = window_factory(prompts=True, open_clip=False)
    ledger.tried()
    assert window.open_path(folder), window.last_error
    window.set_keyframe(0, Box(10, 12, 24, 24))
    with qtbot.waitSignal(window.run_ended, timeout=10_000) as ended:
        assert window.track(+1)
    assert ended.args[1] == "failed"
    assert "80x60" in (dialog_text(window) or "")
    trajectory = window.document.session.trajectory
    assert [i for i, e in trajectory.annotated() if e.origin is Origin.TRACKED] == [1, 2]
    # the app keeps going: the odd frame can still be viewed
    window.go_to(3)
    window.repaint_now()
    assert window.index == 3


@pytest.mark.parametrize("name", BROKEN_FOLDERS)
def test_an_unreadable_frame_file_is_one_line_naming_it(name, capsys, ledger):
    folder = BROKEN / "images" / name
    ledger.tried()
    with pytest.raises(SourceError) as info:
        with open_source(folder) as source:
            source[0]
    assert "\n" not in str(info.value) and str(folder) in str(info.value)
    rc = main(["track", str(folder), "--box", "1,1,5,5", "--tracker", "identity", "--out", "unused.txt"])
    assert rc == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith("siamtrack track: error:") and str(folder) in err


def test_a_damaged_frame_in_the_middle_stops_the_run_and_keeps_what_came_before(
    tmp_path, capsys, window_factory, qtbot, ledger
):
    folder = tmp_path / "frames"
    folder.mkdir()
    for i in range(6):
        cv2.imwrite(str(folder / f"{i + 1:04d}.png"), textured(48, 64, i))
    shutil.copy(BROKEN / "images" / "png_signature_only" / "0001.png", folder / "0004.png")
    ledger.tried(2)
    out = tmp_path / "out.txt"
    rc = main(["track", str(folder), "--box", "10,12,24,24", "--tracker", "identity", "--out", str(out)])
    assert rc == 2
    assert "0004.png" in capsys.readouterr().err
    assert len(out.read_text().splitlines()) == 3

    window = window_factory(prompts=True, open_clip=False)
    assert window.open_path(folder), window.last_error
    window.set_keyframe(0, Box(10, 12, 24, 24))
    with qtbot.waitSignal(window.run_ended, timeout=10_000) as ended:
        assert window.track(+1)
    assert ended.args[1] == "failed"
    assert "0004.png" in (dialog_text(window) or "")
    tracked = [i for i, e in window.document.session.trajectory.annotated() if e.origin is Origin.TRACKED]
    assert tracked == [1, 2]
    window.go_to(3)
    window.repaint_now()  # the damaged frame: a status-bar message, not a crash
    assert "Cannot decode frame 3" in window.statusBar().currentMessage()
