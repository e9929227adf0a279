"""TargetBench analysis: reads runs back from the tracking store (never agent internals) and reports on them.

- :mod:`analysis.runs` — ``load_runs`` / ``load_metrics`` / ``load_experiment`` (tidy DataFrames, Parquet cache)
- :mod:`analysis.normalization` — reference scores (``reference/scores.csv``) and the scoring rule
- :mod:`analysis.stats` — IQM / median / mean / optimality gap (rliable's definitions), stratified bootstrap
  (vectorised, or rliable's own: the engine), performance profiles, probability of improvement,
  sample-efficiency curves
- :mod:`analysis.figures`, :mod:`analysis.tables` — figures and tables (paper tables with marked best entries)
- :mod:`analysis.styles` — figure styles (default, paper, slides: widths, fonts), saving with TrueType fonts;
  :mod:`analysis.palette` — agents' colours, markers, groups and display order, from the facts declared with the
  agents (passed in as plain data by the suite)
- :mod:`analysis.figure_kinds` — one figure of one kind (the library behind ``targetbench figure``) and the gallery
- :mod:`analysis.report` — ``report.md``: writes each section (:mod:`analysis.section`: what a section is;
  :mod:`analysis.sections`: the ordered registry and the built-in sections, one class per figure or table)
- :mod:`analysis.record_names` — the names of what a run records (tags, metrics, MLflow system tags), shared
  with the writer in ``suite``
- :mod:`analysis.experiment` — the library behind ``targetbench analyze`` (its command line is
  :mod:`suite.analyze`), with reference runs next to the user's (``--reference``);
  :mod:`analysis.summary` — the benchmark's short table
- :mod:`analysis.protocol_check` — runs of different evaluation protocols never share a comparison
- the reference results in ``docs/results/`` (``make results``, driven by ``suite/results.py``):
  :mod:`analysis.run_table` (the per-run data they are derived from), :mod:`analysis.classic_tables` and
  :mod:`analysis.sensitivity_tables` (tables), :mod:`analysis.result_plots` (figures),
  :mod:`analysis.result_files` (the files and the folder's README), :mod:`analysis.readme_block` (the top-level
  README's generated block), :mod:`analysis.reproduction` (published tables against ours)
- :mod:`analysis.seed_count` — how interval widths shrink with the number of seeds (``targetbench seeds``);
  :mod:`analysis.verification` — a rerun against the shipped data (``targetbench verify``)
- :mod:`analysis.protocol_scores` — scores a named protocol reads from training episodes (Dopamine's
  per-iteration returns, the last 100 episodes)

This package imports neither ``suite`` nor ``agents`` (``tests/test_layering.py``).
"""
