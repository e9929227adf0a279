"""Named Atari protocols (``env.protocol``): what each fixes, what it leaves to ``--set``, what a run records, and
the life-loss semantics of the protocols that use it."""
from __future__ import annotations

import mlflow
import numpy as np
import pytest

from suite.envs import EnvOption, ReplicaEnvs, get_family, make_env
from suite.envs.atari_protocols import DEFAULT_PROTOCOL, PRESETS
from suite.errors import UsageError
from suite.protocol import NOT_SCORED, fingerprint, first_difference, protocol_of
from suite.trial import build_trial

PONG = "ALE/Pong-v5"
NAMES = sorted(PRESETS)


def trial(protocol=None, agent="dqn", **overrides):
    over = {**({"env.protocol": protocol} if protocol else {}), **overrides}
    return build_trial(agent, PONG, (0,), overrides=over)


def test_the_default_protocol_changes_nothing_and_stays_out_of_trial_identity():
    plain, named = trial(), trial(DEFAULT_PROTOCOL)
    assert named.env_options["protocol"] == DEFAULT_PROTOCOL
    assert named.trial_hash(0) == plain.trial_hash(0) and "protocol" not in named.identity()["env_options"]
    assert named.agent_config == plain.agent_config and named.train == plain.train
    fields = protocol_of(plain)
    assert fields["step_unit"] == "agent steps of 4 frames" and "env.protocol" not in fields


@pytest.mark.parametrize("name", [n for n in NAMES if n != DEFAULT_PROTOCOL])
def test_each_preset_fixes_its_settings_and_has_its_own_fingerprint(name):
    preset, t = PRESETS[name], trial(name)
    assert {k: t.env_options[k] for k in preset.env} == dict(preset.env)
    for key, value in preset.agent.items():
        assert getattr(t.agent_config, key) == value, key
    for key, value in {**preset.train_defaults, **preset.train}.items():
        assert getattr(t.train, key) == value, key
    fields = protocol_of(t)
    assert fields["env.protocol"] == name and fields["score"] == preset.score
    assert first_difference(protocol_of(trial()), fields) is not None
    assert t.trial_hash(0) != trial().trial_hash(0)
    others = {fingerprint(protocol_of(trial(n))) for n in NAMES if n != name}
    assert fingerprint(fields) not in others


def test_an_explicit_setting_may_repeat_a_fixed_one_but_not_contradict_it():
    ok = trial("dopamine", **{"env.noop_max": "0", "learning_starts": "20000", "learning_rate": "1e-4"})
    assert ok.agent_config.learning_rate == 1e-4  # proposed by the preset, replaced by --set
    for key, value, fixed in (("env.noop_max", "30", "0"), ("learning_starts", "1000", "20000"),
                              ("target_period", "10000", "8000")):
        with pytest.raises(UsageError) as err:
            trial("dopamine", **{key: value})
        msg = str(err.value)
        assert "\n" not in msg and msg.startswith(f"{key}=") and "conflicts with env.protocol=dopamine" in msg
        assert f"allowed: {fixed}" in msg
    with pytest.raises(UsageError, match=r"train.eval_episodes=5 conflicts with env.protocol=nature-2015"):
        trial("nature-2015", **{"train.eval_episodes": "5"})
    # the budget is proposed, not fixed: a short run keeps the protocol and shows its budget
    short = build_trial("dqn", PONG, (0,), steps=500, overrides={"env.protocol": "atari-100k"})
    assert protocol_of(short)["budget_steps"] == 500
    with pytest.raises(UsageError, match=r"env.protocol='nope' is not valid; allowed: default \| "):
        trial("nope")


def test_agent_settings_apply_to_the_agents_that_have_them():
    assert trial("dopamine").agent_config.target_period == 8000
    isql = trial("dopamine", agent="isql").agent_config
    assert not hasattr(isql, "target_period") and isql.learning_starts == 20_000


def test_scores_read_from_training_episodes_leave_the_evaluation_out_of_the_fingerprint():
    a, b = trial("dopamine"), trial("dopamine", **{"train.eval_episodes": "1", "train.eval_every": "50000"})
    assert fingerprint(protocol_of(a)) == fingerprint(protocol_of(b))
    assert protocol_of(a)["eval_episodes"] == NOT_SCORED and protocol_of(a)["score_iteration_steps"] == 250_000


def test_choice_option_kind():
    opt = EnvOption("choice", "a", choices=("a", "b"), help="h")
    assert opt.field("k").parse("b") == "b" and opt.field("k").describe()["type"] == "a | b"
    for bad in ({"choices": ()}, {"choices": ("b",)}, {"choices": ("a",), "lo": 0}):
        with pytest.raises(ValueError):
            EnvOption("choice", "a", **bad)
    with pytest.raises(ValueError):
        EnvOption("int", 1, choices=("a",))
    assert get_family("atari").options["protocol"].choices == tuple(PRESETS)


