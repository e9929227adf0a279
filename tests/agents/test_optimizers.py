"""The agents' optimizer updates each replica exactly as if it were alone, and is torch's algorithm.

A replica's slice must not depend on how many replicas share the parameter tensors (the fused CPU Adam breaks
this: it treats the SIMD tail of a tensor differently). The agents use ``FlatOptimizer``: every parameter is a
view of one flat buffer, and the update is a few elementwise ops on it.
"""
import re

import numpy as np
import pytest
import torch

from agents.optim import FlatOptimizer, flatten_parameters

SHAPES = [(1, 2), (1, 6), (4, 120), (120, 84), (1, 84), (84, 2), (1, 1)]
#: case -> (FlatOptimizer kind, its keyword arguments, the torch.optim it must equal)
KINDS = {"adam": ("adam", {}, lambda ps: torch.optim.Adam(ps, lr=1e-3, eps=1e-8, foreach=True)),
         "adam-amsgrad": ("adam", {"amsgrad": True},
                          lambda ps: torch.optim.Adam(ps, lr=1e-3, amsgrad=True, foreach=True)),
         "adam-l2": ("adam", {"weight_decay": 0.5},
                     lambda ps: torch.optim.Adam(ps, lr=1e-3, weight_decay=0.5, foreach=True)),
         "adamw": ("adamw", {"weight_decay": 0.5},
                   lambda ps: torch.optim.AdamW(ps, lr=1e-3, weight_decay=0.5, foreach=True)),
         "adamw-amsgrad": ("adamw", {"amsgrad": True},  # the PyTorch DQN tutorial's (torch's default decay 0.01)
                           lambda ps: torch.optim.AdamW(ps, lr=1e-3, amsgrad=True, foreach=True)),
         "adamw-default": ("adamw", {}, lambda ps: torch.optim.AdamW(ps, lr=1e-3, foreach=True)),
         "adamw-no-decay": ("adamw", {"weight_decay": 0.0},
                            lambda ps: torch.optim.AdamW(ps, lr=1e-3, weight_decay=0.0, foreach=True)),
         "rmsprop-centered": ("rmsprop-centered", {"alpha": 0.95, "eps": 0.01},
                              lambda ps: torch.optim.RMSprop(ps, lr=1e-3, alpha=0.95, eps=0.01, centered=True,
                                                             foreach=True)),
         "rmsprop-centered-l2": ("rmsprop-centered", {"alpha": 0.95, "eps": 0.01, "weight_decay": 0.5},
                                 lambda ps: torch.optim.RMSprop(ps, lr=1e-3, alpha=0.95, eps=0.01, centered=True,
                                                                weight_decay=0.5, foreach=True)),
         "sgd": ("sgd", {}, lambda ps: torch.optim.SGD(ps, lr=1e-3, foreach=True)),
         "sgd-l2": ("sgd", {"weight_decay": 0.5}, lambda ps: torch.optim.SGD(ps, lr=1e-3, weight_decay=0.5, foreach=True))}

def grads(rows: slice, t: int, g: torch.Generator) -> list[torch.Tensor]:
    out = []
    for s in SHAPES:
        # the swing in scale makes the second moment fall at times, so amsgrad's running maximum matters
        x = torch.randn(6, *s, generator=g)[rows] * (1 + 0.9 * np.sin(t)) + 0.01 * t
        x[..., 0] = 0.0  # exact zeros, as parameters behind a dead unit get
        out.append(x)
    return out


def run(case: str, replicas: int, flat: bool, steps: int = 60, first: int = 0) -> list[torch.Tensor]:
    """Parameters after ``steps`` updates of replicas ``first .. first+replicas-1`` (row r gets gradient row r)."""
    g = torch.Generator().manual_seed(1)
    params = [torch.nn.Parameter(torch.full((replicas, *s), 0.5)) for s in SHAPES]
    kind, kwargs, make_torch = KINDS[case]
    opt = FlatOptimizer(params, kind, 1e-3, **kwargs) if flat else make_torch(params)
    for t in range(steps):
        opt.zero_grad()
        for p, gr in zip(params, grads(slice(first, first + replicas), t, g)):
            if flat:
                p.grad.add_(gr)  # what autograd does: accumulate into the view
            else:
                p.grad = gr
        opt.step()
    return [p.detach().clone() for p in params]


