"""Cross-validation folds (training.splits.fold_names, tools/cv_folds.py): whole flights, every name once."""

from __future__ import annotations

import random

import pytest

from tests.tools import load_tool
from training.splits import flight_key, fold_names

NAMES = [
    "OTB100_Dog", "OTB100_Dog1", "OTB100_Jogging-1", "OTB100_Jogging-2", "UAV123_10fps_group1_1",
    "UAV123_10fps_group1_2", "UAV123_10fps_group1_3", "UAV123_10fps_car10", "UAV123_10fps_car1",
    "DTB70_Gull2", "VOT2017_ball1", "MIL_faceocc",
]


def test_every_name_lands_in_exactly_one_fold_with_its_whole_flight():
    parts = fold_names(NAMES, 3)
    assert len(parts) == 3 and all(parts)
    flat = [name for part in parts for name in part]
    assert sorted(flat) == sorted(NAMES)  # disjoint and complete
    for part in parts:
        for other in parts:
            if other is not part:
                assert not {flight_key(n) for n in part} & {flight_key(n) for n in other}
    # the three-segment flight sits in one fold; ``car10`` and ``car1`` are two flights
    group1 = [i for i, part in enumerate(parts) if "UAV123_10fps_group1_2" in part]
    assert all(n in parts[group1[0]] for n in NAMES if n.startswith("UAV123_10fps_group1_"))
    sizes = sorted(len(p) for p in parts)
    assert sizes[-1] - sizes[0] <= 3  # balanced within the largest flight


def test_folds_do_not_depend_on_the_order_given_and_keep_it_within_a_fold():
    shuffled = NAMES[:]
    random.Random(7).shuffle(shuffled)
    a, b = fold_names(NAMES, 4), fold_names(shuffled, 4)
    assert [set(p) for p in a] == [set(p) for p in b]
    assert all(p == [n for n in shuffled if n in p] for p in b)


def test_too_many_folds_or_none_is_an_error():
    with pytest.raises(ValueError, match="cannot fill"):
        fold_names(["a_1", "a_2", "b"], 3)
    with pytest.raises(ValueError, match="at least 1"):
        fold_names(NAMES, 0)


def test_the_tool_prints_the_paths_as_given(capsys):
    tool = load_tool("cv_folds")
    items = [f"../data/sequences/{n}" if i % 2 else f"../data/videos/{n}.mp4" for i, n in enumerate(NAMES)]
    assert tool.main([*items, "--folds", "3"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3 and sorted(w for line in lines for w in line.split()) == sorted(items)
    assert tool.main([*items, "--folds", "3", "--fold", "1"]) == 0
    assert capsys.readouterr().out.splitlines() == [lines[1]]
    with pytest.raises(SystemExit):
        tool.main([*items, "--folds", "3", "--fold", "3"])
