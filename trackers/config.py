"""Building frozen tracker configs from plain mappings (TOML, CLI, checkpoints).

Every tracker has a frozen dataclass with the paper's values as defaults. An
unknown key is an error, never silently dropped: a misspelt ``scale_lr`` must not
fall back to the default without anyone noticing. Nor is a value that makes no
sense: each config checks every numeric field's range in ``__post_init__``
(``check_ranges``), so ``--set total_stride=0`` or ``context=nan`` is a one-line
error naming the field, not a box that never moves.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any, TypeVar

T = TypeVar("T")


def config_from_mapping(cls: type[T], values: Mapping[str, Any] | None, base: T | None = None) -> T:
    """``cls`` with ``values`` applied over ``base`` (or the defaults); unknown keys raise."""
    known = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    values = dict(values or {})
    unknown = sorted(set(values) - known)
    if unknown:
        raise ValueError(
            f"unknown {cls.__name__} key(s): {', '.join(unknown)}; known keys: {', '.join(sorted(known))}"
        )
    if base is None:
        return cls(**values)
    return dataclasses.replace(base, **values)  # type: ignore[type-var]


def config_to_dict(config: Any) -> dict[str, Any]:
    return dataclasses.asdict(config)


MAX_CROP = 1024
"""Largest exemplar or search crop side in pixels: the networks were made for 127 and 255,
and a search crop of 100,000 asked for 30 GB."""


@dataclasses.dataclass(frozen=True)
class Range:
    """The values a numeric config field may take: finite, within ``low``..``high``."""

    low: float = -math.inf
    high: float = math.inf
    integer: bool = False
    low_open: bool = False
    high_open: bool = False

    def describe(self) -> str:
        left = "(" if self.low_open or self.low == -math.inf else "["
        right = ")" if self.high_open or self.high == math.inf else "]"
        return f"{left}{self.low:g}, {self.high:g}{right}"

    def holds(self, value: float) -> bool:
        above = value > self.low if self.low_open else value >= self.low
        below = value < self.high if self.high_open else value <= self.high
        return math.isfinite(value) and above and below


def check_ranges(config: Any, ranges: Mapping[str, Range]) -> None:
    """Raise ValueError naming the first field of ``config`` outside its range (or not a number).

    Whole-number fields given as integral floats (``127.0`` from TOML) are stored as ints."""
    owner = type(config).__name__
    for name, rule in ranges.items():
        value = getattr(config, name)
        what = "a whole number" if rule.integer else "a number"
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"{owner}.{name} must be {what}, got {value!r}")
        if not rule.holds(float(value)):
            raise ValueError(f"{owner}.{name} must be a finite number in {rule.describe()}, got {value!r}")
        if rule.integer:
            if not float(value).is_integer():
                raise ValueError(f"{owner}.{name} must be a whole number, got {value!r}")
            object.__setattr__(config, name, int(value))


def score_cells(config: Any) -> int:
    """The side of the score map a config's crops give (SiamFC section 2.2: the exemplar's
    features slid over the search image's, one cell per ``total_stride`` pixels; 17 for 127 /
    255 / 8)."""
    return (config.search_size - config.exemplar_size) // config.total_stride + 1


SEARCH_RANGES: dict[str, Range] = {
    # 87: the receptive field of the AlexNet every one of them embeds with (one feature cell)
    "exemplar_size": Range(87, MAX_CROP, integer=True),
    "search_size": Range(87, MAX_CROP, integer=True),
    "context": Range(0.0, 10.0, low_open=True),
    "total_stride": Range(1, 64, integer=True),
    "window_influence": Range(0.0, 1.0),
}
"""The crop and search fields every Siamese tracker's config shares."""
