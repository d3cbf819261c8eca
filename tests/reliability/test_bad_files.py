"""Annotation, project and journal files that are malformed, truncated, hostile or for another
video; and a fuzzer for every importer.

Readers answer with their own one-line error (FormatError, ProjectError, JournalError,
all ValueErrors) naming the file, never another exception, never a half-read result,
never an allocation the size of a damaged number. XML with entities or a DOCTYPE is
refused before anything is expanded or fetched.
"""

from __future__ import annotations

import json
import math
import shutil
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.cli import main
from app.model.journal import JournalError, find_recoverable, journal_dir, read_info, replay, restore
from app.model.project import ProjectError, load_project, save_project, session_from_dict, session_to_dict
from app.model.session import AnnotationSession
from trackers.evaluation import read_groundtruth
from trackers.formats import FORMATS, read_trajectory
from trackers.formats.common import FormatError
from trackers.trajectory import Entry, Origin, Trajectory
from trackers.types import Box

from .conftest import BROKEN, dialog_text

PROJECTS = sorted((BROKEN / "projects").iterdir())
JOURNALS = sorted((BROKEN / "journals").iterdir())
ANNOTATIONS = sorted((BROKEN / "annotations").iterdir())
BOX_TEXTS = (BROKEN / "boxes.txt").read_text().split("\n")[:-1]
FUZZ = settings(max_examples=80, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))

# The journal cases that still hold a good snapshot and one good edit before the damage.
REPLAYABLE = {"huge_range.jsonl", "infinite_index.jsonl", "negative_index.jsonl", "created_as_text.jsonl"}


# --------------------------------------------------------------------------- projects


@pytest.mark.parametrize("path", PROJECTS, ids=lambda p: p.name)
def test_a_broken_project_is_one_line_naming_it(path, ledger):
    ledger.tried()
    with pytest.raises(ProjectError) as info:
        load_project(path)
    message = str(info.value)
    assert message.startswith(f"Cannot open project {path}: ") and "\n" not in message


def test_a_project_for_another_video_is_refused(tmp_path, synthetic_clip, ledger):
    from tests.media import write_clip

    video, _ = synthetic_clip
    other = tmp_path / "other.avi"
    write_clip(other, n_frames=30)
    other.write_bytes(other.read_bytes() + b"\0")  # same frames, other bytes: another file
    session = AnnotationSession(video, 30, (160, 120), content_hash_of(video))
    session.set_keyframe(0, Box(20, 30, 40, 30))
    project = tmp_path / "clip.siamtrack.json"
    save_project(session, project)
    ledger.tried()
    with pytest.raises(ProjectError, match="is not the video this project was made for"):
        load_project(project, video=other)
    # the same file, moved: still found by its content
    moved = tmp_path / "moved.avi"
    shutil.copy(video, moved)
    assert load_project(project, video=moved).trajectory == session.trajectory


def content_hash_of(path: Path) -> str:
    from app.model.project import content_hash

    return content_hash(path)


def test_the_app_shows_a_dialog_for_each_broken_project_and_keeps_running(
    window_factory, synthetic_clip, ledger
):
    window = window_factory(prompts=True, open_clip=False)
    for path in PROJECTS:
        ledger.tried()
        assert not window.open_path(path)
        assert str(path) in (dialog_text(window) or ""), path
        window._message_box.close()
    assert window.open_path(synthetic_clip[0]), window.last_error


# --------------------------------------------------------------------------- journals


@pytest.mark.parametrize("path", JOURNALS, ids=lambda p: p.name)
def test_a_damaged_journal_is_a_journal_error_or_replays_its_good_part(path, ledger):
    ledger.tried()
    if path.name in REPLAYABLE:
        restored = restore(path)
        # the snapshot's keyframe on frame 0, and the one good edit on frame 1; the damage after is ignored
        assert restored.trajectory[0].box == Box(1, 2, 10, 12)
        assert restored.trajectory[1].box == Box(2, 2, 10, 12)
        assert sum(e is not None for e in restored.trajectory.entries) == 2
        return
    with pytest.raises(JournalError) as info:
        read_info(path)
    assert "\n" not in str(info.value)
    with pytest.raises(JournalError):
        restore(path)


def test_damaged_journals_never_stop_the_app_from_starting(window_factory, monkeypatch, ledger):
    folder = journal_dir()
    folder.mkdir(parents=True, exist_ok=True)
    for path in JOURNALS:
        shutil.copy(path, folder / path.name)
    ledger.tried(len(JOURNALS))
    offered = find_recoverable()
    assert {p.name for p in offered} <= {p.name for p in JOURNALS}
    for path in offered:
        read_info(path)  # only sound ones are offered
    asked: list[Path] = []
    monkeypatch.setattr(
        "app.qt.document_controller.ask_restore", lambda parent, info: asked.append(info.path) or "later"
    )
    window = window_factory(prompts=True, open_clip=False)
    window.offer_restore()  # what start-up does
    assert asked == offered and window.isVisible()


