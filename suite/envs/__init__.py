"""Environments for TargetBench: registry, ``make_env`` and the lockstep :class:`ReplicaEnvs`."""

from suite.envs.registry import (
    EnvSpec,
    UnknownEnvError,
    default_env_options,
    get_spec,
    list_envs,
    make_env,
    validate_env_options,
)
from suite.envs.replicas import ReplicaEnvs, StepResult

__all__ = [
    "EnvSpec",
    "ReplicaEnvs",
    "StepResult",
    "UnknownEnvError",
    "default_env_options",
    "get_spec",
    "list_envs",
    "make_env",
    "validate_env_options",
]
