"""The benchmark's plumbing: prefetching, stage split and the JSON contract (no timings asserted)."""

from __future__ import annotations

import json
import threading

import pytest

from app.cli import main
from trackers.evaluation.bench import STAGES, run_bench
from trackers.prefetch import Prefetcher


def test_prefetcher_keeps_order_and_times_each_item():
    with Prefetcher(range(50), depth=4) as items:
        assert list(items) == list(range(50))
        assert len(items.decode_seconds) == 50


def test_prefetcher_passes_errors_on():
    def broken():
        yield 1
        raise OSError("disk gone")

    with Prefetcher(broken()) as items, pytest.raises(OSError, match="disk gone"):
        list(items)


def test_prefetcher_close_stops_its_thread_early():
    before = threading.active_count()
    prefetcher = Prefetcher(iter(range(10**9)), depth=2)
    next(iter(prefetcher))
    prefetcher.close()
    assert threading.active_count() == before


def test_bench_json_contract(tmp_path, capsys):
    out = tmp_path / "bench.json"
    assert main(["bench", "--tracker", "identity", "--tracker", "siamfc-3s", "--frames", "4",
                 "--device", "cpu", "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    for name in ("identity", "siamfc-3s"):
        entry = report["trackers"][name]
        assert set(entry) >= {"fps", "ms", "peak_rss_mb", "device"}
        assert set(entry["ms"]) == set(STAGES)
        for stage in STAGES:
            figures = entry["ms"][stage]
            assert set(figures) == {"median", "p95"}
            assert 0 <= figures["median"] <= figures["p95"]
        assert entry["peak_rss_mb"] > 0 and entry["device"] == "cpu"
        assert entry["frames"] == 3 and entry["fps"] > 0
    # SiamFC reports its own split; its network stage is where the time goes
    assert report["trackers"]["siamfc-3s"]["ms"]["network"]["median"] > 0
    assert report["trackers"]["siamfc-3s"]["ms"]["crop"]["median"] > 0
    # the arithmetic it ran in is part of the figures
    assert report["trackers"]["siamfc-3s"]["precision"] in ("fp32", "bf16", "int8")
    assert "siamfc-3s" in capsys.readouterr().out


def test_bench_needs_a_box_for_a_source_without_ground_truth(tmp_path):
    import numpy as np

    from tests.media import write_video

    video = write_video(tmp_path / "v.avi", [np.zeros((48, 64, 3), np.uint8)] * 3)
    with pytest.raises(ValueError, match="--box"):
        run_bench(["identity"], video, None, 3, "cpu")


def test_bench_objects_shares_the_frames_and_batches_siamfc(tmp_path, capsys):
    out = tmp_path / "bench.json"
    args = ["bench", "--tracker", "identity", "--tracker", "siamfc-3s", "--frames", "4", "--objects", "3"]
    assert main([*args, "--device", "cpu", "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["objects"] == 3
    for name, batched in (("identity", False), ("siamfc-3s", True)):
        entry = report["trackers"][name]
        assert entry["objects"] == 3 and entry["batched"] is batched
        assert entry["frames"] == 3 and set(entry["ms"]) == set(STAGES)
    assert "3 objects per frame" in capsys.readouterr().out


def test_spread_boxes_stay_inside_the_frame():
    from trackers.evaluation.bench import spread_boxes
    from trackers.types import Box

    boxes = spread_boxes(Box(1000, 600, 200, 100), 10, (1280, 720))
    assert len(boxes) == 10 and boxes[0] == Box(1000, 600, 200, 100)
    assert all(0 <= b.x <= 1080 and 0 <= b.y <= 620 for b in boxes)
    assert len({(b.x, b.y) for b in boxes}) == 10
