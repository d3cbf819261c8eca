"""Library code reports through logging; the CLI installs the handler (issue 18.12)."""

from __future__ import annotations

import logging

import torch

from trackers.weights.loading import load_or_random


def untrained(tmp_path) -> bool:
    return load_or_random(
        torch.nn.Linear(1, 1),
        weights=None,
        default_path=tmp_path / "absent.pt",
        name="demo",
        init=lambda net: None,
        load=lambda net, path: None,
    )


def test_a_program_can_silence_or_redirect_the_library(tmp_path, capsys, caplog):
    logger = logging.getLogger("trackers")
    old_level = logger.level
    try:
        logger.setLevel(logging.ERROR)
        assert untrained(tmp_path)
        assert "RANDOM" not in capsys.readouterr().err and not caplog.records
        logger.setLevel(logging.WARNING)
        with caplog.at_level(logging.WARNING, logger="trackers"):
            untrained(tmp_path)
        record = caplog.records[-1]
        assert record.name == "trackers.weights.loading" and "RANDOM" in record.getMessage()
    finally:
        logger.setLevel(old_level)


def test_the_cli_prints_library_warnings_on_stderr(tmp_path, capsys):
    from app.cli import install_log_handler

    install_log_handler()
    install_log_handler()  # twice: still one line per message
    untrained(tmp_path)
    err = capsys.readouterr().err
    assert err.count("RANDOM") == 1 and err.startswith("WARNING: demo has no trained weights")
