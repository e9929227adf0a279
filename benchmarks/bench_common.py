"""Settings shared by ``bench_speed.py`` and ``profile_ours.py``: which env, which hyperparameters, and how a
short budget is scaled, so that every contender and the time-split profile run the very same configuration.

Short budgets: a full run spends almost all of its steps after ``learning_starts`` (CartPole 500k steps with
10k learning starts; MinAtar 5M steps with 5k learning starts and epsilon at its end after 100k steps). A speed
run of a few thousand steps with the full values would mostly measure the warm-up. So ``learning_starts`` (and
for MinAtar the epsilon decay) are scaled with the budget, and the same values go to every contender.
"""
from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "benchmarks"
PY = sys.executable
TARGETBENCH = str(Path(PY).with_name("targetbench"))

# The CleanRL dqn.py values. The classic family's defaults already equal them (see `targetbench agents --json`);
# set explicitly so the benchmark stays valid if a default moves.
_CARTPOLE_SET = [
    "hidden_sizes=120,84", "optimizer=adam", "learning_rate=0.00025", "loss=mse", "buffer_size=10000",
    "batch_size=128", "train_frequency=10", "target_period=500", "gamma=0.99",
    "epsilon_schedule=linear", "epsilon_start=1.0", "epsilon_end=0.05", "exploration_fraction=0.5",
    "max_grad_norm=none",
]
# TargetBench's minatar family defaults for dqn (the MinAtar paper's examples/dqn.py), set explicitly too.
_MINATAR_SET = [
    "network=minatar-cnn", "optimizer=rmsprop-centered", "learning_rate=0.00025", "optimizer_eps=0.01",
    "rmsprop_alpha=0.95", "loss=huber", "batch_size=32", "buffer_size=100000", "train_frequency=1",
    "target_period=1000", "gamma=0.99", "epsilon_schedule=linear", "epsilon_start=1.0", "epsilon_end=0.1",
    "max_grad_norm=none",
]


class EnvBench:
    """One benchmark environment: its id for ours, its reference script, and the budget scaling."""

    def __init__(self, key: str, env_id: str, title: str, reference: str, default_steps: int,
                 base_set: list[str]):
        self.key, self.env_id, self.title = key, env_id, title
        self.reference = str(BENCH / reference)
        self.default_steps = default_steps
        self.base_set = base_set

    def scaled(self, steps: int) -> dict[str, int]:
        """Hyperparameters that depend on the budget (identical for every contender)."""
        if self.key == "cartpole":
            # CleanRL's 10k learning starts at >= 50k steps (the bench's default); a fifth of shorter runs.
            return {"learning_starts": min(10_000, steps // 5)}
        # MinAtar: 5k learning starts and a 100k-step epsilon decay in a 5M-step run; here a twentieth and a
        # tenth of the budget, so >= 95% of the steps update every env step, with epsilon at 0.1 for 90%.
        # The 100k replay is cut to the budget: every contender then ends with a full buffer of the same size
        # (ours allocates its whole buffer up front, the numpy baselines touch pages as they fill them, so a
        # 100k buffer that a short run fills 5% would make the RSS columns incomparable).
        return {"learning_starts": min(5000, steps // 20), "epsilon_decay_steps": max(1, min(100_000, steps // 10)),
                "buffer_size": min(100_000, steps)}

    def ours_set(self, steps: int, device: str | None = None) -> list[str]:
        """``--set`` values of ``targetbench run`` for this env and budget (one final evaluation)."""
        sets = list(self.base_set) + [f"{k}={v}" for k, v in self.scaled(steps).items()]
        sets.append(f"train.eval_every={steps}")
        if device:
            sets.append(f"train.device={device}")
        return sets

    def ours_argv(self, seeds: str, steps: int, tmp: Path, device: str | None = None,
                  threads: int = 1) -> list[str]:
        """``targetbench run`` arguments (without the program name), every store in ``tmp``. ``threads`` is
        ``train.threads``: the 16-seed contender gets the two cores the reference's two processes get."""
        argv = ["run", "--agent", "dqn", "--env", self.env_id, "--seed", seeds, "--steps", str(steps), "--json",
                "--quiet", "--tracking-uri", f"sqlite:///{tmp}/m.db", "--results", str(tmp),
                "--checkpoint-dir", str(tmp / "checkpoints")]
        for kv in self.ours_set(steps, device) + ([f"train.threads={threads}"] if threads != 1 else []):
            argv += ["--set", kv]
        return argv

    def reference_cmd(self, seed: int, steps: int, device: str | None = None) -> list[str]:
        cmd = [PY, self.reference, "--seed", str(seed), "--steps", str(steps), "--json"]
        for k, v in self.scaled(steps).items():
            cmd += [f"--{k.replace('_', '-')}", str(v)]
        if device:
            cmd += ["--device", device]
        return cmd


ENVS = {
    "cartpole": EnvBench("cartpole", "CartPole-v1", "CartPole-v1 (MLP 120-84, CleanRL dqn.py settings)",
                         "reference_dqn.py", 50_000, _CARTPOLE_SET),
    "minatar": EnvBench("minatar", "MinAtar/breakout",
                        "MinAtar/breakout (CNN conv16@3x3 + FC128, MinAtar-paper DQN settings)",
                        "reference_dqn_minatar.py", 1000, _MINATAR_SET),
}


def env_bench(key: str) -> EnvBench:
    try:
        return ENVS[key]
    except KeyError:
        raise SystemExit(f"unknown benchmark env {key!r}; allowed: {', '.join(ENVS)}") from None
