"""Videos that cannot be used: one line from the CLI, a dialog from the app, which keeps running.

Refused outright: files that are not videos (text, HTML, random bytes, empty), videos
cut before their first frame or without their index, an unknown codec, zero frames.
Opened with a note: a video that decodes fewer frames than its header claims (cut in
the middle, damaged in the middle, and vtest.avi whose header says 682 for 341).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from trackers.sources import SourceError, frame_count_note, open_source

from .conftest import BROKEN, ROOT, dialog_text

CORPUS = sorted(p.name for p in (BROKEN / "videos").iterdir())
GENERATED = [
    "truncated_head.avi",
    "truncated_tail.mp4",
    "truncated_half.mp4",
    "unknown_codec.avi",
    "random_bytes.avi",
    "zero_frames.avi",
]
SHORTER = {"truncated_half.avi": 20, "corrupt_middle.avi": 20}  # name -> what the header claims
VTEST = Path(__file__).resolve().parents[3] / "shared" / "data" / "videos" / "unlabelled" / "vtest.avi"


def bad_path(name: str, media: dict[str, Path]) -> Path:
    return BROKEN / "videos" / name if name in CORPUS else media[name]


@pytest.mark.parametrize("name", CORPUS + GENERATED)
def test_a_bad_video_is_refused_with_one_line_naming_it(name, media, ledger):
    path = bad_path(name, media)
    ledger.tried()
    with pytest.raises(SourceError) as info:
        open_source(path)
    message = str(info.value)
    assert str(path) in message and "\n" not in message
    assert message.startswith("Cannot open")


# The CLI runs in a child (OpenCV's and FFmpeg's own log lines go to the process's
# stderr, which only a child shows honestly); one child tries every file, with fd 2
# redirected per call, to keep this cheap.
DRIVER = r"""
import json, os, sys, tempfile
from app.cli import main
results = {}
for path in sys.argv[2:]:
    with tempfile.TemporaryFile() as err:
        saved = os.dup(2)
        os.dup2(err.fileno(), 2)
        try:
            try:
                args = ["track", path, "--box", "5,10,20,20", "--tracker", "identity", "--out", sys.argv[1]]
                rc = main(args)
            except SystemExit as exc:
                rc = exc.code
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
        err.seek(0)
        results[path] = [rc, err.read().decode("utf-8", "replace")]
print(json.dumps(results))
"""


def run_cli_on(paths: list[Path], out: Path) -> dict[str, tuple[int, str]]:
    result = subprocess.run(
        [sys.executable, "-c", DRIVER, str(out), *map(str, paths)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return {k: (v[0], v[1]) for k, v in json.loads(result.stdout.strip().splitlines()[-1]).items()}


def test_the_cli_gives_one_line_and_status_2_for_every_bad_video(media, tmp_path, ledger):
    paths = [bad_path(name, media) for name in CORPUS + GENERATED]
    out = tmp_path / "out.txt"
    results = run_cli_on(paths, out)
    ledger.tried(len(paths))
    for path in paths:
        rc, err = results[str(path)]
        lines = err.strip().splitlines()
        assert rc == 2, (path, err)
        assert lines == [lines[0]] and lines[0].startswith("siamtrack track: error: Cannot open"), (path, err)
        assert str(path) in lines[0]
    assert not out.exists()


def test_the_cli_tracks_a_shorter_video_and_says_its_header_lies(media, tmp_path, ledger):
    paths = [media[name] for name in SHORTER]
    results = run_cli_on(paths, tmp_path / "out.txt")
    ledger.tried(len(paths))
    for name, claimed in SHORTER.items():
        rc, err = results[str(media[name])]
        assert rc == 0, err
        notes = [line for line in err.splitlines() if line.startswith("siamtrack: note:")]
        assert len(notes) == 1 and f"claims {claimed} frames" in notes[0], err
        assert "error" not in err.lower()


@pytest.mark.parametrize(
    "name",
    ["not_a_video.mp4", "riff_header_only.avi", "truncated_tail.mp4", "unknown_codec.avi", "zero_frames.avi"],
)
def test_the_app_shows_a_dialog_and_keeps_running(name, media, window_factory, synthetic_clip, ledger):
    window = window_factory(prompts=True, open_clip=False)
    path = bad_path(name, media)
    ledger.tried()
    assert not window.open_path(path)
    assert window.document is None
    text = dialog_text(window)
    assert text is not None and str(path) in text, window.last_error
    assert window.statusBar().currentMessage().startswith("Cannot open")
    window._message_box.close()
    # still working: the next video opens
    assert window.open_path(synthetic_clip[0]), window.last_error
    assert window.document is not None and window.document.frame_count == 30


def test_the_app_opens_a_shorter_video_with_a_note(media, window_factory, ledger):
    window = window_factory(prompts=True, open_clip=False)
    ledger.tried()
    assert window.open_path(media["truncated_half.avi"]), window.last_error
    assert window.document.frame_count < 20
    text = dialog_text(window)
    assert text is not None and "claims 20 frames" in text
    assert window.last_error is None


def test_a_note_only_when_the_header_is_off_by_more_than_one(media):
    with open_source(media["ok.avi"]) as source:
        assert source.header_frame_count == 20 and frame_count_note(source) is None
    with open_source(media["corrupt_middle.avi"]) as source:
        note = frame_count_note(source)
        assert note is not None and f"but {len(source)} decode" in note


@pytest.mark.slow
def test_vtest_header_claims_682_frames_and_341_decode(tmp_path, window_factory, ledger):
    if not VTEST.exists():
        pytest.skip(f"shared data not found: {VTEST}")
    ledger.tried()
    with open_source(VTEST) as source:
        assert source.header_frame_count == 682
        assert len(source) == 341
        assert "claims 682 frames but 341 decode" in frame_count_note(source)
    out = tmp_path / "vtest.txt"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "app.cli",
            "track",
            str(VTEST),
            "--box",
            "300,200,40,80",
            "--tracker",
            "identity",
            "--out",
            str(out),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert len(out.read_text().splitlines()) == 341
    assert "claims 682 frames but 341 decode" in result.stderr
    window = window_factory(prompts=True, open_clip=False)
    assert window.open_path(VTEST), window.last_error
    assert window.document.frame_count == 341
    assert "682" in (window.last_notice or "")
    window.go_to(340)
    window.repaint_now()
    assert window.index == 340
