"""Writes are atomic: a failure mid-write leaves the earlier export as it was."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from trackers.formats import FORMATS, voc, writing
from trackers.formats.common import FormatError
from trackers.trajectory import Entry, Trajectory
from trackers.types import Box

OLD = Trajectory((Entry(Box(1, 2, 3, 4)), Entry(None)), frame_size=(64, 48), label="old")
NEW = Trajectory((Entry(Box(5, 6, 7, 8)), Entry(Box(5, 6, 7, 8)), None), frame_size=(64, 48), label="new")


def snapshot(path: Path) -> dict[str, bytes]:
    if path.is_file():
        return {path.name: path.read_bytes()}
    return {p.relative_to(path).as_posix(): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}


def leftovers(folder: Path, keep: str) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name != keep)


@pytest.mark.parametrize("name", ["otb", "mot", "cvat", "coco"])
def test_file_formats_fail_mid_write(name, tmp_path, monkeypatch):
    path = tmp_path / f"out.{name}"
    FORMATS[name].write(OLD, path)
    before = snapshot(path)

    def broken_fsync(fd: int) -> None:
        raise OSError(28, "No space left on device")  # the data went out half-way

    monkeypatch.setattr(writing.os, "fsync", broken_fsync)
    with pytest.raises(OSError, match="No space"):
        FORMATS[name].write(NEW, path)
    assert snapshot(path) == before
    assert leftovers(tmp_path, path.name) == []  # the temporary file is gone too


@pytest.mark.parametrize("name", ["got10k", "lasot", "yolo", "voc"])
def test_folder_formats_fail_mid_write(name, tmp_path, monkeypatch):
    path = tmp_path / name
    FORMATS[name].write(OLD, path)
    before = snapshot(path)
    real_write_text = Path.write_text
    calls = []

    def failing_write_text(self: Path, *args, **kwargs):  # the second file of the new export fails
        calls.append(self)
        if len(calls) == 2:
            raise OSError(5, "Input/output error")
        return real_write_text(self, *args, **kwargs)

    monkeypatch.setattr(Path, "write_text", failing_write_text)
    with pytest.raises(OSError, match="Input/output"):
        FORMATS[name].write(NEW, path)
    monkeypatch.undo()
    assert snapshot(path) == before
    assert leftovers(tmp_path, name) == []


def test_a_failed_swap_puts_the_old_folder_back(tmp_path, monkeypatch):
    path = tmp_path / "voc"
    voc.write(OLD, path)
    before = snapshot(path)
    real_rename = os.rename
    calls = []

    def rename(src, dst):
        calls.append((src, dst))
        if len(calls) == 2:  # the old folder has stepped aside; the new one fails to take its place
            raise OSError(18, "Invalid cross-device link")
        return real_rename(src, dst)

    monkeypatch.setattr(writing.os, "rename", rename)
    with pytest.raises(OSError):
        voc.write(NEW, path)
    monkeypatch.undo()
    assert snapshot(path) == before
    assert leftovers(tmp_path, "voc") == []


def test_a_successful_write_replaces(tmp_path):
    path = tmp_path / "voc"
    voc.write(OLD, path)
    voc.write(NEW, path)
    assert voc.read(path).label == "new"
    assert leftovers(tmp_path, "voc") == []


def test_never_replaces_a_folder_with_other_files(tmp_path):
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "notes.txt").write_text("keep me")
    for name in ("got10k", "lasot", "yolo", "voc"):
        with pytest.raises(FormatError, match="notes.txt, which this export would not write"):
            FORMATS[name].write(NEW, folder)
    assert (folder / "notes.txt").read_text() == "keep me"
    assert leftovers(tmp_path, "mine") == []


def test_file_and_folder_kinds_are_not_confused(tmp_path):
    (tmp_path / "a_folder").mkdir()
    with pytest.raises(FormatError, match="is a folder"):
        FORMATS["otb"].write(NEW, tmp_path / "a_folder")
    (tmp_path / "a_file").write_text("x")
    with pytest.raises(FormatError, match="is a file"):
        FORMATS["voc"].write(NEW, tmp_path / "a_file")
    assert (tmp_path / "a_file").read_text() == "x"
