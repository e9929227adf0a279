"""What a run records beyond its learning curve: evaluation videos, MLflow system metrics, wall time, compute
tags, the torch options; and the store opened in the background while training starts."""
from pathlib import Path

import mlflow
import numpy as np
import pytest

from suite import video
from suite.envs import make_env
from suite.errors import TrackingError, UsageError
from suite.trainer import train
from suite.trial import build_trial

FAST = {"learning_starts": "100", "train_frequency": "2", "buffer_size": "500", "batch_size": "16",
        "hidden_sizes": "16", "train.eval_every": "150", "train.eval_episodes": "2", "train.log_every": "50",
        "env.max_episode_steps": "40"}


def run(tmp_path, seeds=(0,), steps=300, env="CartPole-v1", **overrides):
    trial = build_trial("dqn", env, seeds, steps=steps, overrides={**FAST, **overrides})
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    return train(trial, tracking_uri=uri, experiment="t", results_dir=tmp_path, progress=lambda m: None), uri


def test_mp4_holds_every_frame(tmp_path):
    frames = [np.full((50, 70, 3), i * 20, dtype=np.uint8) for i in range(7)]  # not a multiple of 16: padded
    video.write_mp4(tmp_path / "a.mp4", frames, fps=10)
    assert video.count_frames(tmp_path / "a.mp4") == 7


def test_video_every_records_an_mp4_per_seed_and_evaluation(tmp_path):
    results, uri = run(tmp_path, seeds=(0, 1), **{"train.video_every": "1"})
    client = mlflow.MlflowClient(uri)
    for res in results:
        files = sorted(f.path for f in client.list_artifacts(res.run_id, "videos"))
        assert files == ["videos/eval-0000-step150.mp4", "videos/eval-0001-step300.mp4"]
        local = client.download_artifacts(res.run_id, files[0], str(tmp_path / res.run_id))
        # the episode is capped at 40 steps (env.max_episode_steps): the reset frame plus one per step
        assert 2 <= video.count_frames(local) <= 41
        assert client.get_run(res.run_id).data.tags["video_every"] == "1"
    assert not (tmp_path / "videos").exists()  # the waiting folder is gone once the artifacts are written


def test_video_episode_frames_match_its_length(tmp_path):
    """One frame per env step plus the reset frame, decoded back from the file."""
    from agents import get_agent
    trial = build_trial("dqn", "CartPole-v1", (3,), overrides={**FAST, "env.max_episode_steps": "25"})
    spec = get_agent("dqn")
    agent = spec.cls(trial.agent_config, obs_shape=(4,), obs_dtype=np.float32, num_actions=2, seeds=[3],
                     family="classic", total_steps=1000)
    (path, frames), = video.record_videos(agent, trial, 0, 0, tmp_path)
    assert 2 <= frames <= 26 and video.count_frames(path) == frames


def test_videos_do_not_change_the_numbers(tmp_path):
    plain, _ = run(tmp_path / "a")
    filmed, _ = run(tmp_path / "b", **{"train.video_every": "1"})
    assert plain[0].params_sha256 == filmed[0].params_sha256
    assert plain[0].eval_returns == filmed[0].eval_returns
    assert plain[0].trial_hash == filmed[0].trial_hash


def test_minatar_renders_coloured_frames():
    env = make_env("MinAtar/breakout", 0, eval=True)
    env.reset(seed=0)
    env.unwrapped.render_mode = "rgb_array"
    frame = env.unwrapped.render()
    assert frame.shape == (160, 160, 3) and frame.dtype == np.uint8 and frame.max() > 0
    env.close()


def test_video_on_an_env_that_does_not_render_is_refused(tmp_path):
    trial = build_trial("dqn", "tabular/chain:5", (0,), steps=50, overrides={"train.video_every": "1"})
    with pytest.raises(UsageError, match="train.video_every is not available"):
        train(trial, tracking_uri=f"sqlite:///{tmp_path}/m.db", experiment="t", results_dir=tmp_path,
              progress=lambda m: None)
    assert not (tmp_path / "m.db").exists()  # refused before anything was written


