"""Still photos for synthetic training pairs (issue 16), from Debian packages, with their licences.

    .venv/bin/python tools/fetch_photos.py OUT_FOLDER

Downloads (``apt-get download``, no root needed, nothing installed) the desktop
wallpaper packages that hold photographs and Tux Paint's stamps (photographs of
animals, food, objects on a transparent background), and writes into OUT_FOLDER:

* ``wallpaper-<package>-<name>.jpg``: every wallpaper, the largest size of each
  (Plasma ships one picture at many sizes), downscaled so the longer side is 640,
  and none of plain colour;
* ``stamp-<name>.jpg``: every stamp with an alpha channel (not the letters and signs), composited at a random
  place and size onto a random wallpaper (seeded, so a rerun writes the same files):
  a real object on a real scene, which random rectangles then cut targets from;
* ``SOURCES.txt``: each package, its version and the licences its copyright file names.

These are training data only: nothing of them is committed or shipped. Train with
``python -m training ... --synthetic OUT_FOLDER --synthetic-ratio R``.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from urllib.parse import unquote

import cv2
import numpy as np

WALLPAPERS = ("mate-backgrounds", "ukui-wallpapers", "lomiri-wallpapers-16.04", "lomiri-wallpapers-20.04",
              "plasma-workspace-wallpapers")
STAMPS = "tuxpaint-stamps-default"
SUFFIXES = (".jpg", ".jpeg", ".png", ".webp")
MAX_SIDE = 640
SEED = 16
JPEG = [cv2.IMWRITE_JPEG_QUALITY, 92]
FLAT = 12.0
"""A wallpaper whose grey levels vary less than this (standard deviation) is left out."""
SKIPPED_STAMPS = ("symbols",)
"""Tux Paint's letters, digits and signs: flat drawings, not photographs."""


def fetch(package: str, work: Path) -> tuple[Path, str]:
    """Download and unpack one package; return its root and version."""
    subprocess.run(["apt-get", "download", package], cwd=work, check=True, capture_output=True)
    deb = next(work.glob(f"{package}_*.deb"))
    root = work / package
    subprocess.run(["dpkg-deb", "-x", str(deb), str(root)], check=True)
    return root, unquote(deb.name.split("_")[1])


def licences(root: Path) -> list[str]:
    names: set[str] = set()
    for copyright_file in root.glob("usr/share/doc/*/copyright"):
        text = copyright_file.read_text(errors="replace")
        names.update(m.strip() for m in re.findall(r"^License:\s*(.+)$", text, re.MULTILINE))
    return sorted(names)


def downscale(image: np.ndarray) -> np.ndarray:
    factor = MAX_SIDE / max(image.shape[:2])
    if factor >= 1:
        return image
    size = (round(image.shape[1] * factor), round(image.shape[0] * factor))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)


def _plasma_name(path: Path) -> str | None:
    """The wallpaper's name for a Plasma picture (``<name>/contents/images/WxH.ext``), else None."""
    if path.parent.name == "images" and path.parent.parent.name == "contents":
        return path.parent.parent.parent.name
    return None


def _pixels(path: Path) -> int:
    """Width x height read from a Plasma picture's ``WxH`` file name (0 when it has none)."""
    size = [int(v) for v in re.findall(r"\d+", path.stem)[:2]]
    return size[0] * size[1] if len(size) == 2 else 0


def wallpaper_files(root: Path) -> list[tuple[str, Path]]:
    """``(name, picture)`` for every wallpaper, of a Plasma wallpaper only its largest picture."""
    files = sorted(p for p in root.rglob("*") if p.suffix.lower() in SUFFIXES and p.is_file())
    plasma: dict[str, list[Path]] = {}
    found = []
    for path in files:
        name = _plasma_name(path)
        if name is not None:
            plasma.setdefault(name, []).append(path)
        elif "images_dark" not in path.parts and "screenshot" not in path.name.lower():
            found.append((path.stem, path))
    return found + [(name, max(paths, key=_pixels)) for name, paths in sorted(plasma.items())]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path)
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(SEED)
    sources = []
    scenes: list[np.ndarray] = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for package in WALLPAPERS:
            root, version = fetch(package, work)
            count = 0
            for stem, path in wallpaper_files(root):
                image = cv2.imread(str(path), cv2.IMREAD_COLOR)
                if image is None or min(image.shape[:2]) < 200:
                    continue
                image = downscale(image)
                if cv2.cvtColor(image, cv2.COLOR_BGR2GRAY).std() < FLAT:
                    continue  # a plain colour: no target to cut
                name = re.sub(r"[^A-Za-z0-9._-]+", "_", stem).strip("_")
                cv2.imwrite(str(args.out / f"wallpaper-{package}-{name}.jpg"), image, JPEG)
                scenes.append(image)
                count += 1
            sources.append(f"{package} {version}: {count} wallpapers; licences: {', '.join(licences(root))}")
            print(sources[-1], flush=True)
        root, version = fetch(STAMPS, work)
        count = 0
        for path in sorted(root.rglob("*.png")):
            if any(part in SKIPPED_STAMPS for part in path.parts):
                continue
            stamp = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
            if stamp is None or stamp.ndim != 3 or stamp.shape[2] != 4 or max(stamp.shape[:2]) < 64:
                continue
            scene = scenes[int(rng.integers(len(scenes)))].copy()
            # the stamp covers 15-45 % of the scene's shorter side, somewhere inside it
            side = rng.uniform(0.15, 0.45) * min(scene.shape[:2])
            factor = side / max(stamp.shape[:2])
            size = (max(1, round(stamp.shape[1] * factor)), max(1, round(stamp.shape[0] * factor)))
            small = cv2.resize(stamp, size, interpolation=cv2.INTER_AREA).astype(np.float32)
            y = int(rng.integers(0, scene.shape[0] - size[1] + 1))
            x = int(rng.integers(0, scene.shape[1] - size[0] + 1))
            alpha = small[..., 3:] / 255.0
            region = scene[y:y + size[1], x:x + size[0]].astype(np.float32)
            mixed = alpha * small[..., :3] + (1 - alpha) * region
            scene[y:y + size[1], x:x + size[0]] = mixed.round().astype(np.uint8)
            name = re.sub(r"[^A-Za-z0-9._-]+", "_", f"{path.parent.name}-{path.stem}")
            cv2.imwrite(str(args.out / f"stamp-{name}.jpg"), scene, JPEG)
            count += 1
        sources.append(f"{STAMPS} {version}: {count} stamps on the wallpapers above; "
                       f"licences: {', '.join(licences(root))}")
        print(sources[-1], flush=True)
    (args.out / "SOURCES.txt").write_text(
        "Still photos for synthetic training pairs (tools/fetch_photos.py); Debian bookworm packages:\n"
        + "\n".join(sources) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
