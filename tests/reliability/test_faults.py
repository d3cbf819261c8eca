"""Faults injected while working: nothing already done is lost.

* a tracker raising mid-run: a message (CLI line, app dialog), the frames before it stay;
* CUDA running out of memory: the run goes on on the CPU from the frame it reached, with a notice;
* a full disk or a refused rename on every save path: an error, and the earlier file as it was;
* the autosave journal on a full disk: edits wait in memory and reach the disk once there is room;
* closing the window while a run or an export is going: every thread stops, frames are kept.

Disk faults are injected by monkeypatching ``os.fsync`` (ENOSPC, as a full disk reports on
flush) or ``os.replace`` (EACCES): a read-only folder would prove nothing here, where the
tests may run as root.
"""

from __future__ import annotations

import errno
import json
import os
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from app.cli import main
from app.model.journal import Journal, journal_path, restore
from app.model.session import AnnotationSession, TrackerSettings
from app.qt.tracking_worker import TrackingController
from trackers.formats import FORMATS, write_trajectory
from trackers.registry import TRACKERS
from trackers.trajectory import Origin
from trackers.types import Box, Frame, TrackResult

from .conftest import dialog_text


class Flaky:
    """A tracker that stays on its box; raises ``error`` on update number ``fail_at``."""

    def __init__(self, fail_at: int | None = None, error: BaseException | None = None, delay: float = 0.0):
        self.name = "flaky"
        self.fail_at, self.error, self.delay = fail_at, error, delay
        self.updates = 0
        self.box = Box(0, 0, 1, 1)
        self.device = "cpu"

    def init(self, frame: Frame, box: Box) -> None:
        self.box, self.updates = box, 0

    def update(self, frame: Frame) -> TrackResult:
        self.updates += 1
        if self.updates == self.fail_at:
            raise self.error or RuntimeError("tracker blew up")
        time.sleep(self.delay)
        return TrackResult(self.box, 0.9)


class GpuFactory:
    """Builds Flaky trackers; on a GPU (device cuda or auto) the first update runs out of memory."""

    def __init__(self, oom_on_build: bool = False):
        self.devices: list[str] = []
        self.oom_on_build = oom_on_build

    def __call__(self, name: str, *, weights=None, device: str = "auto", model_dir=None, **_: object):
        self.devices.append(device)
        if device == "cpu":
            return Flaky()
        if self.oom_on_build:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        tracker = Flaky(
            fail_at=1, error=torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 1.50 GiB")
        )
        tracker.device = "cuda"
        return tracker


def tracked(window) -> list[int]:
    return [i for i, e in window.document.session.trajectory.annotated() if e.origin is Origin.TRACKED]


# --------------------------------------------------------------------------- a tracker raising


ERRORS = [
    RuntimeError("tracker blew up"),
    ValueError("bad crop"),
    ZeroDivisionError("division by zero"),
    MemoryError(),
    KeyError("missing"),
]


@pytest.mark.parametrize("error", ERRORS, ids=lambda e: type(e).__name__)
def test_a_tracker_raising_mid_run_reaches_the_gui_as_a_message_and_the_frames_stay(
    error, window_factory, qtbot, ledger
):
    made: list[Flaky] = []

    def factory(name, **kwargs):
        made.append(Flaky(fail_at=6, error=error) if len(made) == 0 else Flaky())
        return made[-1]

    window = window_factory(factory, prompts=True)
    window.set_keyframe(0, Box(20, 30, 40, 30))
    ledger.injected()
    with qtbot.waitSignal(window.run_ended, timeout=10_000) as ended:
        window.track(+1)
    assert ended.args[1] == "failed"
    assert type(error).__name__ in (dialog_text(window) or "")
    assert tracked(window) == [1, 2, 3, 4, 5]
    ledger.edits(checked=5, lost=5 - len(tracked(window)))
    window._message_box.close()
    # the app carries on: tracking again from where the run stopped builds a fresh tracker
    assert window.index == 5
    with qtbot.waitSignal(window.run_ended, timeout=10_000) as ended:
        window.track(+1)
    assert ended.args[1] == "completed" and tracked(window) == [1, 2, 3, 4, *range(6, 30)]


