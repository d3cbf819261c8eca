"""One platformdirs call for every per-user folder, always without an app author (issue 18.13)."""

from __future__ import annotations

from pathlib import Path

import platformdirs

from trackers.user_dirs import user_dir


def test_every_folder_asks_without_an_author(monkeypatch, tmp_path):
    calls = []

    def fake(kind):
        def find(name, appauthor=None, **_kw):
            calls.append((kind, name, appauthor))
            return str(tmp_path / kind)

        return find

    for kind in ("config", "data", "cache", "state"):
        monkeypatch.setattr(platformdirs, f"user_{kind}_dir", fake(kind))
    from app.model.frame_cache import default_cache_dir as frame_cache_dir
    from app.model.journal import user_data_dir
    from app.model.settings import settings_path
    from training.crop_cache import default_cache_dir as crop_cache_dir

    assert settings_path() == tmp_path / "config" / "gui.json"
    assert frame_cache_dir() == tmp_path / "cache" / "frames"
    assert crop_cache_dir() == tmp_path / "cache" / "crops"
    assert user_data_dir() == tmp_path / "data"
    assert user_dir("state") == tmp_path / "state"
    assert calls and all(name == "siamtrack" and author is False for _k, name, author in calls)


def test_no_module_calls_platformdirs_itself():
    root = Path(__file__).resolve().parents[1]
    callers = [
        p.relative_to(root).as_posix()
        for package in ("app", "trackers", "training")
        for p in (root / package).rglob("*.py")
        if "platformdirs." in p.read_text(encoding="utf-8")
    ]
    assert callers == ["trackers/user_dirs.py"]
