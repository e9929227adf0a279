"""Test-session settings shared by every test."""
import json
import os
import time

import pytest
import torch

# The trainer runs CPU work on one torch thread by default (train.threads=1): replicas are bitwise
# independent only then (MKL may split a one-replica matrix product across threads). Tests that call agents
# directly get the same setting, whatever order they run in.
torch.set_num_threads(1)


@pytest.fixture
def fault_log(request):
    """Record what a fault test tried, for the figures in docs/reliability.md (`make faults`).

    Call ``fault_log(kind=..., **counts)`` e.g. ``fault_log(kind="kill", kills=3, resumes_identical=1,
    points_lost=0)``. When ``$TARGETBENCH_FAULT_REPORT`` names a file, each entry is appended to it as one
    JSON line with the test id and its outcome; otherwise nothing is written.
    """
    entries: list[dict] = []
    yield lambda **fields: entries.append(fields)
    path = os.environ.get("TARGETBENCH_FAULT_REPORT")
    if path and entries:
        rep = getattr(request.node, "rep_call", None)
        passed = bool(rep is not None and rep.passed)
        with open(path, "a") as f:
            for e in entries:
                f.write(json.dumps({"test": request.node.nodeid, "passed": passed, **e}) + "\n")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    # Expose the call phase's outcome to fixtures (fault_log records whether its test passed).
    outcome = yield
    rep = outcome.get_result()
    if rep.when == "call":
        item.rep_call = rep


def pytest_sessionstart(session):
    session.config._targetbench_started = time.monotonic()


def pytest_sessionfinish(session, exitstatus):
    # With $TARGETBENCH_FAULT_REPORT (`make faults`), one line with the run's outcome counts and duration, for the
    # header of tests/fault_summary.py.
    path = os.environ.get("TARGETBENCH_FAULT_REPORT")
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if not path or reporter is None:
        return
    counts = {k: len(reporter.stats.get(k, [])) for k in ("passed", "failed", "error", "skipped")}
    started = getattr(session.config, "_targetbench_started", time.monotonic())
    with open(path, "a") as f:
        f.write(json.dumps({"kind": "_session", "test": "session", **counts,
                            "duration_s": round(time.monotonic() - started, 1)}) + "\n")
