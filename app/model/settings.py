"""The desktop app's own preferences: recent files, last tracker choice, view toggles.

A plain dataclass stored as JSON in the user's config folder (platformdirs), so it
is readable, testable without Qt, and one bad value costs only that value: a
settings file must never stop the app from starting. (Window geometry is kept
here too, hex-encoded, instead of a second store in QSettings.)
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from trackers.formats.writing import write_text_atomic
from trackers.user_dirs import user_dir

APP_NAME = "siamtrack"
RECENT_LIMIT = 10


@dataclass
class AppSettings:
    recent: list[str] = field(default_factory=list)
    """Videos, folders and projects, newest first."""
    tracker: str = "siamfc"
    weights: str = ""
    device: str = "auto"
    step: int = 10
    blend: bool = False
    trail: bool = False
    last_dir: str = ""
    cache_limit_mb: int = 2048
    """Disk the frame cache may use, all videos together (app/model/frame_cache.py); 0 = no cache."""
    geometry: str = ""
    window_state: str = ""

    def add_recent(self, path: Path) -> None:
        text = str(Path(path).resolve())
        self.recent = [text] + [p for p in self.recent if p != text]
        del self.recent[RECENT_LIMIT:]


def settings_path() -> Path:
    return user_dir("config") / "gui.json"


def load_settings(path: Path | None = None) -> AppSettings:
    """The stored settings; defaults for anything missing, unreadable or of the wrong type."""
    path = path or settings_path()
    defaults = AppSettings()
    try:
        data: Any = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return defaults
    if not isinstance(data, dict):
        return defaults
    values: dict[str, Any] = {}
    for f in fields(AppSettings):
        value = data.get(f.name)
        default = getattr(defaults, f.name)
        if f.name == "recent":
            if isinstance(value, list):
                values["recent"] = [v for v in value if isinstance(v, str)][:RECENT_LIMIT]
        elif type(value) is type(default):  # bool is not accepted for int, nor int for bool
            values[f.name] = value
    return AppSettings(**values)


def save_settings(settings: AppSettings, path: Path | None = None) -> None:
    """Write atomically; a failure is not worth more than a lost preference."""
    path = path or settings_path()
    try:
        os.makedirs(path.parent, exist_ok=True)
        write_text_atomic(path, json.dumps(asdict(settings), indent=2) + "\n")
    except (OSError, ValueError):
        pass
