"""Fine-tuning from the app: the worker end to end, cancel, throttling, failures, and the dialog."""

from __future__ import annotations

import math
import shutil
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from app.model.project import save_project
from app.model.project_training import annotation_sequence, initial_weights, split_sequence, split_session
from app.model.settings import AppSettings
from app.qt import finetune_worker
from app.qt.finetune_worker import FinetuneController, FinetuneJob, FinetuneProgress, FinetuneResult
from app.qt.main_window import MainWindow
from app.qt.widgets import finetune_dialog as finetune_dialog_module
from tests.media import write_clip
from trackers.trajectory import Entry, Origin

from .test_project_training import ABSENT, FRAMES, SIZE, make_session

WAIT_MS = 60_000


@pytest.fixture(autouse=True)
def _few_threads():
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory):
    folder = tmp_path_factory.mktemp("finetune")
    video = folder / "clip.avi"
    boxes = write_clip(video, FRAMES, SIZE)
    session = make_session(video, boxes)
    # the dialog trains on what a person gave (keyframes): make most frames ones
    trajectory = session.trajectory
    session.apply(
        {
            i: Entry(e.box, Origin.KEYFRAME)
            for i, e in trajectory.annotated()
            if e.origin is Origin.TRACKED and i % 5 != 4
        }
    )
    path = folder / "clip.siamtrack.json"
    save_project(session, path)
    return path, session


@pytest.fixture
def controller(qtbot):
    made: list[FinetuneController] = []

    def make() -> FinetuneController:
        made.append(FinetuneController())
        return made[-1]

    yield make
    for c in made:
        c.shutdown()
        assert not c.worker_thread.isRunning()


def job_for(session, tmp_path: Path, **overrides: object) -> FinetuneJob:
    settings = dict(
        split=split_session(session),
        tracker="siamfc",
        weights=None,
        init=initial_weights("siamfc", None),
        out=tmp_path / "tuned.pt",
        device="cpu",
        epochs=1,
        pairs_per_epoch=16,
        batch_size=8,
        cache_dir=tmp_path / "cache",
    )
    settings.update(overrides)
    return FinetuneJob(**settings)  # type: ignore[arg-type]


def record(controller: FinetuneController) -> list[FinetuneProgress]:
    events: list[FinetuneProgress] = []
    controller.progress.connect(events.append)
    return events


def fake_auc(value: float = 0.5):
    def auc(tracker, weights, heldout, device="auto", cancel=None, **kwargs):
        return value if weights is None else value + 0.1

    return auc


def fake_train(steps: int = 500, fail: Exception | None = None, delay: float = 0.0):
    """Reports ``steps`` training steps as fast as it can, then writes a real checkpoint."""
    from training.siamfc_train import TrainProgress, TrainResult

    def train(train_seqs, val_seqs, out, *, progress=None, cancel=None, init=None, **kwargs):
        for step in range(1, steps + 1):
            if cancel is not None and cancel.is_set():
                return TrainResult(None, 0, step - 1, cancelled=True)
            if fail is not None and step == 3:
                raise fail
            time.sleep(delay)
            progress(
                TrainProgress("train", 1, 1, step, steps, loss=1.0 / step, pairs_per_second=1.0, lr=1e-3)
            )
        shutil.copyfile(initial_weights("siamfc", None), out)
        return TrainResult(Path(out), 1, steps, train_losses=[0.5])

    return train


def test_worker_end_to_end_reports_auc_before_and_after_and_writes_the_checkpoint(
    qtbot, controller, project, tmp_path
):
    _path, session = project
    c = controller()
    events = record(c)
    job = job_for(session, tmp_path)
    with qtbot.waitSignal(c.finished, timeout=WAIT_MS) as blocker:
        c.start(job)
    result: FinetuneResult = blocker.args[0]
    assert result.status == "completed" and not result.cancelled and result.usable
    for auc in (result.before_auc, result.after_auc):
        assert isinstance(auc, float) and 0.0 <= auc <= 1.0
    assert result.checkpoint == job.out and job.out.is_file()
    assert result.steps == 2 and result.trained
    assert not (tmp_path / "tuned.resume.pt").exists()  # the app never resumes: no litter
    phases = [e.phase for e in events]
    assert phases.index("before") < phases.index("train") < phases.index("after")
    train = [e for e in events if e.phase == "train"]
    assert train[-1].step == train[-1].total == 2 and all(math.isfinite(e.loss) for e in train)
    assert not c.running


