"""What an agent needs to know about an environment family, as plain data.

The suite's family record (``suite/envs/family.py``) fills a :class:`FamilyFacts` and hands it to the agent;
``agents/`` itself knows no family by name (it never imports ``suite/``).
"""
from __future__ import annotations

from dataclasses import dataclass

__all__ = ["FamilyFacts"]


@dataclass(frozen=True)
class FamilyFacts:
    """Facts of an environment family that shape an agent.

    Attributes:
        name: the family's registered name (agents key their own per-family defaults by it).
        network: the Q-network architecture ``network="auto"`` picks (see ``agents/nn/networks.py``).
        obs_scale: observations are multiplied by this before the network (1/255 for 0..255 frames).
        frame_stack: observations are stacks of frames whose last frame is the new one, so replay may keep one
            frame per step (exact, and much smaller).

    The defaults describe a flat-vector family (an MLP on unscaled observations): a bare family name given to an
    agent means these.
    """

    name: str
    network: str = "mlp"
    obs_scale: float = 1.0
    frame_stack: bool = False
