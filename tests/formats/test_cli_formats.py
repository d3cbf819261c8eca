"""Every format through ``siamtrack convert`` (``app.cli.main``), in both directions.

Each format is reached from OTB and read back into OTB by the real command line,
with ``--video`` where a format lacks the frame count or size. The boxes must
come back within 0.5 px (formats that round) and absences must stay absent. A
real ground truth from the shared data (skipped without it) goes the same way.
"""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
import pytest

from app.cli import main
from trackers.formats import FORMATS
from trackers.formats import otb as otb_format

ROOT = Path(__file__).resolve().parents[2]
FILE_SUFFIX = {"coco": ".json", "cvat": ".xml", "labelstudio": ".json", "mot": ".txt", "otb": ".txt"}
WIDTH, HEIGHT = 64, 48


def shared_data() -> Path | None:
    for candidate in (os.environ.get("SIAMTRACK_SHARED"), str(ROOT.parent / "shared")):
        if candidate and (Path(candidate) / "data").is_dir():
            return Path(candidate) / "data"
    return None


def out_path(folder: Path, name: str, tag: str) -> Path:
    fmt = FORMATS[name]
    if fmt.layout == "folder":
        return folder / f"{tag}_{name}"
    return folder / f"{tag}_{name}{FILE_SUFFIX.get(name, '.txt')}"


def make_video(folder: Path, count: int) -> Path:
    folder.mkdir()
    for i in range(count):
        cv2.imwrite(str(folder / f"{i + 1:04d}.png"), np.zeros((HEIGHT, WIDTH, 3), np.uint8))
    return folder


def through(name: str, source: Path, video: Path, work: Path, capsys) -> list:
    """OTB ``source`` -> ``name`` -> OTB, by the CLI; the boxes read back."""
    middle = out_path(work, name, "mid")
    back = work / f"back_{name}.txt"
    assert main(["convert", str(source), str(middle), "--to", name, "--video", str(video)]) == 0, (
        capsys.readouterr().err
    )
    assert (
        main(["convert", str(middle), str(back), "--from", name, "--to", "otb", "--video", str(video)]) == 0
    ), capsys.readouterr().err
    return [box for _line, box in otb_format.read_box_lines(back)]


def assert_close(got: list, expected: list, tolerance: float = 0.5) -> None:
    assert len(got) == len(expected)
    for index, (a, b) in enumerate(zip(got, expected)):
        if b is None:
            assert a is None, f"frame {index}: {a} should be absent"
            continue
        assert a is not None, f"frame {index}: lost the box {b}"
        for p, q in zip((a.x, a.y, a.w, a.h), (b.x, b.y, b.w, b.h)):
            assert abs(p - q) <= tolerance, f"frame {index}: {a} != {b}"


@pytest.mark.parametrize("name", list(FORMATS))
def test_every_format_both_ways_through_the_cli(name, tmp_path, capsys):
    source = tmp_path / "groundtruth_rect.txt"
    source.write_text("11,21,30,20\n12.5,21,30,20\nNaN,NaN,NaN,NaN\n14,23,31,21\n")
    video = make_video(tmp_path / "clip", 4)
    got = through(name, source, video, tmp_path, capsys)
    assert_close(got, [b for _n, b in otb_format.read_box_lines(source)], tolerance=1e-6)


@pytest.mark.parametrize("name", list(FORMATS))
def test_a_real_ground_truth_round_trips(name, tmp_path, capsys):
    data = shared_data()
    if data is None:
        pytest.skip("needs the shared data (../shared/data or $SIAMTRACK_SHARED/data)")
    sequence = data / "sequences" / "OTB100_Jogging-1"
    if not (sequence / "groundtruth_rect.txt").is_file():
        pytest.skip(f"{sequence} is not in the shared data")
    expected = [b for _n, b in otb_format.read_box_lines(sequence / "groundtruth_rect.txt")]
    got = through(name, sequence / "groundtruth_rect.txt", sequence / "img", tmp_path, capsys)
    assert_close(got, expected)


def test_coco_export_no_longer_crashes(tmp_path, capsys):
    """Issue 18.1: ``--to coco`` raised AttributeError on every input."""
    source = tmp_path / "groundtruth_rect.txt"
    source.write_text("11,21,30,20\n")
    assert main(["convert", str(source), str(tmp_path / "out.json"), "--to", "coco"]) == 0
    assert "internal error" not in capsys.readouterr().err


def test_an_empty_source_exits_2_with_a_message(tmp_path, capsys):
    """Issue 18.3: a source without boxes is an error, never an empty result."""
    empty = tmp_path / "empty"
    (empty / "labels" / "train").mkdir(parents=True)
    (empty / "data.yaml").write_text("names: [a]\n")
    video = make_video(tmp_path / "clip", 2)
    code = main(["convert", str(empty), str(tmp_path / "o.txt"), "--to", "otb", "--video", str(video)])
    assert code == 2
    assert "no YOLO label files: looked for" in capsys.readouterr().err
    absent = tmp_path / "groundtruth_rect.txt"
    absent.write_text("NaN,NaN,NaN,NaN\n")
    assert main(["convert", str(absent), str(tmp_path / "o.xml"), "--to", "cvat"]) == 2
    assert "holds no boxes (read as OTB" in capsys.readouterr().err
    assert not (tmp_path / "o.xml").exists()


