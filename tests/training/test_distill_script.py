"""tools/distill.sh keeps the held-out items out of every run (issue 16's honest evaluation).

The script builds its data lists from a copy of ``../shared/data``; here a fake copy with the
real names (empty files) stands in, and ``DISTILL_DRY_RUN`` prints the arguments it would train with.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
HELDOUT_SEQUENCES = ("OTB100_Dog1", "OTB100_Jogging-1", "OTB100_Jogging-2", "OTB100_Subway", "VOT2015_bag")
HELDOUT_VIDEOS = ("OTB100_Coke", "UAVDT_S1606", "UAV123_10fps_group1_1", "UAV123_10fps_group1_2",
                  "UAV123_10fps_group1_3", "UAV123_10fps_group1_4")
HELDOUT = HELDOUT_SEQUENCES + HELDOUT_VIDEOS
TRAINING_SEQUENCES = ("OTB100_Bird2", "DTB70_Surfing06")
TRAINING_VIDEOS = ("OTB100_Biker", "UAV123_10fps_group2_1", "VOT-TIR2015_horse")
CLIPS = ("01_dog.mp4", "bag.avi", "vtest.avi")

pytestmark = pytest.mark.skipif(shutil.which("bash") is None, reason="tools/distill.sh needs bash")


@pytest.fixture
def data(tmp_path: Path) -> Path:
    root = tmp_path / "data"
    for name in HELDOUT_SEQUENCES + TRAINING_SEQUENCES:
        (root / "sequences" / name / "img").mkdir(parents=True)
    (root / "videos" / "labelled").mkdir(parents=True)
    for name in HELDOUT_VIDEOS + TRAINING_VIDEOS:
        (root / "videos" / "labelled" / f"{name}.mp4").write_bytes(b"")
    (root / "videos" / "unlabelled").mkdir(parents=True)
    for name in CLIPS:
        (root / "videos" / "unlabelled" / name).write_bytes(b"")
    return root


def dry_run(data: Path, variant: str, tmp_path: Path, **extra: str) -> list[str]:
    (tmp_path / "photos").mkdir(exist_ok=True)
    env = dict(os.environ, DISTILL_DATA=str(data), DISTILL_DRY_RUN="1", PHOTOS=str(tmp_path / "photos"))
    env.update(extra)
    for name in ("DISTILL_VAL", "DISTILL_RUN"):
        if name not in extra:
            env.pop(name, None)
    done = subprocess.run(["bash", str(ROOT / "tools" / "distill.sh"), variant], env=env, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()


def option(args: list[str], name: str) -> list[str]:
    """The values after ``name`` up to the next option (none where ``name`` is absent)."""
    if name not in args:
        return []
    start = args.index(name) + 1
    end = next((i for i in range(start, len(args)) if args[i].startswith("--")), len(args))
    return args[start:end]


@pytest.mark.parametrize("variant", ["siamfc", "siamfc-box", "siamfc-wide", "siamfc-scratch", "siamrpn",
                                     "siamrpn-wide", "siamrpn-shape"])
def test_no_held_out_item_reaches_a_run(data, variant, tmp_path):
    args = dry_run(data, variant, tmp_path)
    names = [Path(a).name for a in args]
    for held in HELDOUT:
        assert not any(n == held or n.startswith(f"{held}.") for n in names), held
    assert "bag.avi" not in names  # the held-out VOT2015_bag as a video
    tracker = option(args, "--tracker")
    assert tracker[0] == variant.split("-")[0]
    items = tracker[1:]
    assert sorted(Path(i).stem for i in items) == sorted(TRAINING_SEQUENCES + TRAINING_VIDEOS)
    assert option(args, "--val") == ["DTB70_Surfing06", "VOT-TIR2015_horse"]
    labelled = [Path(a).name for a in option(args, "--teacher-label")]
    assert "VOT-TIR2015_horse.mp4" not in labelled  # the validation video is never teacher-labelled
    if variant.endswith("-wide") or variant == "siamfc-scratch":
        assert sorted(labelled) == sorted(["01_dog.mp4", "vtest.avi", "OTB100_Biker.mp4",
                                           "UAV123_10fps_group2_1.mp4"])
        assert option(args, "--synthetic") == [str(tmp_path / "photos")]
        assert option(args, "--teacher-label-objects") == ["8"]
        # from random weights at the paper's learning rates, or from the shipped weights
        assert ("--init" in args) == (variant != "siamfc-scratch")
        assert ("--lr" in args) == (variant != "siamfc-scratch")
    elif variant == "siamrpn-shape":  # no teacher-labelled clips: ground truth and photos only
        assert "--teacher-label" not in args
        assert option(args, "--synthetic") == [str(tmp_path / "photos")]
        assert option(args, "--synthetic-aspect") == ["0.25", "4"]
    else:
        assert sorted(labelled) == ["01_dog.mp4", "vtest.avi"]
        assert "--synthetic" not in args


@pytest.mark.parametrize("variant", ["siamrpn-wide", "siamfc-wide", "siamfc-scratch", "siamrpn-shape"])
def test_the_runs_on_photos_need_them(data, tmp_path, variant):
    env = dict(os.environ, DISTILL_DATA=str(data), DISTILL_DRY_RUN="1", PHOTOS=str(tmp_path / "none"))
    done = subprocess.run(["bash", str(ROOT / "tools" / "distill.sh"), variant], env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "tools/fetch_photos.py" in done.stderr


@pytest.mark.parametrize("val, expected", [
    ("UAV123_10fps_group2_1 OTB100_Biker", ["UAV123_10fps_group2_1", "OTB100_Biker"]),
    ("large", ["DTB70_Surfing06", "VOT-TIR2015_horse", "UAV123_10fps_group2", "UAVDT_S0310", "DTB70_Gull2",
               "OTB100_Biker"]),
])
def test_another_validation_split_is_never_teacher_labelled(data, tmp_path, val, expected):
    """DISTILL_VAL's items (and every segment of their flights) reach --val, never the teacher's labels."""
    (data / "videos" / "labelled" / "UAV123_10fps_group2_2.mp4").write_bytes(b"")  # a second segment
    args = dry_run(data, "siamrpn-wide", tmp_path, DISTILL_VAL=val, DISTILL_RUN="siamrpn_wide_large")
    assert option(args, "--val") == expected
    labelled = sorted(Path(a).name for a in option(args, "--teacher-label"))
    assert labelled == ["01_dog.mp4", "VOT-TIR2015_horse.mp4", "vtest.avi"] if val != "large" else \
        ["01_dog.mp4", "vtest.avi"]
    assert option(args, "--out") == ["out/distill/siamrpn_wide_large_distill.pt"]


def test_the_labelled_recipe_has_no_teacher_and_none_trains_on_the_validation_items(data, tmp_path):
    """siamfc-labelled is siamfc.pt's recipe (labelled items only, from random weights); with
    DISTILL_VAL=none the validation items are trained on, the held-out ones still never."""
    args = dry_run(data, "siamfc-labelled", tmp_path, DISTILL_VAL="large", DISTILL_RUN="recipe")
    assert not {"--teacher", "--teacher-label", "--synthetic", "--init", "--lr"} & set(args)
    assert option(args, "--epochs") == ["6"] and option(args, "--pairs-per-epoch") == ["2800"]
    assert "OTB100_Biker" in option(args, "--val")
    everything = dry_run(data, "siamfc-labelled", tmp_path, DISTILL_VAL="none", DISTILL_RUN="all")
    assert "--val" in everything and option(everything, "--val") == []  # no validation at all
    items = [Path(i).stem for i in option(everything, "--tracker")[1:]]
    assert sorted(items) == sorted(TRAINING_SEQUENCES + TRAINING_VIDEOS)
    assert not set(HELDOUT) & set(items)


def test_a_fold_run_leaves_out_its_fold_too_and_the_folds_cover_the_training_side(data, tmp_path):
    python = {"DISTILL_PYTHON": sys.executable}
    extra_val = []
    for k in range(3):
        args = dry_run(data, "siamfc-labelled", tmp_path, DISTILL_FOLD=f"{k}/3", **python)
        val = option(args, "--val")
        assert val[:2] == ["DTB70_Surfing06", "VOT-TIR2015_horse"]  # the validation split stays out
        extra_val.append(val[2:])
    assert all(len(v) == 1 for v in extra_val)
    folded = sorted(n for v in extra_val for n in v)
    assert folded == ["OTB100_Biker", "OTB100_Bird2", "UAV123_10fps_group2_1"]
    env = dict(os.environ, DISTILL_DATA=str(data), DISTILL_DRY_RUN="1", DISTILL_FOLD="0/4", **python)
    done = subprocess.run(["bash", str(ROOT / "tools" / "distill.sh"), "siamfc-labelled"], env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "cannot fill 4 folds" in done.stderr  # 3 flights, 4 folds
    env["DISTILL_FOLD"] = "first"
    done = subprocess.run(["bash", str(ROOT / "tools" / "distill.sh"), "siamfc-labelled"], env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "k/K" in done.stderr
