"""The README's worked examples of adding an agent and an environment family are real code: run them, then train
the new agent and train on the new family."""
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