def test_convert_carries_every_object(tmp_path, capsys):
    """Issue 21: a source with several objects is converted whole, through each multi-object format."""
    from trackers.formats import read_tracks

    source = tmp_path / "gt.txt"
    source.write_text("1,4,11,21,30,20,-1,-1,-1,-1\n1,9,1,1,5,5,-1,-1,-1,-1\n2,4,12,21,30,20,-1,-1,-1,-1\n")
    video = make_video(tmp_path / "clip", 2)
    current = source
    for name in [n for n, f in FORMATS.items() if f.multi_track] + ["mot"]:
        nxt = out_path(tmp_path, name, f"step{name}")
        assert main(["convert", str(current), str(nxt), "--to", name, "--video", str(video)]) == 0
        assert "2 objects (ids 4, 9)" in capsys.readouterr().err
        current = nxt
    tracks = read_tracks(current, frame_count=2)
    assert [t.id for t in tracks] == [4, 9]
    assert tracks[0].trajectory[1].box.x == 11 and tracks[1].trajectory[1].box is None


def test_track_to_a_format(tmp_path, capsys):
    """``siamtrack track --to FORMAT`` writes the run as an annotation file of the whole video."""
    from trackers.formats import read_trajectory
    from trackers.trajectory import Origin

    video = tmp_path / "clip"
    video.mkdir()
    for i in range(5):
        frame = np.zeros((HEIGHT, WIDTH, 3), np.uint8)
        frame[10:30, 20:40] = 255
        cv2.imwrite(str(video / f"{i + 1:04d}.png"), frame)
    out = tmp_path / "run.xml"
    args = ["track", str(video), "--box", "20,10,20,20", "--start-frame", "1", "--frames", "3"]
    assert main(args + ["--tracker", "identity", "--out", str(out), "--to", "cvat"]) == 0
    t, _ = read_trajectory(out, "cvat")
    assert t.frame_count == 5 and t.frame_size == (WIDTH, HEIGHT)
    assert t[0].box is None and t[4].box is None  # outside the run: not annotated, written as absent
    assert t[1].origin is Origin.KEYFRAME and t[1].box.x == 20
    assert t[2].origin is Origin.TRACKED and t[3].origin is Origin.TRACKED
    with pytest.raises(SystemExit):
        main(args + ["--out", str(out), "--to", "pascal"])
    assert "unknown format 'pascal'" in capsys.readouterr().err


def test_the_readme_table_names_every_format():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text[text.index("### Annotation formats") :]
    rows = [line.split("|")[1].strip().strip("`") for line in section.splitlines() if line.startswith("| `")]
    assert sorted(rows) == sorted(FORMATS)


def test_a_project_becomes_a_vot_workspace_sequence_in_one_command(tmp_path, capsys):
    """Issue 18.8: ``siamtrack convert clip.siamtrack.json sequences/clip --to vot``."""
    from app.model.project import content_hash, save_project
    from app.model.session import AnnotationSession
    from trackers.formats import vot
    from trackers.trajectory import Entry, Origin, Trajectory
    from trackers.types import Box

    video = make_video(tmp_path / "clip", 3)
    trajectory = Trajectory(
        (Entry(Box(1, 2, 10, 8), Origin.KEYFRAME), Entry(Box(2, 2, 10, 8), Origin.TRACKED, 0.5), None),
        (WIDTH, HEIGHT),
        "car",
    )
    session = AnnotationSession(video, 3, (WIDTH, HEIGHT), content_hash(video), trajectory)
    project = tmp_path / "clip.siamtrack.json"
    save_project(session, project)
    out = tmp_path / "ws" / "sequences" / "clip"
    assert main(["convert", str(project), str(out), "--to", "vot"]) == 0, capsys.readouterr().err
    assert sorted(p.name for p in (out / "color").iterdir()) == [
        "00000001.jpg",
        "00000002.jpg",
        "00000003.jpg",
    ]
    assert (tmp_path / "ws" / "sequences" / "list.txt").read_text() == "clip\n"
    back = vot.read(out)
    assert back[1].box == Box(2, 2, 10, 8) and back[2] == Entry(None) and back.frame_size == (WIDTH, HEIGHT)
    # and to any other format, the video giving what the format lacks
    assert main(["convert", str(project), str(tmp_path / "p.xml"), "--to", "cvat"]) == 0
    assert main(["convert", str(project), str(tmp_path / "p.txt"), "--to", "otb", "--from", "cvat"]) == 2
    assert "leave out --from" in capsys.readouterr().err
