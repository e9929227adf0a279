"""Which experiment a reading command works on when the user names none (``analyze``, ``push``, ``figure``...).

A store may hold several experiments (``targetbench run`` records into ``targetbench``, a sweep into its suite's
experiment, ``make benchmark`` into ``benchmark-default``). Without ``--experiment``, a command takes the one
experiment that holds runs and says so; with several, or with a name the store does not have, it stops with one
line that lists the experiments holding runs, so the user can pick one.
"""
from __future__ import annotations

import logging
import sys
from typing import Callable

from suite.errors import TrackingError, UsageError

__all__ = ["experiments_with_runs", "choose_experiment"]


def experiments_with_runs(uri: str) -> list[str]:
    """Names of the active experiments of the store at ``uri`` that hold at least one run, by name."""
    import mlflow

    logging.getLogger("mlflow").setLevel(logging.WARNING)
    logging.getLogger("alembic").setLevel(logging.WARNING)
    client = mlflow.MlflowClient(uri)
    try:
        names = []
        for exp in client.search_experiments():
            if client.search_runs([exp.experiment_id], max_results=1):
                names.append(exp.name)
    except Exception as exc:  # noqa: BLE001 - any failure to read the store is one line
        msg = (str(exc).strip().splitlines() or [""])[0][:200]
        raise TrackingError(f"tracking store {uri} cannot be read: {type(exc).__name__}: {msg}") from None
    return sorted(names)


def _listing(names: list[str]) -> str:
    return ", ".join(names) if names else "none (the store holds no runs)"


def choose_experiment(uri: str, given: str | None, command: str,
                      say: Callable[[str], None] = lambda m: print(m, file=sys.stderr)) -> str:
    """The experiment ``command`` reads: ``given`` if the store has it; else the store's only experiment with
    runs (announced through ``say``; a command that may still fail collects the line and prints it once done, so
    that an error stays the only line on stderr). A :class:`UsageError` (one line, listing the experiments holding runs)
    when ``given`` is not in the store, or when none was given and the store holds runs in no or several
    experiments."""
    names = experiments_with_runs(uri)
    if given is not None:
        if given not in names:
            raise UsageError(f"--experiment {given!r} has no runs in {uri}; experiments holding runs: "
                             f"{_listing(names)}")
        return given
    if len(names) == 1:
        say(f"{command}: using experiment {names[0]!r}, the only one holding runs in {uri} "
            "(--experiment to choose)")
        return names[0]
    if not names:
        raise UsageError(f"{command}: no runs in {uri}; run some trials first or pass --tracking-uri")
    raise UsageError(f"{command}: the store holds runs in {len(names)} experiments; pass --experiment with one of: "
                     f"{_listing(names)}")