def test_cancel_during_training_stops_at_a_checkpoint(qtbot, controller, project, tmp_path, monkeypatch):
    _path, session = project
    monkeypatch.setattr(finetune_worker, "heldout_auc", fake_auc())
    c = controller()
    c.progress.connect(lambda e: c.cancel() if e.phase == "train" else None)
    job = job_for(session, tmp_path, epochs=5, pairs_per_epoch=400)  # 250 steps if not cancelled
    with qtbot.waitSignal(c.finished, timeout=WAIT_MS) as blocker:
        c.start(job)
    result: FinetuneResult = blocker.args[0]
    assert result.cancelled and not result.usable
    assert result.before_auc == 0.5 and result.after_auc is None
    assert result.steps < 10
    assert result.checkpoint == job.out and job.out.is_file()  # what it reached is kept
    c.shutdown()
    assert not c.worker_thread.isRunning()


def test_progress_is_throttled_and_the_last_step_always_arrives(
    qtbot, controller, project, tmp_path, monkeypatch
):
    _path, session = project
    monkeypatch.setattr(finetune_worker, "heldout_auc", fake_auc())
    monkeypatch.setattr("training.siamfc_train.train_siamfc", fake_train(steps=2000))
    c = controller()
    events = record(c)
    started = time.monotonic()
    with qtbot.waitSignal(c.finished, timeout=WAIT_MS) as blocker:
        c.start(job_for(session, tmp_path))
    elapsed = time.monotonic() - started
    train = [e for e in events if e.phase == "train"]
    assert len(train) <= elapsed * finetune_worker.MAX_RATE + 3
    assert train[-1].step == 2000
    result = blocker.args[0]
    assert (result.before_auc, result.after_auc) == (0.5, pytest.approx(0.6))


def test_a_failure_is_one_line(qtbot, controller, project, tmp_path, monkeypatch):
    from training.siamfc_train import TrainingError

    _path, session = project
    monkeypatch.setattr(finetune_worker, "heldout_auc", fake_auc())
    monkeypatch.setattr(
        "training.siamfc_train.train_siamfc", fake_train(fail=TrainingError("the loss became nan\nmore"))
    )
    c = controller()
    with qtbot.waitSignal(c.failed, timeout=WAIT_MS) as blocker:
        c.start(job_for(session, tmp_path))
    assert blocker.args == ["TrainingError: the loss became nan"]
    assert not c.running


def test_shutdown_while_running_cancels_and_waits(qtbot, controller, project, tmp_path, monkeypatch):
    _path, session = project
    monkeypatch.setattr(finetune_worker, "heldout_auc", fake_auc())
    monkeypatch.setattr("training.siamfc_train.train_siamfc", fake_train(steps=10_000, delay=0.01))
    c = controller()
    results: list[FinetuneResult] = []
    c.finished.connect(results.append)
    with qtbot.waitSignal(c.progress, timeout=WAIT_MS):
        c.start(job_for(session, tmp_path))
    c.shutdown()
    assert not c.worker_thread.isRunning()
    assert [r.status for r in results] == ["cancelled"]


# --------------------------------------------------------------------------- the dialog


@pytest.fixture
def window(qtbot):
    windows: list[MainWindow] = []

    def make(tracker: str = "siamfc") -> MainWindow:
        w = MainWindow(AppSettings(tracker=tracker), prompts=False, persist_settings=False)
        qtbot.addWidget(w)
        windows.append(w)
        return w

    yield make
    for w in windows:
        w.close()


def test_dialog_runs_and_use_these_weights_sets_the_panel(qtbot, window, project, monkeypatch, tmp_path):
    path, _session = project
    monkeypatch.setattr(finetune_worker, "heldout_auc", fake_auc(0.4))
    monkeypatch.setattr("training.siamfc_train.train_siamfc", fake_train(steps=20))
    w = window("siamfc")
    assert w.open_path(path), w.last_error
    dialog = w.show_finetune_dialog()
    assert dialog is not None and dialog.isVisible()
    assert dialog.tracker_note.isHidden()
    assert dialog.out == path.parent / "clip.finetuned.pt"
    assert not dialog.use_button.isEnabled() and dialog.start_button.isEnabled()
    dialog.epochs_box.setValue(1)
    with qtbot.waitSignal(dialog.controller.finished, timeout=WAIT_MS):
        dialog.start_button.click()
    assert "0.400" in dialog.before_label.text()
    assert "0.500" in dialog.after_label.text() and "better" in dialog.after_label.text()
    assert dialog.loss_plot.getPlotItem().listDataItems()[0].xData[-1] == 20
    assert dialog.use_button.isEnabled()
    dialog.use_button.click()
    settings = w.panel.settings()
    assert settings.tracker == "siamfc" and settings.weights == path.parent / "clip.finetuned.pt"
    (path.parent / "clip.finetuned.pt").unlink()


