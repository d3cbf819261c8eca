"""The one place siamtrack asks platformdirs for its per-user folders.

``appauthor=False`` everywhere: without it platformdirs puts Windows folders under
``<author>\\<app>``, and with the author defaulting to the app name that is
``siamtrack\\siamtrack``. Linux and macOS ignore the author.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

APP_NAME = "siamtrack"


def user_dir(kind: Literal["config", "data", "cache", "state"]) -> Path:
    """The user's ``kind`` folder for siamtrack (not created)."""
    import platformdirs

    find = {
        "config": platformdirs.user_config_dir,
        "data": platformdirs.user_data_dir,
        "cache": platformdirs.user_cache_dir,
        "state": platformdirs.user_state_dir,
    }[kind]
    return Path(find(APP_NAME, appauthor=False))
