"""The README's Layout section names every module and package of the tree (issue 19: the
layout a newcomer reads must match the tree). A new module fails this test until the
README says what it is for."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FOLDERS = (
    "trackers", "trackers/formats", "trackers/evaluation", "trackers/weights", "trackers/inference",
    "trackers/toolkits", "training", "app", "app/cli", "app/model", "app/qt", "tools",
)


def layout_text() -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    start = text.index("## Layout")
    return text[start : text.index("\n## ", start + 1)]


def names_in(folder: Path) -> set[str]:
    names = set()
    for entry in folder.iterdir():
        if entry.name.startswith(("_", ".")) or entry.name == "py.typed":
            continue
        if entry.is_dir() and (entry / "__init__.py").is_file() or entry.is_dir() and folder.name == "tools":
            names.add(entry.name)
        elif entry.suffix in (".py", ".sh"):
            names.add(entry.stem)
    return names


def test_the_layout_section_names_every_module():
    words = set(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", layout_text()))
    missing = {
        f"{folder}/{name}" for folder in FOLDERS for name in names_in(ROOT / folder) if name not in words
    }
    assert not missing, f"README.md's Layout section does not name: {sorted(missing)}"
