"""Memory is checked before it is spent (issue 14): the estimate of suite/memory.py against a measured RSS, the
refusal of a group that cannot fit, and the scheduler's group sizing by the same estimate."""
import subprocess
import sys
import time

import psutil
import pytest

from suite.cli import main
from suite.memory import MemoryBudgetError, check_memory, estimate_memory, max_replicas
from suite.scheduler.matrix import Config, memory_group_size
from suite.trial import build_trial

# 8 seeds of a wide MLP: the group's own memory (~170 MiB of networks and optimizer state) is comparable to the
# fixed process cost, so the comparison tests the per-replica part, not only the constant.
WIDE = {"learning_starts": "50", "hidden_sizes": "1024,1024", "train.eval_every": "100",
        "train.eval_episodes": "1", "train.eval_max_steps": "20"}


def test_estimate_is_within_a_sane_factor_of_measured_rss(tmp_path):
    argv = [sys.executable, "-m", "suite", "run", "--agent", "dqn", "--env", "CartPole-v1", "--seed", "0-7",
            "--steps", "100", "--results", str(tmp_path), "--quiet"]
    for k, v in WIDE.items():
        argv += ["--set", f"{k}={v}"]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    ps, peak = psutil.Process(proc.pid), 0
    while proc.poll() is None:
        try:
            peak = max(peak, ps.memory_info().rss)
        except psutil.Error:
            pass
        time.sleep(0.02)
    assert proc.returncode == 0, proc.stderr.read()
    est = estimate_memory(build_trial("dqn", "CartPole-v1", list(range(8)), steps=100, overrides=WIDE))
    assert est.group_bytes > 100 * 2**20  # the per-replica part matters here
    print(f"estimate {est.host / 2**20:.0f} MiB, measured peak RSS {peak / 2**20:.0f} MiB")
    assert 0.67 < est.host / peak < 1.5, (est, peak)


def test_estimate_scales_with_replicas_and_buffer():
    small = build_trial("dqn", "CartPole-v1", [0, 1], steps=50_000)
    big = build_trial("dqn", "CartPole-v1", list(range(20)), steps=50_000)
    assert estimate_memory(big).replay == 10 * estimate_memory(small).replay
    # A run shorter than the buffer touches only its steps' slots.
    short = build_trial("dqn", "CartPole-v1", [0, 1], steps=100)
    assert estimate_memory(short).replay < estimate_memory(small).replay / 50
    # Atari keeps one 84x84 frame per step: about 7 KB a slot, 1M slots ~ 7 GB per replica (not 4 frames).
    atari = build_trial("dqn", "ALE/Pong-v5", [0], steps=10_000_000)
    assert 6.5e9 < estimate_memory(atari).replay < 8e9


def test_huge_seed_range_is_refused_fast_with_one_line(tmp_path, capsys):
    argv = ["run", "--agent", "dqn", "--env", "CartPole-v1", "--seed", "0-100000", "--steps", "100",
            "--results", str(tmp_path / "r")]
    build_trial("dqn", "CartPole-v1", [0])  # imports warm, as in a real process by the time it parses
    t0 = time.perf_counter()
    code = main(argv)
    took = time.perf_counter() - t0
    err = capsys.readouterr().err.strip()
    if code == 0:
        pytest.skip("this machine has memory for 100001 CartPole seeds")
    assert code == 2 and took < 1.0, (code, took)
    assert err.count("\n") == 0 and "GiB is available" in err and "100001 seeds" in err
    assert not (tmp_path / "r").exists()  # refused before anything was written


def test_check_memory_names_estimate_and_available():
    trial = build_trial("dqn", "CartPole-v1", list(range(4)), steps=1000)
    assert check_memory(trial, available=2**40).replicas == 4
    with pytest.raises(MemoryBudgetError, match=r"need about .* but 0.00 GiB is available; allowed: at most"):
        check_memory(trial, available=2**20)


