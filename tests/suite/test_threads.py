"""train.threads=auto (issue 14): numpy-kernel agents use the cores (bitwise the same for any count, see
tests/suite/test_trainer.py), torch-autograd agents keep one thread; a count is taken as given."""
import numpy as np
import pytest
import torch

from agents import get_agent
from suite.provenance import AUTO_THREADS_ENV, apply_cpu_threads, replica_threads, usable_cores
from suite.trial import build_trial


def _agent(name, seeds, threads, **over):
    trial = build_trial(name, "CartPole-v1", seeds, overrides={"buffer_size": "64", "batch_size": "4", **over})
    return get_agent(name).cls(trial.agent_config, obs_shape=(4,), obs_dtype=np.float32, num_actions=2,
                               seeds=seeds, family="classic", total_steps=1000, kernels=trial.train.kernels,
                               threads=replica_threads(threads))


def test_auto_is_the_default_and_counts_are_validated():
    assert build_trial("dqn", "CartPole-v1", [0]).train.threads == "auto"
    assert build_trial("dqn", "CartPole-v1", [0], overrides={"train.threads": "02"}).train.threads == "2"
    for bad in ("-1", "two", "1.5"):
        with pytest.raises(Exception, match=rf"train.threads='{bad}' is not valid; allowed: auto or an integer"):
            build_trial("dqn", "CartPole-v1", [0], overrides={"train.threads": bad})


def test_auto_resolves_per_kernel_family(monkeypatch):
    monkeypatch.setenv(AUTO_THREADS_ENV, "3")
    assert usable_cores() == min(3, usable_cores()) and replica_threads("auto") == usable_cores()
    assert replica_threads("5") == 5
    try:
        numpy_agent = _agent("dqn", list(range(16)), "auto")
        assert numpy_agent.kernels == "numpy"
        assert apply_cpu_threads("auto", numpy_agent) == min(usable_cores(), 16 // 4)
        assert torch.get_num_threads() == 1
        assert apply_cpu_threads("auto", _agent("dqn", list(range(4)), "auto")) == 1  # 4 replicas: no split
        torch_agent = _agent("dqn", list(range(16)), "auto", **{"train.kernels": "torch"})
        assert torch_agent.kernels == "torch" and apply_cpu_threads("auto", torch_agent) == 1
        assert torch.get_num_threads() == 1
        assert apply_cpu_threads("2", torch_agent) == 2  # asked for: taken as torch threads
    finally:
        torch.set_num_threads(1)  # as tests/conftest.py sets it
