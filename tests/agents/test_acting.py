"""Acting skips the greedy forward pass when every replica explores, without changing any action."""
import numpy as np
import pytest

from agents import get_agent
from agents.exploration import EpsilonGreedy


@pytest.mark.parametrize("seeds", [(0, 1, 2), (5,)])  # one replica takes a python-float path
def test_choose_equals_select_and_calls_greedy_only_when_needed(seeds):
    lazy = EpsilonGreedy([np.random.default_rng(s) for s in seeds], 4)
    eager = EpsilonGreedy([np.random.default_rng(s) for s in seeds], 4)
    calls = {eps: 0 for eps in (1.0, 0.9, 0.5, 0.0)}
    for t in range(3000):
        eps = list(calls)[t % 4]
        greedy = np.array([(t + i) % 4 for i in range(len(seeds))])

        def fn():
            calls[eps] += 1
            return greedy

        got, want = lazy.choose(fn, eps), eager.select(greedy, eps)
        assert got.dtype == want.dtype == np.int64 and np.array_equal(got, want)
    # ε = 1: every replica explores, the network is never needed; ε = 0: always needed.
    assert calls[1.0] == 0 and calls[0.0] == 750 and 0 < calls[0.9] < calls[0.5] < 750


def test_agent_act_matches_explicit_epsilon_greedy():
    spec = get_agent("dqn")
    cfg = spec.config_cls.for_family("classic", {})
    kw = dict(obs_shape=(4,), obs_dtype=np.float32, num_actions=2, seeds=[3, 4], family="classic", total_steps=400)
    a, b = spec.cls(cfg, **kw), spec.cls(cfg, **kw)
    obs = np.random.default_rng(0).normal(size=(300, 2, 4)).astype(np.float32)
    for t in range(300):
        expected = b.explorer.select(b.greedy_actions(obs[t]), b.epsilon(t))
        assert np.array_equal(a.act(obs[t], t), expected)
