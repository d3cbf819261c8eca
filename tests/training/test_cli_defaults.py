"""`python -m training` takes its defaults from TrainConfig: one place for them (issue 19.4)."""

from __future__ import annotations

import dataclasses

from training.__main__ import build_parser
from training.config import TrainConfig


def test_the_command_line_defaults_are_the_config_defaults():
    args = vars(build_parser().parse_args(["data", "--out", "w.pt"]))
    config = {f.name: f.default for f in dataclasses.fields(TrainConfig)}
    shared = set(args) & set(config) - {"metric_frames", "cache_dir", "init", "resume"}
    assert {"epochs", "pairs_per_epoch", "val_pairs", "checkpoint_every", "max_gap", "seed",
            "teacher_weight", "patience", "device", "amp"} <= shared
    assert {name: args[name] for name in shared} == {name: config[name] for name in shared}


def test_hflip_is_a_probability():
    import pytest

    parser = build_parser()
    assert parser.parse_args(["data", "--out", "w.pt", "--hflip", "0.5"]).hflip == 0.5
    with pytest.raises(SystemExit):
        parser.parse_args(["data", "--out", "w.pt", "--hflip", "1.5"])


def test_negative_pairs_is_a_share():
    import pytest

    parser = build_parser()
    assert parser.parse_args(["data", "--out", "w.pt"]).negative_pairs == 0.0
    assert parser.parse_args(["data", "--out", "w.pt", "--negative-pairs", "0.2"]).negative_pairs == 0.2
    with pytest.raises(SystemExit):
        parser.parse_args(["data", "--out", "w.pt", "--negative-pairs", "-0.1"])
