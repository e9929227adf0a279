"""The torch backend's options: mixed precision (train.amp) and torch.compile (train.compile)."""
import numpy as np
import pytest
import torch

from agents import get_agent
from agents.learners import TORCH, TorchLearner, TorchOptions


def make_agent(name="dqn", seeds=(0, 1), kernels="auto", **overrides):
    spec = get_agent(name)
    cfg = spec.config_cls.for_family("classic", {"buffer_size": "64", "batch_size": "8", **overrides})
    return spec.cls(cfg, obs_shape=(4,), obs_dtype=np.float32, num_actions=2, seeds=list(seeds), family="classic",
                    total_steps=1000, kernels=kernels)


def fill(agent, n=32):
    rng = np.random.default_rng(0)
    r = agent.num_replicas
    for _ in range(n):
        agent.observe(rng.random((r, 4), dtype=np.float32), rng.integers(0, 2, r), rng.random(r, dtype=np.float32),
                      rng.random((r, 4), dtype=np.float32), rng.random(r) < 0.1)


def grads(agent, batch):
    loss, _ = agent._learner.gradients(agent, batch)
    return loss.detach().clone(), [p.grad.detach().clone() for p in agent.trainable_parameters()]


def test_options_off_keep_the_plain_backend():
    agent = make_agent()
    assert agent.torch_learner is None
    agent.use_torch_options(TorchOptions())  # every option off: nothing changes
    assert agent.torch_learner is None and agent.kernels == "numpy"
    torch_agent = make_agent(kernels="torch")
    assert torch_agent._learner is TORCH


def test_amp_and_compile_move_learning_and_acting_to_torch():
    agent = make_agent()
    assert agent.kernels == "numpy"
    agent.use_torch_options(TorchOptions(amp="bf16"))
    assert agent.kernels == "torch" and "train.amp=bf16" in agent.backend.reason
    assert isinstance(agent.torch_learner, TorchLearner)


def test_bf16_gradient_is_close_to_float32_and_stays_float32():
    """bf16 autocast keeps 8 mantissa bits in the products: the gradient is near the float32 one, not equal; the
    parameters, gradients and loss stay float32."""
    plain, mixed = make_agent(kernels="torch"), make_agent(kernels="torch")
    mixed.use_torch_options(TorchOptions(amp="bf16"))
    fill(plain)
    batch = plain.replay.sample(8)
    loss32, g32 = grads(plain, batch)
    loss16, g16 = grads(mixed, batch)
    assert loss16.dtype == torch.float32 and all(g.dtype == torch.float32 for g in g16)
    assert any(not torch.equal(a, b) for a, b in zip(g32, g16))  # the products did run in bf16
    for a, b in zip(g32, g16):
        assert float((a - b).norm()) <= 0.05 * float(a.norm()) + 1e-7  # relative L2 error under 5 %
    assert torch.allclose(loss32, loss16, rtol=0.05)


def test_refusals_are_one_line():
    cpu = torch.device("cpu")
    assert "fp16" in TorchOptions(amp="fp16").refusal(cpu) and "\n" not in TorchOptions(amp="fp16").refusal(cpu)
    assert TorchOptions(amp="bf16").refusal(cpu) is None
    assert TorchOptions(compile=True).refusal(cpu) is None


def test_fp16_scaler_is_per_replica():
    """A replica whose scaled gradient overflows gets a zero gradient and half the scale; the other replica's
    gradient is divided by its own scale and its scale is kept (a shared scaler would couple the seeds)."""
    agent = make_agent(seeds=(0, 1), kernels="torch")
    learner = TorchLearner.__new__(TorchLearner)  # the scaler alone: fp16 autocast itself needs CUDA
    learner.options = TorchOptions(amp="fp16")
    learner.scale = torch.tensor([4.0, 8.0])
    learner.growth = torch.tensor([5, TorchLearner.GROWTH_INTERVAL - 1])
    params = agent.trainable_parameters()
    for p in params:
        p.grad = torch.ones_like(p) * 8.0
    params[0].grad[0].view(-1)[0] = float("inf")  # replica 0 overflowed
    learner._unscale(agent)
    for p in params:
        assert torch.all(p.grad[0] == 0)
        assert torch.all(p.grad[1] == 1.0)
    assert learner.scale.tolist() == [2.0, 16.0]  # halved; doubled after GROWTH_INTERVAL finite updates
    assert learner.growth.tolist() == [0, 0]


def test_compile_failure_falls_back_with_one_warning(monkeypatch):
    def broken(*args, **kwargs):
        def call(*a, **k):
            raise RuntimeError("no C++ compiler found\nsecond line")
        return call

    monkeypatch.setattr(torch, "compile", broken)
    said = []
    eager = make_agent(kernels="torch")
    agent = make_agent(kernels="torch")
    agent.use_torch_options(TorchOptions(compile=True, warn=said.append))
    fill(eager), fill(agent)
    batch = eager.replay.sample(8)
    loss_a, g_a = grads(eager, batch)
    loss_b, g_b = grads(agent, batch)
    assert torch.equal(loss_a, loss_b) and all(torch.equal(a, b) for a, b in zip(g_a, g_b))
    obs = np.zeros((2, 4), dtype=np.float32)
    assert (agent.greedy_actions(obs) == eager.greedy_actions(obs)).all()
    assert len(said) == 1 and "\n" not in said[0] and "running eagerly" in said[0]
    assert agent.torch_learner.compile_status.startswith("fallback (RuntimeError: no C++ compiler found")


@pytest.mark.slow
def test_compiled_update_agrees_with_eager_to_float32_rounding():
    """The tolerance that keeps train.compile out of trial identity (docs/performance.md): after 20 updates on
    the same batches, compiled and eager parameters agree to 1e-5 (relative to the largest parameter)."""
    eager, compiled = make_agent(kernels="torch", learning_starts="0"), make_agent(kernels="torch", learning_starts="0")
    compiled.use_torch_options(TorchOptions(compile=True))
    fill(eager), fill(compiled)
    for _ in range(20):
        batch = eager.replay.sample(8)
        eager.update(batch)
        compiled.update(batch)
    assert compiled.torch_learner.compile_status == "on"
    for a, b in zip(eager.trainable_parameters(), compiled.trainable_parameters()):
        assert torch.allclose(a, b, rtol=0, atol=1e-5 * float(a.abs().max()))