@pytest.mark.parametrize("kind", list(KINDS))
def test_flat_optimizer_is_replica_independent(kind):
    for replicas in (2, 3, 6):
        shared = run(kind, replicas, flat=True)
        # every replica, the last one included (its values sit in the SIMD tail of the flat buffer)
        for r in range(replicas):
            alone = run(kind, 1, flat=True, first=r)
            assert all(torch.equal(a[0], b[r]) for a, b in zip(alone, shared)), (replicas, r)


@pytest.mark.parametrize("kind", list(KINDS))
def test_flat_optimizer_is_torchs_algorithm(kind, monkeypatch):
    theirs = run(kind, 3, flat=False)
    # with torch's own sqrt: bitwise torch.optim
    monkeypatch.setattr("agents.optim._NUMPY_SQRT", False)
    assert all(torch.equal(a, b) for a, b in zip(run(kind, 3, flat=True), theirs))
    # with numpy's correctly rounded sqrt (the default on CPU): equal up to sqrt rounding
    monkeypatch.setattr("agents.optim._NUMPY_SQRT", True)
    ours = run(kind, 3, flat=True)
    assert all(torch.allclose(a, b, rtol=1e-5, atol=1e-6) for a, b in zip(ours, theirs))


def test_decay_and_amsgrad_change_the_update():
    """The cases above are not vacuous: each option moves the parameters away from the plain update."""
    for case, plain in (("adam-amsgrad", "adam"), ("adamw-amsgrad", "adamw-default"), ("adam-l2", "adam"),
                        ("adamw-default", "adamw-no-decay"), ("adamw", "adamw-no-decay"),
                        ("rmsprop-centered-l2", "rmsprop-centered"), ("sgd-l2", "sgd")):
        assert not all(torch.equal(a, b) for a, b in zip(run(case, 2, flat=True), run(plain, 2, flat=True))), case
    # decoupled (adamw) and L2 (adam) decay differ
    params = lambda: [torch.nn.Parameter(torch.full((2, 3), 0.5))]  # noqa: E731
    outs = []
    for kind in ("adam", "adamw"):
        ps = params()
        opt = FlatOptimizer(ps, kind, 1e-2, weight_decay=0.5)
        for _ in range(3):
            opt.zero_grad(); ps[0].grad.add_(1.0); opt.step()
        assert torch.equal(ps[0].grad, torch.ones(2, 3))  # the raw gradient stays in .grad
        outs.append(ps[0].detach().clone())
    assert not torch.equal(*outs)


def test_bad_options_are_refused():
    ps = [torch.nn.Parameter(torch.ones(2, 3))]
    with pytest.raises(ValueError, match=re.escape("amsgrad is for adam | adamw, not 'sgd'")):
        FlatOptimizer(ps, "sgd", 1e-2, amsgrad=True)
    with pytest.raises(ValueError, match="weight_decay -0.1 must be >= 0"):
        FlatOptimizer([torch.nn.Parameter(torch.ones(2, 3))], "adamw", 1e-2, weight_decay=-0.1)


def test_cpu_sqrt_is_correctly_rounded():
    from agents.optim import _sqrt
    x = torch.cat([torch.zeros(100), torch.rand(5000) * 10.0 ** torch.randint(-30, 10, (5000,)).float()])
    exact = torch.from_numpy(np.sqrt(x.numpy().astype(np.float64)).astype(np.float32))
    assert torch.equal(_sqrt(x, torch.empty_like(x)), exact)
    assert torch.equal(_sqrt(x.clone(), x), exact) and torch.equal(x, exact)  # in place


def test_flatten_keeps_values_views_and_load_state_dict():
    net = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(), torch.nn.Linear(4, 2))
    before = {k: v.clone() for k, v in net.state_dict().items()}
    flat = flatten_parameters(list(net.parameters()))
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())
    assert flat.numel() == sum(v.numel() for v in before.values())
    with torch.no_grad():
        flat.add_(1.0)  # a write to the buffer is a write to the parameters
    assert torch.equal(net[0].weight, before["0.weight"] + 1)
    net.load_state_dict(before)  # in-place copy keeps the views
    assert torch.equal(flat[: 12].view(4, 3), before["0.weight"])
    net(torch.ones(5, 3)).sum().backward()
    assert torch.equal(flat.grad[: 12].view(4, 3), net[0].weight.grad) and flat.grad.abs().sum() > 0


