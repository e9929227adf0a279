"""TargetBench analysis: reads runs back from the tracking store (never agent internals) and reports on them.

- :mod:`analysis.runs` — ``load_runs`` / ``load_metrics`` / ``load_experiment`` (tidy DataFrames, Parquet cache)
- :mod:`analysis.normalization` — reference scores (``reference/scores.csv``) and the scoring rule
- :mod:`analysis.stats` — IQM / median / mean / optimality gap (rliable's definitions), stratified bootstrap
  (vectorised, or rliable's own: the engine), performance profiles, probability of improvement,
  sample-efficiency curves
- :mod:`analysis.figures`, :mod:`analysis.tables` — figures and tables
- :mod:`analysis.report` — ``report.md``: writes each section (:mod:`analysis.section`: what a section is;
  :mod:`analysis.sections`: the ordered registry and the built-in sections, one class per figure or table)
- :mod:`analysis.record_names` — the names of what a run records (tags, metrics, MLflow system tags), shared
  with the writer in ``suite``
- :mod:`analysis.analyze` — the library behind ``targetbench analyze`` (its command line is :mod:`suite.analyze`);
  :mod:`analysis.summary` — the benchmark's short table
- :mod:`analysis.results` — the reference results in ``docs/results/`` (``make results``, driven by
  ``suite/results.py``)
- :mod:`analysis.protocol_scores` — scores a named protocol reads from training episodes (Dopamine's
  per-iteration returns, the last 100 episodes); :mod:`analysis.reproduction` — published-vs-ours tables

This package imports neither ``suite`` nor ``agents`` (``tests/test_layering.py``).
"""
