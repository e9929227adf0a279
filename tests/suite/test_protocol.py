"""The evaluation protocol fingerprint: what it covers, what it leaves out, and the first-difference report."""
from suite.protocol import first_difference, fingerprint, protocol_of
from suite.trial import build_trial


def test_protocol_covers_env_budget_and_evaluation_not_the_agent():
    base = protocol_of(build_trial("dqn", "CartPole-v1", (0,), steps=5000))
    assert base["env_id"] == "CartPole-v1" and base["budget_steps"] == 5000 and base["step_unit"] == "env steps"
    assert base["eval_epsilon"] == 0.001 and "env.max_episode_steps" in base
    # another agent, another learning rate: the same protocol (that is what a comparison compares)
    other = protocol_of(build_trial("isql", "CartPole-v1", (3,), steps=5000, overrides={"learning_rate": "1e-3"}))
    assert fingerprint(other) == fingerprint(base) and first_difference(base, other) is None
    # budget, evaluation ε and an env option each change it, and the first difference names the field
    for over, steps, key in (({}, 50_000, "budget_steps"), ({"eval_epsilon": "0.05"}, 5000, "eval_epsilon"),
                             ({"env.max_episode_steps": "200"}, 5000, "env.max_episode_steps")):
        changed = protocol_of(build_trial("dqn", "CartPole-v1", (0,), steps=steps, overrides=over))
        assert fingerprint(changed) != fingerprint(base)
        assert first_difference(base, changed)[0] == key


def test_first_difference_reports_both_values_in_order():
    a = {"env_id": "A", "budget_steps": 1, "eval_episodes": 10}
    b = {"env_id": "A", "budget_steps": 2, "eval_episodes": 5}
    assert first_difference(a, b) == ("budget_steps", 1, 2)
    assert first_difference(a, {**a, "extra": 1}) == ("extra", None, 1)
    assert first_difference(a, {k: str(v) for k, v in a.items()}) is None  # recorded params are text
