"""What the Siamese trackers (SiamFC, SiamRPN, DSiam) share, as pysot's ``SiameseTracker``
holds ``get_subwindow``: creation from a preset, weights and a device; the fast embedding;
the init preamble; the update-before-init guard; the stopwatch; the device crop; the
border clamp.

Each subclass keeps what its paper makes it (scale search, RPN proposals, transforms) and
says how to build, initialise and load its network.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import numpy as np
import torch

from trackers.config import config_from_mapping
from trackers.devices import choose_device
from trackers.geometry import frame_mean_colour
from trackers.inference.crops import FrameCrops
from trackers.inference.embedding import Embedding
from trackers.inference.precision import precision_name, resolve_precision
from trackers.protocol import TrackerError
from trackers.timing import Stopwatch
from trackers.types import Box, Frame, TrackResult
from trackers.weights.loading import load_or_random

T = TypeVar("T", bound="SiameseTracker")
P = TypeVar("P", bound="PhasedSiameseTracker")


class SiameseTracker:
    """Base of the Siamese trackers; subclasses set the class attributes and the hooks."""

    #: the family's name in messages ("SiamFC")
    family: ClassVar[str]
    #: preset name -> config
    presets: ClassVar[Mapping[str, Any]]
    #: the config dataclass
    config_class: ClassVar[type]
    #: the preset ``create`` builds when given none
    default_preset: ClassVar[str]

    def __init__(
        self, config: Any, net: torch.nn.Module, device: torch.device, *, name: str, untrained: bool
    ) -> None:
        self.name = name
        self.config = config
        self.device = device
        self.untrained = untrained
        #: the weights file loaded (None: random weights); ``create`` sets it, and
        #: ``siamtrack eval`` reads its provenance (trackers.weights.provenance)
        self.weights_path: Path | None = None
        self.net = net
        self._dtype = resolve_precision(config.precision, device)
        self._embedding: Embedding | None = None
        self.precision = precision_name(self._dtype)
        self.stopwatch = Stopwatch()
        # None: crop on the device when it is a GPU (FrameCrops); tests force True on a CPU
        self.crop_on_device: bool | None = None

    def _use_embedding(self, embedding: Embedding) -> None:
        """Run the network's embedding as ``embedding`` (folded, bf16 or int8; a test gives
        a double with the same interface). Every subclass calls it once, in ``__init__``."""
        self._embedding = embedding
        self.precision = embedding.precision

    @property
    def embedding(self) -> Embedding:
        assert self._embedding is not None, "a subclass sets its embedding in __init__"
        return self._embedding

    # ----------------------------------------------------------------- building
    @classmethod
    def default_weights(cls) -> Path:
        """Where the family's bundled weights are."""
        raise NotImplementedError

    @classmethod
    def build_net(cls, config: Any) -> torch.nn.Module:
        raise NotImplementedError

    @classmethod
    def init_net(cls, net: torch.nn.Module) -> None:
        """Random weights, for a run without a checkpoint."""
        raise NotImplementedError

    @classmethod
    def load_net(cls, net: torch.nn.Module, path: Path) -> None:
        raise NotImplementedError

    @classmethod
    def loaded(cls, net: torch.nn.Module, config: Mapping[str, Any] | None) -> None:
        """Called after weights were loaded from a checkpoint (not for random weights)."""

    @classmethod
    def create(
        cls: type[T],
        preset: str | None = None,
        *,
        weights: str | Path | None = None,
        device: str = "auto",
        config: Mapping[str, Any] | None = None,
    ) -> T:
        preset = cls.default_preset if preset is None else preset
        if preset not in cls.presets:
            raise TrackerError(f"unknown {cls.family} preset {preset!r}; known: {', '.join(cls.presets)}")
        cfg = config_from_mapping(cls.config_class, config, base=cls.presets[preset])
        torch_device = choose_device(device)
        net = cls.build_net(cfg)
        untrained = load_or_random(
            net,
            weights=weights,
            default_path=cls.default_weights(),
            name=preset,
            init=cls.init_net,
            load=cls.load_net,
        )
        if not untrained:
            cls.loaded(net, config)
        tracker = cls(cfg, net, torch_device, name=preset, untrained=untrained)
        if not untrained:
            tracker.weights_path = Path(weights) if weights is not None else cls.default_weights()
        return tracker

    # ----------------------------------------------------------------- tracking
    def _start(self, frame: Frame, box: Box) -> None:
        """The init preamble: the box checked, the frame's size, the target's centre and
        size, and the mean colour that pads crops leaving the frame (SiamFC section 2.2)."""
        if not box.is_valid():
            raise ValueError(f"the initial box must have a positive size and finite values, got {box}")
        self._frame_size = (frame.shape[1], frame.shape[0])
        self._center = np.array(box.center(), dtype=np.float64)
        self._target_size = np.array([box.w, box.h], dtype=np.float64)
        self._fill = frame_mean_colour(frame)

    def _calibrate(self, search_images: Callable[[], torch.Tensor]) -> None:
        """int8: activation ranges from this video's first search regions."""
        if self.embedding.precision == "int8":
            self.embedding.calibrate(search_images())

    @staticmethod
    def _require_init(state: object) -> None:
        """The update-before-init guard: ``state`` is what init learns (None before)."""
        if state is None:
            raise RuntimeError("update() before init()")

    def _frame_crops(self, frame: Frame) -> FrameCrops:
        """The frame to cut crops from (uploaded once on a GPU, see ``FrameCrops``)."""
        return FrameCrops(frame, self.device, self.crop_on_device)

    def _crop(self, crops: FrameCrops, extents: np.ndarray | float, size: int) -> torch.Tensor:
        """Squares of side ``extents`` around the target's centre, resized to ``size``,
        padded with the mean colour: a batch on the network's device."""
        return crops.squares(*self._center, extents, size, self._fill)

    def _keep_in_frame(self, min_size: np.ndarray | float, max_size: np.ndarray | float) -> Box:
        """The border clamp, one rule for every Siamese tracker: the target's size kept
        within ``[min_size, max_size]`` per side and its centre inside the frame, so a
        target leaving the frame stays at its border instead of running away. Returns the
        box they make."""
        width, height = self._frame_size
        self._target_size = np.clip(self._target_size, min_size, max_size)
        self._center = np.clip(self._center, [0.0, 0.0], [float(width), float(height)])
        return Box.from_center(*self._center, *self._target_size)


