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


def test_the_bundled_dsiam_starts_from_a_teacher_boxes_fine_tune_of_the_bundled_siamfc():
    """Section 3.5's training through time, embedding frozen, from a short fine-tune of the
    shipped SiamFC on the teacher's boxes (17th session, README): it inherits everything that
    SiamFC and the fine-tune learnt from, teacher-labelled stretches included."""
    from trackers.dsiam.network import ARCHITECTURE
    from trackers.weights.provenance import read_provenance

    provenance = _provenance("dsiam.pt", ARCHITECTURE)
    assert "siamfc_box_all_distill" in provenance["init"] and provenance["train_embedding"] is False
    assert provenance["layers"] == "conv4+conv5" and provenance["clip_length"] == 4
    siamfc = read_provenance(WEIGHTS_DIR / "siamfc.pt")
    inherited = set(provenance["inherited_sequences"])
    assert set(siamfc["train_sequences"]) <= inherited
    assert any(name.startswith("teacher-") for name in inherited | set(provenance["train_sequences"]))


HELD_OUT = ("OTB100_Dog1", "OTB100_Jogging-1", "OTB100_Jogging-2", "OTB100_Subway", "VOT2015_bag",
            "OTB100_Coke", "UAVDT_S1606", "UAV123_10fps_group1_1", "UAV123_10fps_group1_2",
            "UAV123_10fps_group1_3", "UAV123_10fps_group1_4")
"""The 11 sequences the README's held-out figures are measured on."""


@pytest.mark.parametrize("name", ["siamfc.pt", "siamrpn.pt", "dsiam.pt"])
def test_no_bundled_weights_learnt_from_a_held_out_sequence(name):
    """Their own run's data and their ancestors' (trackers.weights.provenance): the held-out
    figures would measure memory otherwise."""
    from trackers.weights.provenance import learnt_from, read_provenance, seen_in_training

    learnt = learnt_from(read_provenance(WEIGHTS_DIR / name))
    assert len(learnt) >= 40  # it names what it trained on (44 labelled sequences at least)
    # teacher-labelled stretches count as their clip's frames; the held-out VOT2015_bag is bag.avi
    assert seen_in_training((*HELD_OUT, "bag"), learnt) == []
