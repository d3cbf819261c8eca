"""tools/auc_profile.py: the shortfall 1 - IoU splits exactly into drift, localisation, scale, aspect."""

from __future__ import annotations

import numpy as np
import pytest

from tests.tools import load_tool

auc_profile = load_tool("auc_profile")

GT = np.array([[10.0, 20.0, 40.0, 20.0]])


def _parts(pred):
    return auc_profile.profile(np.asarray([pred], dtype=np.float64), GT)


def test_a_perfect_box_loses_nothing():
    p = _parts([10, 20, 40, 20])
    assert p["iou"] == pytest.approx(1.0) and p["drift"] == p["localisation"] == 0.0
    assert p["scale"] == pytest.approx(0.0) and p["aspect"] == pytest.approx(0.0)


@pytest.mark.parametrize("pred, part", [
    ([20, 20, 40, 20], "localisation"),   # moved
    ([0, 15, 60, 30], "scale"),           # same centre and aspect, larger
    ([20, 10, 20, 40], "aspect"),         # same centre and area, turned
    ([200, 200, 40, 20], "drift"),        # off the target
])
def test_each_error_lands_in_its_own_part(pred, part):
    p = _parts(pred)
    assert p[part] > 0.2
    others = {"drift", "localisation", "scale", "aspect"} - {part}
    assert all(p[o] == pytest.approx(0.0, abs=1e-9) for o in others)
    assert p["iou"] + p["drift"] + p["localisation"] + p["scale"] + p["aspect"] == pytest.approx(1.0)


def test_mixed_errors_still_add_up_to_one():
    rng = np.random.default_rng(0)
    gt = np.column_stack([rng.uniform(0, 100, 50), rng.uniform(0, 100, 50), rng.uniform(5, 50, 50),
                          rng.uniform(5, 50, 50)])
    pred = gt + rng.normal(0, 8, gt.shape)
    pred[:, 2:] = np.abs(pred[:, 2:]) + 1
    p = auc_profile.profile(pred, gt)
    total = p["iou"] + p["drift"] + p["localisation"] + p["scale"] + p["aspect"]
    assert total == pytest.approx(1.0) and p["frames"] == 50


def test_tracker_specs_name_label_and_weights():
    assert auc_profile.parse_spec("siamfc") == ("siamfc", ("siamfc", None))
    assert auc_profile.parse_spec("siamfc=w.pt") == ("siamfc=w.pt", ("siamfc", "w.pt"))
    assert auc_profile.parse_spec("new:siamfc=/a/w.pt") == ("new", ("siamfc", "/a/w.pt"))


def test_set_gives_one_tracker_its_own_config(tmp_path, monkeypatch):
    from tests.media import make_otb

    folder = make_otb(tmp_path, "Seq", frames=3)
    made = {}
    real = auc_profile.create_tracker

    def spy(name, **kwargs):
        made.setdefault(name + str(kwargs.get("config")), kwargs.get("config"))
        return real(name, **kwargs)

    monkeypatch.setattr(auc_profile, "create_tracker", spy)
    out = tmp_path / "p.json"
    assert auc_profile.main([str(folder), "--tracker", "old:siamrpn", "--tracker", "new:siamrpn",
                             "--set", "old:lr=0", "--set", "old:precision=fp32", "--json", str(out)]) == 0
    assert sorted(map(str, made.values())) == ["None", "{'lr': 0, 'precision': 'fp32'}"]
    assert set(__import__("json").loads(out.read_text())) == {"old", "new"}
    with pytest.raises(SystemExit):
        auc_profile.main([str(folder), "--tracker", "old:siamrpn", "--set", "nobody:lr=0"])
