"""Training material from several objects: ``train`` on a project, and the app's fine-tune."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from app.cli import main as cli_main
from app.model.project import content_hash, save_project
from app.model.project_training import (
    object_sequences,
    other_objects_before,
    sequences_from_project,
    split_session,
)
from app.model.session import AnnotationSession
from tests.media import write_clip
from trackers.types import Box

FRAMES = 40
SIZE = (160, 120)


@pytest.fixture(scope="module")
def three(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, AnnotationSession]:
    """Objects 1 and 2 boxed on every frame, 3 only on frames 30..39."""
    folder = tmp_path_factory.mktemp("three")
    video = folder / "clip.avi"
    boxes = write_clip(video, FRAMES, SIZE)
    s = AnnotationSession(video, FRAMES, SIZE, content_hash(video))
    for i, b in enumerate(boxes):
        s.set_keyframe(i, b, object_id=1)
    s.add_object("car", select=False)
    s.add_object("dog", select=False)
    for i in range(FRAMES):
        s.set_keyframe(i, Box(100, 10 + i, 20, 20), object_id=2)
    for i in range(30, FRAMES):
        s.set_keyframe(i, Box(5, 80, 10, 10), object_id=3)
    path = folder / "clip.siamtrack.json"
    save_project(s, path)
    return path, s


def test_every_object_is_a_sequence_of_its_own(three):
    path, session = three
    sequences = sequences_from_project(path)
    assert [s.name for s in sequences] == ["clip#1", "clip#2", "clip#3"]
    assert np.isnan(sequences[2].groundtruth[:30]).all()
    assert sequences[1].groundtruth[5].tolist() == [100, 15, 20, 20]
    assert [s.name for s in object_sequences(session, "x")] == ["x#1", "x#2", "x#3"]


def test_the_fine_tune_takes_the_other_objects_before_the_cut(three):
    _, session = three
    split = split_session(session)  # the selected object (1): its tail is held out
    extra = other_objects_before(session, split.cut)
    # object 3 appears only from the cut on: none of its frames may train
    assert split.cut == 30 and [s.name for s in extra] == ["clip#2"]
    assert np.isnan(extra[0].groundtruth[split.cut :]).all() and not np.isnan(extra[0].groundtruth[:30]).any()
    session.select(2)
    assert [s.name for s in other_objects_before(session, 35)] == ["clip#1", "clip#3"]
    session.select(1)


def test_train_on_a_three_object_project(three, tmp_path, capsys):
    path, _ = three
    out = tmp_path / "x.pt"
    code = cli_main(
        [
            "train",
            "--tracker",
            "siamfc",
            str(path),
            "--out",
            str(out),
            "--epochs",
            "1",
            "--pairs-per-epoch",
            "8",
            "--device",
            "cpu",
            "--cache-dir",
            str(tmp_path / "cache"),
            "--val",
        ]
    )
    err = capsys.readouterr().err
    assert code == 0, err
    assert out.is_file() and "training on 3 sequences" in err
