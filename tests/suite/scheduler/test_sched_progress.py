"""Progress accounting (trials done/running/failed, env steps, resumed groups) and the summary table."""
import io
from dataclasses import dataclass

from suite.scheduler.core import TrialRecord
from suite.scheduler.progress import Progress, format_table


@dataclass(eq=False)
class G:
    seeds: tuple
    steps: int
    label: str = "g"


def test_progress_counts_steps_and_outcomes():
    a, b, c = G((0, 1), 1000), G((0,), 1000), G((0, 1, 2), 1000)
    out = io.StringIO()
    p = Progress([a, b, c], enabled=True, stream=out, interval=0)
    assert p.total_trials == 6 and p.total_steps == 6000
    p.start(a, 1)
    p.start(b, 1)
    p.step(a, 500)
    p.step(b, 600, resumed=True)  # resumed at 600: those steps exist but were not done by this sweep
    assert p.steps_done() == 2 * 500 + 600 and p.running == 2
    p.step(b, 800)
    assert p._rate() > 0 and p.steps_done() == 2 * 500 + 800
    p.finish(a, [{"status": "completed", "final_eval_return": 1.0}, {"status": "diverged", "final_eval_return": 2.0}])
    p.attempt_failed(b, "boom", final=False)
    p.start(b, 2)
    p.attempt_failed(b, "boom", final=True)
    assert (p.done, p.diverged, p.failed, p.running) == (1, 1, 1, 0)
    assert p.steps_done() == 3000
    line = p.line()
    assert "trials 3/6 (done 1, diverged 1, failed 1)" in line and "ETA" in line and "env steps/s" in line
    text = out.getvalue()
    assert "retry 1: g" in text and "FAILED: g: boom" in text and "done: g: final eval 1.0, 2.0 (1 diverged)" in text
    p.close()


def test_summary_table():
    trials = [TrialRecord("dqn", "default", "CartPole-v1", 0, "h0", "done", final_eval_return=100.0),
              TrialRecord("dqn", "default", "CartPole-v1", 1, "h1", "done", final_eval_return=200.0),
              TrialRecord("dqn", "default", "CartPole-v1", 2, "h2", "failed", error="x"),
              TrialRecord("dqn-soft", "tau=0.1", "CartPole-v1", 0, "h3", "skipped")]
    lines = format_table(trials).splitlines()
    assert lines[0].split() == ["variant", "agent", "env", "seeds", "done", "skipped", "diverged", "failed", "final",
                                "eval", "(mean)"]
    assert lines[2].split() == ["default", "dqn", "CartPole-v1", "3", "2", "0", "0", "1", "150.0"]
    assert lines[3].split() == ["tau=0.1", "dqn-soft", "CartPole-v1", "1", "0", "1", "0", "0", "-"]
