"""TargetBench agents: Q-networks, bootstrap rules, losses, target rules, replay and exploration.

This package knows nothing of environments' implementations, the scheduler or the analysis.

The names below are imported on first use (PEP 562), so that importing a light submodule such as
``agents.family_facts`` (which the environment families import) does not load torch.
"""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from agents.agent import QAgent
    from agents.config import AgentConfig, ConfigError
    from agents.registry import AgentSpec, UnknownAgentError, get_agent, list_agents, register

__all__ = ["QAgent", "AgentConfig", "ConfigError", "AgentSpec", "UnknownAgentError", "get_agent", "list_agents",
           "register"]

_HOME = {"QAgent": "agents.agent", "AgentConfig": "agents.config", "ConfigError": "agents.config",
         "AgentSpec": "agents.registry", "UnknownAgentError": "agents.registry", "get_agent": "agents.registry",
         "list_agents": "agents.registry", "register": "agents.registry"}


def __getattr__(name: str) -> Any:
    if name in _HOME:
        return getattr(importlib.import_module(_HOME[name]), name)
    raise AttributeError(f"module 'agents' has no attribute {name!r}")