def _lives_and_ends(env, steps):
    obs = env.reset(seed=3)
    ends = []
    rng = np.random.default_rng(0)
    for _ in range(steps):
        _, _, term, trunc, _ = env.step(int(rng.integers(env.action_space.n)))
        if term or trunc:
            ends.append(env.unwrapped.ale.lives())
            env.reset()
    return ends


def test_a_lost_life_ends_the_training_episode_but_not_the_game_and_evaluation_plays_whole_games():
    options = {"terminal_on_life_loss": True, "noop_max": 0, "repeat_action_probability": 0.0}
    train_env = make_env("ALE/Breakout-v5", 0, options=options)
    ends = _lives_and_ends(train_env, 1500)
    # Breakout starts with 5 lives: the episodes end at 4, 3, 2, 1 lives left, then the game is over (0)
    assert ends[:5] == [4, 3, 2, 1, 0]
    eval_env = make_env("ALE/Breakout-v5", 0, eval=True, options=options)
    assert all(lives == 0 for lives in _lives_and_ends(eval_env, 1500))
    train_env.close()
    eval_env.close()


def test_life_loss_state_resumes_exactly():
    options = {"terminal_on_life_loss": True, "noop_max": 0, "max_episode_steps": 400}
    envs = ReplicaEnvs("ALE/Breakout-v5", [0, 1], options=options)
    envs.reset()
    rng = np.random.default_rng(1)
    for _ in range(150):
        envs.step(rng.integers(0, envs.num_actions, 2))
    state = envs.get_state()
    actions = rng.integers(0, envs.num_actions, (200, 2))
    first = [envs.step(a) for a in actions]
    other = ReplicaEnvs("ALE/Breakout-v5", [0, 1], options=options)
    other.set_state(state)
    second = [other.step(a) for a in actions]
    for x, y in zip(first, second, strict=True):
        assert np.array_equal(x.obs, y.obs) and np.array_equal(x.reward, y.reward)
        assert np.array_equal(x.terminated, y.terminated) and x.episodes == y.episodes
    envs.close()
    other.close()


@pytest.mark.parametrize("name", NAMES)
def test_a_short_pong_run_under_each_protocol_records_its_fingerprint(tmp_path, monkeypatch, name):
    """The training loop runs 40 Pong steps under the protocol; evaluation (30 or 100 episodes under the
    evaluation-scored protocols) is stubbed: what is checked is what the run records."""
    import suite.trainer as trainer

    monkeypatch.setattr(trainer, "evaluate", lambda agent, trial, index: np.zeros(len(trial.seeds)))
    t = build_trial("dqn", PONG, (0,), steps=40, overrides={
        "env.protocol": name, "buffer_size": "64", "batch_size": "4", "train.log_every": "20", "train_frequency": "4",
        **({"learning_starts": "8"} if "learning_starts" not in PRESETS[name].agent else {})})
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    (res,) = trainer.train(t, tracking_uri=uri, experiment="p", results_dir=tmp_path, progress=lambda m: None)
    run = mlflow.MlflowClient(uri).get_run(res.run_id)
    fields = protocol_of(t)
    assert run.data.tags["protocol"] == fingerprint(fields)
    assert run.data.params["protocol.score"] == PRESETS[name].score
    assert run.data.params["protocol.step_unit"] == "agent steps of 4 frames"
    assert run.data.params["env.protocol"] == name
    for key, value in PRESETS[name].env.items():
        assert run.data.params[f"env.{key}"] == str(value)


def test_the_cheaper_stack_gives_gymnasiums_frames_and_takes_its_state(monkeypatch):
    """The env without ale-py's per-frame observation and with one copy per frame stack gives the very frames,
    rewards and ends of ale-py's AtariEnv + gymnasium's FrameStackObservation, and states move between them
    (checkpoints written before load)."""
    from ale_py.env import AtariEnv
    from gymnasium.wrappers import FrameStackObservation

    from suite.envs import atari

    def stack(plain: bool) -> ReplicaEnvs:
        if plain:
            monkeypatch.setattr(atari, "_screenless_env_class", lambda: AtariEnv)
            monkeypatch.setattr(atari, "FrameStackObservation", FrameStackObservation)
        else:
            monkeypatch.undo()
        return ReplicaEnvs(PONG, [0, 1], options={"max_episode_steps": 120})

    rng = np.random.default_rng(2)
    actions = rng.integers(0, 6, (300, 2))
    plain, cheap = stack(True), stack(False)
    assert type(cheap._envs[0].unwrapped) is not AtariEnv
    for envs in (plain, cheap):
        envs.reset()
    for a in actions[:150]:
        x, y = plain.step(a), cheap.step(a)
        assert np.array_equal(x.obs, y.obs) and np.array_equal(x.next_obs, y.next_obs)
        assert np.array_equal(x.reward, y.reward) and x.episodes == y.episodes
    cheap.set_state(plain.get_state())  # a state written by the plain stack
    for a in actions[150:]:
        x, y = plain.step(a), cheap.step(a)
        assert np.array_equal(x.obs, y.obs) and np.array_equal(x.reward, y.reward)
    plain.close()
    cheap.close()
