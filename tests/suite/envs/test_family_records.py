"""Family records: every agent × family resolves to the very config it resolved to before families became
records (the snapshot was captured from the code before the change), and the record mechanism itself.

After an intended change of a default, regenerate the snapshot:
``PYTHONPATH=. python tests/suite/envs/test_family_records.py --write``.
"""
from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

import numpy as np
import pytest

from agents import list_agents
from agents.family_facts import FamilyFacts
from suite.envs import (
    EnvFamily,
    EnvOption,
    EnvSpec,
    ReplicaEnvs,
    UnknownEnvError,
    default_env_options,
    get_family,
    get_spec,
    list_envs,
    list_families,
    make_env,
    register_family,
    validate_env_options,
)
from suite.envs import family as family_module
from suite.trial import TrainConfig, build_trial

SNAPSHOT = Path(__file__).parent / "data" / "family_records_before.json"
FAMILIES = ["classic", "tabular", "minatar", "atari"]
ENV_IDS = ["CartPole-v1", "Acrobot-v1", "MountainCar-v0", "MinAtar/breakout", "ALE/Pong-v5",
           "tabular/random:10,3,0", "tabular/chain:5"]


def capture() -> dict:
    """What the four built-in records resolve to, in the snapshot's layout."""
    out: dict = {"agents": {}, "train": {}, "facts": {}, "costs": {}, "env_options": {}, "specs": {}}
    for agent in list_agents():
        out["agents"][agent.name] = {f: get_family(f).agent_config(agent.config_cls).to_dict() for f in FAMILIES}
    for f in FAMILIES:
        fam = get_family(f)
        out["train"][f] = dataclasses.asdict(TrainConfig.for_family(f, {}))
        out["facts"][f] = {"network": fam.facts.network, "obs_scale": fam.facts.obs_scale,
                           "frame_stack": fam.facts.frame_stack}
        c = fam.costs
        out["costs"][f] = {"per_step": [c.env_a, c.env_b, c.update_a, c.update_b],
                           "eval_episode_steps": c.eval_episode_steps}
    for env_id in ENV_IDS:
        out["env_options"][env_id] = default_env_options(env_id)
        out["specs"][env_id] = dataclasses.asdict(get_spec(env_id))
    return json.loads(json.dumps(out, sort_keys=True))  # tuples -> lists, as in the file


def test_every_agent_and_family_resolves_as_before():
    before, now = json.loads(SNAPSHOT.read_text()), capture()
    for section in before:
        for key in before[section]:
            assert now[section][key] == before[section][key], (section, key)
    assert set(now["agents"]) == set(before["agents"]), "a new agent: regenerate the snapshot (see docstring)"


def test_build_trial_takes_family_wide_defaults_from_the_record():
    trial = build_trial("dqn", "MinAtar/breakout", (0,))
    assert trial.agent_config.optimizer == "rmsprop-centered" and trial.agent_config.target_period == 1000
    assert trial.train.steps == 5_000_000 and trial.train.eval_every == 100_000


def test_builtin_families_are_registered_in_order_and_own_their_listings():
    import suite.envs.tabular_env  # noqa: F401 - imported first, still listed last

    assert [f.name for f in list_families()][:4] == ["classic", "minatar", "atari", "tabular"]
    for spec in list_envs():
        assert get_family(spec.family).name == spec.family


def test_unknown_family_is_one_line():
    with pytest.raises(ValueError, match="unknown environment family 'nope'; registered: classic, minatar"):
        get_family("nope")


def test_record_validates_itself():
    common = dict(description="x", resolve=lambda env_id: None, options={}, make=lambda env_id, o: None)
    with pytest.raises(ValueError, match="family name 'a/b' is not valid"):
        EnvFamily(name="a/b", **common)
    with pytest.raises(ValueError, match="has facts for 'other'"):
        EnvFamily(name="mine", facts=FamilyFacts("other"), **common)
    assert EnvFamily(name="mine", **common).facts == FamilyFacts("mine")
    with pytest.raises(ValueError, match="agent_defaults key 'learning_rat' is not an AgentConfig field"):
        EnvFamily(name="mine", agent_defaults={"learning_rat": 1e-3}, **common)


def test_a_second_record_under_a_taken_name_is_refused():
    def make(env_id, options):  # noqa: ARG001 - a function from this module, not suite.envs.classic
        raise AssertionError

    clash = EnvFamily(name="classic", description="x", resolve=lambda env_id: None, options={}, make=make)
    with pytest.raises(ValueError, match="'classic' is already registered by suite.envs.classic"):
        register_family(clash)


