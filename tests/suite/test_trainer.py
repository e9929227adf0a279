"""The training loop: cadence in env steps, truncation vs termination, batched-seed independence,
determinism, and the MLflow record of a run."""
import mlflow
import numpy as np
import pytest
import torch

from agents import get_agent
from suite.provenance import usable_cores
from suite.trainer import train
from suite.trial import build_trial

FAST = {"learning_starts": "100", "train_frequency": "2", "buffer_size": "500", "batch_size": "16",
        "hidden_sizes": "16", "train.eval_every": "150", "train.eval_episodes": "2", "train.log_every": "50",
        "env.max_episode_steps": "60"}


def run(tmp_path, agent="dqn", seeds=(0,), steps=300, **overrides):
    trial = build_trial(agent, "CartPole-v1", seeds, steps=steps, overrides={**FAST, **overrides})
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    return train(trial, tracking_uri=uri, experiment="t", results_dir=tmp_path, progress=lambda m: None), uri


def make_agent(name="dqn", **overrides):
    spec = get_agent(name)
    cfg = spec.config_cls.for_family("classic", {"buffer_size": "64", "batch_size": "4", **overrides})
    return spec.cls(cfg, obs_shape=(4,), obs_dtype=np.float32, num_actions=2, seeds=[0], family="classic",
                    total_steps=1000)


def test_cadence_counts_env_steps_and_target_update_is_not_nested():
    """Updates at steps ≥ learning_starts that are multiples of train_frequency; hard copies at every multiple
    of C even where no update falls (CleanRL once nested the copy inside the train check)."""
    agent = make_agent(learning_starts="10", train_frequency="4", target_period="6")
    updates, copies = [], []
    agent.update = lambda batch, _orig=agent.update: updates.append(step) or _orig(batch)
    agent.target_rule.sync = lambda _orig=agent.target_rule.sync: copies.append(step) or _orig()
    rng = np.random.default_rng(0)
    for step in range(1, 31):
        agent.observe(rng.random((1, 4), dtype=np.float32), np.array([0]), np.array([1.0], dtype=np.float32),
                      rng.random((1, 4), dtype=np.float32), np.array([False]))
        agent.after_env_step(step)
    assert updates == [12, 16, 20, 24, 28]
    assert copies == [6, 12, 18, 24, 30]


@pytest.mark.parametrize("env, cap", [("MountainCar-v0", "30"), ("CartPole-v1", "12")])
def test_truncation_bootstraps_termination_does_not(tmp_path, monkeypatch, env, cap):
    """Time-limit ends are stored as non-terminal (they bootstrap); true terminations as terminal."""
    from agents.agent import QAgent
    from suite.envs import ReplicaEnvs
    stored, ends = [], []
    orig_observe, orig_step = QAgent.observe, ReplicaEnvs.step

    def observe(self, obs, action, reward, next_obs, terminated, truncated=None):
        stored.append(terminated.copy())
        return orig_observe(self, obs, action, reward, next_obs, terminated, truncated)

    def step(self, actions):
        res = orig_step(self, actions)
        if not self.eval:
            ends.append((res.terminated.copy(), res.truncated.copy()))
        return res
    monkeypatch.setattr(QAgent, "observe", observe)
    monkeypatch.setattr(ReplicaEnvs, "step", step)
    trial = build_trial("dqn", env, (0,), steps=200, overrides={**FAST, "env.max_episode_steps": cap})
    train(trial, tracking_uri=f"sqlite:///{tmp_path}/m.db", experiment="t", results_dir=tmp_path,
          progress=lambda m: None)
    terminated = np.concatenate(stored)
    env_term = np.concatenate([t for t, _ in ends])
    env_trunc = np.concatenate([u for _, u in ends])
    assert env_trunc.any()
    assert np.array_equal(terminated, env_term) and not terminated[env_trunc & ~env_term].any()
    if env == "MountainCar-v0":
        assert not terminated.any()  # a random policy never reaches the flag in 30 steps
    else:
        assert terminated.any()


