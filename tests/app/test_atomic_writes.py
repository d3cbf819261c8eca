"""One atomic write (issue 19.5): the core writes files through ``trackers.output``.

The only renames of its own are the ones ``atomic_write`` cannot do, each with a comment
saying why: the journal's checkpoint (the new journal is locked before the rename and stays
open) and its rename aside of a stale journal, and the frame cache's pack (read while it is
written); ``atomic_write`` itself; and the two folder swaps (a crop-cache entry, an exported
frame folder). A new temporary-file-and-rename in app/model, trackers/ or training/ fails
this test (a ``Path.replace`` of a temporary file included: the teacher's labels had one).
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MODEL = ROOT / "app" / "model"
CORE = (MODEL, ROOT / "trackers", ROOT / "training")

ALLOWED = {"app/model/journal.py": 2, "app/model/frame_cache.py": 1, "trackers/output.py": 2,
           "trackers/formats/writing.py": 3, "training/crop_cache.py": 1}
"""os.replace calls that atomic_write cannot replace, per module."""


RENAME = re.compile(r"\bos\.replace\(|\bos\.rename\(|\bmkstemp\(|\btmp\w*\.(?:replace|rename)\(")


def test_the_core_renames_only_where_atomic_write_cannot():
    found = {}
    for folder in CORE:
        for path in sorted(folder.rglob("*.py")):
            text = path.read_text(encoding="utf-8")
            count = len(RENAME.findall(text))
            if count:
                name = path.relative_to(ROOT).as_posix()
                found[name] = count
                assert "atomic_write" in text or "temporary" in text or "rename" in text, \
                    f"{name} renames files without saying why not atomic_write"
    assert found == ALLOWED


def test_the_frame_cache_index_goes_through_trackers_output():
    import app.model.frame_cache as frame_cache
    import trackers.output

    assert frame_cache.write_text is trackers.output.write_text