def test_scheduler_caps_group_size_by_memory():
    spec = build_trial("dqn", "CartPole-v1", list(range(10)), steps=50_000)
    cfg = Config("default", "dqn", "CartPole-v1", {}, 50_000, spec)
    one = estimate_memory(spec, 1)
    per = one.host - one.process
    budget = 2 * (one.process + 3 * per)  # two workers, each with room for 3 replicas
    assert max_replicas(spec, budget // 2) == 3
    assert memory_group_size([cfg], 10, 2, host_bytes=budget) == 3
    assert memory_group_size([cfg], 2, 2, host_bytes=budget) == 2  # never raised
    assert memory_group_size([cfg], 10, 2, host_bytes=None) == 10  # remote nodes: each worker checks itself
    with pytest.raises(MemoryBudgetError, match=r"allowed: --workers 1 or fewer"):
        memory_group_size([cfg], 10, 3, host_bytes=int(1.5 * one.host))


@pytest.mark.parametrize("env", ["CartPole-v1", "MinAtar/breakout", "ALE/Pong-v5"])
def test_every_agent_can_be_estimated_with_its_family_network(env):
    """The probe builds each agent as the trainer does (family facts, K networks per replica for i-DQN and
    EauDeQN): every registered agent gets an estimate, and the network bytes grow with the family's network."""
    from agents import list_agents

    model = {}
    for name in (spec.name for spec in list_agents()):
        est = estimate_memory(build_trial(name, env, [0], steps=60_000, overrides={}))
        assert est.model > 0 and est.replay > 0, (name, est)
        model[name] = est.model
    # the Nature CNN has ~1.7M parameters, the MinAtar CNN ~0.4M, the classic MLP ~11k: a bare family name would
    # give every family an MLP
    floor = {"CartPole-v1": 10_000 * 4, "MinAtar/breakout": 300_000 * 4, "ALE/Pong-v5": 1_500_000 * 4}[env]
    assert min(model.values()) > floor, model


@pytest.mark.parametrize("agent", ["idqn", "eaudeqn"])
def test_probe_counts_every_network_of_a_multi_network_replica(agent):
    """i-DQN and EauDeQN hold K networks per replica in consecutive rows: the probe's forward must feed all K
    (a one-row input crashed their estimate, so `targetbench run` refused them), and their activations are
    K times a single network's."""
    kw = dict(steps=50_000)
    one = estimate_memory(build_trial("dqn", "CartPole-v1", [0, 1], **kw))
    many = estimate_memory(build_trial(agent, "CartPole-v1", [0, 1], **kw))
    assert many.activations == 3 * one.activations > 0


def test_env_and_side_pool_figures_come_from_the_family_record():
    """The memory figures are the family's (``EnvFamily.memory``), and a family that gives none gets classic
    control's; the replay layout follows the record's ``facts.frame_stack``."""
    import dataclasses

    from suite.envs import get_family
    from suite.envs.family import MemoryFigures

    assert get_family("classic").memory == MemoryFigures()
    for env, family in (("CartPole-v1", "classic"), ("MinAtar/breakout", "minatar"), ("ALE/Pong-v5", "atari")):
        est = estimate_memory(build_trial("dqn", env, [0, 1, 2], steps=1000))
        assert est.envs == 3 * get_family(family).memory.env_bytes
    # A bigger side pool costs more replay, in proportion to the fraction.
    from suite import memory

    minatar = get_family("minatar")
    shape, slots = (10, 10, 4), 1000
    base = memory._replay_bytes(shape, "bool", slots, minatar)
    more = memory._replay_bytes(shape, "bool", slots, dataclasses.replace(
        minatar, memory=MemoryFigures(side_pool_fraction=minatar.memory.side_pool_fraction + 0.1)))
    assert abs((more - base) - 0.1 * slots * 400) <= 1  # 400 bytes an observation; int() may drop a unit