# --------------------------------------------------------------------------- annotation files


@pytest.mark.parametrize("path", ANNOTATIONS, ids=lambda p: p.name)
def test_a_broken_annotation_file_is_one_line_from_convert(path, tmp_path, capsys, ledger):
    ledger.tried()
    with pytest.raises(ValueError):
        read_trajectory(path, frame_size=(64, 48))
    out = tmp_path / "out.txt"
    assert main(["convert", str(path), str(out), "--to", "otb"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith("siamtrack convert: error:") and path.name in err
    assert not out.exists()


def test_xml_entities_are_never_expanded_or_fetched(ledger):
    for name in ("cvat_external_entity.xml", "cvat_external_dtd.xml", "cvat_parameter_entity.xml"):
        ledger.tried()
        with pytest.raises(FormatError, match="DOCTYPE declaration is not accepted") as info:
            FORMATS["cvat"].read(BROKEN / "annotations" / name)
        assert "root:" not in str(info.value)  # nothing of /etc/passwd leaked into the message
    with pytest.raises(FormatError, match="DOCTYPE"):
        FORMATS["voc"].read(BROKEN / "annotations" / "voc_external_entity", frame_size=(64, 48))


def test_an_annotation_for_another_video_is_refused_by_its_frame_count_and_size(tmp_path, ledger):
    trajectory = Trajectory(tuple(Entry(Box(1, 1, 5, 5)) for _ in range(12)), frame_size=(640, 360))
    cvat = tmp_path / "a.xml"
    FORMATS["cvat"].write(trajectory, cvat)
    ledger.tried(2)
    with pytest.raises(FormatError, match="only 10 frames"):
        FORMATS["cvat"].read(cvat, frame_count=10)
    with pytest.raises(FormatError, match="640x360 frames but the video's are 64x48"):
        FORMATS["cvat"].read(cvat, frame_size=(64, 48))


def test_ground_truth_beside_a_video_that_is_damaged_is_one_line_from_eval(
    synthetic_clip, tmp_path, capsys, ledger
):
    video = tmp_path / "clip.avi"
    shutil.copy(synthetic_clip[0], video)
    shutil.copy(BROKEN / "annotations" / "otb_three_numbers.txt", tmp_path / "clip.txt")
    ledger.tried()
    assert main(["eval", str(video), "--tracker", "identity"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "clip.txt:2" in err


# --------------------------------------------------------------------------- fuzzers

SAMPLE = Trajectory(
    (Entry(Box(1.5, 2, 30, 40), Origin.KEYFRAME, 0.9, True), None, Entry(None), Entry(Box(-3, 4, 5, 6))),
    frame_size=(640, 360),
    label="car",
)


@pytest.mark.parametrize("name", list(FORMATS))
@settings(FUZZ, max_examples=30)  # x 8 formats; tests/formats fuzzes them with text junk as well
@given(
    pick=st.integers(0, 99),
    at=st.integers(0, 10**6),
    cut=st.integers(0, 64),
    junk=st.binary(max_size=40),
    truncate=st.booleans(),
)
def test_fuzz_every_format_reader(name, pick, at, cut, junk, truncate, ledger):
    """Arbitrary bytes spliced into (or a cut through) a file each writer wrote."""
    fmt = FORMATS[name]
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "out"
        fmt.write(SAMPLE, out)
        files = [out] if out.is_file() else sorted(p for p in out.rglob("*") if p.is_file())
        target = files[pick % len(files)]
        data = target.read_bytes()
        at %= len(data) + 1
        target.write_bytes(data[:at] if truncate else data[:at] + junk + data[at + cut :])
        ledger.tried()
        try:
            result = fmt.read(out, frame_size=SAMPLE.frame_size if fmt.needs_frame_size else None)
        except FormatError as exc:
            assert "\n" not in str(exc)
        else:
            assert isinstance(result, Trajectory)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(10**18), 10**18) | st.floats() | st.text(max_size=6),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=16,
)
PROJECT_KEYS = [
    "format",
    "version",
    "video",
    "labels",
    "settings",
    "selected",
    "objects",
    "video.path",
    "video.content_hash",
    "video.frame_count",
    "video.frame_size",
    "objects.0",
    "objects.0.id",
    "objects.0.label",
    "objects.0.colour",
    "objects.0.frames",
    "objects.0.frames.0",
    "objects.0.frames.0.box",
    "objects.0.frames.0.index",
    "objects.0.frames.0.origin",
    "objects.0.frames.0.score",
    "objects.0.frames.0.absent",
    "objects.0.frames.0.occluded",
]


def a_project() -> dict:
    session = AnnotationSession(Path("/v/clip.avi"), 8, (64, 48), "ab" * 32)
    session.set_keyframe(0, Box(1, 2, 10, 12))
    session.set_absent(3, 5)
    return session_to_dict(session)


def put(data: dict, dotted: str, value) -> None:
    *path, last = dotted.split(".")
    node = data
    for key in path:
        node = node[int(key)] if isinstance(node, list) else node[key]
    if isinstance(node, list):
        node[int(last)] = value
    else:
        node[last] = value


@FUZZ
@given(key=st.sampled_from(PROJECT_KEYS), value=json_values)
def test_fuzz_the_project_loader(key, value, ledger):
    data = a_project()
    put(data, key, value)
    ledger.tried()
    try:
        session = session_from_dict(json.loads(json.dumps(data)))
    except ValueError:
        return
    assert session.frame_count == len(session.trajectory)


@FUZZ
@given(text=st.text(max_size=300) | st.binary(max_size=300).map(lambda b: b.decode("latin-1")))
def test_fuzz_the_project_file_reader(text, tmp_path_factory, ledger):
    path = tmp_path_factory.mktemp("p") / "x.siamtrack.json"
    path.write_text(text, encoding="utf-8", errors="surrogateescape")
    ledger.tried()
    with pytest.raises(ProjectError):
        load_project(path)


record_values = st.one_of(
    json_values,
    st.lists(st.tuples(st.integers(-5, 12) | st.floats(), json_values), max_size=3).map(
        lambda x: [list(t) for t in x]
    ),
    st.tuples(st.integers(-5, 10**15) | st.floats(), st.integers(-5, 10**15) | st.floats()).map(list),
)


@FUZZ
@given(
    records=st.lists(
        st.dictionaries(
            st.sampled_from(["type", "kind", "t", "frames", "range", "entry"]), record_values, max_size=5
        ),
        max_size=4,
    ),
    cut=st.integers(0, 400),
)
def test_fuzz_journal_replay(records, cut, tmp_path_factory, ledger):
    """A sound header, then any records (and maybe a cut): replay takes the sound prefix and stops."""
    header = {
        "type": "header",
        "version": 1,
        "pid": 1,
        "created": 1.0,
        "project": None,
        "unsaved": True,
        "session": a_project(),
    }
    lines = [json.dumps(header)] + [json.dumps({"type": "edit", **r}) for r in records]
    text = "\n".join(lines) + "\n"
    head = len(lines[0]) + 1
    path = tmp_path_factory.mktemp("j") / "j.jsonl"
    path.write_text(text[: head + cut])
    ledger.tried()
    restored = restore(path)
    assert restored.frame_count == 8
    fresh = AnnotationSession(Path("/v/clip.avi"), 8, (64, 48), "ab" * 32)
    assert replay(path, fresh) <= len(records)
    assert fresh.trajectory == restored.trajectory
    read_info(path)


@FUZZ
@given(
    data=st.binary(max_size=300) | st.text(alphabet="0123456789.,- \tNaNinfe\n", max_size=200).map(str.encode)
)
def test_fuzz_the_ground_truth_reader(data, tmp_path_factory, ledger):
    path = tmp_path_factory.mktemp("gt") / "groundtruth_rect.txt"
    path.write_bytes(data)
    ledger.tried()
    try:
        rows = read_groundtruth(path)
    except ValueError as exc:
        assert "\n" not in str(exc)
        return
    assert rows.shape[1] == 4 and len(rows) >= 1


@FUZZ
@given(
    text=st.text(max_size=40)
    | st.lists(st.floats() | st.integers(), min_size=0, max_size=6).map(lambda v: ",".join(map(str, v)))
)
def test_fuzz_box_parse(text, ledger):
    ledger.tried()
    try:
        box = Box.parse(text)
    except ValueError as exc:
        assert "\n" not in str(exc) or "\n" in text
        return
    assert all(isinstance(v, float) for v in (box.x, box.y, box.w, box.h))


@pytest.mark.parametrize("text", BOX_TEXTS)
def test_every_bad_box_text_is_refused_by_the_cli_in_one_line(text, synthetic_clip, tmp_path, capsys, ledger):
    ledger.tried()
    try:
        box = Box.parse(text)
    except ValueError:
        box = None
    assert box is None or not box.is_valid() or not math.isfinite(box.x)
    with pytest.raises(SystemExit) as info:
        main(
            [
                "track",
                str(synthetic_clip[0]),
                "--box",
                text,
                "--tracker",
                "identity",
                "--out",
                str(tmp_path / "o"),
            ]
        )
    assert info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "--box" in err
