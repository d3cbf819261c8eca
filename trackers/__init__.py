"""Qt-free tracking core: data types, the Tracker protocol, the registry and the trackers."""

from trackers.protocol import Tracker, TrackerError
from trackers.registry import TRACKERS, create_tracker
from trackers.trajectory import Entry, Origin, Trajectory
from trackers.types import Box, Frame, ScoreMap, TrackResult, as_frame

__all__ = [
    "TRACKERS",
    "Box",
    "Entry",
    "Origin",
    "Trajectory",
    "Frame",
    "ScoreMap",
    "TrackResult",
    "Tracker",
    "TrackerError",
    "as_frame",
    "create_tracker",
]
