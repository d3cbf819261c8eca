"""What a weights file trained on, read from its provenance, and ``siamtrack eval`` marking
the sequences it trained on (trackers.weights.provenance)."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from tests.trackers.test_evaluation import TINY_GT, make_otb
from trackers.evaluation import evaluate, format_table, load_sequences
from trackers.registry import create_tracker
from trackers.siamfc.network import ARCHITECTURE, SiamFCNet, init_weights
from trackers.weights.checkpoint import save_checkpoint
from trackers.weights.provenance import learnt_from, read_provenance, seen_in_training


def siamfc_weights(path: Path, provenance: dict) -> Path:
    net = SiamFCNet()
    init_weights(net, seed=0)
    return save_checkpoint(
        path, net.state_dict(), architecture=ARCHITECTURE, config={}, provenance=provenance
    )


def test_own_and_inherited_sequences_are_read(tmp_path):
    provenance = {"train_sequences": ["a", "b-train"], "inherited_sequences": ["c"]}
    path = siamfc_weights(tmp_path / "w.pt", provenance)
    learnt = learnt_from(read_provenance(path))
    assert learnt == {"a", "b-train", "c"}
    # a --val-tail run trained on the head of b: b counts as seen; d never was
    assert seen_in_training(["d", "c", "b", "a"], learnt) == ["c", "b", "a"]
    # a stretch the teacher labelled is training on its clip's frames (training.pseudo_labels' names)
    from training.pseudo_labels import TEACHER_PREFIX

    stretches = frozenset({f"{TEACHER_PREFIX}OTB100_Coke-o3p1", f"{TEACHER_PREFIX}my-clip-7-o0p12"})
    assert seen_in_training(["OTB100_Coke", "my-clip-7", "my-clip", "OTB100"], stretches) == [
        "OTB100_Coke", "my-clip-7"]


def test_files_without_provenance_name_nothing(tmp_path):
    assert read_provenance(None) == {} and read_provenance(tmp_path / "missing.pt") == {}
    plain = tmp_path / "plain.pt"
    torch.save({"conv.weight": torch.zeros(1)}, plain)  # a foreign layout
    assert read_provenance(plain) == {}
    (tmp_path / "junk.pt").write_bytes(b"not a torch file")
    assert read_provenance(tmp_path / "junk.pt") == {}
    assert learnt_from({"train_sequences": "not a list"}) == frozenset()


def test_eval_marks_the_sequences_the_weights_trained_on(tmp_path):
    weights = siamfc_weights(tmp_path / "w.pt", {"train_sequences": ["one", "elsewhere"]})
    sequences = load_sequences([make_otb(tmp_path, "one", TINY_GT), make_otb(tmp_path, "two", TINY_GT)])

    def factory(name: str):
        if name == "bundled":
            return create_tracker("siamfc", device="cpu")
        return create_tracker("siamfc", weights=weights, device="cpu")

    report = evaluate(sequences, ["mine", "bundled"], factory)
    assert report.trained_on["mine"] == ["one"]
    # the bundled siamfc.pt never trained on these generated sequences
    assert report.trained_on["bundled"] == []
    data = json.loads(json.dumps(report.to_json()))
    assert data["trackers"]["mine"]["trained_on"] == ["one"]
    assert "trained_on" not in data["trackers"]["bundled"]
    table = format_table(report)
    rows = table.splitlines()
    assert any(row.startswith("mine") and "one *" in row for row in rows)
    assert not any("two *" in row for row in rows)
    assert "WARNING: mine's weights trained on 1 of the 2 sequences marked *" in table
    assert "bundled's weights" not in table


def test_eval_of_the_bundled_siamfc_on_its_own_training_data_says_so(tmp_path):
    # siamfc.pt's provenance lists OTB100_Bird2 (README, Weights): a sequence of that name is marked
    sequences = load_sequences([make_otb(tmp_path, "OTB100_Bird2", TINY_GT)])
    report = evaluate(sequences, ["siamfc"], lambda name: create_tracker(name, device="cpu"))
    assert report.trained_on["siamfc"] == ["OTB100_Bird2"]


def test_record_lineage_adds_the_ancestors_sequences_and_keeps_the_tensors(tmp_path):
    from tests.tools import load_tool

    record = load_tool("record_lineage")
    ancestor = siamfc_weights(tmp_path / "a.pt", {"train_sequences": ["A1"], "inherited_sequences": ["A0"]})
    weights = {"w": torch.arange(6.0).reshape(2, 3)}
    target = save_checkpoint(tmp_path / "t.pt", weights, architecture=ARCHITECTURE, config={"k": 1},
                             provenance={"train_sequences": ["T"]}, half=True, int8=["w"])
    before = torch.load(target, weights_only=True)
    assert record.main([str(target), str(ancestor)]) == 0
    after = torch.load(target, weights_only=True)
    assert after["provenance"]["inherited_sequences"] == ["A0", "A1"]
    assert learnt_from(read_provenance(target)) == {"A0", "A1", "T"}
    assert torch.equal(after["int8"]["w"]["values"], before["int8"]["w"]["values"])
    assert torch.equal(after["int8"]["w"]["scale"], before["int8"]["w"]["scale"])
    assert after["config"] == {"k": 1}
    # an ancestor that names nothing, or a target that is not ours, is refused and nothing is written
    bare = tmp_path / "bare.pt"
    torch.save({"w": torch.zeros(1)}, bare)
    assert record.main([str(target), str(bare)]) == 2
    assert record.main([str(bare), str(ancestor)]) == 2
    assert torch.load(bare, weights_only=True).keys() == {"w"}