def test_dialog_for_another_tracker_says_it_fine_tunes_siamfc(qtbot, window, project, monkeypatch):
    path, _session = project
    monkeypatch.setattr(finetune_worker, "heldout_auc", fake_auc(0.7))  # after 0.8
    monkeypatch.setattr("training.siamfc_train.train_siamfc", fake_train(steps=5))
    w = window("cv-kcf")
    assert w.open_path(path), w.last_error
    index = w.panel.tracker_box.findData("cv-kcf")
    w.panel.tracker_box.setCurrentIndex(index)
    dialog = w.show_finetune_dialog()
    assert not dialog.tracker_note.isHidden()
    assert "fine-tunes SiamFC weights" in dialog.tracker_note.text()
    assert dialog.tracker == "siamfc"
    with qtbot.waitSignal(dialog.controller.finished, timeout=WAIT_MS):
        dialog.start()
    dialog.use_weights()
    assert w.panel.settings().tracker == "siamfc"
    (path.parent / "clip.finetuned.pt").unlink()


def test_dialog_without_enough_annotation_cannot_start(qtbot, window, tmp_path):
    video = tmp_path / "bare.avi"
    write_clip(video, 12, SIZE)
    w = window()
    assert w.open_path(video), w.last_error
    dialog = w.show_finetune_dialog()
    assert not dialog.start_button.isEnabled()
    assert "only 0 frames" in dialog.about_label.text() and "at least 20" in dialog.about_label.text()
    dialog.reject()


def test_dialog_trains_only_on_what_the_user_gave_and_says_how_many(qtbot, window, project, tmp_path):
    """Issue 17 item 15: 240 mostly unreviewed tracked frames were called "your annotated frames"."""
    path, session = project
    w = window()
    assert w.open_path(path), w.last_error
    dialog = w.show_finetune_dialog()
    keyframes = sum(1 for _, e in session.trajectory.annotated() if e.origin is Origin.KEYFRAME and e.box)
    tracked = sum(1 for _, e in session.trajectory.annotated() if e.origin is Origin.TRACKED)
    text = dialog.about_label.text()
    assert "you drew, corrected or accepted" in text and f"The {tracked} tracked" in text
    assert dialog.split.train_frames + dialog.split.heldout_frames == keyframes
    train = dialog.split.train.groundtruth
    for index, entry in session.trajectory.annotated():
        if entry.origin is Origin.TRACKED:
            assert np.isnan(train[index]).all() and np.isnan(dialog.split.heldout.groundtruth[index]).all()
    dialog.reject()


def test_dialog_shows_auc_before_at_once_a_time_estimate_and_sane_loss_axes(
    qtbot, window, project, monkeypatch
):
    """Issue 17 item 15: "AUC before" showed "..." until the end; the loss axes were nonsense."""
    path, _session = project
    w = window()
    assert w.open_path(path), w.last_error
    dialog = w.show_finetune_dialog()
    dialog._on_progress(FinetuneProgress("before", message="measured", auc=0.612))
    assert "0.612" in dialog.before_label.text()
    times = iter([100.0, 110.0])
    monkeypatch.setattr(finetune_dialog_module.time, "monotonic", lambda: next(times))
    dialog._on_progress(FinetuneProgress("train", 1, 301, 0.8))
    low, high = dialog.loss_plot.getViewBox().viewRange()[1]
    assert low <= 0.0 and 0.8 < high < 1.2  # one point: still a range that means something
    left, right = dialog.loss_plot.getViewBox().viewRange()[0]
    assert left <= 0 and right >= 301
    dialog._on_progress(FinetuneProgress("train", 11, 301, 0.7))  # 10 steps in 10 s
    assert "about 5 min left" in dialog.status_label.text()
    dialog.reject()


# --------------------------------------------------------------------------- the teacher (issue 16)


def reviewed_job(session, tmp_path: Path, **overrides: object) -> FinetuneJob:
    """As the dialog builds it: the split of the boxes a person gave (every fifth frame is tracked)."""
    reviewed = finetune_dialog_module.REVIEWED
    split = split_sequence(annotation_sequence(session, origins=reviewed))
    absent = tuple(i for i, e in session.trajectory.annotated() if e.box is None and e.origin in reviewed)
    return job_for(session, tmp_path, split=split, absent=absent, **overrides)


def capture_training(monkeypatch) -> dict:
    """Fake scoring and training; the dict gets the sequences and options training was given."""
    seen: dict = {}
    inner = fake_train(steps=3)

    def train(train_seqs, val_seqs, out, **kwargs):
        seen["seqs"], seen["kwargs"] = train_seqs, kwargs
        return inner(train_seqs, val_seqs, out, **kwargs)

    monkeypatch.setattr(finetune_worker, "heldout_auc", fake_auc(0.4))
    monkeypatch.setattr("training.siamfc_train.train_siamfc", train)
    return seen


