"""The built-in suite ``tutorial-dqn`` resolves to the PyTorch DQN tutorial's CartPole setting as written."""
import math

import numpy as np

from agents import get_agent
from agents.exploration import ExponentialGapSchedule
from suite.scheduler import load_suite
from suite.scheduler.matrix import expand


def test_tutorial_suite_is_the_tutorials_setting():
    configs, trials = expand(load_suite("tutorial-dqn"))
    assert [(c.variant, c.agent, c.env) for c in configs] == [("as-written", "dqn-soft", "CartPole-v1")]
    cfg = configs[0].spec.agent_config
    assert (cfg.hidden_sizes, cfg.optimizer, cfg.learning_rate, cfg.weight_decay, cfg.amsgrad, cfg.optimizer_eps) == \
        ((128, 128), "adamw", 1e-4, 0.01, True, 1e-8)
    assert (cfg.tau, cfg.soft_every, cfg.batch_size, cfg.buffer_size, cfg.gamma, cfg.loss) == \
        (0.005, 1, 128, 10_000, 0.99, "huber")
    assert (cfg.max_grad_value, cfg.max_grad_norm, cfg.learning_starts, cfg.train_frequency) == (100.0, None, 128, 1)
    agent = get_agent("dqn-soft").cls(cfg, obs_shape=(4,), obs_dtype=np.dtype(np.float32), num_actions=2,
                                      seeds=[0], family="classic", total_steps=configs[0].steps)
    opt = agent.optimizer
    assert (opt.kind, opt.lr, opt.weight_decay, opt.amsgrad, opt.betas, opt.eps) == \
        ("adamw", 1e-4, 0.01, True, (0.9, 0.999), 1e-8)
    assert isinstance(agent.epsilon, ExponentialGapSchedule)
    # steps_done = 0 for the first action; EPS_DECAY = 1000 is the time constant
    assert agent.epsilon(0) == 0.9 and agent.epsilon(1000) == 0.05 + 0.85 * math.exp(-1.0)
    assert agent.kernels == "numpy"  # value clipping keeps the numpy kernels
