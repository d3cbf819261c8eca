"""SiamRPN's training task: --freeze-classification trains the regression branch alone."""

from __future__ import annotations

import pytest
import torch

from training.siamrpn_train import SiamRPNTask


def _batch(seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    exemplars = torch.rand(2, 3, 127, 127, generator=generator) * 255
    searches = torch.rand(2, 3, 255, 255, generator=generator) * 255
    boxes = torch.tensor([[127.5, 127.5, 40.0, 100.0], [140.0, 120.0, 90.0, 30.0]])
    return exemplars, searches, boxes


@pytest.mark.parametrize("freeze_classification", [True, False])
def test_freezing_the_classification_keeps_the_class_scores_exactly(freeze_classification):
    task = SiamRPNTask(freeze_layers=5, freeze_classification=freeze_classification)
    net = task.build(0)
    names = {name for name, p in net.named_parameters() if p.requires_grad}
    assert all(name.startswith("rpn.") for name in names)  # the whole backbone is frozen
    assert any(".exemplar_reg." in n for n in names) and any(".reg_adjust." in n for n in names)
    assert any("_cls." in n for n in names) is not freeze_classification
    exemplars, searches, boxes = _batch()
    net.eval()
    with torch.no_grad():
        cls_before, reg_before = net(exemplars, searches)
    task.train_mode(net)
    optimizer = torch.optim.SGD(task.trainable(net), lr=1e-3, momentum=0.9)
    for _ in range(3):
        loss = task.loss(net, exemplars, searches, boxes)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    net.eval()
    with torch.no_grad():
        cls_after, reg_after = net(exemplars, searches)
    assert not torch.equal(reg_before, reg_after)  # the regression learned
    assert torch.equal(cls_before, cls_after) is freeze_classification


def test_settings_name_the_option_only_when_set():
    # a run from before the option resumes: its recorded settings have no such key
    assert "freeze_classification" not in SiamRPNTask().settings()
    assert SiamRPNTask(freeze_classification=True).settings()["freeze_classification"] is True


def test_the_command_line_passes_the_option_to_the_task():
    from training.__main__ import build_parser, make_task

    def task(*extra: str) -> SiamRPNTask:
        return make_task("siamrpn", build_parser().parse_args(["data", "--out", "x.pt", *extra]))

    assert task("--freeze-classification").freeze_classification
    assert not task().freeze_classification