def test_run_records_system_metrics_wall_time_and_compute_tags(tmp_path):
    results, uri = run(tmp_path)
    client = mlflow.MlflowClient(uri)
    run_ = client.get_run(results[0].run_id)
    system = [k for k in run_.data.metrics if k.startswith("system/")]
    assert "system/cpu_utilization_percentage" in system and "system/system_memory_usage_megabytes" in system
    walls = client.get_metric_history(run_.info.run_id, "time/wall_s")
    assert [m.step for m in walls] == [150, 300] and 0 < walls[0].value <= walls[1].value
    tags = run_.data.tags
    assert float(tags["wall_s"]) == pytest.approx(results[0].wall_s, abs=1e-3)
    assert float(tags["seed_steps_per_s"]) == pytest.approx(results[0].sps, rel=1e-3)
    assert tags["torch_device"] == "cpu" and tags["compile"] == "off"
    assert run_.data.params["train.amp"] == "off"
    # the runs start when training starts, before their first metric point, although they were created later
    first = min(m.timestamp for m in client.get_metric_history(run_.info.run_id, "train/epsilon"))
    assert run_.info.start_time <= first


def test_system_metrics_sampled_at_every_log_point_have_one_point_per_step(tmp_path, monkeypatch):
    """A sampler that is always due logs at every log point, and the final checkpoint (at the last log point)
    adds no second point at that step."""
    import sqlite3

    monkeypatch.setenv("MLFLOW_SYSTEM_METRICS_SAMPLING_INTERVAL", "0.001")
    results, uri = run(tmp_path)
    with sqlite3.connect(f"{tmp_path}/mlflow.db") as conn:
        rows = conn.execute("SELECT key, step, count(*) FROM metrics WHERE key LIKE 'system/%' "
                            "GROUP BY run_uuid, key, step").fetchall()
    steps = {step for _, step, _ in rows}
    assert 300 in steps and steps <= set(range(50, 301, 50))  # log points only (sampling starts with the store)
    assert {n for *_, n in rows} == {1}


def test_amp_bf16_trains_and_is_recorded(tmp_path):
    results, uri = run(tmp_path, **{"train.amp": "bf16"})
    run_ = mlflow.MlflowClient(uri).get_run(results[0].run_id)
    assert results[0].status == "completed" and np.isfinite(results[0].final_eval_return)
    assert run_.data.params["train.amp"] == "bf16" and run_.data.tags["kernels"] == "torch"
    assert results[0].trial_hash != build_trial("dqn", "CartPole-v1", (0,), steps=300,
                                                overrides=FAST).trial_hash(0)  # part of identity when on


def test_amp_fp16_on_cpu_is_refused_before_anything_is_written(tmp_path):
    with pytest.raises(UsageError, match="train.amp=fp16 is not available on device cpu"):
        run(tmp_path, **{"train.amp": "fp16"})
    assert not (tmp_path / "mlflow.db").exists()


def test_store_failing_in_the_background_stops_training_with_its_error(tmp_path, monkeypatch):
    """The store is opened while training starts; when it fails, training stops at the next log point with the
    store's error (exit 3 at the command line), not after the whole budget."""
    import suite.recorder as recorder_mod

    def refuse(uri):
        raise TrackingError(f"tracking store {uri} cannot be opened or written: PermissionError: read-only")

    monkeypatch.setattr(recorder_mod, "ensure_store", refuse)
    steps = []
    orig = recorder_mod.Recorder.log_point
    monkeypatch.setattr(recorder_mod.Recorder, "log_point",
                        lambda self, step, eps: steps.append(step) or orig(self, step, eps))
    with pytest.raises(TrackingError, match="cannot be opened or written"):
        run(tmp_path, steps=100_000)
    assert steps and steps[-1] < 100_000


def test_a_classic_run_imports_only_what_it_uses(tmp_path):
    """Start-up: a CartPole run without videos or compile loads no renderer, no mp4 writer, no compiler and no
    other family's emulator (checked in a fresh interpreter)."""
    import subprocess
    import sys
    code = (
        "import sys, pathlib\n"
        "from suite.trainer import train\n"
        "from suite.trial import build_trial\n"
        "t = build_trial('dqn', 'CartPole-v1', (0,), steps=200, overrides={'learning_starts': '50', "
        "'train.eval_every': '200', 'train.eval_episodes': '1'})\n"
        f"d = pathlib.Path({str(tmp_path)!r})\n"
        "train(t, tracking_uri=f'sqlite:///{d}/m.db', experiment='t', results_dir=d, progress=lambda m: None)\n"
        "print(sorted(m for m in ('pygame', 'imageio_ffmpeg', 'torch._inductor', 'torch._dynamo', 'minatar', "
        "'ale_py', 'cv2', 'matplotlib') if m in sys.modules))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                         cwd=Path(__file__).resolve().parents[2])
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "[]"
