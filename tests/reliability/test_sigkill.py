"""SIGKILL in the middle of editing: on restart, every edit older than one second comes back.

The child prints every state its trajectory passes through (after each command and at each
change a tracking run makes), so the journal's state can be found among them wherever the kill
lands, also in the middle of a run (on a loaded machine runs are slow and that is where it
lands most).

tests/app/test_journal.py::test_sigkill_loses_nothing_older_than_a_second proves it for a
bare session and its journal, killed 1.5 s after the last edit. This one runs the real
window in a child (offscreen) that keeps editing through the window's own commands
(keyframes, nudges, absent marks, undo, redo and tracking runs) until it is killed in
mid-stream; the journal it leaves must hold at least every edit made more than a second
before the kill.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from app.model.journal import discard, find_recoverable, read_info, restore
from app.model.project import entry_to_json

from .conftest import ROOT

pytestmark = pytest.mark.gui  # the window runs in a child

CHILD = r"""
import json, os, sys, time
os.environ["QT_QPA_PLATFORM"] = "offscreen"
from pathlib import Path
from PySide6.QtCore import QEventLoop, QTimer
from PySide6.QtWidgets import QApplication
from app.qt.main_window import MainWindow
from app.model.project import entry_to_json
from app.model.settings import AppSettings
from trackers.types import Box

app = QApplication([])
window = MainWindow(AppSettings(tracker="identity", device="cpu"), prompts=False, persist_settings=False)
window.show()
assert window.open_path(Path(sys.argv[1])), window.last_error
session = window.document.session

def state():
    return [None if e is None else entry_to_json(e) for e in session.trajectory.entries]

last = [None]

def report(*_args):
    # every state the window passes through, also those in the middle of a tracking run:
    # a kill can land there, and the journal may hold one of them
    now = state()
    if now != last[0]:
        last[0] = now
        print(json.dumps({"i": -1, "t": time.time(), "state": now}), flush=True)

window.annotator.changed.connect(report)

def settle(seconds):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        app.processEvents()
        time.sleep(0.005)

def run_and_wait():
    loop = QEventLoop()
    window.run_ended.connect(loop.quit)
    QTimer.singleShot(5000, loop.quit)
    if window.track(+1):
        loop.exec()
    window.run_ended.disconnect(loop.quit)

i = 0
while True:
    frame = (i * 7) % 30
    kind = i % 9
    window.go_to(frame)
    if kind in (0, 3, 6):
        window.set_keyframe(frame, Box(10 + i % 13, 20 + i % 5, 30 + i % 7, 25))
    elif kind == 1:
        window.nudge(1, 0, 0, 0)
    elif kind == 2:
        window.annotator.mark_absent(frame)
    elif kind == 4:
        window.annotator.undo()
    elif kind == 5:
        window.annotator.redo()
    elif kind == 7:
        window.set_keyframe(frame, Box(40, 30, 20, 20))
        run_and_wait()
    else:
        window.annotator.delete(frame)
    settle(0.02)
    report()
    i += 1
"""


def test_sigkill_while_editing_in_the_window_loses_no_edit_older_than_a_second(
    synthetic_clip, tmp_path, ledger
):
    env = dict(os.environ)
    for name in ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_STATE_HOME", "XDG_CACHE_HOME"):
        env[name] = str(tmp_path / name.lower())
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(synthetic_clip[0])],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    states: list[tuple[float, list]] = []
    try:
        assert child.stdout is not None
        for line in child.stdout:
            record = json.loads(line)
            states.append((record["t"], record["state"]))
            if states[-1][0] - states[0][0] >= 2.5:
                break  # still editing: it is killed in mid-stream
        killed_at = time.time()
        os.kill(child.pid, signal.SIGKILL)
        child.wait(10)
        # What it printed between our last read and its death: newer states, still candidates.
        for line in child.stdout:
            try:
                record = json.loads(line)
            except ValueError:
                break  # the line the kill cut
            states.append((record["t"], record["state"]))
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        if child.stdout is not None:
            child.stdout.close()
    ledger.injected()
    assert child.returncode == -signal.SIGKILL
    assert len(states) > 20

    journals = find_recoverable(tmp_path / "xdg_data_home" / "siamtrack")
    assert len(journals) == 1
    assert read_info(journals[0]).edits > 0
    restored = [None if e is None else entry_to_json(e) for e in restore(journals[0]).trajectory.entries]
    # Every edit older than a second is in; later ones may be too (the journal flushes every 0.5 s).
    old_enough = max(k for k, (stamp, _) in enumerate(states) if stamp < killed_at - 1.0)
    matches = [k for k, (_, state) in enumerate(states) if state == restored]
    lost = (
        0
        if matches and max(matches) >= old_enough
        else sum(a != b for a, b in zip(states[old_enough][1], restored))
    )
    ledger.edits(checked=old_enough + 1, lost=lost)
    assert matches and max(matches) >= old_enough, (old_enough, matches)
    discard(journals[0])
