"""The README's worked example of adding an agent is real code: run it, then train the new agent."""
import re
from pathlib import Path

import numpy as np
import pytest

from agents import get_agent, list_agents, registry

README = Path(__file__).resolve().parents[1] / "README.md"


def example_code() -> str:
    text = README.read_text()
    section = text.split("## Adding an agent", 1)[1]
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
