"""``make benchmark``: run a suite (default: ``suite/specs/default.yaml``) through the scheduler into the
embedded store, then summarise it with the analysis package.

The scheduler batches each (agent, env)'s seeds in one worker process (one torch thread) and runs
``--workers`` of them at a time (one per core by default); trials already finished in the store are skipped
and interrupted ones resume from their checkpoints, so rerunning ``make benchmark`` continues where it stopped.
``--backend ray`` runs the groups as Ray tasks (``make benchmark SUITE=atari BACKEND=ray`` on a GPU cluster).
"""
from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

from suite.errors import run_resumable_command

DEFAULT_SUITE = "default"


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--suite", "--spec", dest="suite", default=DEFAULT_SUITE,
                   help="built-in suite name or suite .yaml path (default: default)")
    p.add_argument("--results", type=Path, default=Path("results"))
    p.add_argument("--seeds", default=None, help="override the suite's seeds, e.g. 0,1,2 or 0-9")
    p.add_argument("--steps", type=int, default=None, help="override the suite's env steps per seed")
    p.add_argument("--workers", type=int, default=None, help="groups at a time (default: one per core)")
    p.add_argument("--backend", default="local", choices=["local", "ray"])
    p.add_argument("--tracking-uri", default=None, help="default: sqlite:///RESULTS/mlflow.db")
    p.add_argument("--experiment", default=None, help="MLflow experiment (default: the suite's)")
    p.add_argument("--checkpoint-uri", default=None, help="where checkpoints live (see `targetbench sweep -h`)")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    p.add_argument("--no-figures", action="store_true", help="only results/benchmark.md, not the full analysis")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    return run_resumable_command("benchmark", lambda: _run(args))


if __name__ == "__main__":
    sys.exit(main())
