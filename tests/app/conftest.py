"""Fixtures for the app tests: a synthetic clip, private user folders, and no dangling threads."""

from __future__ import annotations

import os
import traceback
from collections.abc import Iterator
from pathlib import Path

import cv2
import pytest

from resources.demo_clip import render_sequence
from trackers.types import Box

# pytest-qt creates the QApplication later; without a display Qt must be offscreen.
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

CLIP_FRAMES = 30
CLIP_SIZE = (160, 120)


@pytest.fixture(autouse=True)
def _private_user_dirs(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Settings, journals and recent files go to a temporary home, never the developer's."""
    home = tmp_path_factory.mktemp("home")
    for name in ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_STATE_HOME", "XDG_CACHE_HOME"):
        monkeypatch.setenv(name, str(home / name.lower()))


@pytest.fixture(autouse=True)
def _dangling_qthreads(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Fail any test that leaves a QThread running (napari's conftest does the same).

    A thread still running when its QThread is destroyed aborts the process, and one
    left running makes later tests flaky; either way the code under test forgot to
    shut something down. The failure names where the thread was started.
    """
    try:
        from PySide6.QtCore import QThread
    except ImportError:  # the Qt-free tests run without Qt
        yield
        return
    started: list[tuple[QThread, str]] = []
    original_start = QThread.start

    def start_and_remember(self: QThread, *args: object) -> None:
        where = "".join(traceback.format_stack(limit=6)[:-1])
        started.append((self, where))
        original_start(self, *args)

    monkeypatch.setattr(QThread, "start", start_and_remember)
    yield
    dangling = []
    for thread, where in started:
        try:
            running = thread.isRunning()
        except RuntimeError:  # the C++ object is gone, so the thread was finished and deleted
            continue
        if running:
            dangling.append(where)
            # Stop it anyway so that it does not abort the rest of the session.
            thread.quit()
            thread.wait(5000)
    if dangling:
        pytest.fail(f"{len(dangling)} QThread(s) left running; started at:\n" + "\n".join(dangling))


def write_clip(path: Path, n_frames: int = CLIP_FRAMES, size: tuple[int, int] = CLIP_SIZE) -> list[Box]:
    """Render the demo generator's sequence into an MJPG AVI; returns the exact 0-based boxes."""
    frames, boxes = render_sequence(n_frames=n_frames, size=size, seed=3)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 30.0, size)
    assert writer.isOpened(), "this OpenCV cannot write MJPG"
    try:
        for frame in frames:
            writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    finally:
        writer.release()
    return boxes


@pytest.fixture(scope="session")
def synthetic_clip(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Box]]:
    """A 30-frame 160x120 MJPG clip of the demo generator, with its exact boxes."""
    path = tmp_path_factory.mktemp("clip") / "clip.avi"
    return path, write_clip(path)


@pytest.fixture
def mouse_drag():
    """Drag with the left (or given) button across a widget, in small steps as a hand would.

    pyqtgraph starts a drag only after the pointer has moved a few pixels with the
    button held, so a press + release alone is a click; and it drops move events
    that come faster than its mouse rate limit (100 Hz), hence the pauses.
    """
    from PySide6.QtCore import QPoint, Qt
    from PySide6.QtTest import QTest

    def drag(widget, start: QPoint, end: QPoint, button=Qt.MouseButton.LeftButton, steps: int = 6) -> None:
        QTest.mousePress(widget, button, Qt.KeyboardModifier.NoModifier, start)
        for i in range(1, steps + 1):
            t = i / steps
            QTest.qWait(15)
            QTest.mouseMove(
                widget,
                QPoint(
                    round(start.x() + (end.x() - start.x()) * t), round(start.y() + (end.y() - start.y()) * t)
                ),
            )
        QTest.qWait(15)
        QTest.mouseRelease(widget, button, Qt.KeyboardModifier.NoModifier, end)

    return drag
