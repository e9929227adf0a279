"""Live progress (trials done/running/failed, env steps per second, ETA) and the end-of-sweep table."""
from __future__ import annotations

import math
import sys
import threading
import time
from typing import Any, Sequence, TextIO

__all__ = ["Progress", "format_table"]


class Progress:
    """Thread-safe progress over a set of groups. Steps are env steps summed over seeds.

    With ``enabled`` and a terminal it draws a tqdm bar; otherwise (logs, CI) it prints a status line at most
    every ``interval`` seconds and one line per group event.
    """

    def __init__(self, groups: Sequence[Any], *, enabled: bool = True, stream: TextIO | None = None,
                 interval: float = 30.0) -> None:
        self.stream = stream or sys.stderr
        self.enabled = enabled
        self.total_trials = sum(len(g.seeds) for g in groups)
        self.total_steps = sum(g.steps * len(g.seeds) for g in groups)
        self._width = {id(g): len(g.seeds) for g in groups}
        self._step: dict[int, int] = {}
        self._base: dict[int, int] = {}
        self.done = self.failed = self.diverged = self.running = 0
        self.started = time.perf_counter()
        self._lock = threading.Lock()
        self._last_print = 0.0
        self._interval = interval
        self._bar = None
        if enabled and self.total_trials and getattr(self.stream, "isatty", lambda: False)():
            try:
                from tqdm import tqdm

                self._bar = tqdm(total=self.total_steps, unit="step", unit_scale=True, file=self.stream,
                                 dynamic_ncols=True, desc="sweep")
            except Exception:
                self._bar = None

    # -- events (called from backend threads) -----------------------------------------------------------
    def start(self, group: Any, attempt: int) -> None:
        with self._lock:
            self.running += 1
            if attempt > 1:
                self._say(f"retry {attempt - 1}: {group.label}")
            self._refresh()

    def step(self, group: Any, step: int, resumed: bool = False) -> None:
        """``step``: env steps per seed reached by ``group``; ``resumed``: it restarted from a checkpoint there
        (steps before it are not counted in the rate)."""
        with self._lock:
            key = id(group)
            if resumed:
                self._base[key] = step - (self._step.get(key, 0) - self._base.get(key, 0))
            self._step[key] = max(self._step.get(key, 0), step)
            self._refresh()

    def attempt_failed(self, group: Any, error: str, final: bool) -> None:
        with self._lock:
            self.running -= 1
            if final:
                self.failed += len(group.seeds)
                self._step[id(group)] = group.steps  # counts as spent for the ETA
            self._say(f"{'FAILED' if final else 'attempt failed'}: {group.label}: {error}")
            self._refresh(force=True)

    def finish(self, group: Any, results: Sequence[dict]) -> None:
        with self._lock:
            self.running -= 1
            div = sum(1 for r in results if r.get("status") == "diverged")
            self.diverged += div
            self.done += len(results) - div
            self._step[id(group)] = group.steps
            finals = ", ".join(_fmt(r.get("final_eval_return")) for r in results)
            cost = ""
            if results and results[0].get("wall_s") is not None:
                cpu = results[0].get("group_cpu_s")
                cost = f"; {results[0]['wall_s']:.0f} s" + (f", {cpu:.0f} CPU-s" if cpu is not None else "")
            self._say(f"done: {group.label}: final eval {finals}" + (f" ({div} diverged)" if div else "") + cost)
            self._refresh(force=True)

    # -- rendering ----------------------------------------------------------------------------------------
    def steps_done(self) -> int:
        return sum(s * self._width.get(k, 1) for k, s in self._step.items())

    def _rate(self) -> float:
        fresh = sum((s - self._base.get(k, 0)) * self._width.get(k, 1) for k, s in self._step.items())
        return fresh / max(time.perf_counter() - self.started, 1e-9)

    def line(self) -> str:
        done = self.steps_done()
        rate = self._rate()
        left = max(self.total_steps - done, 0)
        eta = _hms(left / rate) if rate > 0 else "?"
        return (f"trials {self.done + self.diverged + self.failed}/{self.total_trials} "
                f"(done {self.done}, diverged {self.diverged}, failed {self.failed}), groups running {self.running}; "
                f"{rate:,.0f} env steps/s; {done / max(self.total_steps, 1):.0%}; ETA {eta}")

    def _refresh(self, force: bool = False) -> None:
        if not self.enabled:
            return
        if self._bar is not None:
            self._bar.n = min(self.steps_done(), self.total_steps)
            self._bar.set_postfix_str(f"done {self.done} div {self.diverged} fail {self.failed} "
                                      f"run {self.running} | {self._rate():,.0f} steps/s", refresh=True)
            return
        now = time.perf_counter()
        if force or now - self._last_print >= self._interval:
            self._last_print = now
            print(f"[sweep {_hms(now - self.started)}] {self.line()}", file=self.stream, flush=True)

    def _say(self, msg: str) -> None:
        if not self.enabled:
            return
        if self._bar is not None:
            self._bar.write(msg, file=self.stream)
        else:
            print(f"[sweep {_hms(time.perf_counter() - self.started)}] {msg}", file=self.stream, flush=True)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.n = min(self.steps_done(), self.total_steps)
            self._bar.close()


def _fmt(x: Any) -> str:
    return "nan" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.1f}"


def _hms(seconds: float) -> str:
    seconds = int(round(seconds))
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def format_table(trials: Sequence[Any]) -> str:
    """One row per (variant, agent, env): seed counts by status and the mean final eval return of this sweep's
    completed trials. The ``planned``, ``unpushed`` and ``unstarted`` columns appear only when some trial has
    that status."""
    optional = ("unpushed", "unstarted")
    rows: dict[tuple[str, str, str], dict[str, Any]] = {}
    for t in trials:
        row = rows.setdefault((t.variant, t.agent, t.env), {"done": 0, "skipped": 0, "failed": 0, "diverged": 0,
                                                            "unpushed": 0, "unstarted": 0, "planned": 0,
                                                            "finals": []})
        row[t.status] = row.get(t.status, 0) + 1
        if t.status == "done" and t.final_eval_return is not None and not math.isnan(t.final_eval_return):
            row["finals"].append(t.final_eval_return)
    planned = any(r["planned"] for r in rows.values())
    shown = [k for k in optional if any(r[k] for r in rows.values())]
    header = ["variant", "agent", "env", "seeds", *(["planned"] if planned else []), "done", "skipped", "diverged",
              "failed", *shown, "final eval (mean)"]
    body = []
    for (variant, agent, env), r in rows.items():
        n = sum(r[k] for k in ("done", "skipped", "failed", "diverged", "planned", *optional))
        mean = f"{sum(r['finals']) / len(r['finals']):.1f}" if r["finals"] else "-"
        body.append([variant, agent, env, str(n), *([str(r["planned"])] if planned else []), str(r["done"]),
                     str(r["skipped"]), str(r["diverged"]), str(r["failed"]), *(str(r[k]) for k in shown), mean])
    widths = [max(len(x) for x in col) for col in zip(header, *body)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(header, widths))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths)) for row in body]
    return "\n".join(lines)
