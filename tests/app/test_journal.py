"""The autosave journal: timely flushes, replay, survival of SIGKILL, and what recovery offers."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from app.model.journal import (
    Journal,
    JournalError,
    discard,
    find_recoverable,
    journal_path,
    read_info,
    replay,
    restore,
)
from app.model.session import AnnotationSession, TrackerSettings
from trackers.trajectory import Origin
from trackers.types import Box, TrackResult

ROOT = Path(__file__).resolve().parents[2]
N = 40


def new_session(digest: str = "cafe") -> AnnotationSession:
    return AnnotationSession(
        Path("/videos/clip.mp4"), N, (64, 48), digest, settings=TrackerSettings("identity")
    )


def edit_records(path: Path) -> list[dict]:
    lines = path.read_bytes().split(b"\n")[:-1]
    return [r for r in map(json.loads, lines) if r["type"] == "edit"]


def make_edits(s: AnnotationSession) -> None:
    s.set_keyframe(0, Box(1, 2, 10, 12))
    s.set_absent(20, 30)
    s.set_keyframe(35, Box(3, 3, 5, 5), occluded=True)
    run = s.begin_run(0)
    for i in range(1, 6):
        s.accept(run.run_id, i, TrackResult(Box(1 + i, 2, 10, 12), 0.5 + i / 10))
    s.end_run(run.run_id, "completed")
    s.clear(22)
    s.undo()  # the clear
    s.set_keyframe(39, Box(7, 7, 5, 5))
    s.interpolate(35, 39)


def test_edits_reach_the_disk_within_the_flush_interval(tmp_path):
    s = new_session()
    journal = Journal(journal_path("cafe", tmp_path), flush_interval=0.2)
    journal.attach(s)
    try:
        header = json.loads(journal.path.read_bytes().split(b"\n")[0])
        assert header["type"] == "header" and header["pid"] == os.getpid()
        s.set_keyframe(3, Box(1, 1, 4, 4))
        time.sleep(0.05)
        s.set_absent(4, 8)
        time.sleep(0.5)
        records = edit_records(journal.path)
        assert [r["kind"] for r in records] == ["keyframe", "absent"]
        assert records[1]["range"] == [4, 8]  # a uniform range is one line
    finally:
        journal.close()


def test_replay_and_restore_bring_back_every_edit(tmp_path):
    s = new_session()
    journal = Journal(journal_path("cafe", tmp_path), flush_interval=0.05)
    journal.attach(s)
    make_edits(s)
    journal.close(discard=False)  # as if the process died right after the last flush
    fresh = new_session()
    count = replay(journal.path, fresh)
    assert count == len(edit_records(journal.path)) > 5
    assert fresh.trajectory == s.trajectory
    assert fresh.undo() and all(e is None for e in fresh.trajectory.entries)  # one undo step
    restored = restore(journal.path)
    assert restored.trajectory == s.trajectory
    assert restored.settings == s.settings and restored.content_hash == "cafe"
    assert restored.trajectory[3].origin is Origin.TRACKED
    with pytest.raises(JournalError, match="another video"):
        replay(journal.path, new_session("beef"))


def test_a_cut_last_line_is_ignored(tmp_path):
    s = new_session()
    with Journal(journal_path("cafe", tmp_path), flush_interval=0.01) as journal:
        journal.attach(s)
        s.set_keyframe(1, Box(1, 1, 4, 4))
        s.set_keyframe(2, Box(2, 2, 4, 4))
        journal.close(discard=False)
    data = journal.path.read_bytes()
    journal.path.write_bytes(data[:-5])  # the crash cut the last record
    restored = restore(journal.path)
    assert restored.trajectory[1] is not None and restored.trajectory[2] is None


CHILD = """
import sys, time
from pathlib import Path
from app.model.journal import Journal, journal_path
from app.model.session import AnnotationSession
from trackers.types import Box

session = AnnotationSession(Path("/videos/clip.mp4"), {n}, (64, 48), "cafe")
Journal(journal_path("cafe", Path(sys.argv[1]))).attach(session)
for i in range({n}):
    if i % 3 == 2:
        session.set_absent(i)
    else:
        session.set_keyframe(i, Box(i, i + 0.5, 10, 12))
    print(i, time.time(), flush=True)
    time.sleep(0.02)