def test_a_tracker_raising_in_the_cli_keeps_the_frames_before(
    synthetic_clip, tmp_path, monkeypatch, capsys, ledger
):
    monkeypatch.setitem(TRACKERS, "flaky", lambda **kw: Flaky(fail_at=4))
    out = tmp_path / "out.txt"
    ledger.injected()
    rc = main(
        ["track", str(synthetic_clip[0]), "--box", "20,30,40,30", "--tracker", "flaky", "--out", str(out)]
    )
    assert rc == 1
    errors = [line for line in capsys.readouterr().err.splitlines() if "error" in line]
    assert len(errors) == 1 and "tracker blew up" in errors[0]
    assert len(out.read_text().splitlines()) == 4  # the start frame and three updates


# --------------------------------------------------------------------------- CUDA out of memory


@pytest.mark.parametrize("device", ["auto", "cuda"])
def test_cuda_oom_in_the_worker_goes_on_on_the_cpu_from_the_frame_reached(
    device, qtbot, synthetic_clip, ledger
):
    from app.model.session import RunRequest

    factory = GpuFactory()
    controller = TrackingController(factory)
    frames: list[int] = []
    notices: list[str] = []
    controller.frame_tracked.connect(lambda run_id, index, result: frames.append(index))
    controller.notice.connect(lambda run_id, text: notices.append(text))
    request = RunRequest(1, "flaky", None, device, 0, Box(20, 30, 40, 30), 30, +1)
    ledger.injected()
    try:
        with qtbot.waitSignal(controller.run_finished, timeout=10_000) as finished:
            controller.start(request, synthetic_clip[0])
    finally:
        controller.shutdown()
    assert finished.args == [1, "completed"]
    assert frames == list(range(30))  # no frame lost to the fallback
    assert factory.devices == [device, "cpu"]
    assert len(notices) == 1 and "out of GPU memory at frame 1" in notices[0] and "CPU" in notices[0]


def test_cuda_oom_while_loading_builds_on_the_cpu(qtbot, synthetic_clip, ledger):
    from app.model.session import RunRequest

    factory = GpuFactory(oom_on_build=True)
    controller = TrackingController(factory)
    notices: list[str] = []
    controller.notice.connect(lambda run_id, text: notices.append(text))
    ledger.injected()
    try:
        with qtbot.waitSignal(controller.run_finished, timeout=10_000) as finished:
            controller.start(
                RunRequest(1, "flaky", None, "auto", 0, Box(20, 30, 40, 30), 10, +1), synthetic_clip[0]
            )
    finally:
        controller.shutdown()
    assert finished.args == [1, "completed"] and factory.devices == ["auto", "cpu"]
    assert "while loading" in notices[0]


def test_cuda_oom_in_the_window_shows_a_notice_and_tracks_every_frame(window_factory, qtbot, ledger):
    factory = GpuFactory()
    window = window_factory(factory, prompts=True)
    window.panel.set_settings(TrackerSettings("identity", device="auto"))
    window.set_keyframe(0, Box(20, 30, 40, 30))
    ledger.injected()
    with qtbot.waitSignal(window.run_ended, timeout=10_000) as ended:
        window.track(+1)
    assert ended.args[1] == "completed"
    assert tracked(window) == list(range(1, 30))
    assert "out of GPU memory" in (window.last_notice or "") and window.last_error is None
    assert "CPU" in (dialog_text(window) or "")
    ledger.edits(checked=29, lost=29 - len(tracked(window)))


def test_cuda_oom_in_the_cli_goes_on_on_the_cpu(synthetic_clip, tmp_path, monkeypatch, capsys, ledger):
    factory = GpuFactory()
    monkeypatch.setitem(TRACKERS, "flaky", lambda **kw: factory("flaky", **kw))
    out = tmp_path / "out.txt"
    ledger.injected()
    rc = main(
        [
            "track",
            str(synthetic_clip[0]),
            "--box",
            "20,30,40,30",
            "--tracker",
            "flaky",
            "--device",
            "auto",
            "--out",
            str(out),
        ]
    )
    err = capsys.readouterr().err
    assert rc == 0, err
    assert len(out.read_text().splitlines()) == 30
    assert factory.devices == ["auto", "cpu"]
    assert "ran out of GPU memory at frame 1; going on on the CPU" in err


