"""Replica-stacked networks: R independent copies of a network held as one set of stacked parameters."""
from agents.nn.layers import BatchedConv2d, BatchedLinear
from agents.nn.networks import QNetwork, build_q_network

__all__ = ["BatchedConv2d", "BatchedLinear", "QNetwork", "build_q_network"]
