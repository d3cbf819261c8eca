"""One atomic write (issue 19.5): app/model writes files through ``trackers.output``.

The only renames of its own are the ones ``atomic_write`` cannot do, each with a comment
saying why: the journal's checkpoint (the new journal is locked before the rename and stays
open) and its rename aside of a stale journal, and the frame cache's pack (read while it is
written). A new temporary-file-and-rename in app/model fails this test.
"""

from __future__ import annotations

import re
from pathlib import Path

MODEL = Path(__file__).resolve().parents[2] / "app" / "model"

ALLOWED = {"journal.py": 2, "frame_cache.py": 1}
"""os.replace calls that atomic_write cannot replace, per module."""


def test_app_model_renames_only_where_atomic_write_cannot():
    found = {}
    for path in sorted(MODEL.glob("*.py")):
        text = path.read_text(encoding="utf-8")
        count = len(re.findall(r"\bos\.replace\(|\bos\.rename\(|\bmkstemp\(", text))
        if count:
            found[path.name] = count
            assert "atomic_write" in text, f"{path.name} renames files without saying why not atomic_write"
    assert found == ALLOWED


def test_the_frame_cache_index_goes_through_trackers_output():
    import app.model.frame_cache as frame_cache
    import trackers.output

    assert frame_cache.write_text is trackers.output.write_text