@pytest.fixture
def coin_family():
    """A family registered with the decorator: a one-state env whose reward is a fair coin."""
    import gymnasium as gym
    from gymnasium import spaces

    class Coin(gym.Env):
        observation_space = spaces.Box(0.0, 1.0, shape=(1,), dtype=np.float32)
        action_space = spaces.Discrete(2)

        def __init__(self, bias: float) -> None:
            self.bias, self.t = bias, 0

        def reset(self, *, seed=None, options=None):
            super().reset(seed=seed)
            self.t = 0
            return np.zeros(1, np.float32), {}

        def step(self, action):
            self.t += 1
            return np.zeros(1, np.float32), float(self.np_random.random() < self.bias), False, self.t >= 5, {}

        def get_state(self):
            return {"t": self.t, "rng": self.np_random.bit_generator.state}

        def set_state(self, data):
            self.t = data["t"]
            self.np_random.bit_generator.state = data["rng"]

    @register_family("coin")
    def coin() -> EnvFamily:
        return EnvFamily(
            name="coin", description="coin flips",
            resolve=lambda env_id: EnvSpec(env_id, "coin", "a coin", 5) if env_id == "Coin-v0" else None,
            listed=(EnvSpec("Coin-v0", "coin", "a coin", 5),), known=("Coin-v0",),
            options={"bias": EnvOption("float", 0.5, lo=0.0, hi=1.0)},
            make=lambda env_id, options: Coin(options["bias"]),
            agent_defaults={"learning_starts": 7}, train_defaults={"steps": 123})

    yield coin
    family_module._FAMILIES.pop("coin")


def test_a_registered_family_works_everywhere(coin_family):
    assert get_spec("Coin-v0").family == "coin" and "Coin-v0" in [s.id for s in list_envs()]
    assert validate_env_options("Coin-v0", {"bias": 1.0}) == {"bias": 1.0}
    with pytest.raises(ValueError, match=r"env.bias=2.0 is out of range; allowed: \[0, 1\]"):
        validate_env_options("Coin-v0", {"bias": 2.0})
    with pytest.raises(UnknownEnvError, match="did you mean 'Coin-v0'.*Coin-v0$"):
        get_spec("Coin-v1")
    env = make_env("Coin-v0", 0, options={"bias": 1.0})
    env.reset()
    assert env.step(0)[1] == 1.0
    trial = build_trial("dqn", "Coin-v0", (0,))
    assert trial.agent_config.learning_starts == 7 and trial.train.steps == 123
    a, b = ReplicaEnvs("Coin-v0", [1, 2]), ReplicaEnvs("Coin-v0", [1, 2])
    a.reset()
    a.step(np.zeros(2, np.int64))
    b.set_state(a.get_state())
    for _ in range(6):
        ra, rb = a.step(np.ones(2, np.int64)), b.step(np.ones(2, np.int64))
        assert np.array_equal(ra.reward, rb.reward) and np.array_equal(ra.truncated, rb.truncated)


def test_a_family_can_ship_reference_scores(tmp_path, coin_family):
    from analysis.normalization import REFERENCE_FILE, normalise, reference_scores
    from suite.envs.families import reference_files

    assert reference_files() == []  # the built-in families' scores are in analysis/reference/scores.csv
    csv = tmp_path / "coin.csv"
    csv.write_text("env,random,reference,kind,source\nCoin-v0,0.5,2.5,measured,test\n"
                   "CartPole-v1,0,1,measured,must not replace the shipped row\n")
    family_module._FAMILIES["coin"] = dataclasses.replace(get_family("coin"), reference_scores=csv)
    assert reference_files() == [csv]
    refs = reference_scores(extra=reference_files())
    assert normalise("Coin-v0", 1.5, refs) == 0.5
    shipped = reference_scores(REFERENCE_FILE)
    assert normalise("CartPole-v1", 100.0, refs) == normalise("CartPole-v1", 100.0, shipped)
    assert len(refs) == len(shipped) + 1



def test_families_of_other_packages_load_through_the_entry_point_group(tmp_path, monkeypatch):
    from importlib import metadata

    from suite.envs import families as registry

    (tmp_path / "tb_plugin_family.py").write_text(
        "from suite.envs import EnvFamily, EnvSpec, register_family\n"
        "register_family(EnvFamily(name='plugged', description='p', options={}, make=lambda env_id, o: None,\n"
        "    resolve=lambda env_id: EnvSpec(env_id, 'plugged', 'p', 1) if env_id == 'Plug-v0' else None))\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    ep = metadata.EntryPoint(name="plugged", value="tb_plugin_family", group=registry.ENTRY_POINT_GROUP)
    asked = []
    monkeypatch.setattr(registry.metadata, "entry_points", lambda group: asked.append(group) or [ep])
    monkeypatch.setattr(registry, "_entry_points_loaded", False)
    try:
        assert get_spec("Plug-v0").family == "plugged"
        assert asked == ["targetbench.envs"] and [f.name for f in list_families()][-1] == "plugged"
    finally:
        family_module._FAMILIES.pop("plugged", None)


if __name__ == "__main__" and "--write" in sys.argv:
    SNAPSHOT.write_text(json.dumps(capture(), indent=1, sort_keys=True) + "\n")
