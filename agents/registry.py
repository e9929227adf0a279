"""The agent registry: ``@register("name")`` on an agent class makes it available by name.

Agents from other installed packages are found through the entry-point group ``targetbench.agents``: each
entry point names a module (or object) whose import registers its agents.
"""
from __future__ import annotations

from dataclasses import dataclass
from importlib import metadata
from typing import Callable, TypeVar

__all__ = ["AgentSpec", "UnknownAgentError", "register", "get_agent", "list_agents", "load_entry_points",
           "agent_facts", "METHOD_GROUPS"]

#: the method groups figures arrange agents by (small multiples), in display order
METHOD_GROUPS = ("target-based", "target-free", "gradient tracking", "iterated", "other")

ENTRY_POINT_GROUP = "targetbench.agents"
_REGISTRY: dict[str, "AgentSpec"] = {}
_entry_points_loaded = False

T = TypeVar("T", bound=type)


class UnknownAgentError(ValueError):
    """No agent of that name is registered. The message is one line listing the registered names."""


@dataclass(frozen=True)
class AgentSpec:
    """A registered agent: its name, class, config class and one-line description, and the facts declared with
    it that other layers read by name: the cost of one update relative to DQN's (the scheduler's estimate), its
    colour and marker (the same in every figure), its method group, and ``reading``: for a method implemented from
    our reading of its paper, the anchor of that reading in docs/algorithms.md (``reading-<key>``), None otherwise."""

    name: str
    cls: type
    description: str
    update_cost: float = 1.0
    color: str | None = None
    marker: str | None = None
    group: str = "other"
    reading: str | None = None

    @property
    def config_cls(self) -> type:
        return self.cls.Config


def register(name: str, description: str | None = None, *, update_cost: float = 1.0, color: str | None = None,
             marker: str | None = None, group: str = "other", reading: str | None = None) -> Callable[[T], T]:
    """Class decorator registering an agent under ``name``. The class must define ``Config`` (a config
    dataclass); the description defaults to the first line of the class docstring. The keyword facts are
    described on :class:`AgentSpec` (an agent without a colour gets one from the figures' spare palette)."""
    if group not in METHOD_GROUPS:
        raise ValueError(f"group={group!r} is not valid; allowed: {', '.join(METHOD_GROUPS)}")
    if not update_cost > 0:
        raise ValueError(f"update_cost={update_cost!r} is out of range; allowed: (0, inf)")

    def decorate(cls: T) -> T:
        if name in _REGISTRY and _REGISTRY[name].cls is not cls:
            raise ValueError(f"agent name {name!r} is already registered by {_REGISTRY[name].cls.__qualname__}")
        if not hasattr(cls, "Config"):
            raise TypeError(f"agent {cls.__qualname__} has no Config dataclass")
        doc_lines = (cls.__doc__ or "").strip().splitlines()
        summary = description or (doc_lines[0] if doc_lines else "")
        cls.agent_name = name
        _REGISTRY[name] = AgentSpec(name=name, cls=cls, description=summary.strip(), update_cost=update_cost,
                                    color=color, marker=marker, group=group, reading=reading)
        return cls

    return decorate


def load_entry_points() -> None:
    """Import the built-in agents and every ``targetbench.agents`` entry point (once)."""
    global _entry_points_loaded
    if _entry_points_loaded:
        return
    _entry_points_loaded = True
    import agents.catalog  # noqa: F401  (built-in agents register on import)

    for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
        ep.load()


def list_agents() -> list[AgentSpec]:
    """Every registered agent, in registration order."""
    load_entry_points()
    return list(_REGISTRY.values())


def get_agent(name: str) -> AgentSpec:
    """The agent registered as ``name``; :class:`UnknownAgentError` lists the known names otherwise."""
    load_entry_points()
    if name not in _REGISTRY:
        raise UnknownAgentError(f"unknown agent {name!r}; registered: {', '.join(_REGISTRY)}")
    return _REGISTRY[name]


def agent_facts() -> dict[str, dict[str, object]]:
    """Name → the declared facts of every registered agent as plain data (colour, marker, group, reading,
    update cost), for the layers that must not import agent classes (the analysis takes them as an argument)."""
    return {a.name: {"color": a.color, "marker": a.marker, "group": a.group, "reading": a.reading,
                     "update_cost": a.update_cost} for a in list_agents()}
