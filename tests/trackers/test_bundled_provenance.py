"""The bundled weights say where they come from: the distilled ones name their teacher (issue 16)."""

from __future__ import annotations

import pytest

from resources import WEIGHTS_DIR


def _provenance(name: str, architecture: str) -> dict:
    from trackers.weights.loading import load_checkpoint

    _, meta = load_checkpoint(WEIGHTS_DIR / name, architecture)
    return meta["provenance"]


@pytest.mark.parametrize("name, module", [("siamrpn.pt", "trackers.siamrpn.network"),
                                          ("dsiam.pt", "trackers.dsiam.network")])
def test_the_distilled_bundled_weights_name_the_teacher(name, module):
    import importlib

    provenance = _provenance(name, importlib.import_module(module).ARCHITECTURE)
    assert provenance["teacher"] == "nano"
    assert "NanoTrack" in provenance["teacher_model"]
    assert provenance["teacher_files"] == ["nanotrack_backbone_sim.onnx", "nanotrack_head_sim.onnx"]
    assert provenance["shipped_from"]  # SiamRPN ships an epoch copy of an unfinished run: no "finished"


def test_the_bundled_dsiam_starts_from_a_distilled_siamfc_with_the_embedding_frozen():
    from trackers.dsiam.network import ARCHITECTURE

    provenance = _provenance("dsiam.pt", ARCHITECTURE)
    assert "siamfc_box_distill" in provenance["init"] and provenance["train_embedding"] is False
    assert provenance["layers"] == "conv4+conv5" and provenance["clip_length"] == 4
