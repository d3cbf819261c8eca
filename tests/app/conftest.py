"""Fixtures for the app tests: an open source on a module's clip, mouse drags.

The synthetic clip, the private user folders and the dangling-QThread check are in
tests/conftest.py, for every test.
"""

from __future__ import annotations

import os

import pytest

# pytest-qt creates the QApplication later; without a display Qt must be offscreen.
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


@pytest.fixture
def source(clip):
    """An open frame source on the test module's ``clip`` fixture (its path first); closed after the test."""
    from trackers.sources import open_source

    with open_source(clip[0]) as src:
        yield src


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
