"""TargetBench analysis: reads runs back from the tracking store (never agent internals) and reports on them.

- :mod:`analysis.runs` — ``load_runs`` / ``load_metrics`` / ``load_experiment`` (tidy DataFrames, Parquet cache)
- :mod:`analysis.normalization` — reference scores (``reference/scores.csv``) and the scoring rule
- :mod:`analysis.stats` — IQM / median / mean / optimality gap (rliable's definitions), stratified bootstrap
  (vectorised, or rliable's own: the engine), performance profiles, probability of improvement,
  sample-efficiency curves
- :mod:`analysis.figures`, :mod:`analysis.tables`, :mod:`analysis.report` — figures, tables, ``report.md``
- :mod:`analysis.analyze` — the library behind ``targetbench analyze`` (its command line is :mod:`suite.analyze`);
  :mod:`analysis.summary` — the benchmark's short table

This package imports neither ``suite`` nor ``agents`` (``tests/test_layering.py``).
"""
