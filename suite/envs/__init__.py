"""Environments for TargetBench: family records, the registry, ``make_env`` and the lockstep :class:`ReplicaEnvs`."""

from suite.envs.family import CostFigures, EnvFamily, EnvOption, VectorBackend, register_family
from suite.envs.families import (
    EnvSpec,
    UnknownEnvError,
    default_env_options,
    family_of,
    get_family,
    get_spec,
    list_envs,
    list_families,
    make_env,
    validate_env_options,
)
from suite.envs.replicas import ReplicaEnvs, StepResult

__all__ = [
    "CostFigures",
    "EnvFamily",
    "EnvOption",
    "EnvSpec",
    "ReplicaEnvs",
    "StepResult",
    "UnknownEnvError",
    "VectorBackend",
    "default_env_options",
    "family_of",
    "get_family",
    "get_spec",
    "list_envs",
    "list_families",
    "make_env",
    "register_family",
    "validate_env_options",
]