def test_state_round_trip_continues_identically():
    params = [torch.nn.Parameter(torch.ones(2, 5))]
    opt = FlatOptimizer(params, "adam", 1e-2)
    for _ in range(3):
        opt.zero_grad(); params[0].grad.add_(torch.arange(10.0).view(2, 5)); opt.step()
    state = opt.state_dict()
    params2 = [torch.nn.Parameter(params[0].detach().clone())]
    opt2 = FlatOptimizer(params2, "adam", 1e-2)
    opt2.load_state_dict(state)
    for o, p in ((opt, params), (opt2, params2)):
        o.zero_grad(); p[0].grad.add_(1.0); o.step()
    assert torch.equal(params[0], params2[0])
    with pytest.raises(ValueError, match="'adam', not 'sgd'"):
        FlatOptimizer([torch.nn.Parameter(torch.ones(2))], "sgd", 1e-2).load_state_dict(state)
    with pytest.raises(ValueError, match="lacks max_exp_avg_sq"):
        FlatOptimizer([torch.nn.Parameter(torch.ones(2, 5))], "adam", 1e-2, amsgrad=True).load_state_dict(state)


def test_amsgrad_state_round_trip_continues_identically():
    def make():
        ps = [torch.nn.Parameter(torch.ones(2, 5))]
        return ps, FlatOptimizer(ps, "adamw", 1e-2, weight_decay=0.01, amsgrad=True)

    params, opt = make()
    for t in range(4):  # one gradient, then none: the second moment falls below its running maximum
        opt.zero_grad(); params[0].grad.add_(torch.arange(10.0).view(2, 5) * (t == 0)); opt.step()
    state = opt.state_dict()
    assert not torch.equal(state["max_exp_avg_sq"], state["exp_avg_sq"])
    params2, opt2 = make()
    with torch.no_grad():
        params2[0].copy_(params[0])
    opt2.load_state_dict(state)
    for o, p in ((opt, params), (opt2, params2)):
        o.zero_grad(); p[0].grad.add_(0.1); o.step()
    assert torch.equal(params[0], params2[0])


def test_agents_use_the_flat_optimizer():
    from agents import get_agent
    for opt in ("adam", "adamw", "rmsprop-centered", "sgd"):
        spec = get_agent("dqn")
        cfg = spec.config_cls.for_family("classic", {"optimizer": opt})
        agent = spec.cls(cfg, obs_shape=(4,), obs_dtype=np.float32, num_actions=2, seeds=[0], family="classic",
                         total_steps=10)
        assert isinstance(agent.optimizer, FlatOptimizer) and agent.optimizer.kind == opt
        assert all(p.data_ptr() >= agent.optimizer.flat.data_ptr() for p in agent.online.parameters())


# --------------------------------------------------------------------------- gradient clipping in QAgent.update

def _agent(seeds=(0, 1, 2), kernels="auto", **overrides):
    from agents import get_agent
    values = dict(hidden_sizes=(7, 5), batch_size=16, buffer_size=64, learning_starts=0, train_frequency=1,
                  learning_rate=1e-2, gamma=0.9, loss="huber")
    values.update(overrides)
    spec = get_agent("dqn")
    cfg = spec.config_cls.for_family("classic", values)
    return spec.cls(cfg, obs_shape=(3,), obs_dtype=np.dtype(np.float32), num_actions=2, seeds=list(seeds),
                    family="classic", total_steps=100, kernels=kernels)


def _batch(seeds, step):
    """A minibatch whose row r depends on seed r and ``step`` only; rewards large so gradients exceed the clip."""
    from agents.replay import Batch
    rows = []
    for s in seeds:
        g = np.random.default_rng([step, s])
        rows.append((g.normal(size=(16, 3)).astype(np.float32), g.integers(0, 2, 16),
                     (20 * g.normal(size=16)).astype(np.float32), g.normal(size=(16, 3)).astype(np.float32),
                     (g.random(16) < 0.2).astype(np.float32)))
    return Batch(*(torch.from_numpy(np.stack(c)) for c in zip(*rows)))


