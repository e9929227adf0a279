"""The learner contract (agents/learners.py): which backend serves each agent and why, declarations voided by
undeclared redefinitions, and numpy/torch agreement for every agent x family at real sizes over 100 updates."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from threadpoolctl import threadpool_limits

import agents.catalog  # noqa: F401 - registers the agents
from agents.agent import QAgent
from agents.catalog.dqn import DQN
from agents.learners import declared
from agents.registry import get_agent, list_agents
from agents.replay import Batch
from agents.targets import HardUpdate, TargetRule
from suite.envs import get_family

# family: (obs shape, obs dtype, actions, batch) -- CartPole's 4 observations and 2 actions on the 120-84 MLP
# (batch 128, Adam); MinAtar breakout's 10x10x4 frames and full action set of 6 on the CNN (batch 32, centred
# RMSProp, Huber): the family defaults the runs use
FAMILIES = {"classic": ((4,), np.float32, 2, 128), "minatar": ((4, 10, 10), np.uint8, 6, 32)}
REPLICAS, UPDATES = 2, 100

# (backend that learns, words the reason must contain); a new deep agent must be added here
EXPECTED = {
    "dqn": ("numpy", "copy-only target rule 'hard'"),
    "dqn-soft": ("numpy", "copy-only target rule 'soft'"),
    "double-dqn": ("numpy", "double bootstrap"),
    "dqn-no-target": ("numpy", "copy-only target rule 'none'"),
    "agt2-dqn": ("torch", "AGT2DQN declares no update_math"),
    "sgt2-dqn": ("torch", "SGT2DQN declares no update_math"),
    "fr-dqn": ("torch", "FRDQN declares no update_math"),
    "isql": ("torch", "ISQL declares no update_math"),
    "idqn": ("torch", "IDQN declares no update_math"),
    "eaudeqn": ("torch", "EauDeQN declares no update_math"),
}
# agents that keep QAgent's greedy acting and say so: numpy acts for them even where torch learns
NUMPY_ACTING = {"dqn", "dqn-soft", "double-dqn", "dqn-no-target", "agt2-dqn", "sgt2-dqn", "fr-dqn"}

# Parameters after 100 updates, numpy vs torch. Not bitwise: the same float32 products are summed in another
# order (BLAS blocking vs torch's kernels), so each gradient element differs by a few ulp (~1e-7 relative).
# Adam / RMSProp steps are lr * m / sqrt(v): a relative gradient difference ε moves a step by ~ε·lr (lr 2.5e-4),
# so 100 steps leave the parameters ~1e-8 apart (measured: at most 3.0e-8 on the MLP, 1.5e-8 on the CNN, i.e. one
# or two ulp of weights of size ~0.1-0.5). ATOL is ~30x that, and >100x below the mean distance the 100 updates
# move a parameter (checked below), so a real difference in the math cannot hide inside it.
ATOL, RTOL = 1e-6, 1e-5


def deep_agents() -> list[str]:
    return [s.name for s in list_agents() if issubclass(s.cls, QAgent)]


def make(name: str, family: str, kernels: str = "auto", cls: type | None = None, **overrides) -> QAgent:
    shape, dtype, actions, batch = FAMILIES[family]
    spec = get_agent(name)
    cfg = spec.config_cls.for_family(family, {"buffer_size": 256, "batch_size": batch, **overrides})
    return (cls or spec.cls)(cfg, obs_shape=shape, obs_dtype=np.dtype(dtype), num_actions=actions,
                             seeds=list(range(REPLICAS)), family=get_family(family).facts, total_steps=10_000,
                             kernels=kernels)


def make_batch(family: str, step: int) -> Batch:
    shape, dtype, actions, batch = FAMILIES[family]
    g = np.random.default_rng([7, step])

    def obs() -> np.ndarray:
        if dtype == np.uint8:
            return (g.random((REPLICAS, batch, *shape)) < 0.1).astype(np.uint8)
        return g.normal(size=(REPLICAS, batch, *shape)).astype(np.float32)

    return Batch(torch.from_numpy(obs()), torch.from_numpy(g.integers(0, actions, (REPLICAS, batch))),
                 torch.from_numpy(g.normal(size=(REPLICAS, batch)).astype(np.float32)), torch.from_numpy(obs()),
                 torch.from_numpy((g.random((REPLICAS, batch)) < 0.1).astype(np.float32)))


def train(agent: QAgent, family: str) -> list[np.ndarray]:
    """100 updates on fixed minibatches, the target rule's cadence after each (copies every 25 updates for the
    hard rules, so θ⁻ both lags and catches up), on one BLAS thread as the trainer runs."""
    with threadpool_limits(1, user_api="blas"):
        for step in range(1, UPDATES + 1):
            agent.update(make_batch(family, step))
            agent.target_rule.on_env_step(step)
    return [p.detach().numpy().copy() for p in agent.online.parameters()]


def test_every_deep_agent_has_an_expected_backend():
    assert sorted(deep_agents()) == sorted(EXPECTED), "a new deep agent: add it to EXPECTED with its backend"


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_numpy_and_torch_backends_agree_or_torch_is_chosen_with_its_reason(name, family):
    learner, words = EXPECTED[name]
    period = {"target_period": 25} if name in ("dqn", "double-dqn") else {}
    auto = make(name, family, **period)
    assert auto.backend.learner == learner, auto.backend.reason
    assert words in auto.backend.reason
    assert auto.backend.kernels == auto.kernels
    assert auto.online.architecture == {"classic": "mlp", "minatar": "minatar-cnn"}[family]
    assert (auto.backend.actor == "numpy") == (name in NUMPY_ACTING), auto.backend.reason
    if learner == "torch":
        assert auto.kernels in ("torch", "numpy-act") and not auto.uses_host_learning()
        return
    slow = make(name, family, kernels="torch", **period)
    assert slow.kernels == "torch" and slow.backend.reason == "train.kernels=torch"
    start = [p.detach().numpy().copy() for p in auto.online.parameters()]
    fast_params, slow_params = train(auto, family), train(slow, family)
    for f, s in zip(fast_params, slow_params):
        np.testing.assert_allclose(f, s, rtol=RTOL, atol=ATOL)
    moved = np.mean([np.abs(f - s0).mean() for f, s0 in zip(fast_params, start)])
    assert moved > 100 * ATOL, moved  # the comparison is of networks that really trained


@pytest.mark.parametrize("family", FAMILIES)
def test_the_tolerance_tells_a_different_update_apart(family):
    """The same 100 updates with γ 0.99 -> 0.98 on one side fall outside the tolerance: it is not too loose."""
    fast = train(make("dqn", family, gamma=0.99, target_period=25), family)
    other = train(make("dqn", family, kernels="torch", gamma=0.98, target_period=25), family)
    assert max(np.abs(f - o).max() for f, o in zip(fast, other)) > 100 * ATOL


def test_a_declaration_is_voided_by_an_undeclared_redefinition_below_it():
    class A:
        math = "td"

        def f(self): ...

    class B(A):
        def f(self): ...

    class C(B):
        math = "td"  # declares again: speaks for B.f too

    class D(A):
        def g(self): ...  # not one of the methods the declaration covers

    class E(A):
        math = "mine"

        def f(self): ...  # the declaring class's own code

    assert declared(A, "math", ["f"]).value == "td"
    assert declared(B, "math", ["f"]) == (None, ("B.f",))
    assert declared(C, "math", ["f"]).value == "td"
    assert declared(D, "math", ["f"]).value == "td"
    assert declared(E, "math", ["f"]).value == "mine"
    assert declared(E, "math", ["f", "missing"]).value == "mine"


def test_declarations_are_opt_in_a_new_agent_and_rule_run_on_torch():
    """QAgent and TargetRule declare nothing: an agent or rule written without reading learners.py runs on torch
    autograd, with the reason named; declaring is what lets the numpy kernels in."""
    class NewAgent(QAgent):
        Config = DQN.Config

        def make_target_rule(self, online):
            return HardUpdate(online, self.config.target_period)

    class NewRule(TargetRule):
        def on_env_step(self, step):
            if step % 7 == 0:
                self.sync()

    class NewRuleDQN(DQN):
        def make_target_rule(self, online):
            return NewRule(online)

    assert QAgent.update_math is None and QAgent.acting is None and TargetRule.moves is None
    new = make("dqn", "classic", cls=NewAgent)
    assert new.kernels == "torch"
    assert "NewAgent declares no update_math" in new.backend.reason
    assert "NewAgent declares no acting" in new.backend.reason
    rule = make("dqn", "classic", cls=NewRuleDQN)
    assert rule.backend.learner == "torch" and rule.backend.actor == "numpy"
    assert "target rule 'base' declares no moves" in rule.backend.reason


def test_an_override_without_a_declaration_gets_torch_and_one_with_it_keeps_numpy():
    class LoggedDQN(DQN):
        def loss(self, batch):
            loss, metrics = super().loss(batch)
            return loss, {**metrics, "logged": loss.detach()}

    class DeclaredDQN(LoggedDQN):
        update_math = "td"  # the logged loss is QAgent's TD loss: numpy may compute it

    class ClippedTrainables(DQN):
        def trainable_parameters(self):
            return super().trainable_parameters()

    class OwnStepHook(DQN):  # not a method the TD declaration speaks for: it runs after either backend
        def clip_gradients(self, max_norm):
            return super().clip_gradients(max_norm)

    undeclared = make("dqn", "classic", cls=LoggedDQN)
    assert undeclared.kernels == "numpy-act"
    assert "LoggedDQN.loss redefines the update without declaring update_math" in undeclared.backend.reason
    assert make("dqn", "classic", cls=DeclaredDQN).kernels == "numpy"
    assert "ClippedTrainables.trainable_parameters" in make("dqn", "classic", cls=ClippedTrainables).backend.reason
    assert make("dqn", "classic", cls=OwnStepHook).kernels == "numpy"

    class OwnGreedy(DQN):
        def greedy_actions(self, obs):
            return super().greedy_actions(obs)

    own = make("dqn", "classic", cls=OwnGreedy)
    assert own.backend.learner == "numpy" and own.backend.actor == "torch"  # acting is declared apart
    assert "OwnGreedy.greedy_actions redefines acting without declaring acting" in own.backend.reason


def test_the_target_rule_declares_how_it_moves():
    class Hooked(HardUpdate):
        def after_update(self, batch):
            return {}

    class DeclaredHooked(Hooked):
        moves = "copy"

    agent = make("dqn", "minatar")
    assert agent.kernels == "numpy"
    agent.target_rule = Hooked(agent.online, 25)  # a swapped rule re-binds the backends
    assert agent.kernels == "numpy-act"
    assert "Hooked.after_update redefines how θ⁻ moves without declaring moves" in agent.backend.reason
    agent.target_rule = DeclaredHooked(agent.online, 25)
    assert agent.kernels == "numpy"


def test_networks_numpy_does_not_compute_stay_on_torch():
    agent = make("dqn", "classic", layer_norm=True)
    assert agent.kernels == "torch" and "LayerNorm" in agent.backend.reason