def test_on_the_cpu_an_oom_is_an_error_not_a_loop(synthetic_clip, tmp_path, monkeypatch, capsys):
    def factory(**kw):
        return Flaky(fail_at=3, error=torch.cuda.OutOfMemoryError("out of memory"))

    monkeypatch.setitem(TRACKERS, "flaky", factory)
    out = tmp_path / "out.txt"
    rc = main(
        [
            "track",
            str(synthetic_clip[0]),
            "--box",
            "20,30,40,30",
            "--tracker",
            "flaky",
            "--device",
            "cpu",
            "--out",
            str(out),
        ]
    )
    assert rc == 1 and len(out.read_text().splitlines()) == 3
    capsys.readouterr()


# --------------------------------------------------------------------------- disk full, permission denied


def enospc(monkeypatch) -> None:
    def full(fd: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", full)


def eacces(monkeypatch) -> None:
    """Renames refused: the last step of every atomic write (os.replace for files, os.rename for folders)."""

    def refused(src, dst, *args, **kwargs) -> None:
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(dst))

    monkeypatch.setattr(os, "replace", refused)
    monkeypatch.setattr(os, "rename", refused)


FAULTS = {"disk full": enospc, "permission denied": eacces}


def snapshot(path: Path) -> dict[str, bytes]:
    """Every file under ``path`` (or the file itself), by relative name, for before/after checks."""
    if path.is_file():
        return {"": path.read_bytes()}
    return {p.relative_to(path).as_posix(): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob("*") if ".tmp" in p.name or p.name.endswith(".old"))


@pytest.mark.parametrize("fault", list(FAULTS))
def test_a_failed_project_save_keeps_the_earlier_file_and_the_work(
    fault, window_factory, tmp_path, monkeypatch, ledger
):
    window = window_factory(prompts=True)
    window.set_keyframe(0, Box(20, 30, 40, 30))
    project = tmp_path / "clip.siamtrack.json"
    assert window.documents.save_to(project)
    before = project.read_bytes()
    window.set_keyframe(5, Box(22, 30, 40, 30))
    with monkeypatch.context() as patch:
        FAULTS[fault](patch)
        ledger.injected()
        assert not window.save()
    assert project.read_bytes() == before
    assert "Cannot save" in (dialog_text(window) or "") and window.documents.dirty
    assert leftovers(tmp_path) == []
    window._message_box.close()
    assert window.save()  # the disk is back: the same work saves
    saved = json.loads(project.read_text())
    frames = saved["objects"][0]["frames"]  # project version 2: frames per object
    assert [f["index"] for f in frames] == [0, 5]
    ledger.edits(checked=2, lost=2 - len(frames))


@pytest.mark.parametrize("fault", list(FAULTS))
@pytest.mark.parametrize("name", list(FORMATS))
def test_a_failed_export_leaves_the_earlier_export(name, fault, tmp_path, monkeypatch, ledger):
    session = AnnotationSession(Path("/v/clip.avi"), 6, (64, 48), "ab")
    session.set_keyframe(0, Box(1, 2, 10, 12))
    target = tmp_path / ("out" if FORMATS[name].layout == "folder" else "out.txt")
    write_trajectory(session.trajectory, target, name)
    before = snapshot(target)
    session.set_keyframe(3, Box(5, 5, 10, 12))
    with monkeypatch.context() as patch:
        FAULTS[fault](patch)
        ledger.injected()
        with pytest.raises(OSError):
            write_trajectory(session.trajectory, target, name)
    assert snapshot(target) == before
    assert leftovers(tmp_path) == []


def test_the_window_reports_a_failed_export(window_factory, tmp_path, monkeypatch, ledger):
    target = tmp_path / "clip.xml"
    target.write_text("the earlier export\n")

    class Accepting:
        """The export dialog, answered: CVAT into ``target``."""

        def __init__(self, trajectory, suggested, parent):
            self.trajectory, self.format, self.path = trajectory, "cvat", target

        def exec(self) -> bool:
            return True

        def write(self) -> None:
            write_trajectory(self.trajectory, self.path, self.format)

    monkeypatch.setattr("app.qt.exports.ExportDialog", Accepting)
    window = window_factory(prompts=True)
    window.set_keyframe(0, Box(20, 30, 40, 30))
    enospc(monkeypatch)
    ledger.injected()
    window.export_dialog()
    assert "Export failed" in (dialog_text(window) or "")
    assert target.read_text() == "the earlier export\n"