def _record_steps(agent) -> list[list[torch.Tensor]]:
    """From now on, the gradient each optimizer step of ``agent`` sees, per parameter ``[R, ...]``."""
    seen, step = [], agent.optimizer.step

    def recording_step():
        seen.append([p.grad.detach().clone() for p in agent.trainable_parameters()])
        step()
    agent.optimizer.step = recording_step
    return seen


def _updates_seen(agent, seeds, steps=3):
    """``steps`` updates on ``_batch``: the gradients the optimizer saw and the metrics, per update."""
    seen = _record_steps(agent)
    metrics = [agent.update(_batch(seeds, t)) for t in range(steps)]
    return seen, metrics


@pytest.mark.parametrize("kernels", ["auto", "torch"])
def test_value_clipping_is_torchs_clip_grad_value_per_replica(kernels):
    seeds = (0, 1, 2)
    plain, clipped = _agent(kernels=kernels), _agent(kernels=kernels, max_grad_value=0.05)
    assert clipped.kernels == plain.kernels == ("numpy" if kernels == "auto" else "torch")
    seen = _record_steps(clipped)
    for t in range(3):
        batch = _batch(seeds, t)
        # the raw gradient at the clipped agent's current parameters, through the same kernels
        plain.load_state_dict(clipped.state_dict())
        plain.optimizer.zero_grad()
        plain._learner.gradients(plain, batch)  # the bound backend writes into the parameters' .grad memory
        raw = [p.grad.detach().clone() for p in plain.trainable_parameters()]
        clipped.update(batch)
        assert any((g.abs() > 0.05).any() for g in raw)  # the clip is active
        for r in range(len(seeds)):  # replica r alone through torch's function
            alone = [torch.nn.Parameter(torch.zeros_like(g[r])) for g in raw]
            for p, g in zip(alone, raw):
                p.grad = g[r].clone()
            torch.nn.utils.clip_grad_value_(alone, 0.05)
            assert all(torch.equal(p.grad, g[r]) for p, g in zip(alone, seen[-1])), (t, r)


@pytest.mark.parametrize("kernels", ["auto", "torch"])
def test_value_clipping_is_replica_independent(kernels):
    together = _agent(kernels=kernels, max_grad_value=0.05, max_grad_norm=0.5)
    _updates_seen(together, (0, 1, 2))
    for r, s in enumerate((0, 1, 2)):
        alone = _agent(seeds=(s,), kernels=kernels, max_grad_value=0.05, max_grad_norm=0.5)
        _updates_seen(alone, (s,))
        assert alone.params_sha256()[0] == together.params_sha256()[r]


def test_value_clamp_comes_before_norm_scaling():
    from agents.agent import clip_grad_norm_per_replica
    seeds = (0, 1, 2)
    value_only = _agent(max_grad_value=0.05)
    both = _agent(max_grad_value=0.05, max_grad_norm=0.1)
    seen_value, _ = _updates_seen(value_only, seeds, steps=1)
    seen_both, metrics = _updates_seen(both, seeds, steps=1)
    clamped = [torch.nn.Parameter(torch.zeros_like(g)) for g in seen_value[0]]
    for p, g in zip(clamped, seen_value[0]):
        p.grad = g.clone()
    norms = clip_grad_norm_per_replica(clamped, 0.1)
    assert (norms > 0.1).all()  # the norm clip is active after the clamp
    assert torch.equal(metrics[0]["grad_norm"], norms)  # grad_norm: the norm the scaling saw, after the clamp
    assert all(torch.equal(p.grad, g) for p, g in zip(clamped, seen_both[0]))


def test_inactive_value_clip_leaves_the_run_bitwise_unchanged():
    """A bound no gradient reaches changes nothing; one that is reached changes the parameters."""
    shas = {}
    for value in (None, 1e30, 0.05):
        agent = _agent(max_grad_value=value)
        _updates_seen(agent, (0, 1, 2))
        shas[value] = agent.params_sha256()
    assert shas[None] == shas[1e30]
    assert all(a != b for a, b in zip(shas[None], shas[0.05]))
