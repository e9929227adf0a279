"""The evaluation protocol of a trial: everything that decides whether two runs' scores are comparable.

Two runs belong in one comparison only if they were trained and scored the same way: the same environment
(id and version) with the same family options (frame skip, sticky actions, full action space, episode cap,
life-loss terminal, reward clipping, ...), the same step unit and budget, the same evaluation (episodes, ε,
cadence, episode cap) and the same score definition. :func:`protocol_of` collects those fields from a resolved
trial; :func:`fingerprint` hashes them into a short tag. Each run records the fields as ``protocol.*`` params and
the hash as the ``protocol`` tag, so the analysis can refuse to mix protocols and name the first field that
differs (:func:`first_difference`, defined with the reader in :mod:`analysis.protocol_check`).

What the agent learns with (its network, optimizer, target rule) is not part of the protocol: that is what a
comparison compares. Env options at their neutral value are left out, as in trial identity, so adding an option
changes no stored run's fingerprint.

A family may also name published protocols (:class:`ProtocolPreset`, selected by its ``protocol`` option, e.g.
``--set env.protocol=dopamine`` on Atari): a preset fixes env options, the training and evaluation settings that
define the published setting, and the score definition. A ``--set`` of a key the preset fixes is accepted only at
the preset's value (anything else is a one-line conflict error); keys the preset only defaults (budget, cadence,
the method's own hyperparameters) are the user's to change, and the budget stays visible in the fingerprint.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any, Mapping

from agents.fields import Field, bad_value, identity_view
from analysis.protocol_check import PROTOCOL_FIELDS_ORDER, first_difference  # the reader's, re-exported

__all__ = ["protocol_of", "fingerprint", "first_difference", "DEFAULT_SCORE", "PROTOCOL_FIELDS_ORDER",
           "NOT_SCORED", "ProtocolPreset"]

#: the score of a run unless its family (or protocol preset) says otherwise
DEFAULT_SCORE = "final evaluation: mean greedy return of the last evaluation's episodes"

#: the value of the evaluation fields of a protocol whose score does not read the evaluations
NOT_SCORED = "not scored"

def protocol_of(trial: Any) -> dict[str, Any]:
    """The protocol fields of a resolved trial (:class:`suite.trial.TrialSpec`), as plain data.

    Keys: ``env_id``, ``family``, ``step_unit``, ``budget_steps`` (per seed, in the step unit), ``eval_every``,
    ``eval_episodes``, ``eval_epsilon``, ``eval_max_steps``, ``score``, and ``env.<option>`` for each family
    option that is part of identity. A family adds or replaces entries through ``EnvFamily.protocol``
    (``protocol(env_id, options) -> mapping``), e.g. Atari's step unit (agent steps of ``frame_skip`` frames) or a
    named protocol's score definition."""
    from suite.envs import get_family

    fam = get_family(trial.family)
    options = {name: opt.field(name) for name, opt in fam.options.items()}
    fields: dict[str, Any] = {
        "env_id": trial.env, "family": trial.family, "step_unit": "env steps",
        "budget_steps": int(trial.train.steps), "eval_every": int(trial.train.eval_every),
        "eval_episodes": int(trial.train.eval_episodes), "eval_epsilon": float(trial.agent_config.eval_epsilon),
        "eval_max_steps": int(trial.train.eval_max_steps), "score": DEFAULT_SCORE}
    fields.update({f"env.{k}": v for k, v in identity_view(dict(trial.env_options), options).items()})
    if fam.protocol is not None:
        fields.update(fam.protocol(trial.env, dict(trial.env_options)))
    return fields


def _canonical(fields: Mapping[str, Any]) -> str:
    return json.dumps({k: fields[k] for k in sorted(fields)}, sort_keys=True, default=str)


def fingerprint(fields: Mapping[str, Any]) -> str:
    """A short hash of the protocol fields (the ``protocol`` tag of a run)."""
    return hashlib.sha256(_canonical({k: str(v) for k, v in fields.items()}).encode()).hexdigest()[:12]


@dataclass(frozen=True)
class ProtocolPreset:
    """A named, published evaluation protocol of one environment family (``env.protocol=NAME``).

    ``env``, ``agent`` and ``train`` are the settings the protocol fixes (env options, agent config fields,
    ``train.`` settings); an explicit ``--set`` of one of them must equal the fixed value. ``agent_defaults`` and
    ``train_defaults`` are the settings it only proposes (the published method's hyperparameters, the budget):
    an explicit ``--set`` replaces them. Agent fields apply to the agents whose config has them (``target_period``
    is DQN's knob, not iS-QL's). ``score`` is the score definition and ``fields`` are further protocol fields
    (:func:`protocol_of`), e.g. the iteration length of a score read from training episodes."""

    name: str
    title: str
    source: str
    score: str
    env: Mapping[str, Any] = field(default_factory=dict)
    agent: Mapping[str, Any] = field(default_factory=dict)
    train: Mapping[str, Any] = field(default_factory=dict)
    agent_defaults: Mapping[str, Any] = field(default_factory=dict)
    train_defaults: Mapping[str, Any] = field(default_factory=dict)
    fields: Mapping[str, Any] = field(default_factory=dict)

    def apply(self, env: Mapping[str, Any], agent: Mapping[str, Any], train: Mapping[str, Any], *,
              agent_fields: Mapping[str, Field], train_fields: Mapping[str, Field]
              ) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
        """The explicit settings (typed env options, agent and ``train.`` overrides as given) with this protocol's
        settings merged in: fixed ones checked against the explicit ones, defaults under them. Raises
        :class:`agents.fields.ConfigError` (one line) for an explicit value that contradicts a fixed one."""
        self._check(env, self.env, "env.", lambda k, v: v)
        self._check(agent, self.agent, "", lambda k, v: agent_fields[k].parse(v, k), agent_fields)
        self._check(train, self.train, "train.", lambda k, v: train_fields[k].parse(v, "train." + k), train_fields)
        mine = {k: v for k, v in {**self.agent_defaults, **self.agent}.items() if k in agent_fields}
        return ({**env, **self.env}, {**mine, **agent}, {**self.train_defaults, **self.train, **train})

    def _check(self, explicit: Mapping[str, Any], fixed: Mapping[str, Any], prefix: str, parse: Any,
               known: Mapping[str, Field] | None = None) -> None:
        for key, raw in explicit.items():
            if key not in fixed or (known is not None and key not in known):
                continue
            value = parse(key, raw)
            if value != fixed[key]:
                raise bad_value(f"{prefix}{key}", value, f"conflicts with env.protocol={self.name}, which fixes it",
                                f"{fixed[key]!r}, or another env.protocol")
