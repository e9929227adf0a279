"""The settings of a tabular Q-learning run (``targetbench convergence``), as one typed config.

Every setting is a field declared with :func:`agents.fields.spec` and checked on construction: a bad value is a
:class:`~agents.fields.ConfigError` (a ``ValueError``) with one line naming it and what is allowed. The target rule's
knobs are fields too; a rule reads the ones its registry entry names (:mod:`agents.target_registry`), and every
knob is checked whatever the rule, so a bad value is rejected even where the chosen rule ignores it.
"""
from __future__ import annotations

import typing
from dataclasses import dataclass
from typing import Literal

from agents.fields import fields_of, spec
from agents.target_registry import TargetInit, Tracking

__all__ = ["TabularSettings", "SAMPLING_MODES", "STEP_SIZES", "Sampling", "StepSizeKind"]

Sampling = Literal["sync", "trajectory"]
StepSizeKind = Literal["rescaled-linear", "polynomial", "constant"]
SAMPLING_MODES: tuple[str, ...] = typing.get_args(Sampling)
STEP_SIZES: tuple[str, ...] = typing.get_args(StepSizeKind)


@dataclass(frozen=True)
class TabularSettings:
    """How a tabular run samples, steps and moves its target (see :func:`agents.tabular.run_tabular`)."""

    steps: int = spec(1, "steps (sync: sweeps over every pair; trajectory: transitions per run)", min=1)
    runs: int = spec(1, "independent runs, each from its own stream spawned from the seed", min=1)
    sampling: Sampling = spec("sync", "sync: every (s, a) pair each step (the generative-model setting); "
                                      "trajectory: epsilon-greedy behaviour with restarts")
    step_size: StepSizeKind = spec("rescaled-linear", "step-size schedule in n, the pair's earlier updates: "
                                   "1/(1+(1-gamma)n), 1/(1+n)^omega or a constant alpha")
    omega: float = spec(0.8, "exponent of the polynomial step size (Robbins-Monro)", min=0.5, max=1.0,
                        min_exclusive=True)
    alpha: float = spec(0.1, "the constant step size (does not converge; for ablations)", min=0.0, max=1.0,
                        min_exclusive=True)
    period: int = spec(100, "hard: target period C in steps", min=1)
    tau: float = spec(0.01, "soft: Polyak rate of the whole target table per step", min=0.0, max=1.0,
                      min_exclusive=True)
    beta: float = spec(0.1, "agt2, sgt2-mutual: target step size (mixes two tables, so at most 1)", min=0.0,
                       max=1.0, min_exclusive=True)
    eta: float = spec(0.5, "sgt2, sgt2-mutual: coupling of the two tables", min=0.0)
    track: Tracking = spec("state", "agt2, sgt2-mutual: the target entries the tracking step moves: every action "
                                    "of the visited state, or the visited pair")
    target_init: TargetInit = spec("independent", "sgt2, sgt2-mutual: the target table starts as an independent "
                                                  "random draw or a copy of the online table")
    epsilon: float = spec(0.1, "trajectory exploration rate (1 = uniform random actions)", min=0.0, max=1.0)
    restart_prob: float = spec(0.01, "trajectory: per-step probability of restarting at a uniform state",
                               min=0.0, max=1.0)
    log_points: int = spec(50, "about how many log-spaced steps the errors are recorded at", min=1)

    def __post_init__(self) -> None:
        for name, field in fields_of(type(self)).items():  # type, choices and range; ints become floats
            object.__setattr__(self, name, field.check(getattr(self, name)))
