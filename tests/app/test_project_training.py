"""A project's annotation as training data: the split by time, scoring, output paths, the CLI."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest

from app.cli import main as cli_main
from app.model.project import content_hash, save_project
from app.model.project_training import (
    Cancelled,
    ProjectTrainingError,
    annotation_sequence,
    heldout_auc,
    is_project_file,
    output_path,
    project_stem,
    sequences_from_project,
    split_session,
    teacher_fill,
)
from app.model.session import AnnotationSession
from tests.media import write_clip
from trackers.evaluation import AnnotatedSequence
from trackers.trajectory import Entry, Origin, Trajectory
from trackers.types import Box

FRAMES = 40
SIZE = (160, 120)
ABSENT = 12
UNANNOTATED = (38, 39)


def make_session(video: Path, boxes: list[Box], annotated: int | None = None) -> AnnotationSession:
    """Keyframes every 5 frames, tracked boxes between, frame ABSENT absent, the last two unknown."""
    entries: list[Entry | None] = []
    for index, box in enumerate(boxes):
        if annotated is not None and index >= annotated:
            entries.append(None)
        elif index in UNANNOTATED:
            entries.append(None)
        elif index == ABSENT:
            entries.append(Entry(None, Origin.KEYFRAME))
        elif index % 5 == 0:
            entries.append(Entry(box, Origin.KEYFRAME))
        else:
            entries.append(Entry(box, Origin.TRACKED, 0.8))
    trajectory = Trajectory(tuple(entries), SIZE)
    return AnnotationSession(video, len(boxes), SIZE, content_hash(video), trajectory)


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, AnnotationSession, list[Box]]:
    folder = tmp_path_factory.mktemp("project")
    video = folder / "clip.avi"
    boxes = write_clip(video, FRAMES, SIZE)
    session = make_session(video, boxes)
    path = folder / "clip.siamtrack.json"
    save_project(session, path)
    return path, session, boxes


def test_annotation_sequence_has_a_row_per_frame_nan_where_absent_or_unknown(project):
    _path, session, boxes = project
    sequence = annotation_sequence(session)
    gt = sequence.groundtruth
    assert sequence.name == "clip" and sequence.source == session.video
    assert gt.shape == (FRAMES, 4)
    for index, box in enumerate(boxes):
        if index == ABSENT or index in UNANNOTATED:
            assert np.isnan(gt[index]).all()
        else:
            np.testing.assert_array_equal(gt[index], box.as_array())


def test_split_is_by_time_and_no_frame_is_on_both_sides(project):
    _path, session, _boxes = project
    split = split_session(session)
    full = annotation_sequence(session).groundtruth
    annotated = np.flatnonzero(~np.isnan(full).any(axis=1))
    train_rows = np.flatnonzero(~np.isnan(split.train.groundtruth).any(axis=1))
    held_rows = np.flatnonzero(~np.isnan(split.heldout.groundtruth).any(axis=1))

    assert len(annotated) == FRAMES - 1 - len(UNANNOTATED)  # 37 boxes
    # the held-out part is the tail: the last max(10, 20 %) annotated frames
    assert split.heldout_frames == 10 == len(held_rows)
    np.testing.assert_array_equal(held_rows, annotated[-10:])
    np.testing.assert_array_equal(train_rows, annotated[:-10])
    assert split.cut == held_rows[0] and train_rows.max() < split.cut
    assert split.train_frames == len(train_rows)
    # no frame on both sides; together they are the whole annotation, exactly
    assert not (set(train_rows) & set(held_rows))
    both = np.where(np.isnan(split.train.groundtruth), split.heldout.groundtruth, split.train.groundtruth)
    np.testing.assert_array_equal(both, full)
    assert split.train.groundtruth.shape == split.heldout.groundtruth.shape == (FRAMES, 4)
    assert (split.train.name, split.heldout.name) == ("clip-train", "clip-heldout")
    assert split.heldout_span == (int(held_rows[0]), int(held_rows[-1]))


def test_too_few_annotated_frames_is_one_clear_line(project):
    _path, session, boxes = project
    few = make_session(session.video, boxes, annotated=15)
    with pytest.raises(ProjectTrainingError) as info:
        split_session(few)
    message = str(info.value)
    assert "\n" not in message
    assert "14 frames" in message and "at least 20" in message  # 15 frames, one of them absent


def test_heldout_auc_scores_with_the_evaluation_and_honours_cancel(project):
    _path, session, _boxes = project
    split = split_session(session)
    # The identity tracker stays on the first held-out box: its AUC is the evaluation's own.
    auc = heldout_auc("identity", None, split.heldout, "cpu")
    assert 0.0 <= auc <= 1.0
    from trackers.evaluation import auc as auc_of
    from trackers.evaluation import sequence_curves

    gt = split.heldout.groundtruth[: split.heldout_span[1] + 1]
    predicted = np.tile(gt[split.cut], (len(gt), 1))
    assert auc == pytest.approx(auc_of(sequence_curves(predicted, gt)[0]))

    cancel = threading.Event()
    cancel.set()
    with pytest.raises(Cancelled):
        heldout_auc("identity", None, split.heldout, "cpu", cancel)


def test_sequences_from_project_and_project_names(project, tmp_path):
    path, session, _boxes = project
    (sequence,) = sequences_from_project(path)
    assert sequence.name == "clip"
    np.testing.assert_array_equal(sequence.groundtruth, annotation_sequence(session).groundtruth)
    assert is_project_file(path) and not is_project_file(session.video)
    assert project_stem(path) == "clip" and project_stem(tmp_path / "a.siamtrack") == "a"
    with pytest.raises(ProjectTrainingError, match="no such file"):
        sequences_from_project(tmp_path / "missing.siamtrack.json")


def test_output_path_beside_the_project_never_the_weights_in_use(project, tmp_path):
    path, session, _boxes = project
    first = output_path(path, session.video)
    assert first == path.parent / "clip.finetuned.pt"
    assert output_path(path, session.video, avoid=first) == path.parent / "clip.finetuned-2.pt"
    elsewhere = output_path(None, session.video, data_dir=tmp_path)
    assert elsewhere.parent == tmp_path and elsewhere.name.startswith("clip-")
    assert elsewhere.name.endswith(".finetuned.pt")


def test_cli_trains_on_a_project_file(project, tmp_path, capsys):
    path, _session, _boxes = project
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
    assert out.is_file()
    assert "training on 1 sequences: clip" in err


def test_cli_project_with_a_missing_video_is_one_line(tmp_path, capsys, project):
    _path, session, boxes = project
    video = tmp_path / "gone.avi"
    video.write_bytes(session.video.read_bytes())
    moved = make_session(video, boxes)
    save_project(moved, tmp_path / "gone.siamtrack.json")
    video.unlink()
    code = cli_main(["train", str(tmp_path / "gone.siamtrack.json"), "--out", str(tmp_path / "x.pt")])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and "gone.avi" in err and "missing" in err


# --------------------------------------------------------------------------- teacher labels


@pytest.fixture(scope="module")
def moving_clip(tmp_path_factory: pytest.TempPathFactory):
    video = tmp_path_factory.mktemp("teacher") / "clip.avi"
    return video, write_clip(video, FRAMES, SIZE)


def reviewed_only(video: Path, truth: list[Box], rows: tuple[int, ...]) -> AnnotatedSequence:
    boxes = np.full((len(truth), 4), np.nan)
    for r in rows:
        boxes[r] = (truth[r].x, truth[r].y, truth[r].w, truth[r].h)
    return AnnotatedSequence("clip", video, boxes)


def iou(a, b) -> float:
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    w = max(0.0, min(ax + aw, bx + bw) - max(ax, bx))
    h = max(0.0, min(ay + ah, by + bh) - max(ay, by))
    return w * h / (aw * ah + bw * bh - w * h)


def test_the_teacher_fills_unreviewed_frames_before_the_cut_only(moving_clip):
    video, truth = moving_clip
    train = reviewed_only(video, truth, (0, 15))
    steps = []
    filled, count = teacher_fill(train, cut=25, progress=lambda done, total: steps.append((done, total)))
    gt = filled.groundtruth
    assert np.array_equal(gt[0], train.groundtruth[0]) and np.array_equal(gt[15], train.groundtruth[15])
    assert np.isnan(gt[25:]).all()  # the held-out part and beyond stay unseen
    rows = np.flatnonzero(~np.isnan(gt).any(axis=1))
    assert count == len(rows) - 2 and count >= 15  # both stretches kept on this easy clip
    assert set(rows) <= set(range(25))
    # the teacher follows the target (it lags behind this clip's fast growth and shrinking)
    overlaps = [iou(gt[r], (truth[r].x, truth[r].y, truth[r].w, truth[r].h)) for r in rows]
    assert min(overlaps) > 0.4 and np.mean(overlaps) > 0.6
    assert steps[0] == (0, 2) and steps[-1] == (2, 2)
    assert np.isnan(train.groundtruth[1]).all()  # the input is not changed
    # a frame a person marked "not there" is never filled, and the stretch stops before it
    held, count = teacher_fill(train, cut=25, absent=[5, 20])
    rows = set(np.flatnonzero(~np.isnan(held.groundtruth).any(axis=1)))
    assert 5 not in rows and 20 not in rows and rows <= set(range(5)) | set(range(15, 20))


def test_the_teacher_fill_cancels_and_says_when_it_cannot_start(moving_clip, tmp_path):
    video, truth = moving_clip
    train = reviewed_only(video, truth, (0, 10))
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(Cancelled):
        teacher_fill(train, cut=20, cancel=cancel)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ProjectTrainingError, match="teacher") as err:
        teacher_fill(train, cut=20, model_dir=tmp_path / "empty")
    assert "\n" not in str(err.value)