def test_a_failed_dataset_export_keeps_the_earlier_one(window_factory, qtbot, tmp_path, monkeypatch, ledger):
    window = window_factory(prompts=True)
    window.set_keyframe(0, Box(20, 30, 40, 30))
    out = tmp_path / "dataset"
    job = window.export_dataset(out)
    with qtbot.waitSignal(job.finished, timeout=20_000):
        pass
    before = snapshot(out)
    window.set_keyframe(3, Box(22, 30, 40, 30))
    enospc(monkeypatch)
    ledger.injected()
    job = window.export_dataset(out)
    with qtbot.waitSignal(job.failed, timeout=20_000):
        pass
    assert "Dataset export failed" in (dialog_text(window) or "")
    assert snapshot(out) == before and leftovers(tmp_path) == []


@pytest.mark.parametrize("fault", list(FAULTS))
def test_cli_out_and_json_keep_the_earlier_file(fault, synthetic_clip, tmp_path, monkeypatch, capsys, ledger):
    video, boxes = synthetic_clip
    out, report = tmp_path / "out.txt", tmp_path / "report.json"
    out.write_text("earlier\n")
    report.write_text("{}\n")
    (tmp_path / "clip.avi").symlink_to(video)
    (tmp_path / "clip.txt").write_text("".join(f"{b.x + 1},{b.y + 1},{b.w},{b.h}\n" for b in boxes))
    with monkeypatch.context() as patch:
        FAULTS[fault](patch)
        ledger.injected(2)
        rc = main(["track", str(video), "--box", "20,30,40,30", "--tracker", "identity", "--out", str(out)])
        assert rc == 2
        err = capsys.readouterr().err
        assert f"cannot write {out}" in err and "earlier file is kept" in err
        rc = main(["eval", str(tmp_path / "clip.avi"), "--tracker", "identity", "--json", str(report)])
        assert rc == 2
        assert f"cannot write {report}" in capsys.readouterr().err
    assert out.read_text() == "earlier\n" and report.read_text() == "{}\n"
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("fault", list(FAULTS))
def test_a_failed_checkpoint_save_keeps_the_earlier_checkpoint(fault, tmp_path, monkeypatch, ledger):
    from trackers.weights.checkpoint import save_checkpoint
    from trackers.weights.loading import load_checkpoint

    path = save_checkpoint(tmp_path / "w.pt", {"a": torch.zeros(3)}, architecture="siamfc-alexnet", config={})
    before = path.read_bytes()
    with monkeypatch.context() as patch:
        FAULTS[fault](patch)
        ledger.injected()
        with pytest.raises(OSError):
            save_checkpoint(path, {"a": torch.ones(3)}, architecture="siamfc-alexnet", config={})
    assert path.read_bytes() == before and leftovers(tmp_path) == []
    assert torch.equal(load_checkpoint(path, "siamfc-alexnet")[0]["a"], torch.zeros(3))


def test_the_journal_keeps_edits_through_a_full_disk(tmp_path, monkeypatch, ledger):
    """Edits made while the disk is full are written once it has room; none is lost."""
    session = AnnotationSession(Path("/v/clip.avi"), 40, (64, 48), "cafe")
    journal = Journal(journal_path("cafe", tmp_path), flush_interval=0.05)
    journal.attach(session)
    real_fsync = os.fsync
    full = threading.Event()

    def fsync(fd: int) -> None:
        if full.is_set():
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    try:
        session.set_keyframe(0, Box(1, 1, 5, 5))
        time.sleep(0.2)
        full.set()
        ledger.injected()
        for i in range(1, 20):
            session.set_keyframe(i, Box(i, 1, 5, 5))
            time.sleep(0.01)
        time.sleep(0.3)
        assert journal.error is not None and "failed" in journal.error
        full.clear()
        time.sleep(0.4)  # the flusher retries on its own
        assert journal.error is None
    finally:
        journal.close(discard=False)
    restored = restore(journal.path)
    lost = sum(restored.trajectory[i] != session.trajectory[i] for i in range(40))
    ledger.edits(checked=20, lost=lost)
    assert lost == 0


