"""Building frozen tracker configs from plain mappings (TOML, CLI, checkpoints).

Every tracker has a frozen dataclass with the paper's values as defaults. An
unknown key is an error, never silently dropped: a misspelt ``scale_lr`` must not
fall back to the default without anyone noticing.
"""

from __future__ import annotations

import dataclasses
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
