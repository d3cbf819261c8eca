"""Weights files that must be refused: another architecture's, truncated, damaged, code.

Every one is a WeightsError (a TrackerError, one line, naming the file); nothing in
them runs; the CLI prints one line and exits 2; the app's tracker panel and a run
say why, and the app keeps running.
"""

from __future__ import annotations

import pickle
import random
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.cli import main
from trackers.protocol import TrackerError
from trackers.siamfc.network import ARCHITECTURE, SiamFCNet, init_weights
from trackers.weights.checkpoint import WeightsError, save_checkpoint
from trackers.weights.loading import load_checkpoint

from .conftest import BROKEN, dialog_text

CORPUS = sorted((BROKEN / "weights").iterdir())


class Payload:
    """Unpickling this creates the marker file: the loader must never do it."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


@pytest.fixture(scope="module")
def good(tmp_path_factory) -> Path:
    net = SiamFCNet()
    init_weights(net)
    return save_checkpoint(
        tmp_path_factory.mktemp("w") / "siamfc.pt", net.state_dict(), architecture=ARCHITECTURE, config={}
    )


@pytest.fixture
def bad_weights(tmp_path, good) -> dict[str, Path]:
    """Every kind of bad weights file, by name; ``tmp_path / 'pwned'`` appears if any runs code."""
    marker = tmp_path / "pwned"
    made = {p.name: p for p in CORPUS}
    data = good.read_bytes()
    for fraction in (0.01, 0.5, 0.99):
        path = tmp_path / f"truncated_{fraction}.pt"
        path.write_bytes(data[: int(len(data) * fraction)])
        made[path.name] = path
    other = save_checkpoint(
        tmp_path / "other_architecture.pt", {"a": torch.zeros(1)}, architecture="siamrpn-alexnet", config={}
    )
    made["other_architecture.pt"] = other
    evil_zip = tmp_path / "evil_zip.pt"
    torch.save({"format": "siamtrack-checkpoint", "state_dict": Payload(marker)}, evil_zip)
    made[evil_zip.name] = evil_zip
    evil_raw = tmp_path / "evil_raw.pt"
    evil_raw.write_bytes(pickle.dumps(Payload(marker)))
    made[evil_raw.name] = evil_raw
    no_state = tmp_path / "no_state_dict.pt"
    torch.save({"format": "siamtrack-checkpoint", "version": 1, "architecture": ARCHITECTURE}, no_state)
    made[no_state.name] = no_state
    not_tensors = tmp_path / "not_tensors.pt"
    torch.save(
        {"format": "siamtrack-checkpoint", "architecture": ARCHITECTURE, "state_dict": {"w": [1, 2]}},
        not_tensors,
    )
    made[not_tensors.name] = not_tensors
    wrong_shapes = save_checkpoint(
        tmp_path / "wrong_shapes.pt",
        {"embedding.conv1.0.weight": torch.zeros(3)},
        architecture=ARCHITECTURE,
        config={},
    )
    made[wrong_shapes.name] = wrong_shapes
    return made


def test_every_bad_weights_file_is_refused_in_one_line_and_nothing_runs(bad_weights, tmp_path, ledger):
    from trackers.siamfc.tracker import SiamFCTracker

    for name, path in bad_weights.items():
        ledger.tried()
        with pytest.raises(TrackerError) as info:  # WeightsError, or "does not fit" for wrong shapes
            SiamFCTracker.create("siamfc-3s", weights=path, device="cpu")
        message = str(info.value)
        assert "\n" not in message and path.name in message, (name, message)
    assert not (tmp_path / "pwned").exists()


def test_code_in_a_pickle_is_refused_and_said_to_be(bad_weights, tmp_path):
    with pytest.raises(WeightsError, match="would run code"):
        load_checkpoint(bad_weights["evil_zip.pt"], ARCHITECTURE)
    with pytest.raises(WeightsError, match="could run code"):
        load_checkpoint(bad_weights["evil_raw.pt"], ARCHITECTURE)
    with pytest.raises(WeightsError, match="siamrpn-alexnet"):
        load_checkpoint(bad_weights["other_architecture.pt"], ARCHITECTURE)
    assert not (tmp_path / "pwned").exists()


def test_the_cli_says_one_line_and_exits_2(bad_weights, synthetic_clip, tmp_path, capsys, ledger):
    out = tmp_path / "out.txt"
    for name, path in bad_weights.items():
        ledger.tried()
        rc = main(
            [
                "track",
                str(synthetic_clip[0]),
                "--box",
                "20,30,40,30",
                "--tracker",
                "siamfc-3s",
                "--weights",
                str(path),
                "--device",
                "cpu",
                "--out",
                str(out),
            ]
        )
        err = capsys.readouterr().err.strip()
        assert rc == 2, (name, err)
        assert err.count("\n") == 0 and path.name in err and "Traceback" not in err, (name, err)
    assert not out.exists() and not (tmp_path / "pwned").exists()


@settings(max_examples=60, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(seed=st.integers(0, 2**32 - 1), mode=st.sampled_from(["cut", "flip", "splice", "junk"]))
def test_damaged_checkpoints_only_ever_give_weights_errors(good, seed, mode, tmp_path_factory, ledger):
    """Whatever the damage, a WeightsError or a clean load: never a KeyError, struct.error, ..."""
    rnd = random.Random(seed)
    data = bytearray(good.read_bytes())
    if mode == "cut":
        data = data[: rnd.randrange(len(data))]
    elif mode == "flip":
        for _ in range(rnd.randint(1, 30)):
            data[rnd.randrange(len(data))] = rnd.randrange(256)
    elif mode == "splice":
        at = rnd.randrange(len(data))
        data[at : at + rnd.randint(1, 400)] = rnd.randbytes(rnd.randint(0, 60))
    else:
        data = bytearray(rnd.randbytes(rnd.randint(0, 600)))
    path = tmp_path_factory.mktemp("fuzz") / "w.pt"
    path.write_bytes(bytes(data))
    ledger.tried()
    try:
        load_checkpoint(path, ARCHITECTURE)
    except WeightsError as exc:
        assert "\n" not in str(exc)


def test_the_app_says_why_and_keeps_running(bad_weights, window_factory, qtbot, tmp_path, ledger):
    from app.model.session import TrackerSettings
    from trackers.types import Box

    window = window_factory(prompts=True, tracker="siamfc-3s")
    for name in ("evil_zip.pt", "truncated_0.5.pt", "other_architecture.pt"):
        ledger.tried()
        settings_ = TrackerSettings("siamfc-3s", weights=bad_weights[name], device="cpu")
        window.panel.set_settings(settings_)
        window.controller.probe(settings_)
        qtbot.waitUntil(lambda n=name: n in window.panel.status_label.text(), timeout=10_000)
        window.set_keyframe(0, Box(20, 30, 40, 30))
        with qtbot.waitSignal(window.run_ended, timeout=10_000) as ended:
            assert window.track(+1)
        assert ended.args[1] == "failed"
        assert name in (dialog_text(window) or "")
        window._message_box.close()
    assert not (tmp_path / "pwned").exists()
    assert window.isVisible() and window.document is not None
