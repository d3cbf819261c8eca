"""tools/calibrate_confidence.py: the logistic fit, and --set reaching every tracker it fits."""

from __future__ import annotations

import numpy as np
import pytest

import trackers.evaluation
from tests.tools import load_tool

calibrate = load_tool("calibrate_confidence")


def test_the_fit_recovers_the_map_that_made_the_hits():
    rng = np.random.default_rng(7)
    scores = rng.uniform(-4, 8, 20000)
    hits = rng.random(scores.size) < 1 / (1 + np.exp(-(0.8 * scores - 2.0)))
    a, b = calibrate.fit_logistic(scores, hits)
    assert a == pytest.approx(0.8, abs=0.05) and b == pytest.approx(-2.0, abs=0.1)


def test_set_reaches_every_tracker_as_typed_config(monkeypatch, tmp_path, capsys):
    (tmp_path / "Seq").mkdir()
    seen = []

    def fake_collect(name, sequences, frames, weights, config=None):
        seen.append((name, config))
        return np.array([1.0, 2.0, 3.0, 4.0]), np.array([0.2, 0.7, 0.4, 0.9])

    monkeypatch.setattr(calibrate, "collect", fake_collect)
    monkeypatch.setattr(trackers.evaluation, "load_sequences", lambda folders: [])
    code = calibrate.main(["--tracker", "dsiam", "--tracker", "dsiamm", "--data", str(tmp_path),
                           "--set", "window_influence=0.176", "--set", "scale_count=3"])
    assert code == 0
    want = {"window_influence": 0.176, "scale_count": 3}
    assert seen == [("dsiam", want), ("dsiamm", want)]
    assert '"dsiam": (' in capsys.readouterr().out


def test_a_malformed_set_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exc:
        calibrate.main(["--set", "window_influence"])
    assert exc.value.code == 2 and "KEY=VALUE" in capsys.readouterr().err
