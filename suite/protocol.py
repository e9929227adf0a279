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
"""
from __future__ import annotations

import hashlib
import json
from typing import Any, Mapping

from agents.fields import identity_view
from analysis.protocol_check import PROTOCOL_FIELDS_ORDER, first_difference  # the reader's, re-exported

__all__ = ["protocol_of", "fingerprint", "first_difference", "DEFAULT_SCORE", "PROTOCOL_FIELDS_ORDER"]

#: the score of a run unless its family (or protocol preset) says otherwise
DEFAULT_SCORE = "final evaluation: mean greedy return of the last evaluation's episodes"


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
