"""Per-seed random streams.

Every random draw of a replica comes from streams derived from that replica's seed alone, so a seed's
results do not depend on which other seeds share its batch.
"""
from __future__ import annotations

import zlib

import numpy as np
import torch

__all__ = ["derive_seed", "numpy_rng", "torch_generator"]


def derive_seed(seed: int, stream: str) -> int:
    """A 63-bit seed for the named stream (``"init"``, ``"explore"``, ``"replay"``, ``"env"`` ...) of ``seed``."""
    key = zlib.crc32(stream.encode())
    return int(np.random.SeedSequence([int(seed), key]).generate_state(2, dtype=np.uint32).view(np.uint64)[0] >> 1)


def numpy_rng(seed: int, stream: str) -> np.random.Generator:
    """A numpy Generator for one stream of one seed."""
    return np.random.Generator(np.random.PCG64(derive_seed(seed, stream)))


def torch_generator(seed: int, stream: str) -> torch.Generator:
    """A CPU torch Generator for one stream of one seed (parameter initialisation draws on the CPU)."""
    g = torch.Generator(device="cpu")
    g.manual_seed(derive_seed(seed, stream))
    return g