def test_seed_results_do_not_depend_on_batch(tmp_path):
    """Classic control with Adam (fused kernel)."""
    (alone,), _ = run(tmp_path / "a", seeds=(3,))
    batched, _ = run(tmp_path / "b", seeds=(0, 1, 2, 3))
    assert batched[3].seed == 3
    assert batched[3].params_sha256 == alone.params_sha256
    assert batched[3].eval_returns == alone.eval_returns
    assert batched[3].trial_hash == alone.trial_hash
    assert len({r.params_sha256 for r in batched}) == 4  # different seeds, different parameters


def test_different_seeds_start_from_different_parameters():
    spec = get_agent("dqn")
    cfg = spec.config_cls.for_family("classic", {})
    a = spec.cls(cfg, obs_shape=(4,), obs_dtype=np.float32, num_actions=2, seeds=[0, 1], family="classic",
                 total_steps=10)
    h = a.params_sha256()
    assert h[0] != h[1]
    b = spec.cls(cfg, obs_shape=(4,), obs_dtype=np.float32, num_actions=2, seeds=[1], family="classic",
                 total_steps=10)
    assert b.params_sha256()[0] == h[1]


def test_same_command_same_result(tmp_path):
    (a,), _ = run(tmp_path / "a", agent="double-dqn", seeds=(5,))
    (b,), _ = run(tmp_path / "b", agent="double-dqn", seeds=(5,))
    assert a.params_sha256 == b.params_sha256 and a.eval_returns == b.eval_returns


def test_run_record_in_mlflow(tmp_path):
    results, uri = run(tmp_path, agent="dqn-soft", seeds=(0, 1), steps=300)
    client = mlflow.MlflowClient(uri)
    for res in results:
        r = client.get_run(res.run_id)
        assert r.info.status == "FINISHED"
        tags, params = r.data.tags, r.data.params
        assert tags["agent"] == "dqn-soft" and tags["env"] == "CartPole-v1" and tags["seed"] == str(res.seed)
        assert tags["target_rule"] == "soft" and tags["trial_hash"] == res.trial_hash
        for key in ("git_commit", "git_dirty", "hostname", "torch_device", "version.torch", "version.mlflow"):
            assert key in tags
        assert params["agent.tau"] == "0.005" and params["train.steps"] == "300" and params["seed"] == str(res.seed)
        assert params["env.max_episode_steps"] == "60"
        assert int(params["target_bytes"]) == res.target_bytes > 0
        evals = client.get_metric_history(res.run_id, "eval/return_mean")
        assert [m.step for m in evals] == [150, 300]
        assert [m.value for m in evals] == [v for _, v in res.eval_returns]
        losses = client.get_metric_history(res.run_id, "train/loss")
        assert losses and all(m.step % 50 == 0 for m in losses)
        for key in ("train/episode_return", "train/epsilon", "train/q_mean", "train/sps"):
            assert client.get_metric_history(res.run_id, key), key
        names = {a.path for a in client.list_artifacts(res.run_id)}
        assert names == {"config.yaml", "eval_returns.csv", "final_params.pt"}
        path = client.download_artifacts(res.run_id, "final_params.pt", str(tmp_path))
        saved = torch.load(path, weights_only=True)
        assert set(saved) == {"online", "target"} and saved["online"].keys() == saved["target"].keys()
        assert saved["online"]["head.weight"].shape == (16, 2)  # one replica's slice


@pytest.mark.parametrize("agent", ["dqn", "dqn-soft", "double-dqn", "dqn-no-target"])
def test_every_foundation_agent_trains(tmp_path, agent):
    (res,), _ = run(tmp_path, agent=agent, steps=200)
    assert res.status == "completed" and np.isfinite(res.final_eval_return)


