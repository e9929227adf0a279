"""The command line: listings, the --json contract of `run`, and one-line errors with documented exit codes."""
import json
import subprocess
import sys

import pytest

from suite.cli import main

TINY = ["--steps", "120", "--set", "learning_starts=50", "--set", "buffer_size=100", "--set", "batch_size=8",
        "--set", "train.eval_every=60", "--set", "train.eval_episodes=1", "--set", "hidden_sizes=8"]


def test_agents_lists_the_registry_with_fields(capsys):
    assert main(["agents", "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    names = [r["name"] for r in rows]
    assert {"dqn", "dqn-soft", "double-dqn", "dqn-no-target"} <= set(names)
    dqn = rows[names.index("dqn")]
    assert dqn["description"] and any(f["name"] == "target_period" for f in dqn["fields"])
    assert main(["agents"]) == 0 and "dqn-soft" in capsys.readouterr().out


def test_envs_lists_every_family(capsys):
    assert main(["envs", "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert {r["family"] for r in rows} == {"classic", "minatar", "atari", "tabular"}
    assert {"CartPole-v1", "Acrobot-v1", "MountainCar-v0", "MinAtar/breakout"} <= {r["id"] for r in rows}


def test_run_json_contract(tmp_path, capsys):
    code = main(["run", "--agent", "dqn", "--env", "CartPole-v1", "--seed", "0,1", *TINY, "--json", "--quiet",
                 "--tracking-uri", f"sqlite:///{tmp_path}/m.db", "--results", str(tmp_path)])
    assert code == 0
    lines = capsys.readouterr().out.splitlines()
    rows = [json.loads(line) for line in lines]
    assert [r["seed"] for r in rows] == [0, 1]
    for r in rows:
        for key in ("run_id", "agent", "env", "seed", "steps", "final_eval_return", "eval_returns",
                    "params_sha256", "wall_s", "sps"):
            assert key in r, key
        assert r["steps"] == 120 and r["eval_returns"][-1] == [120, r["final_eval_return"]]
        assert len(r["params_sha256"]) == 64 and r["sps"] > 0


@pytest.mark.parametrize("argv, code, fragment", [
    (["run", "--agent", "dqm", "--env", "CartPole-v1"], 2, "unknown agent 'dqm'; registered: "),
    (["run", "--agent", "dqn", "--env", "CartPol-v1"], 2, "unknown environment 'CartPol-v1'"),
    (["run", "--agent", "dqn", "--env", "CartPole-v1", "--set", "learning_rate"], 2, "key=value"),
    (["run", "--agent", "dqn", "--env", "CartPole-v1", "--set", "learning_rat=1"], 2, "unknown config key"),
    (["run", "--agent", "dqn", "--env", "CartPole-v1", "--set", "learning_rate=-1"], 2, "out of range"),
    (["run", "--agent", "dqn", "--env", "CartPole-v1", "--set", "target_period=0"], 2, "target_period=0"),
    (["run", "--agent", "dqn-soft", "--env", "CartPole-v1", "--set", "tau=2"], 2, "tau=2.0"),
    (["run", "--agent", "dqn", "--env", "CartPole-v1", "--set", "batch_size=20000"], 2, "larger than buffer"),
    (["run", "--agent", "dqn", "--env", "CartPole-v1", "--set", "gamma=x"], 2, "gamma='x'"),
    (["run", "--agent", "dqn", "--env", "CartPole-v1", "--set", "train.eval_every=0"], 2, "eval_every=0"),
    (["run", "--agent", "dqn", "--env", "CartPole-v1", "--set", "train.foo=1"], 2, "unknown config key 'train.foo'"),
    (["run", "--agent", "dqn", "--env", "CartPole-v1", "--set", "env.max_episode_steps=-5"], 2,
     "max_episode_steps"),
    (["run", "--agent", "dqn", "--env", "CartPole-v1", "--set", "env.sticky=1"], 2, "env.sticky"),
    (["run", "--agent", "dqn", "--env", "CartPole-v1", "--seed", "a,b"], 2, "--seed 'a,b'"),
    (["run", "--agent", "dqn", "--env", "CartPole-v1", "--seed", "1,1"], 2, "distinct"),
    (["run", "--agent", "dqn", "--env", "CartPole-v1", "--steps", "0"], 2, "--steps 0"),
    (["run", "--agent", "dqn", "--env", "CartPole-v1", "--steps", "ten"], 2, "invalid int value"),
    (["run", "--env", "CartPole-v1"], 2, "--agent"),
    (["fly"], 2, "invalid choice"),
    (["run", "--agent", "dqn", "--env", "CartPole-v1", *TINY, "--tracking-uri", "http://127.0.0.1:9"], 3,
     "unreachable"),
    (["run", "--agent", "dqn", "--env", "CartPole-v1", *TINY, "--tracking-uri", "ftp://x"], 3, "not supported"),
])
def test_bad_input_is_one_line_with_exit_code(argv, code, fragment, capsys, tmp_path):
    assert main([*argv, "--results", str(tmp_path)] if argv[0] == "run" else argv) == code
    err = capsys.readouterr().err.strip()
    assert err.startswith("targetbench: error:") and fragment in err, err
    assert "\n" not in err and "Traceback" not in err


def test_unwritable_results_folder(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert main(["run", "--agent", "dqn", "--env", "CartPole-v1", *TINY, "--results", str(blocker / "r")]) == 2
    assert "results folder" in capsys.readouterr().err


def test_corrupt_checkpoint_on_resume_keeps_file(tmp_path, capsys):
    args = ["run", "--agent", "dqn", "--env", "CartPole-v1", *TINY, "--quiet", "--results", str(tmp_path),
            "--tracking-uri", f"sqlite:///{tmp_path}/m.db", "--checkpoint-dir", str(tmp_path / "ck")]
    assert main(args) == 0
    (ckpt,) = (tmp_path / "ck").glob("*.pt")
    ckpt.write_bytes(b"not a checkpoint")
    assert main([*args, "--resume"]) == 4
    assert "is corrupt" in capsys.readouterr().err
    assert ckpt.read_bytes() == b"not a checkpoint"  # nothing overwritten


def test_console_script_exit_code_and_no_traceback():
    proc = subprocess.run([sys.executable, "-m", "suite", "run", "--agent", "nope", "--env", "CartPole-v1"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "registered:" in proc.stderr


def test_every_subcommand_has_help():
    for sub in ("agents", "envs", "run", "convergence", "sweep", "analyze", "reproduce", "push", "verify", "seeds"):
        proc = subprocess.run([sys.executable, "-m", "suite", sub, "--help"], capture_output=True, text=True,
                              timeout=120)
        assert proc.returncode == 0 and "usage:" in proc.stdout, sub
