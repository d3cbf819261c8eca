"""tools/measure_gc_stalls.py: one short run of the app's window, with and without the heap freeze."""

from __future__ import annotations

import gc
import re

import pytest

from app.qt import heap_freeze
from tests.tools import load_tool


@pytest.fixture(scope="module")
def tool():
    return load_tool("measure_gc_stalls")


@pytest.mark.gui
@pytest.mark.parametrize("off", [False, True])
def test_a_short_run_reports_collections_and_the_worst_gap(qapp, tool, capsys, monkeypatch, off):
    # --no-freeze switches the module's functions off for the process: put them back after
    monkeypatch.setattr(heap_freeze, "hold", heap_freeze.hold)
    monkeypatch.setattr(heap_freeze, "release", heap_freeze.release)
    seen: list[int] = []
    original_hold = heap_freeze.hold

    def counting_hold() -> None:
        seen.append(1)
        original_hold()

    monkeypatch.setattr(heap_freeze, "hold", counting_hold)
    assert tool.main(["--frames", "40"] + (["--no-freeze"] if off else [])) == 0
    out = capsys.readouterr().out
    assert "identity, 40 frames in " in out and f"heap freeze {'off' if off else 'on'}" in out
    assert re.search(r"full collections during the run: \d+", out)
    assert re.search(r"worst event-loop gap \(10 ms timer\): \d+ ms", out)
    # both runs (the first short one and the measured one) froze the heap, unless switched off
    assert seen == ([] if off else [1, 1])
    assert heap_freeze.holders() == 0 and gc.get_freeze_count() == 0
