"""TargetBench agents: Q-networks, bootstrap rules, losses, target rules, replay and exploration.

This package knows nothing of environments' implementations, the scheduler or the analysis.
"""
from agents.agent import QAgent
from agents.config import AgentConfig, ConfigError
from agents.registry import AgentSpec, UnknownAgentError, get_agent, list_agents, register

__all__ = ["QAgent", "AgentConfig", "ConfigError", "AgentSpec", "UnknownAgentError", "get_agent", "list_agents",
           "register"]