def test_divergence_is_tagged_and_other_seeds_continue(tmp_path, monkeypatch):
    """A replica whose loss becomes NaN/inf is tagged diverged with its step; its batch-mates are unaffected."""
    from agents.agent import QAgent
    (clean,), _ = run(tmp_path / "alone", seeds=(0,), steps=300)
    orig = QAgent.update

    def poisoned(self, batch):
        metrics = orig(self, batch)
        if self.updates >= 20:  # replica 1 blows up after its 20th update (env step 140)
            with torch.no_grad():
                for p in self.online.parameters():
                    p[1].fill_(float("nan"))
        return metrics
    monkeypatch.setattr(QAgent, "update", poisoned)
    results, uri = run(tmp_path, seeds=(0, 1), steps=300)
    # the first NaN loss is at step 142; it is seen at the next log point (log_every = 50)
    assert results[1].status == "diverged" and results[1].diverged_step == 150
    assert results[0].status == "completed" and results[0].params_sha256 == clean.params_sha256
    tags = mlflow.MlflowClient(uri).get_run(results[1].run_id).data.tags
    assert tags["outcome"] == "diverged" and tags["diverged_step"] == "150"


def test_minatar_seed_results_do_not_depend_on_batch(tmp_path):
    """MinAtar CNN with centred RMSProp (the family defaults), uint8 observations."""
    over = {"learning_starts": "50", "buffer_size": "200", "batch_size": "8", "train.eval_every": "150",
            "train.eval_episodes": "1", "train.log_every": "50"}
    results = []
    for folder, seeds in (("a", (2,)), ("b", (0, 2))):
        trial = build_trial("dqn", "MinAtar/breakout", seeds, steps=150, overrides=over)
        results.append(train(trial, tracking_uri=f"sqlite:///{tmp_path}/{folder}.db", experiment="t",
                             results_dir=tmp_path, progress=lambda m: None))
    (alone,), batched = results
    assert batched[1].params_sha256 == alone.params_sha256 and batched[1].eval_returns == alone.eval_returns
    assert batched[0].params_sha256 != alone.params_sha256


def test_kernels_and_threads_do_not_change_a_trial_and_are_recorded(tmp_path):
    """numpy kernels (default on the CPU for DQN), torch autograd, and replicas split over 2 threads are the same
    trial (hash); the split is bitwise the same as one thread; the run records the kernels and CPU settings.
    (numpy vs torch gradients agree to float32 rounding: tests/agents/test_host_qnet.py.)"""
    seeds = tuple(range(8))  # 2 threads x 4 replicas: the split really happens (MIN_REPLICAS_PER_THREAD = 4)
    (fast, _), (split, _), (auto, _), (slow, uri) = (
        run(tmp_path / name, seeds=seeds, steps=300, **extra)
        for name, extra in (("numpy", {"train.threads": "1"}), ("split", {"train.threads": "2"}), ("auto", {}),
                            ("torch", {"train.kernels": "torch"})))
    assert ([r.trial_hash for r in fast] == [r.trial_hash for r in slow] == [r.trial_hash for r in split]
            == [r.trial_hash for r in auto])
    assert [r.params_sha256 for r in fast] == [r.params_sha256 for r in split] == [r.params_sha256 for r in auto]
    # The default (auto) uses the cores for numpy kernels (8 replicas: at most 2 threads), one for torch's.
    tag = lambda name, res: mlflow.MlflowClient(f"sqlite:///{tmp_path}/{name}/mlflow.db").get_run(  # noqa: E731
        res[0].run_id).data.tags
    assert tag("auto", auto)["threads_resolved"] == str(min(usable_cores(), 2))
    assert tag("auto", auto)["threads_setting"] == "auto" and tag("numpy", fast)["threads_resolved"] == "1"
    assert tag("torch", slow)["threads_resolved"] == "1" and tag("torch", slow)["torch_threads"] == "1"
    tags = mlflow.MlflowClient(uri).get_run(slow[0].run_id).data.tags
    assert tags["kernels"] == "torch" and tags["cpu_flush_denormal"] == "true"
    assert set(tags["blas_threads"].split(",")) == {"1"}  # one entry per BLAS library loaded
    fast_tags = mlflow.MlflowClient(f"sqlite:///{tmp_path}/numpy/mlflow.db").get_run(fast[0].run_id).data.tags
    assert fast_tags["kernels"] == "numpy"
