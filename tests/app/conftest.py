"""Fixtures for the app tests: private user folders, no dangling threads, mouse drags.

The synthetic clip (``synthetic_clip``) is in tests/conftest.py.
"""

from __future__ import annotations

import os
import traceback
from collections.abc import Iterator

import pytest

# Re-exported for the app tests that import them from here; they live in tests/media.py.
from tests.media import CLIP_FRAMES, write_clip  # noqa: F401

# pytest-qt creates the QApplication later; without a display Qt must be offscreen.
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


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
