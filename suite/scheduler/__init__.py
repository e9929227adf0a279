"""The sweep scheduler: suite files → trials → batched groups → a local process pool or Ray tasks.

Public API::

    from suite.scheduler import run_sweep, load_suite
    summary = run_sweep("smoke", backend="local", workers=2, results_dir=Path("results"))

The suite file schema is documented in :mod:`suite.scheduler.spec`. Names are imported lazily, so that
importing this package (e.g. by the CLI to build its parser) does not import torch.
"""
from __future__ import annotations

from typing import Any

__all__ = ["run_sweep", "load_suite", "parse_suite", "builtin_suites", "SweepSummary", "TrialRecord", "SuiteSpec",
           "VariantSpec"]

_FROM = {"run_sweep": "core", "SweepSummary": "sweep_summary", "TrialRecord": "sweep_summary", "load_suite": "spec",
         "parse_suite": "spec", "builtin_suites": "spec", "SuiteSpec": "spec", "VariantSpec": "spec"}


def __getattr__(name: str) -> Any:
    if name in _FROM:
        import importlib

        return getattr(importlib.import_module(f"suite.scheduler.{_FROM[name]}"), name)
    raise AttributeError(f"module 'suite.scheduler' has no attribute {name!r}")
