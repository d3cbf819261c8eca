"""The TraX server: driven by the trax Python client, as the VOT toolkit drives it.

The TraX bindings (``vot-trax``) are not a siamtrack dependency; the protocol tests
skip without them. To run them::

    pip install --target /tmp/trax_site --no-deps vot-trax six
    PYTHONPATH=/tmp/trax_site .venv/bin/pytest tests/toolkits/test_trax.py
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest

from resources.demo_clip import render_sequence
from trackers.evaluation import iou
from trackers.registry import create_tracker
from trackers.toolkits import trax_server
from trackers.toolkits.trax_server import main, read_frame, region_box
from trackers.types import Box

SKIP_REASON = "the TraX bindings are not importable (pip install --target DIR --no-deps vot-trax six)"
REPO = Path(__file__).resolve().parents[2]


# --------------------------------------------------------------------------- without trax


def test_missing_trax_is_a_one_line_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "trax", None)
    assert main(["--tracker", "identity"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "vot-trax" in err, err


def test_unknown_tracker_is_refused_by_the_parser(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--tracker", "no-such-tracker"])
    assert exit_info.value.code == 2
    assert "invalid choice" in capsys.readouterr().err


def test_trax_subcommand_parses() -> None:
    import argparse

    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command")
    trax_server.add_trax_parser(sub)
    args = parser.parse_args(["trax", "--tracker", "cv-csrt", "--device", "cpu"])
    assert (args.command, args.tracker, args.device, args.weights) == ("trax", "cv-csrt", "cpu", None)


class _FakePolygon:
    def __init__(self, points: list[tuple[float, float]]) -> None:
        self.points = points

    def size(self) -> int:
        return len(self.points)

    def get(self, i: int) -> tuple[float, float]:
        return self.points[i]


class _FakeRectangle:
    def bounds(self) -> tuple[float, float, float, float]:
        return (3.0, 4.0, 10.0, 0.0)


def test_region_box_takes_a_polygon_bounding_box_and_refuses_empty_regions() -> None:
    assert region_box(_FakePolygon([(2, 3), (12, 5), (10, 9), (1, 7)])) == Box(1, 3, 11, 6)
    with pytest.raises(Exception, match="positive size"):
        region_box(_FakeRectangle())


# --------------------------------------------------------------------------- with trax


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[Path], list[Box]]:
    folder = tmp_path_factory.mktemp("trax_frames")
    frames, boxes = render_sequence(40, (320, 180), 0)
    paths = []
    for index, frame in enumerate(frames[:12]):
        path = folder / f"{index + 1:08d}.jpg"
        assert cv2.imwrite(str(path), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 95])
        paths.append(path)
    return paths, boxes[:12]


class _Session:
    """Our server as a child process, and a trax client on its stdin/stdout (as vot does)."""

    def __init__(self, trax, tracker: str, log: Path) -> None:
        from trax.client import Client

        site = str(Path(trax.__file__).resolve().parents[1])
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (site, str(REPO), env.get("PYTHONPATH", "")) if p)
        self.log = log.open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "trackers.toolkits.trax_server", "--tracker", tracker, "--device", "cpu"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.log,
            env=env,
            cwd=str(log.parent),
        )
        # vot-trax 4.0.2's Client fails with log=False (a None C callback); the toolkit
        # always passes a callable, and so do we: it receives the non-protocol output.
        self.output: list[str] = []
        self.client = Client(
            stream=(self.process.stdin.fileno(), self.process.stdout.fileno()), log=self.output.append
        )

    def close(self) -> int:
        try:
            self.client.quit()
        except Exception:  # noqa: BLE001 - the server may already have gone
            pass
        try:
            return self.process.wait(timeout=20)
        finally:
            self.log.close()
            for stream in (self.process.stdin, self.process.stdout):
                stream.close()


@pytest.fixture
def session(tmp_path: Path) -> Iterator:
    trax = pytest.importorskip("trax", reason=SKIP_REASON)
    opened: list[_Session] = []

    def start(tracker: str) -> _Session:
        opened.append(_Session(trax, tracker, tmp_path / f"{tracker}.log"))
        return opened[-1]

    yield trax, start
    for s in opened:
        if s.process.poll() is None:
            s.process.kill()
            s.process.wait()


def _send(trax, client, path: Path, box: Box | None = None):
    from trax.image import FileImage

    images = {"color": FileImage.create(str(path))}
    if box is not None:
        objects = [(trax.Rectangle.create(box.x, box.y, box.w, box.h), {})]
        reply, _elapsed = client.initialize(images, objects, {})
    else:
        # objects=[] rather than the default None, which vot-trax 4.0.2 cannot wrap (the
        # toolkit passes [] too).
        reply, _elapsed = client.frame(images, {}, [])
    assert len(reply) == 1
    region, properties = reply[0]
    return Box(*region.bounds()), properties


@pytest.mark.slow
def test_identity_replies_with_the_initial_box(session, clip) -> None:
    trax, start = session
    paths, boxes = clip
    s = start("identity")
    assert s.client.tracker_name == "identity"
    first, properties = _send(trax, s.client, paths[0], boxes[0])
    assert first == boxes[0] and properties["confidence"] == "1.0"
    for path in paths[1:5]:
        box, properties = _send(trax, s.client, path)
        assert box == boxes[0]
        assert float(properties["confidence"]) == 1.0
    assert s.close() == 0


@pytest.mark.slow
def test_csrt_follows_the_target_over_trax(session, clip) -> None:
    trax, start = session
    paths, boxes = clip
    s = start("cv-csrt")
    _send(trax, s.client, paths[0], boxes[0])
    got = [_send(trax, s.client, path) for path in paths[1:]]
    # The same tracker run in-process on the same files gives the same boxes (TraX sends
    # 32-bit floats, hence the tolerance).
    direct = create_tracker("cv-csrt")
    direct.init(read_frame(str(paths[0])), boxes[0])
    expected = np.array([direct.update(read_frame(str(path))).box.as_array() for path in paths[1:]])
    np.testing.assert_allclose(np.array([b.as_array() for b, _ in got]), expected, rtol=1e-6, atol=1e-4)
    # And it follows the target (CSRT keeps its size while the target grows, hence 0.25).
    overlaps = iou(expected, np.array([b.as_array() for b in boxes[1:]]))
    assert overlaps.min() > 0.25, overlaps
    assert all("confidence" in properties for _, properties in got)
    # Re-initialisation (the supervised experiment after a failure) restarts on the new box.
    again, _ = _send(trax, s.client, paths[5], boxes[5])
    assert again == boxes[5]
    assert s.close() == 0


@pytest.mark.slow
def test_an_unreadable_image_ends_the_session_with_the_reason(session, clip, tmp_path: Path) -> None:
    trax, start = session
    paths, boxes = clip
    s = start("identity")
    _send(trax, s.client, paths[0], boxes[0])
    with pytest.raises(trax.TraxException, match="cannot read the image"):
        _send(trax, s.client, tmp_path / "missing.jpg")
    assert s.process.wait(timeout=20) != 0
    s.close()
