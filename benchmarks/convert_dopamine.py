"""Convert Dopamine's published Atari baseline runs into TargetBench's per-run format.

Input: a folder with Dopamine's ``baselines/atari/data/<game>.json`` files (google/dopamine, Apache-2.0; the
``_CNN``/``_Impala`` variants and the ``.vg.json`` plot specs are skipped). Each file is a list of
``{"Iteration": i, "Value": v, "Agent": name}``: per agent 5 runs x 199 iterations, with no run id; a run is a
consecutive block of iterations 0..198, so the block index is the run (seed) index. ``Value`` is that
iteration's mean training-episode return (1M frames = 250,000 agent steps per iteration, sticky actions).

Output: ``OUT/runs/<agent>.csv.gz`` per converted agent, one row per (run, iteration) with the columns
:data:`COLUMNS`: step = (iteration + 1) x 250,000 agent steps, eval_return = that iteration's mean training
return, and the fingerprint of our ``dopamine`` protocol for the game (``--set env.protocol=dopamine`` at its
50M-step budget). The files are written byte-reproducibly (sorted rows, gzip without a timestamp).

    python benchmarks/convert_dopamine.py DOPAMINE/baselines/atari/data --commit SHA \\
        --out analysis/published/dopamine

Nothing is downloaded: the folder is read as given.
"""
from __future__ import annotations

import argparse
import csv
import gzip
import io
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

#: the per-run format's columns, in order (the reader is ``targetbench analyze --reference``)
COLUMNS = ("experiment", "agent", "variant", "env", "seed", "step", "eval_return", "status", "trial_hash",
           "protocol", "params_sha256", "commit")
EXPERIMENT = "dopamine-baselines"
RUNS, ITERATIONS, ITERATION_STEPS = 5, 199, 250_000
BUDGET_STEPS = 200 * ITERATION_STEPS  # Runner.num_iterations = 200 in Dopamine's configs
#: Dopamine's agent names -> ours
AGENTS = {"DQN": "dopamine-dqn", "Rainbow": "dopamine-rainbow", "C51": "dopamine-c51", "IQN": "dopamine-iqn",
          "Quantile (JAX)": "dopamine-qr-dqn", "DQN (Adam + MSE in JAX)": "dopamine-dqn-adam-mse"}


def game_files(folder: Path) -> list[Path]:
    """The per-game data files of ``folder`` (``<game>.json``), sorted."""
    return sorted(p for p in folder.glob("*.json")
                  if not p.name.endswith(".vg.json") and "_" not in p.stem)


def ale_ids() -> dict[str, str]:
    """Dopamine's game name (``spaceinvaders``) -> our env id (``ALE/SpaceInvaders-v5``), for every ale-py ROM."""
    from suite.envs import get_spec
    from suite.envs.atari import atari_rom_id  # noqa: F401 - checks ale-py is importable with its ROMs
    from ale_py import roms

    out = {}
    for rom in roms.get_all_rom_ids():
        env = f"ALE/{rom.title().replace('_', '')}-v5"
        try:
            get_spec(env)
        except ValueError:  # multi-player-only ROMs have no v5 id
            continue
        out[rom.replace("_", "")] = env
    return out


def dopamine_fingerprint(env: str) -> str:
    """The protocol fingerprint of a run of ``env`` under our ``dopamine`` protocol at Dopamine's budget."""
    from suite.protocol import fingerprint, protocol_of
    from suite.trial import build_trial

    trial = build_trial("dqn", env, (0,), steps=BUDGET_STEPS, overrides={"env.protocol": "dopamine"})
    return fingerprint(protocol_of(trial))


def runs_of(records: list[dict], agent: str, source: str) -> list[list[float]]:
    """The runs of ``agent`` in one file's records: ``RUNS`` lists of ``ITERATIONS`` values, in file order.
    Raises ValueError when the records are not consecutive blocks of iterations 0..198."""
    rows = [r for r in records if r["Agent"] == agent]
    its = [int(r["Iteration"]) for r in rows]
    if its != list(range(ITERATIONS)) * RUNS:
        raise ValueError(f"{source}: agent {agent!r} has {len(rows)} records that are not {RUNS} consecutive runs "
                         f"of iterations 0..{ITERATIONS - 1}")
    values = [float(r["Value"]) for r in rows]
    return [values[k * ITERATIONS:(k + 1) * ITERATIONS] for k in range(RUNS)]


def convert(folder: Path, out: Path, commit: str, agents: list[str]) -> dict[str, Path]:
    """Write ``out/runs/<agent>.csv.gz`` for each Dopamine agent name in ``agents``; returns the paths."""
    ids = ale_ids()
    files = game_files(folder)
    if not files:
        raise SystemExit(f"convert_dopamine: no <game>.json files in {folder}")
    rows: dict[str, list[tuple]] = {a: [] for a in agents}
    for path in files:
        env = ids.get(path.stem)
        if env is None:
            raise SystemExit(f"convert_dopamine: game {path.stem!r} ({path.name}) has no ale-py ROM")
        protocol = dopamine_fingerprint(env)
        records = json.loads(path.read_text())
        for agent in agents:
            for seed, values in enumerate(runs_of(records, agent, path.name)):
                for it, value in enumerate(values):
                    rows[agent].append((EXPERIMENT, AGENTS[agent], "default", env, seed, (it + 1) * ITERATION_STEPS,
                                        value, "completed", "", protocol, "", commit))
    written = {}
    (out / "runs").mkdir(parents=True, exist_ok=True)
    for agent, table in rows.items():
        text = io.StringIO()
        writer = csv.writer(text, lineterminator="\n")
        writer.writerow(COLUMNS)
        writer.writerows(sorted(table, key=lambda r: (r[3], r[4], r[5])))
        path = out / "runs" / f"{AGENTS[agent]}.csv.gz"
        with open(path, "wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0,
                                                    compresslevel=9) as gz:
            gz.write(text.getvalue().encode())
        written[agent] = path
    return written


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("folder", type=Path, help="Dopamine's baselines/atari/data folder (read, never downloaded)")
    p.add_argument("--commit", required=True, help="the google/dopamine commit the files come from")
    p.add_argument("--out", type=Path, default=ROOT / "analysis" / "published" / "dopamine")
    p.add_argument("--agents", default="DQN,Rainbow",
                   help=f"Dopamine agent names, comma-separated (default DQN,Rainbow; known: {', '.join(AGENTS)})")
    args = p.parse_args(argv)
    agents = [a.strip() for a in args.agents.split(",") if a.strip()]
    unknown = [a for a in agents if a not in AGENTS]
    if unknown:
        print(f"convert_dopamine: --agents {unknown[0]!r} is not valid; allowed: {', '.join(AGENTS)}", file=sys.stderr)
        return 2
    for agent, path in convert(args.folder, args.out, args.commit, agents).items():
        print(f"{agent}: {path} ({path.stat().st_size:,} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
