"""Test-session settings shared by every test."""
import torch

# The trainer runs CPU work on one torch thread by default (train.threads=1): replicas are bitwise
# independent only then (MKL may split a one-replica matrix product across threads). Tests that call agents
# directly get the same setting, whatever order they run in.
torch.set_num_threads(1)