class PhasedSiameseTracker(SiameseTracker):
    """A Siamese tracker whose init and update run in phases, so that ``trackers.batch``
    can embed the search regions of several objects as one batch (SiamFC, SiamRPN).

    init = ``prepare`` (no network), int8 calibration on ``first_search_images``, then
    ``learn_exemplar``; update = ``search`` (the crops), the embedding, then ``finish``
    (the features to a box). Subclasses write those five phases and ``_forget_exemplar``.
    """

    @torch.inference_mode()
    def init(self, frame: Frame, box: Box) -> None:
        self.prepare(frame, box)
        self._calibrate(lambda: self.first_search_images(frame))
        self.learn_exemplar(frame)

    @torch.inference_mode()
    def update(self, frame: Frame) -> TrackResult:
        self.stopwatch.start()
        extents, search_images = self.search(frame)
        self.stopwatch.lap("crop")
        return self.finish(extents, self._embed(search_images))

    def spawn(self: P) -> P:
        """A tracker for another object that shares this one's network (and int8 ranges)."""
        twin = copy.copy(self)
        twin.stopwatch = Stopwatch()
        twin._forget_exemplar()
        return twin

    def batch_key(self) -> object:
        """Trackers with the same key (family, network, embedding, search image side) can
        run their search regions as one batch."""
        return (self.family, id(self.net), id(self._embedding), self.config.search_size)

    def _embed(self, images: torch.Tensor) -> torch.Tensor:
        """The embedding of a batch of crops, fp32 out, in the configured precision."""
        return self.embedding(images)

    # ----------------------------------------------------------------- the phases
    def prepare(self, frame: Frame, box: Box) -> None:
        raise NotImplementedError

    def first_search_images(self, frame: Frame) -> torch.Tensor:
        raise NotImplementedError

    def learn_exemplar(self, frame: Frame) -> None:
        raise NotImplementedError

    def search(self, frame: Frame, crops: FrameCrops | None = None) -> tuple[Any, torch.Tensor]:
        raise NotImplementedError

    def finish(self, extents: Any, features: torch.Tensor) -> TrackResult:
        raise NotImplementedError

    def _forget_exemplar(self) -> None:
        """Drop what ``learn_exemplar`` learnt (a spawned twin learns its own)."""
        raise NotImplementedError