def test_the_teacher_labels_only_unreviewed_frames_before_the_cut(qtbot, controller, project, tmp_path,
                                                                  monkeypatch):
    _path, session = project
    seen = capture_training(monkeypatch)
    c = controller()
    events = record(c)
    job = reviewed_job(session, tmp_path, teacher=True)
    with qtbot.waitSignal(c.finished, timeout=WAIT_MS) as blocker:
        c.start(job)
    result: FinetuneResult = blocker.args[0]
    given, got = job.split.train.groundtruth, seen["seqs"][0].groundtruth
    reviewed = ~np.isnan(given).any(axis=1)
    assert np.array_equal(got[reviewed], given[reviewed])  # the person's boxes are kept as they are
    filled = ~reviewed & ~np.isnan(got).any(axis=1)
    assert result.teacher_frames == filled.sum() > 0
    assert not filled[job.split.cut:].any()  # nothing from the held-out part on
    assert all(i % 5 == 4 for i in np.flatnonzero(filled))  # the tracked frames, nobody's review
    assert job.absent == (ABSENT,) and not filled[ABSENT]  # "not there" is a review too
    assert seen["kwargs"]["teacher"] == "nano" and seen["kwargs"]["teacher_weight"] == 0.0
    phases = [e.phase for e in events]
    assert phases.index("before") < phases.index("teacher") < phases.index("train")
    teacher = [e for e in events if e.phase == "teacher"]
    assert teacher[-1].step == teacher[-1].total > 0


def test_without_the_teacher_nothing_is_labelled(qtbot, controller, project, tmp_path, monkeypatch):
    _path, session = project
    seen = capture_training(monkeypatch)
    c = controller()
    events = record(c)
    job = reviewed_job(session, tmp_path)
    with qtbot.waitSignal(c.finished, timeout=WAIT_MS) as blocker:
        c.start(job)
    assert blocker.args[0].teacher_frames is None and "teacher" not in seen["kwargs"]
    assert seen["seqs"][0] is job.split.train and "teacher" not in [e.phase for e in events]


def test_a_real_fine_tune_with_the_teacher_names_it_in_the_checkpoint(qtbot, controller, project, tmp_path,
                                                                      monkeypatch):
    from trackers.siamfc.network import ARCHITECTURE as SIAMFC_ARCHITECTURE
    from trackers.weights.loading import load_checkpoint

    _path, session = project
    monkeypatch.setattr(finetune_worker, "heldout_auc", fake_auc(0.4))
    c = controller()
    job = reviewed_job(session, tmp_path, teacher=True)
    with qtbot.waitSignal(c.finished, timeout=WAIT_MS) as blocker:
        c.start(job)
    result: FinetuneResult = blocker.args[0]
    assert result.status == "completed" and result.teacher_frames > 0
    _, meta = load_checkpoint(result.checkpoint, SIAMFC_ARCHITECTURE)
    assert "NanoTrack" in meta["provenance"]["teacher_model"]


def test_the_dialog_offers_the_teacher_unticked_and_says_what_it_did(qtbot, window, project, monkeypatch,
                                                                     tmp_path):
    path, _session = project
    seen = capture_training(monkeypatch)
    w = window("siamfc")
    assert w.open_path(path), w.last_error
    dialog = w.show_finetune_dialog()
    assert not dialog.teacher_box.isChecked() and not dialog.job().teacher
    dialog.teacher_box.setChecked(True)
    assert dialog.job().teacher and dialog.job().absent == (ABSENT,)
    with qtbot.waitSignal(dialog.controller.finished, timeout=WAIT_MS):
        dialog.start_button.click()
    assert "NanoTrack labelled" in dialog.status_label.text() and seen["kwargs"]["teacher"] == "nano"
    assert dialog.teacher_box.isEnabled()
    dialog.reject()
    (path.parent / "clip.finetuned.pt").unlink()


def test_a_job_run_in_this_thread_reports_its_progress_and_its_failure_as_one_line(project, tmp_path,
                                                                                   monkeypatch):
    """tools/ run the worker's own code without a thread: progress arrives, a failure is raised."""
    _path, session = project

    def broken_auc(*args, **kwargs):
        raise ValueError("the held-out video is gone\nsecond line")

    monkeypatch.setattr(finetune_worker, "heldout_auc", broken_auc)
    events: list[FinetuneProgress] = []
    with pytest.raises(RuntimeError) as raised:
        finetune_worker.run_in_this_thread(job_for(session, tmp_path), events.append)
    assert str(raised.value) == "ValueError: the held-out video is gone"
    assert [e.phase for e in events] == ["before"]


def test_a_job_run_in_this_thread_returns_the_workers_result(project, tmp_path, monkeypatch):
    _path, session = project
    monkeypatch.setattr(finetune_worker, "heldout_auc", fake_auc(0.4))
    result = finetune_worker.run_in_this_thread(job_for(session, tmp_path))
    assert result.status == "completed" and result.usable
    assert (result.before_auc, result.after_auc) == pytest.approx((0.4, 0.5))
