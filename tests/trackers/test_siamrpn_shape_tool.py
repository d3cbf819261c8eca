"""tools/siamrpn_shape.py: its three views run on a tiny sequence with exact ground truth."""

from __future__ import annotations

import numpy as np

from tests.media import make_otb
from tests.tools import load_tool

tool = load_tool("siamrpn_shape")


def test_one_step_counts_every_pair_and_finds_the_moving_block(tmp_path):
    seq = make_otb(tmp_path, "Block", frames=12, size=(160, 120))
    rows = tool.one_step(None, [str(seq)], every=1)
    # a 14 x 10 block: h/w 0.71, the square class; 11 one-step pairs
    assert list(rows) == ["square"] and rows["square"]["n"] == 11
    row = rows["square"]
    assert all(np.isfinite(v) for v in row.values())
    # the block moves 2 px a frame; a proposal on the wrong side of the search centre, or in
    # search pixels instead of frame pixels, would be off by far more than half its size
    assert row["centre"] < 0.5 and 0.5 < row["w"] < 2.0 and 0.5 < row["h"] < 2.0


def test_trace_prints_every_tenth_frame(tmp_path):
    seq = make_otb(tmp_path, "Block", frames=25, size=(160, 120))
    lines = tool.trace(None, str(seq))
    assert [int(line.split(":")[0]) for line in lines] == [10, 20]
    assert "/   14.0 x   10.0" in lines[0]  # the truth beside the box


def test_main_prints_the_views_asked_for(tmp_path, capsys):
    seq = make_otb(tmp_path, "Block", frames=12, size=(160, 120))
    assert tool.main([str(seq), "--trace", str(seq)]) == 0
    out = capsys.readouterr().out
    assert "30 x  90 ->" in out and "one step from the truth" in out and "closed loop on" in out
