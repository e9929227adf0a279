"""Reference-result studies built in stages: what is run next is derived from the per-run data of what ran.

* **Sensitivity, stage 2**: sweeps whose fixed setting is the best value another sweep found in stage 1
  (:class:`DerivedSweep`, e.g. SGT2's η swept at the best β of an AGT2 reading). ``make results
  PART=sensitivity`` runs stage 1 from ``suite/specs/sensitivity-classic.yaml``, exports its runs, builds stage 2
  from them (:func:`stage2_variants`) and runs it into the same experiment.
* **Tuned**: each tracking agent of :data:`TUNED_AGENTS` at its best reading and knob value in the sensitivity
  data, run at the classic protocol (:func:`tuned_variants`); its rows sit next to the defaults in the classic
  table, labelled ``agent/tuned``.

"Best" is a point estimate, the highest IQM of the normalised final score over the study's environments
(:func:`analysis.sensitivity_tables.best_settings`): no bootstrap, so the same per-run data always gives the
same next stage, and a rerun resumes it (its trials are already in the store) instead of starting another.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Mapping, Sequence

import pandas as pd

from suite.errors import UsageError
from suite.scheduler.spec import VariantSpec, stringify

__all__ = ["DerivedSweep", "SENSITIVITY_STAGE2", "TUNED_AGENTS", "TUNED_VARIANT", "SAME_AS", "knob_param",
           "sweeps_of", "stage2_variants", "tuned_variants"]

#: the tracking agents whose best reading joins the classic table
TUNED_AGENTS = ("agt2-dqn", "sgt2-dqn")
TUNED_VARIANT = "tuned"


@dataclass(frozen=True)
class DerivedSweep:
    """A stage-2 sweep of ``agent``'s ``knob`` over ``values`` (variants named ``name`` with ``{value}`` filled
    in), with ``fixed`` overrides, and ``carry`` set to the best value of the stage-1 method ``best_of``."""

    name: str
    sweep: str
    agent: str
    knob: str
    values: tuple[float, ...]
    best_of: str
    carry: str
    fixed: Mapping[str, str] = field(default_factory=dict)


#: the sensitivity study's second stage: SGT2 mutual-tracking in parameter space, η swept with θ⁻ tracking at the
#: best β of AGT2's parameter-space SGD reading (joint-td does not use β: its sweep is in stage 1)
SENSITIVITY_STAGE2: tuple[DerivedSweep, ...] = (
    DerivedSweep(name="eta-p-mt={value}", sweep="eta-p-mt", agent="sgt2-dqn", knob="eta",
                 values=(0.01, 0.032, 0.1, 0.32, 1.0), best_of="agt2-dqn beta-p", carry="beta",
                 fixed={"space": "parameters", "form": "mutual-tracking"}),
)
#: readings that are an existing method under another name: method → that method
SAME_AS: dict[str, str] = {
    "agt2-dqn beta-p": "Polyak averaging (dqn-soft) at rate β per update under another name",
}


def knob_param(key: str) -> str:
    """The param a run records for override ``key``: ``target_period`` → ``agent.target_period``;
    ``train.*`` and ``env.*`` keys are recorded as they are."""
    return key if key.startswith(("train.", "env.")) else f"agent.{key}"


def sweeps_of(variants: Iterable[VariantSpec], agents: Sequence[str]) -> dict[tuple[str, str], tuple[str, str]]:
    """(agent, variant) → (method, knob param) for every variant of ``variants`` that declares a knob, over the
    agents it applies to: what :func:`analysis.run_table.from_frames` records with each run."""
    out = {}
    for v in variants:
        if v.knob is None:
            continue
        for agent in (v.agents if v.agents is not None else agents):
            out[(agent, v.name)] = (f"{agent} {v.sweep or v.knob}", knob_param(v.knob))
    return out


def _best(runs: pd.DataFrame) -> pd.DataFrame:
    from analysis.sensitivity_tables import best_settings

    return best_settings(runs).set_index("method") if len(runs) else pd.DataFrame()


def stage2_variants(stage1_runs: pd.DataFrame, sweeps: Sequence[DerivedSweep] | None = None
                    ) -> tuple[VariantSpec, ...]:
    """The variants of ``sweeps`` (default :data:`SENSITIVITY_STAGE2`) built from stage 1's runs (in
    :func:`analysis.run_table.to_frames`' shape). A sweep whose ``best_of`` method has no scored runs yet is left
    out (stage 1 has not run it)."""
    best = _best(stage1_runs)
    out = []
    for s in SENSITIVITY_STAGE2 if sweeps is None else sweeps:
        if s.best_of not in best.index:
            continue
        carried = stringify(float(best.loc[s.best_of, "best_value"]))
        for value in s.values:
            out.append(VariantSpec(s.name.format(value=stringify(value)),
                                   {**s.fixed, s.carry: carried, s.knob: stringify(value)},
                                   agents=(s.agent,), knob=s.knob, sweep=s.sweep))
    return tuple(out)


def tuned_variants(sensitivity_runs: pd.DataFrame, variants: Iterable[VariantSpec],
                   agents: Sequence[str] = TUNED_AGENTS) -> list[tuple[str, VariantSpec, str, str]]:
    """Per agent of ``agents``: its best (method, knob value) in the sensitivity runs, as ``(agent, variant
    "tuned" with that variant's overrides, method, knob param)``. ``variants``: every sensitivity variant (stage
    1 and 2), whose overrides the best one's are. A one-line :class:`UsageError` when an agent has no sweep in
    the data (the sensitivity part must run first)."""
    best = _best(sensitivity_runs)
    by_name = {(a, v.name): v for v in variants for a in (v.agents if v.agents is not None else agents)}
    out = []
    for agent in agents:
        mine = best[best["agent"] == agent] if len(best) else best
        if mine.empty:
            raise UsageError(f"the tuned part needs the sensitivity study's per-run data for {agent}; allowed: run "
                             "`make results PART=sensitivity` first")
        method = max(mine.index, key=lambda m: (mine.loc[m, "best_iqm"], m))
        row = mine.loc[method]
        source = by_name.get((agent, row["variant"]))
        if source is None:
            raise UsageError(f"the sensitivity data names variant {row['variant']!r} of {agent}, which the "
                             "sensitivity suite does not declare; allowed: the suite's variants")
        out.append((agent, VariantSpec(TUNED_VARIANT, dict(source.overrides), agents=(agent,), knob=source.knob,
                                       sweep=source.sweep), method, knob_param(source.knob or "")))
    return out