def test_a_write_cut_short_by_a_full_disk_leaves_no_half_line(tmp_path, monkeypatch, ledger):
    """A partial write is cut back: a half line would hide every later edit from a restore."""
    session = AnnotationSession(Path("/v/clip.avi"), 40, (64, 48), "cafe")
    journal = Journal(journal_path("cafe", tmp_path), flush_interval=0.05)
    journal.attach(session)
    real_write = os.write
    fd = journal._file.fileno()
    state = {"fail": 0}

    def write(target: int, data) -> int:
        if target == fd and state["fail"]:
            state["fail"] -= 1
            real_write(target, bytes(data[: len(data) // 2]))  # half of it got there
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_write(target, data)

    monkeypatch.setattr(os, "write", write)
    try:
        session.set_keyframe(0, Box(1, 1, 5, 5))
        time.sleep(0.2)
        state["fail"] = 2
        ledger.injected(2)
        session.set_keyframe(1, Box(2, 1, 5, 5))
        session.set_absent(2, 10)
        time.sleep(0.5)
        session.set_keyframe(11, Box(3, 1, 5, 5))
        time.sleep(0.3)
    finally:
        journal.close(discard=False)
    assert state["fail"] == 0
    restored = restore(journal.path)
    lost = sum(restored.trajectory[i] != session.trajectory[i] for i in range(40))
    ledger.edits(checked=11, lost=lost)
    assert lost == 0


# --------------------------------------------------------------------------- closing while busy


def our_threads() -> list[str]:
    names = ("frame-index", "journal-flush", "dataset-export", "siamtrack-prefetch")
    return [t.name for t in threading.enumerate() if t.name.startswith(names)]


def test_closing_during_a_slow_run_stops_every_thread_and_keeps_the_frames(window_factory, qtbot, ledger):
    trackers: list[Flaky] = []

    def factory(name, **kwargs):
        trackers.append(Flaky(delay=0.2))
        return trackers[-1]

    window = window_factory(factory)
    window.set_keyframe(0, Box(20, 30, 40, 30))
    window.track(+1)
    qtbot.waitUntil(lambda: len(tracked(window)) >= 2, timeout=10_000)
    seen: list[int] = []
    window.run_ended.connect(lambda run_id, reason: seen.append(len(tracked(window))))
    ledger.injected()
    started = time.monotonic()
    window.close()
    assert time.monotonic() - started < 2.0  # at most the frame in progress
    assert not window.controller.worker_thread.isRunning()
    # every update that returned, the one in progress at the close included, reached the session
    assert seen == [trackers[0].updates]
    ledger.edits(checked=trackers[0].updates, lost=trackers[0].updates - seen[0])
    qtbot.waitUntil(lambda: our_threads() == [], timeout=3000)


def test_closing_during_a_dataset_export_stops_it_and_leaves_no_partial_folder(
    window_factory, qtbot, tmp_path, monkeypatch, ledger
):
    import cv2

    window = window_factory()
    window.set_keyframe(0, Box(20, 30, 40, 30))
    encode = cv2.imencode

    def slow_encode(*args, **kwargs):
        time.sleep(0.05)  # 30 frames: an export that is still going when the window closes
        return encode(*args, **kwargs)

    monkeypatch.setattr(cv2, "imencode", slow_encode)
    job = window.export_dataset(tmp_path / "dataset")
    qtbot.waitUntil(lambda: job.done[0] >= 2, timeout=5000)
    ledger.injected()
    window.close()
    assert not job.running and not job.worker_thread.isRunning()
    assert not (tmp_path / "dataset").exists() or list((tmp_path / "dataset").iterdir()) == []
    assert leftovers(tmp_path) == []
    qtbot.waitUntil(lambda: our_threads() == [], timeout=3000)


def test_a_frame_stream_left_half_read_is_closed(synthetic_clip):
    """The prefetching decoder stops with its consumer; no thread is left behind."""
    from trackers.prefetch import Prefetcher
    from trackers.sources import open_source

    with open_source(synthetic_clip[0]) as source:
        with Prefetcher(source.iter_from(0)) as frames:
            for i, _ in enumerate(frames):
                if i == 3:
                    break
    assert "siamtrack-prefetch" not in [t.name for t in threading.enumerate()]
    assert np is not None
