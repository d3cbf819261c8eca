"""DSiam and DSiamM (Guo et al., ICCV 2017): SiamFC with online-learned transformations
V and W (eq. 2-8) and elementwise multi-layer fusion (eq. 9)."""

from trackers.dsiam.config import LAYERS, PRESETS, DSiamConfig
from trackers.dsiam.network import ARCHITECTURE, DSiamNet, load_weights
from trackers.dsiam.tracker import DSiamTracker

__all__ = [
    "ARCHITECTURE",
    "LAYERS",
    "PRESETS",
    "DSiamConfig",
    "DSiamNet",
    "DSiamTracker",
    "load_weights",
]
