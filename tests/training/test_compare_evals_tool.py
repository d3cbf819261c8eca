"""tools/compare_evals.py: a candidate wins by the mean and by the count, never by one swing."""

from __future__ import annotations

import json

import pytest

from tests.tools import load_tool

tool = load_tool("compare_evals")


def write(path, aucs):
    trackers = {}
    for (tracker, sequence), auc in aucs.items():
        trackers.setdefault(tracker, {"mean": {}, "sequences": {}})["sequences"][sequence] = {"auc": auc}
    path.write_text(json.dumps({"trackers": trackers, "complete": True}))
    return str(path)


BASE = {("siamfc", f"s{i}"): 0.5 for i in range(8)}


def test_a_broad_gain_wins(tmp_path, capsys):
    better = {k: 0.52 for k in BASE}
    assert tool.main([write(tmp_path / "b.json", BASE), write(tmp_path / "c.json", better)]) == 0
    assert "mean 0.5200 (+0.0200), at least as good on 8/8: wins" in capsys.readouterr().out


def test_one_items_swing_does_not_win():
    # +0.3 on one item moves the mean of 8 by 0.0375, but the other 7 lost a little
    swing = {k: 0.49 for k in BASE} | {("siamfc", "s0"): 0.8}
    verdict = tool.compare(BASE, swing)
    assert verdict.gain == pytest.approx(0.3 / 8 - 0.01 * 7 / 8)
    assert verdict.at_least_as_good == 1 and not verdict.wins


def test_a_gain_under_the_margin_does_not_win():
    verdict = tool.compare(BASE, {k: 0.51 for k in BASE})
    assert verdict.at_least_as_good == 8 and not verdict.wins
    assert tool.compare(BASE, {k: 0.51 for k in BASE}, margin=0.009).wins


def test_runs_on_different_sequences_are_refused(tmp_path, capsys):
    other = {("siamfc", f"t{i}"): 0.5 for i in range(8)}
    assert tool.main([write(tmp_path / "b.json", BASE), write(tmp_path / "c.json", other)]) == 2
    assert "do not score the same" in capsys.readouterr().err
    (tmp_path / "junk.json").write_text("[]")
    assert tool.main([write(tmp_path / "b.json", BASE), str(tmp_path / "junk.json")]) == 2
