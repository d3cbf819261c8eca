"""Bundled data: the demo clip, its generator, and default weights."""
from pathlib import Path

RESOURCES_DIR = Path(__file__).resolve().parent
DEMO_VIDEO = RESOURCES_DIR / "demo" / "demo.mp4"
DEMO_GROUNDTRUTH = RESOURCES_DIR / "demo" / "demo.txt"
WEIGHTS_DIR = RESOURCES_DIR / "weights"
