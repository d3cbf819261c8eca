"""Fixtures for the reliability tests, and the ledger they keep.

Every test here feeds bad input, injects a fault, or both, and says so to the
ledger (inputs tried, faults injected, edits lost); the totals are printed at the
end of the run, so "done" can be counted, not just claimed.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

# Private user folders, the dangling-QThread check and the synthetic clip are in tests/conftest.py.
from tests.media import write_video

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

BROKEN = Path(__file__).parent / "broken"
ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Ledger:
    inputs: int = 0
    faults: int = 0
    edits_lost: int = 0
    edits_checked: int = 0

    def __post_init__(self) -> None:
        self._lock = threading.Lock()

    def tried(self, n: int = 1) -> None:
        with self._lock:
            self.inputs += n

    def injected(self, n: int = 1) -> None:
        with self._lock:
            self.faults += n

    def edits(self, checked: int, lost: int) -> None:
        with self._lock:
            self.edits_checked += checked
            self.edits_lost += lost


LEDGER = Ledger()


OUTCOMES = ("clean", "crash", "traceback", "hang", "wrong", "replaced")
"""How a bad input ended: a clean one-line error or correct work; a crash (a signal); a
traceback or "internal error"; a hang; a silent wrong result (exit 0, or no note); a file
replaced that should not have been."""


@dataclass
class Tally:
    """The bad-input suite's totals (issue 20): every input tried ends in exactly one outcome."""

    counts: dict = None  # type: ignore[assignment]

    def __post_init__(self) -> None:
        self.counts = dict.fromkeys(OUTCOMES, 0)
        self._lock = threading.Lock()

    def record(self, outcome: str) -> str:
        assert outcome in OUTCOMES, outcome
        with self._lock:
            self.counts[outcome] += 1
        LEDGER.tried()
        return outcome

    @property
    def tried(self) -> int:
        return sum(self.counts.values())


TALLY = Tally()


@pytest.fixture
def ledger() -> Ledger:
    return LEDGER


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:  # noqa: ARG001
    if LEDGER.inputs or LEDGER.faults or LEDGER.edits_checked or TALLY.tried:
        terminalreporter.write_sep("-", "reliability ledger")
        terminalreporter.write_line(
            f"bad inputs tried: {LEDGER.inputs}   faults injected: {LEDGER.faults}   "
            f"edits checked after faults: {LEDGER.edits_checked}   edits lost: {LEDGER.edits_lost}"
        )
    if TALLY.tried:
        c = TALLY.counts
        terminalreporter.write_line(
            f"bad-input suite: inputs tried {TALLY.tried}, clean {c['clean']}, crashes {c['crash']}, "
            f"tracebacks {c['traceback']}, hangs {c['hang']}, silent wrong results {c['wrong']}, "
            f"files replaced {c['replaced']}"
        )


# --------------------------------------------------------------------------- media


def write_square_clip(
    path: Path, frames: int, size: tuple[int, int] = (64, 48), fourcc: str = "MJPG"
) -> Path:
    """A small clip: a bright 20 px square moving right over a dark background (wrapping at the edge)."""
    width, height = size

    def frame(i: int) -> np.ndarray:
        image = np.full((height, width, 3), 40, np.uint8)
        x = (5 + 2 * i) % max(1, width - 20)
        image[10:30, x : x + 20] = 200
        return image

    return write_video(path, (frame(i) for i in range(frames)), size, fps=25.0, fourcc=fourcc)


@pytest.fixture(scope="session")
def media(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Good and damaged videos made once per session (see test_bad_videos for what each is)."""
    folder = tmp_path_factory.mktemp("media")
    ok_avi = write_square_clip(folder / "ok.avi", 20)
    ok_mp4 = write_square_clip(folder / "ok.mp4", 20, fourcc="mp4v")
    avi = ok_avi.read_bytes()
    mp4 = ok_mp4.read_bytes()
    made = {"ok.avi": ok_avi, "ok.mp4": ok_mp4}

    def put(name: str, data: bytes) -> None:
        (folder / name).write_bytes(data)
        made[name] = folder / name

    put("truncated_head.avi", avi[:300])  # the headers, cut before any frame
    put("truncated_tail.mp4", mp4[:-200])  # the index (moov) of an mp4 sits at its end
    put("truncated_half.mp4", mp4[: len(mp4) // 2])
    put("unknown_codec.avi", avi.replace(b"MJPG", b"QQQQ"))  # a fourcc no decoder knows
    rng = np.random.default_rng(7)
    put("random_bytes.avi", rng.integers(0, 256, 4096, dtype=np.uint8).tobytes())
    made["zero_frames.avi"] = write_square_clip(folder / "zero_frames.avi", 0)
    # Still decodable, but shorter than the header says.
    put("truncated_half.avi", avi[: len(avi) // 2])
    damaged = bytearray(avi)
    middle = len(damaged) // 2
    damaged[middle : middle + 2000] = bytes((b * 7 + 13) % 256 for b in damaged[middle : middle + 2000])
    put("corrupt_middle.avi", bytes(damaged))
    return made


@pytest.fixture
def window_factory(qtbot, synthetic_clip) -> Iterator:  # noqa: F811
    """``make(factory=None, prompts=False, open_clip=True)``: a shown MainWindow; closed after the test."""
    from app.model.settings import AppSettings
    from app.qt.main_window import MainWindow

    windows = []

    def make(factory=None, prompts: bool = False, open_clip: bool = True, tracker: str = "identity"):
        window = MainWindow(
            AppSettings(tracker=tracker, device="cpu"),
            make_tracker=factory,
            prompts=prompts,
            persist_settings=False,
        )
        # Not qtbot.addWidget: pytest-qt closes those before fixtures tear down, and a
        # window with prompts would then ask "save changes?" modally and hang the run.
        window.show()
        qtbot.waitExposed(window)
        if open_clip:
            assert window.open_path(synthetic_clip[0]), window.last_error
        windows.append(window)
        return window

    yield make
    for window in windows:
        box = window._message_box
        if box is not None:
            try:
                box.close()
            except RuntimeError:  # already deleted
                pass
        window.prompts = False  # no modal "save changes?" at teardown
        window.close()
        window.deleteLater()
        assert not window.controller.worker_thread.isRunning()


def dialog_text(window) -> str | None:
    """The text of the message box the window has open, or None."""
    box = window._message_box
    try:
        return box.text() if box is not None and box.isVisible() else None
    except RuntimeError:  # closed and deleted
        return None
