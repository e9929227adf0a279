"""The README's worked examples are real code: add the agent and train it; add the environment family and train
on it; add the figure and build a report with it."""
import re
from pathlib import Path

import numpy as np
import pytest

from agents import get_agent, list_agents, registry

README = Path(__file__).resolve().parents[1] / "README.md"


def example_code(heading: str = "## Adding an agent") -> str:
    text = README.read_text()
    section = text.split(heading + "\n", 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


@pytest.fixture
def readme_agent():
    namespace: dict = {}
    exec(compile(example_code(), "README.md", "exec"), namespace)
    yield
    registry._REGISTRY.pop("dqn-doubling")  # keep the registry as other tests expect it


def test_readme_agent_example_registers_and_trains(tmp_path, readme_agent):
    assert "dqn-doubling" in [a.name for a in list_agents()]
    spec = get_agent("dqn-doubling")
    cfg = spec.config_cls.for_family("classic", {"first_period": "3", "buffer_size": "32", "batch_size": "4"})
    agent = spec.cls(cfg, obs_shape=(4,), obs_dtype=np.float32, num_actions=2, seeds=[0, 1], family="classic",
                     total_steps=100)
    copies = []
    agent.target_rule.sync = lambda orig=agent.target_rule.sync: copies.append(step) or orig()
    for step in range(1, 40):
        agent.target_rule.on_env_step(step)
    assert copies == [3, 9, 21]

    from suite.trainer import train
    from suite.trial import build_trial
    trial = build_trial("dqn-doubling", "CartPole-v1", (0,), steps=200,
                        overrides={"learning_starts": "50", "buffer_size": "200", "batch_size": "8",
                                   "train.eval_every": "100", "train.eval_episodes": "1"})
    (res,) = train(trial, tracking_uri=f"sqlite:///{tmp_path}/m.db", experiment="t", results_dir=tmp_path,
                   progress=lambda m: None)
    assert res.status == "completed" and res.agent == "dqn-doubling"


@pytest.fixture
def readme_trained_target():
    namespace: dict = {}
    exec(compile(example_code("### A target trained by its own optimizer"), "README.md", "exec"), namespace)
    yield namespace
    registry._REGISTRY.pop("dqn-distilled")  # keep the registry as other tests expect it


def test_readme_trained_target_example_registers_and_trains(tmp_path, readme_trained_target):
    import torch

    from agents.optim import FlatOptimizer
    from agents.replay import Batch

    spec = get_agent("dqn-distilled")
    cfg = spec.config_cls.for_family("classic", {"target_lr": "0.01", "buffer_size": "32", "batch_size": "4",
                                                 "max_grad_norm": "1e-6"})
    agent = spec.cls(cfg, obs_shape=(4,), obs_dtype=np.float32, num_actions=2, seeds=[0, 1], family="classic",
                     total_steps=100)
    rule = agent.target_rule
    assert isinstance(rule.optimizer, FlatOptimizer) and rule.optimizer.kind == "adam" and rule.optimizer.lr == 0.01
    assert agent.parameter_count() == 2 * sum(p[0].numel() for p in agent.online.parameters())
    g = np.random.default_rng(0)
    t = lambda *shape: torch.from_numpy(g.normal(size=shape).astype(np.float32))  # noqa: E731
    batch = Batch(t(2, 4, 4), torch.zeros(2, 4, dtype=torch.int64), t(2, 4), t(2, 4, 4), torch.zeros(2, 4))
    before = [p.detach().clone() for p in rule.target.parameters()]
    metrics = agent.update(batch)
    assert metrics["distill_loss"].shape == (2,) and rule.optimizer.steps == 1
    # Adam's first step moves every weight with a gradient by about the step size, unclipped by max_grad_norm
    moved = max(float((p.detach() - b).abs().max()) for p, b in zip(rule.target.parameters(), before))
    assert moved > 0.5 * 0.01
    assert rule.state_dict()["optimizer"]["steps"] == 1
    with pytest.raises(Exception, match=r"target_lr=0.0 is out of range"):
        spec.config_cls.for_family("classic", {"target_lr": "0"})

    from suite.trainer import train
    from suite.trial import build_trial
    trial = build_trial("dqn-distilled", "CartPole-v1", (0,), steps=200,
                        overrides={"learning_starts": "50", "buffer_size": "200", "batch_size": "8",
                                   "train.eval_every": "100", "train.eval_episodes": "1"})
    (res,) = train(trial, tracking_uri=f"sqlite:///{tmp_path}/m.db", experiment="t", results_dir=tmp_path,
                   progress=lambda m: None)
    assert res.status == "completed" and res.agent == "dqn-distilled"


@pytest.fixture
def readme_family():
    from suite.envs import family

    namespace: dict = {}
    exec(compile(example_code("## Adding an environment family"), "README.md", "exec"), namespace)
    yield namespace
    family._FAMILIES.pop("corridor")  # keep the registry as other tests expect it


def test_readme_family_example_registers_and_trains(tmp_path, readme_family, capsys):
    from suite.cli import main
    from suite.envs import ReplicaEnvs, get_family
    from suite.errors import UsageError
    from suite.trainer import train
    from suite.trial import build_trial

    assert main(["envs"]) == 0
    assert "corridor/N" in capsys.readouterr().out
    with pytest.raises(UsageError, match=r"unknown environment .corridor/99' \(N must be an integer in \[2, 50\]\)"):
        build_trial("dqn", "corridor/99", (0,))
    with pytest.raises(UsageError, match=r"env.slip=2.0 is out of range; allowed: \[0, 1\]"):
        build_trial("dqn", "corridor/8", (0,), overrides={"env.slip": "2"})
    # the family's defaults, and an agent's own per-family knob falls back to its generic default
    assert build_trial("dqn", "corridor/8", (0,)).train.steps == 20_000
    cfg = build_trial("dqn", "corridor/8", (0,)).agent_config
    assert (cfg.learning_starts, cfg.train_frequency, cfg.batch_size, cfg.target_period) == (500, 1, 32, 500)
    assert get_family("corridor").facts.network == "mlp"

    # checkpoints: the env's state round-trips through get_state/set_state
    a, b = ReplicaEnvs("corridor/5", [0, 1]), ReplicaEnvs("corridor/5", [0, 1])
    a.reset()
    a.step(np.ones(2, np.int64))
    b.set_state(a.get_state())
    for _ in range(10):
        assert np.array_equal(a.step(np.ones(2, np.int64)).obs, b.step(np.ones(2, np.int64)).obs)

    trial = build_trial("dqn", "corridor/5", (0, 1), steps=600,
                        overrides={"learning_starts": "100", "env.slip": "0", "train.eval_every": "300",
                                   "train.eval_episodes": "2", "train.eval_max_steps": "50"})
    results = train(trial, tracking_uri=f"sqlite:///{tmp_path}/m.db", experiment="t", results_dir=tmp_path,
                    progress=lambda m: None)
    assert [r.status for r in results] == ["completed", "completed"]


@pytest.fixture
def readme_figure():
    from analysis.sections import unregister_section

    namespace: dict = {}
    exec(compile(example_code("## Adding a figure"), "README.md", "exec"), namespace)
    yield namespace["Outcomes"]
    unregister_section("outcomes")  # keep the report as other tests expect it


def test_readme_figure_example_adds_a_section(tmp_path, readme_figure):
    """The one class of the README adds figures/outcomes.pdf|png and its section right after the
    per-environment one; the other sections and their files are unchanged."""
    from analysis.report import build_report
    from analysis.runs import load_experiment
    from analysis.sections import registered_sections
    from analysis.synthetic import make_store

    names = [s.name for s in registered_sections()]
    assert names[names.index("per_env") + 1] == "outcomes" and names.count("outcomes") == 1
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    make_store(uri, "fig", [{"agent": a, "env": "CartPole-v1", "seed": s, "final": 100.0 + 50 * s,
                             "outcome": "diverged" if (a, s) == ("dqn", 1) else "completed"}
                            for a in ("dqn", "dqn-soft") for s in range(3)], steps=1000, evals=2)
    runs, metrics = load_experiment(uri, "fig", cache_dir=None)
    res = build_report(runs, metrics, tmp_path / "out", reps=100)
    fig_dir = tmp_path / "out" / "figures"
    for ext in ("pdf", "png"):
        assert (fig_dir / f"outcomes.{ext}").stat().st_size > 1000 and fig_dir / f"outcomes.{ext}" in res.figures
    report = res.report.read_text()
    section = ("## Run outcomes\n\nHow the runs of each agent ended (1 diverged, 0 failed and scored as random)."
               "\n\n![outcomes](figures/outcomes.png)\n\n")
    assert section in report and "outcomes" in res.timings
    assert report.index("## Per environment") < report.index("## Run outcomes") < report.index("Timings (s)")
    assert sorted(p.name for p in fig_dir.iterdir()) == sorted(
        f"{n}.{e}" for n in ("aggregates", "profiles", "poi", "sample_efficiency", "per_env", "outcomes")
        for e in ("pdf", "png"))


def readme_commands(heading: str) -> list[list[str]]:
    """The ``targetbench`` commands of the first bash block under ``heading``, without the program name."""
    import shlex

    section = README.read_text().split(heading + "\n", 1)[1]
    block = re.search(r"```bash\n(.*?)```", section, re.S).group(1)
    return [shlex.split(line)[1:] for line in block.splitlines() if line.strip()]


def test_readme_compare_without_rerunning_the_baselines(tmp_path, capsys):
    """The section's commands at a small budget (2 seeds, 1,500 env steps) against the small reference fixture
    (tests/data/reference, made by tests/data/make_reference_fixture.py at that budget): the experiment is analysed
    next to the stored runs of its protocol; a shorter budget is refused, naming it."""
    from suite.cli import main

    reference = README.parent / "tests" / "data" / "reference"
    swap = {"0-9": "0,1", "docs/results": str(reference), "results/mine": str(tmp_path / "mine")}
    run, analyze, seeds, verify = ([swap.get(a, a) for a in cmd]
                                   for cmd in readme_commands("## Compare your agent without rerunning the baselines"))
    assert (run[0], analyze[0], seeds[0], verify[0]) == ("run", "analyze", "seeds", "verify")
    assert main(run + ["--steps", "1500", "--results", str(tmp_path)]) == 0
    assert main(analyze + ["--results", str(tmp_path), "--no-figures", "--reps", "100"]) == 0
    report = (tmp_path / "mine" / "report.md").read_text()
    assert f"Reference runs from {reference}" in report and "compares with the reference's `dqn/ref`" in report
    assert "| dqn-soft | dqn/ref |" in report  # P(mine > the stored dqn runs)
    short = [a if a != "mine" else "short" for a in run]
    assert main(short + ["--steps", "1000", "--results", str(tmp_path)]) == 0
    capsys.readouterr()
    assert main([a if a != "mine" else "short" for a in analyze] + ["--results", str(tmp_path), "--no-figures"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "no reference run has the evaluation protocol of experiment short" in err
    assert "first difference budget_steps: 1000 (experiment short) vs 1500 (reference)" in err
    assert main(seeds) == 0
    out = capsys.readouterr().out
    assert "agt2-dqn vs dqn on Acrobot-v1, CartPole-v1" in out and ("excludes 0.5" in out or "cannot tell" in out)
    # bitwise identity holds only on the processor kind that made the fixture: check the report's form here
    assert main(verify + ["--reference", str(reference), "--quiet"]) in (0, 6)
    lines = capsys.readouterr().out.splitlines()
    assert len([x for x in lines if x.startswith("dqn Acrobot-v1 seed ")]) == 2 and lines[-1].startswith("verify: ")
