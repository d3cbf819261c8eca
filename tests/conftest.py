"""Fixtures and markers for every test.

Fixtures: private user folders (settings, journals and caches never land in the real
home), the dangling-QThread and frozen-heap checks, and the shared synthetic clip.

The builders themselves (videos, clips with exact boxes, OTB folders) are plain
functions in ``tests/media.py``.

Markers (registered in pyproject.toml, ``--strict-markers``):

* ``gui``: the test builds Qt widgets or a QApplication (in process or in a child). Every
  test that uses pytest-qt's ``qtbot`` or ``qapp`` gets it here; others that start a window
  say so themselves, and a test without it that creates a QApplication fails.
  ``pytest -m "not gui"`` runs the rest, which need no Qt platform.
* ``gpu``: the test needs CUDA; it is skipped, with the reason, where there is none.
* ``slow``: ../shared/data or long runs; ``pytest -m "not slow"`` is the quick pass.
"""

from __future__ import annotations

import sys
import traceback
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.media import write_clip
from trackers.types import Box

QT_FIXTURES = frozenset({"qtbot", "qapp"})


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:  # noqa: ARG001
    for item in items:
        if QT_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.gui)
    if any(item.get_closest_marker("gpu") for item in items):
        import torch  # only when a gpu test is collected: the rest need not load torch here

        if not torch.cuda.is_available():
            skip = pytest.mark.skip(reason="needs a CUDA GPU (none on this machine)")
            for item in items:
                if item.get_closest_marker("gpu"):
                    item.add_marker(skip)


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


@pytest.fixture(autouse=True)
def _heap_unfrozen() -> Iterator[None]:
    """Fail any test that leaves the heap frozen (app.qt.heap_freeze): a job controller still
    holding it was never shut down, and every later test would run with the cyclic
    collector skipping the frozen heap."""
    yield
    module = sys.modules.get("app.qt.heap_freeze")
    if module is None or module.holders() == 0:
        return
    left = module.holders()
    while module.holders():
        module.release()
    pytest.fail(f"{left} job(s) left the heap frozen: a job controller was not shut down", pytrace=False)


@pytest.fixture(scope="session")
def synthetic_clip(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Box]]:
    """A 30-frame 160x120 MJPG clip of the demo generator, with its exact 0-based boxes."""
    path = tmp_path_factory.mktemp("clip") / "clip.avi"
    return path, write_clip(path)


def _qt_application_exists() -> bool:
    core = sys.modules.get("PySide6.QtCore")  # never imports Qt for a Qt-free test
    return core is not None and core.QCoreApplication.instance() is not None


@pytest.fixture(autouse=True)
def _gui_marker_is_honest(request: pytest.FixtureRequest) -> Iterator[None]:
    """A test that creates the QApplication must be marked ``gui`` (checked while none exists)."""
    existed = _qt_application_exists()
    yield
    if not existed and _qt_application_exists() and request.node.get_closest_marker("gui") is None:
        pytest.fail(f"{request.node.nodeid} creates a QApplication: mark it gui", pytrace=False)
