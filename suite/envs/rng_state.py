"""Data-only snapshots of numpy Generators, shared by every family's state save/restore."""

from __future__ import annotations

import copy
from typing import Any

import numpy as np

__all__ = ["generator_from_state", "generator_state"]


def generator_state(gen: np.random.Generator | None) -> dict[str, Any] | None:
    """Data-only snapshot of a numpy Generator (its bit generator's state dict), or None."""
    return None if gen is None else copy.deepcopy(gen.bit_generator.state)


def generator_from_state(state: dict[str, Any] | None) -> np.random.Generator | None:
    """A new Generator continuing exactly from :func:`generator_state` output."""
    if state is None:
        return None
    bit_gen = getattr(np.random, state["bit_generator"])()
    bit_gen.state = copy.deepcopy(state)
    return np.random.Generator(bit_gen)
