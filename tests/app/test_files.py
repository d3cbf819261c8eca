"""Issue 17 item 13 (app side): exports suggested beside the project; written files follow the umask."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from app.model import files
from app.model.document import VideoDocument
from app.model.files import follow_umask, writable_folder
from trackers.formats.writing import write_text_atomic
from trackers.types import Box


@pytest.fixture
def umask_022():
    old = os.umask(0o022)
    yield
    os.umask(old)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_an_atomic_write_then_follow_umask_gives_the_usual_modes(tmp_path, umask_022):
    target = tmp_path / "out.txt"
    write_text_atomic(target, "x\n")
    os.chmod(target, 0o600)  # what a plain mkstemp leaves
    follow_umask(target)
    assert mode(target) == 0o644
    folder = tmp_path / "export"
    (folder / "inner").mkdir(parents=True)
    os.chmod(folder, 0o700)
    (folder / "inner" / "a.txt").write_text("a")
    os.chmod(folder / "inner" / "a.txt", 0o600)
    follow_umask(folder)
    assert mode(folder) == 0o755 and mode(folder / "inner" / "a.txt") == 0o644


def test_a_saved_project_follows_the_umask(tmp_path, synthetic_clip, umask_022):
    document = VideoDocument.open(synthetic_clip[0])
    try:
        document.session.set_keyframe(0, Box(20, 30, 40, 30))
        saved = document.save(tmp_path / "clip.siamtrack.json")
    finally:
        document.close()
    assert mode(saved) == 0o644


def test_exports_are_suggested_beside_the_project_not_a_read_only_data_folder(
    tmp_path, synthetic_clip, monkeypatch
):
    video_folder = synthetic_clip[0].parent
    real_access = os.access
    monkeypatch.setattr(files.os, "access", lambda p, m: Path(p) != video_folder and real_access(p, m))
    document = VideoDocument.open(synthetic_clip[0])
    try:
        assert document.default_export_base() == Path.home() / "clip"  # no project yet, data read-only
        (tmp_path / "work").mkdir()
        document.save(tmp_path / "work" / "clip.siamtrack.json")
        assert document.default_export_base() == tmp_path / "work" / "clip"
    finally:
        document.close()
    assert writable_folder(None, tmp_path) == tmp_path
