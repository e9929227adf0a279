"""``make benchmark``: run the default benchmark spec into the embedded store, then summarise it.

Each agent's seeds train batched in one process; ``--workers`` such processes run at a time (one per core
by default, each with one torch thread). The summary is read back from MLflow by the analysis package.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import yaml

from agents import list_agents
from suite.errors import UsageError
from suite.tracking import default_tracking_uri, ensure_store

DEFAULT_SPEC = Path(__file__).parent / "specs" / "default.yaml"
_KEYS = {"name", "env", "agents", "seeds", "steps", "overrides", "agent_overrides"}


def load_spec(path: Path) -> dict[str, Any]:
    """Load and check a benchmark spec (safe YAML loader; unknown keys are errors)."""
    try:
        spec = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise UsageError(f"benchmark spec {path} cannot be read: {str(exc).splitlines()[0]}") from None
    if not isinstance(spec, dict) or not _KEYS >= set(spec) or "env" not in spec:
        raise UsageError(f"benchmark spec {path} must be a mapping with keys {sorted(_KEYS)} (env required)")
    return spec


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--spec", type=Path, default=DEFAULT_SPEC)
    p.add_argument("--results", type=Path, default=Path("results"))
    p.add_argument("--seeds", default=None, help="override the spec's seeds, e.g. 0,1,2")
    p.add_argument("--steps", type=int, default=None, help="override the spec's env steps per seed")
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    p.add_argument("--experiment", default=None, help="MLflow experiment (default: benchmark-<spec name>)")
    args = p.parse_args(argv)

    spec = load_spec(args.spec)
    agents = [a.name for a in list_agents()] if spec.get("agents", "all") == "all" else list(spec["agents"])
    seeds = args.seeds or ",".join(str(s) for s in spec.get("seeds", [0]))
    steps = args.steps or int(spec.get("steps", 50_000))
    experiment = args.experiment or f"benchmark-{spec.get('name', 'default')}"
    uri = default_tracking_uri(args.results)
    ensure_store(uri)  # once, before the workers open it
    def run_agent(agent: str) -> tuple[str, int, float, str]:
        settings = {**(spec.get("overrides") or {}), **((spec.get("agent_overrides") or {}).get(agent) or {})}
        sets = [x for k, v in settings.items() for x in ("--set", f"{k}={v}")]
        cmd = [sys.executable, "-m", "suite", "run", "--agent", agent, "--env", spec["env"], "--seed", seeds,
               "--steps", str(steps), *sets, "--tracking-uri", uri, "--experiment", experiment,
               "--results", str(args.results), "--json", "--quiet"]
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True)
        wall = time.perf_counter() - t0
        finals = [json.loads(line)["final_eval_return"] for line in proc.stdout.splitlines() if line.startswith("{")]
        note = ", ".join(f"{f:.0f}" for f in finals) if proc.returncode == 0 else proc.stderr.strip()[-300:]
        print(f"  {agent:<14} {wall:6.0f} s  final eval returns: {note}", flush=True)
        return agent, proc.returncode, wall, note

    print(f"benchmark {spec.get('name')}: {len(agents)} agents x seeds {seeds} on {spec['env']}, {steps} steps, "
          f"{args.workers} workers -> {uri} (experiment {experiment})", flush=True)
    t0 = time.perf_counter()
    with ThreadPoolExecutor(max_workers=args.workers) as pool:
        outcomes = list(pool.map(run_agent, agents))
    total = time.perf_counter() - t0

    from analysis.summary import summarise, to_markdown
    from analysis.runs import load_runs
    table = summarise(load_runs(uri, experiment))
    text = to_markdown(table, f"{experiment}: {spec['env']}, {steps} env steps per seed, seeds {seeds}")
    text += f"\nWall time of the whole benchmark: {total / 60:.1f} min with {args.workers} workers.\n"
    out = args.results / "benchmark.md"
    out.write_text(text)
    print(text)
    print(f"wrote {out}")
    failed = [a for a, code, _, _ in outcomes if code != 0]
    if failed:
        print(f"failed agents: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
