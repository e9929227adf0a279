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


@pytest.mark.parametrize("name", ["dqn", "isql"])
def test_thread_setting_and_core_count_do_not_change_results(monkeypatch, name):
    """What the product guarantees on any processor: the trainer's thread setup (apply_cpu_threads) pins BLAS to
    one thread and splits replicas itself, so train.threads 1, 2 or auto on 1 or 2 cores give the same bits on
    one machine, even where the machine's BLAS would use several threads. (Whether one BLAS call gives the same
    bits on 1 and 2 BLAS threads is a property of the BLAS kernel, not of TargetBench, and is not asserted.)"""
    from threadpoolctl import threadpool_info, threadpool_limits

    from agents.replay import Batch

    seeds = list(range(8))  # numpy agents split 8 replicas over up to 2 threads (4 per thread at least)
    g = np.random.default_rng(0)
    batches = [Batch(torch.from_numpy(g.normal(size=(8, 128, 4)).astype(np.float32)),
                     torch.from_numpy(g.integers(0, 2, (8, 128))),
                     torch.from_numpy(g.normal(size=(8, 128)).astype(np.float32)),
                     torch.from_numpy(g.normal(size=(8, 128, 4)).astype(np.float32)),
                     torch.from_numpy((g.random((8, 128)) < 0.1).astype(np.float32))) for _ in range(3)]
    results, splits, machine_cores = [], set(), usable_cores()
    for setting, cores in (("1", "2"), ("2", "2"), ("auto", "2"), ("auto", "1")):
        monkeypatch.setenv(AUTO_THREADS_ENV, cores)
        with threadpool_limits(2, user_api="blas"):  # a machine whose BLAS would split products over 2 threads
            agent = _agent(name, seeds, setting, hidden_sizes="120,84", batch_size="128", buffer_size="256")
            splits.add(apply_cpu_threads(setting, agent))
            assert {i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"} == {1}
            for batch in batches:
                agent.update(batch)
        results.append(agent.params_sha256())
    torch.set_num_threads(1)  # as tests/conftest.py sets it
    assert all(r == results[0] for r in results)
    if name == "dqn" and machine_cores >= 2:
        assert splits == {1, 2}  # the replica split really changed between the settings compared