print("done", flush=True)
time.sleep(60)
"""


def test_sigkill_loses_nothing_older_than_a_second(tmp_path):
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD.format(n=N), str(tmp_path)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        stamps: dict[int, float] = {}
        for line in child.stdout:
            if line.strip() == "done":
                break
            index, stamp = line.split()
            stamps[int(index)] = float(stamp)
        assert len(stamps) == N
        # Kill 1.5 s after the last edit: every edit is then more than a second old.
        time.sleep(max(0.0, stamps[N - 1] + 1.5 - time.time()))
        killed_at = time.time()
        os.kill(child.pid, signal.SIGKILL)
        child.wait(10)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        child.stdout.close()
    assert child.returncode == -signal.SIGKILL
    orphans = find_recoverable(tmp_path)
    assert orphans == [journal_path("cafe", tmp_path)]
    info = read_info(orphans[0])
    assert info.content_hash == "cafe" and info.frame_count == N and info.edits == N
    restored = restore(orphans[0])
    for i, stamp in stamps.items():
        assert stamp < killed_at - 1.0
        entry = restored.trajectory[i]
        assert entry is not None and entry.origin is Origin.KEYFRAME
        assert entry.box == (None if i % 3 == 2 else Box(i, i + 0.5, 10, 12))
    discard(orphans[0])
    assert find_recoverable(tmp_path) == []


def test_what_recovery_offers(tmp_path):
    path = journal_path("cafe", tmp_path)
    s = new_session()
    journal = Journal(path, flush_interval=0.01)
    journal.attach(s)
    s.set_keyframe(1, Box(1, 1, 4, 4))
    assert find_recoverable(tmp_path) == []  # live: its writer holds the lock
    with pytest.raises(JournalError, match="Another siamtrack"):
        Journal(path)
    with pytest.raises(JournalError, match="running"):
        discard(path)
    journal.close()  # a clean exit
    assert not path.exists() and find_recoverable(tmp_path) == []

    # A journal with nothing but an unchanged snapshot is not worth offering.
    quiet = Journal(path)
    quiet.attach(new_session(), project_path=tmp_path / "p.json")
    quiet.close(discard=False)
    assert find_recoverable(tmp_path) == []
    # Unsaved work in the snapshot is, even without edits.
    s = new_session()
    s.set_keyframe(0, Box(0, 0, 4, 4))
    left = Journal(path)
    left.attach(s)
    left.close(discard=False)
    assert find_recoverable(tmp_path) == [path]
    # Opening a new journal for the same video keeps the orphan recoverable, under another name.
    again = Journal(path)
    again.attach(new_session())
    orphans = find_recoverable(tmp_path)
    assert len(orphans) == 1 and orphans[0] != path
    assert restore(orphans[0]).trajectory[0].box == Box(0, 0, 4, 4)
    again.close()
    (tmp_path / "journal" / "junk.jsonl").write_text("not json\n")
    assert find_recoverable(tmp_path) == orphans


def test_a_restored_session_is_offered_again_until_saved(tmp_path):
    path = journal_path("cafe", tmp_path)
    s = new_session()
    first = Journal(path)
    first.attach(s, project_path=tmp_path / "p.json")
    s.set_keyframe(5, Box(1, 1, 4, 4))
    first.close(discard=False)  # the crash
    restored = restore(path)
    assert restored.is_modified
    discard(path)
    second = Journal(path)
    second.attach(restored, project_path=tmp_path / "p.json")
    second.close(discard=False)  # crashes again before any edit
    assert find_recoverable(tmp_path) == [path]
    assert restore(path).trajectory[5].box == Box(1, 1, 4, 4)
    discard(path)
    third = Journal(path)
    third.attach(restored)
    restored.mark_saved()  # as save_project does
    third.checkpoint(tmp_path / "p.json")
    third.close(discard=False)
    assert find_recoverable(tmp_path) == []


def test_checkpoint_restarts_from_a_snapshot(tmp_path):
    s = new_session()
    journal = Journal(journal_path("cafe", tmp_path), flush_interval=0.01)
    journal.attach(s)
    make_edits(s)
    journal.checkpoint(project_path=tmp_path / "p.json")
    assert edit_records(journal.path) == []
    s.clear(0)
    journal.close(discard=False)
    assert read_info(journal.path).project == tmp_path / "p.json"
    assert restore(journal.path).trajectory == s.trajectory
