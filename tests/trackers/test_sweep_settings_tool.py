"""tools/sweep_settings.py: the coordinate descent that chose SiamFC's and DSiam's settings."""

from __future__ import annotations

import json
import subprocess

import pytest

from tests.media import make_otb
from tests.tools import load_tool

sweep = load_tool("sweep_settings")


def test_groups_parse_and_bad_ones_are_refused():
    assert sweep.parse_group("a=1,2 b=3") == [("a", ["1", "2"]), ("b", ["3"])]
    for bad in ("", "a", "a=", "=1", "a:b=1", "a:b=1:2,3", "a:=1:2", "a:b=1:"):
        with pytest.raises(ValueError):
            sweep.parse_group(bad)


def test_tied_keys_are_tried_only_in_their_pairs():
    group = sweep.parse_group("search_size:score_size=287:21,303:23 w=1,2")
    got = sorted(sweep.settings_key(c) for c in sweep.candidates({"w": "1"}, group))
    assert got == [  # never 287 with 23; the one equal to the best so far ({"w": "1"}) is absent anyway
        "score_size=21,search_size=287,w=1", "score_size=21,search_size=287,w=2",
        "score_size=23,search_size=303,w=1", "score_size=23,search_size=303,w=2",
    ]


def test_a_change_is_kept_only_for_the_asked_gain_and_carries_into_later_groups():
    table = {
        "defaults": 0.50,
        "w=1": 0.505, "w=2": 0.52,                      # w=2 gains 0.02: kept
        "s=1,w=2": 0.525, "s=2,w=2": 0.51,              # best gains 0.005 < 0.01: not kept
        "p=1,q=1,w=2": 0.60, "p=1,q=2,w=2": 0.55, "p=2,q=1,w=2": 0.40, "p=2,q=2,w=2": 0.58,
    }
    asked = []

    def score(batch):
        asked.append([sweep.settings_key(s) for s in batch])
        return [table[sweep.settings_key(s)] for s in batch]

    groups = [sweep.parse_group(g) for g in ("w=1,2", "s=1,2", "p=1,2 q=1,2")]
    best, auc = sweep.descend(groups, score, 0.01, say=lambda line: None)
    assert best == {"w": "2", "p": "1", "q": "1"} and auc == 0.60
    assert asked[0] == ["defaults"]
    assert asked[2] == ["s=1,w=2", "s=2,w=2"]  # laid over the best so far
    assert len(asked[3]) == 4  # every combination of a group's values
    # a candidate equal to the best so far is not scored again
    assert sweep.candidates({"w": "2"}, [("w", ["1", "2"])]) == [{"w": "1"}]


def test_the_profile_scorer_runs_auc_profile_and_resumes_from_its_file(tmp_path, monkeypatch):
    folder = make_otb(tmp_path / "data", "Still", frames=4)
    cache = tmp_path / "sweep.json"
    score = sweep.profile_scorer([str(folder)], "siamfc", None, cache, workers=2)
    first = score([{}, {"window_influence": "0.3"}])
    assert all(0.0 <= a <= 1.0 for a in first)
    assert set(json.loads(cache.read_text())) == {"defaults", "window_influence=0.3"}

    def refuse(*args, **kwargs):
        raise AssertionError("a cached candidate was run again")

    monkeypatch.setattr(subprocess, "run", refuse)
    again = sweep.profile_scorer([str(folder)], "siamfc", None, cache, workers=1)
    assert again([{}, {"window_influence": "0.3"}]) == first


def test_parts_pool_into_one_mean_over_every_sequence():
    rows = [(1, {"auc": 0.2, "drift": 0.5}), (3, {"auc": 0.6, "drift": 0.1})]
    assert sweep.pooled(rows) == pytest.approx({"auc": 0.5, "drift": 0.2})


def test_a_cross_validated_split_scores_each_part_with_its_own_weights(tmp_path, monkeypatch):
    a = make_otb(tmp_path / "data", "Alpha", frames=4)
    b = make_otb(tmp_path / "data", "Beta", frames=4, origin=(10, 12))
    c = make_otb(tmp_path / "data", "Gamma", frames=4, origin=(30, 8))
    calls = []
    real = subprocess.run
    alone = {}
    for folder in (a, b, c):
        one = sweep.profile_scorer([str(folder)], "siamfc", None, tmp_path / f"{folder.name}.json", workers=1)
        alone[folder.name] = one([{}])[0]
    score = sweep.profile_scorer([str(a)], "siamfc", None, tmp_path / "cv.json", workers=2,
                                 parts=[("fold1.pt", [str(b), str(c)])])

    def fake_weights(command, **kwargs):  # the part's weights reach its run; track with the bundled ones
        calls.append(command)
        return real([x.replace("=fold1.pt", "") for x in command], **kwargs)

    monkeypatch.setattr(subprocess, "run", fake_weights)
    (pooled,) = score([{}])
    assert pooled == pytest.approx((alone["Alpha"] + alone["Beta"] + alone["Gamma"]) / 3)
    trackers = sorted(cmd[cmd.index("--tracker") + 1] for cmd in calls)
    assert trackers == ["x:siamfc", "x:siamfc=fold1.pt"]
    with pytest.raises(ValueError, match="no sequences"):
        sweep.profile_scorer([], "siamfc", None, tmp_path / "none.json", workers=1)
