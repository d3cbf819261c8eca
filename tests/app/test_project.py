"""Project files: exact round trips, atomic saves, one-line errors, and the content hash."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.model.project import ProjectError, content_hash, load_project, save_project
from app.model.session import AnnotationSession, TrackerSettings
from trackers.trajectory import Entry, Origin, Trajectory
from trackers.types import Box


@pytest.fixture
def video(tmp_path) -> Path:
    path = tmp_path / "videos" / "clip.mp4"
    path.parent.mkdir()
    path.write_bytes(os.urandom(5000))
    return path


DEFAULTS = TrackerSettings()


def session_with(video: Path, trajectory: Trajectory, settings_: TrackerSettings = DEFAULTS):
    return AnnotationSession(
        video, trajectory.frame_count, (640, 360), content_hash(video), trajectory, settings_
    )


def rich_trajectory() -> Trajectory:
    return Trajectory.empty(12, (640, 360), label="car").with_entries(
        {
            0: Entry(Box(1.5, 2.25, 30, 40), Origin.KEYFRAME),
            1: Entry(Box(2.0000000001, 2.3, 30.1, 39.9), Origin.TRACKED, 0.8123456789012345),
            2: Entry(Box(3, 3, 30, 40), Origin.TRACKED, -0.25, occluded=True),
            3: Entry(None, Origin.KEYFRAME),
            4: Entry(None, Origin.TRACKED, 0.1),
            6: Entry(Box(0, 0, 1e-9, 1e6), Origin.INTERPOLATED),
            11: Entry(Box(5, 6, 7, 8), Origin.IMPORTED, 1.0),
        }
    )


def test_round_trip_keeps_every_field(tmp_path, video):
    settings_ = TrackerSettings("siamrpn", Path("/w/rpn.pt"), "cpu", Path("/models"), 25)
    session = session_with(video, rich_trajectory(), settings_)
    path = tmp_path / "work" / "clip.siamtrack.json"
    save_project(session, path)
    assert not session.is_modified  # saving marks it saved
    loaded = load_project(path)
    assert loaded.trajectory == session.trajectory and not loaded.is_modified
    assert loaded.trajectory.label == "car"
    assert loaded.settings == settings_
    assert (loaded.frame_count, loaded.frame_size, loaded.content_hash) == (
        12,
        (640, 360),
        session.content_hash,
    )
    assert loaded.video == video
    data = json.loads(path.read_text())
    assert data["version"] == 2 and data["video"]["frame_count"] == 12
    assert data["objects"][0]["frames"][3] == {
        "index": 3,
        "box": None,
        "origin": "keyframe",
        "score": None,
        "absent": True,
        "occluded": False,
    }


finite = st.floats(-1e6, 1e6, allow_nan=False)
size = st.floats(0, 1e6, allow_nan=False)
entries = st.one_of(
    st.none(),
    st.builds(
        Entry,
        st.one_of(st.none(), st.builds(Box, finite, finite, size, size)),
        st.sampled_from(list(Origin)),
        st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True)),
    ),
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(entries, min_size=0, max_size=30), st.integers(1, 1000))
def test_round_trip_of_random_trajectories(tmp_path, video, frames, max_frames):
    trajectory = Trajectory(tuple(frames), (640, 360))
    session = session_with(video, trajectory, TrackerSettings(max_frames=max_frames))
    save_project(session, tmp_path / "p.json")
    loaded = load_project(tmp_path / "p.json")
    assert loaded.trajectory == trajectory
    assert loaded.settings.max_frames == max_frames


def test_a_failed_save_leaves_the_earlier_file_intact(tmp_path, video, monkeypatch):
    path = tmp_path / "p.json"
    session = session_with(video, rich_trajectory())
    save_project(session, path)
    before = path.read_bytes()
    session.clear(0, 12)

    def fail(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", fail)
    with pytest.raises(OSError):
        save_project(session, path)
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.json", "videos"]  # no temporary left


def one_line_error(path: Path, **kwargs) -> str:
    with pytest.raises(ProjectError) as info:
        load_project(path, **kwargs)
    message = str(info.value)
    assert "\n" not in message and str(path) in message
    return message


@pytest.mark.parametrize(
    "text, expected",
    [
        ("{not json", "not valid JSON"),
        ("", "not valid JSON"),
        ("[1, 2]", "JSON object"),
        ('{"format": "other"}', "not a siamtrack project"),
        ('{"format": "siamtrack-project", "version": 99}', "version 99"),
    ],
)
def test_malformed_files_raise_one_line_errors(tmp_path, text, expected):
    path = tmp_path / "p.json"
    path.write_text(text)
    assert expected in one_line_error(path)


def test_truncated_and_damaged_projects(tmp_path, video):
    path = tmp_path / "p.json"
    save_project(session_with(video, rich_trajectory()), path)
    text = path.read_text()
    path.write_text(text[: len(text) // 2])
    assert "not valid JSON" in one_line_error(path)
    data = json.loads(text)
    for damage, expected in [
        (lambda d: d["objects"][0]["frames"][0].update(origin="guessed"), "origin"),
        (lambda d: d["objects"][0]["frames"][0].update(box=[1, 2, 3]), "box"),
        (lambda d: d["objects"][0]["frames"][0].update(absent=True), "absent"),
        (lambda d: d["objects"][0]["frames"].append(dict(d["objects"][0]["frames"][0], index=12)),
         "past the video"),
        (lambda d: d["objects"][0]["frames"].append(dict(d["objects"][0]["frames"][0])), "twice"),
        (lambda d: d["video"].update(frame_count=-1), "frame_count"),
        (lambda d: d["settings"].update(max_frames="many"), "max_frames"),
    ]:
        broken = json.loads(text)
        damage(broken)
        path.write_text(json.dumps(broken))
        assert expected in one_line_error(path)
    assert data["objects"][0]["frames"]  # the undamaged text still loads
    path.write_text(text)
    load_project(path)


def test_another_video_is_refused(tmp_path, video):
    path = tmp_path / "p.json"
    save_project(session_with(video, rich_trajectory()), path)
    other = tmp_path / "other.mp4"
    other.write_bytes(os.urandom(5000))
    assert "not the video" in one_line_error(path, video=other)
    video.write_bytes(os.urandom(5000))  # the file changed under the same name
    assert "not the video" in one_line_error(path)


def test_a_moved_folder_finds_its_video_and_a_missing_video_is_reported(tmp_path, video):
    project_dir = tmp_path / "videos"
    path = project_dir / "p.json"
    save_project(session_with(video, rich_trajectory()), path)
    moved = shutil.move(str(project_dir), str(tmp_path / "moved"))
    loaded = load_project(Path(moved) / "p.json")
    assert loaded.video == Path(moved) / "clip.mp4"
    (Path(moved) / "clip.mp4").unlink()
    assert "missing" in one_line_error(Path(moved) / "p.json")
    assert "no such file" in one_line_error(tmp_path / "nothing.json")


def test_content_hash_samples_start_middle_and_end(tmp_path):
    big = tmp_path / "big.bin"
    data = bytearray(os.urandom(5 * 1024 * 1024))
    big.write_bytes(data)
    reference = content_hash(big)
    assert content_hash(big) == reference and len(reference) == 64
    for position in (10, len(data) // 2, len(data) - 10):
        changed = bytearray(data)
        changed[position] ^= 0xFF
        big.write_bytes(changed)
        assert content_hash(big) != reference
    big.write_bytes(data + b"x")
    assert content_hash(big) != reference


def test_content_hash_of_a_frame_folder(tmp_path):
    folder = tmp_path / "seq"
    folder.mkdir()
    for i in range(1, 4):
        (folder / f"{i:04d}.jpg").write_bytes(bytes([i]) * 100)
    (folder / "notes.txt").write_text("ignored")
    reference = content_hash(folder)
    (folder / "notes.txt").write_text("still ignored")
    assert content_hash(folder) == reference
    (folder / "0004.jpg").write_bytes(b"new frame")
    assert content_hash(folder) != reference
