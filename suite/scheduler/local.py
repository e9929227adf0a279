"""The local backend: a pool of worker subprocesses on this machine (no server).

Each attempt of a group is one ``python -m suite.scheduler.worker`` process (one torch thread; numpy-kernel
agents split their replicas over the group's share of the cores, ``$TARGETBENCH_AUTO_THREADS``), so a crash
or a SIGKILL costs only that attempt: the group is retried, resuming from its checkpoint, up to ``retries``
times. ``workers`` groups run at a time.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Sequence

from suite.provenance import AUTO_THREADS_ENV, usable_cores
from suite.scheduler.backend import Failure, Outcome, Task

__all__ = ["LocalBackend"]


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


class LocalBackend:
    name = "local"

    def __init__(self, workers: int) -> None:
        self.workers = max(1, int(workers))
        self._live: set[subprocess.Popen] = set()
        self._lock = threading.Lock()
        self._stopping = False

    def live_pids(self) -> list[int]:
        with self._lock:
            return [p.pid for p in self._live]

    def run(self, tasks: Sequence[Task], progress: Any, on_outcome: Callable[[Task, Outcome], None]) -> list[Outcome]:
        outcomes: list[Outcome | None] = [None] * len(tasks)

        def one(i: int) -> None:
            task = tasks[i]
            out = self._run_task(task, progress)
            outcomes[i] = out
            if out.ok or not self._stopping:  # an interrupted group stays resumable, not failed
                on_outcome(task, out)

        pool = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="sweep")
        previous = None
        if threading.current_thread() is threading.main_thread():
            # SIGTERM stops the sweep like Ctrl-C: workers are told to stop, nothing is left running
            previous = signal.signal(signal.SIGTERM, _interrupt)
        try:
            futures = [pool.submit(one, i) for i in range(len(tasks))]
            for f in futures:
                f.result()
        except BaseException:
            self._stopping = True
            pool.shutdown(wait=False, cancel_futures=True)
            self._stop_children()
            raise
        finally:
            if previous is not None:
                signal.signal(signal.SIGTERM, previous)
        pool.shutdown(wait=True)
        return [o for o in outcomes if o is not None]

    def _run_task(self, task: Task, progress: Any) -> Outcome:
        error, failure = "", Failure.INTERRUPTED
        for attempt in range(1, task.retries + 2):
            if self._stopping:
                break
            progress.start(task.group, attempt)
            ok, results, error, failure = self._attempt(task, progress)
            if ok:
                progress.finish(task.group, results)
                return Outcome(True, results, None, attempt)
            final = attempt == task.retries + 1 or not failure.retried
            progress.attempt_failed(task.group, error, final=final)
            if final:
                return Outcome(False, [], error, attempt, failure)
        return Outcome(False, [], error or "interrupted", task.retries + 1, failure)

    def _attempt(self, task: Task, progress: Any) -> tuple[bool, list[dict], str, Failure]:
        env = dict(os.environ)
        env.setdefault("OMP_NUM_THREADS", "1")
        env.setdefault("MKL_NUM_THREADS", "1")
        # train.threads=auto in each of the groups running at once: their share of the cores, not all of them
        env.setdefault(AUTO_THREADS_ENV, str(max(1, usable_cores() // self.workers)))
        env["PYTHONUNBUFFERED"] = "1"
        with tempfile.TemporaryFile(mode="w+") as err:
            proc = subprocess.Popen([sys.executable, "-m", "suite.scheduler.worker"], stdin=subprocess.PIPE,
                                    stdout=subprocess.PIPE, stderr=err, text=True, env=env)
            with self._lock:
                self._live.add(proc)
            results: list[dict] | None = None
            error, failure = "", Failure.ERROR
            try:
                assert proc.stdin is not None and proc.stdout is not None
                proc.stdin.write(json.dumps(task.job.to_json()))
                proc.stdin.close()
                for line in proc.stdout:
                    try:
                        event = json.loads(line)
                    except ValueError:
                        continue
                    kind = event.get("event")
                    if kind == "progress":
                        progress.step(task.group, int(event["step"]), bool(event.get("resumed")))
                    elif kind == "result":
                        results = event["results"]
                        for r in results:  # the whole process's CPU time (startup included), for cost models
                            r["group_cpu_s"] = event.get("cpu_s")
                    elif kind == "error":
                        error = event.get("error", "")
                        failure = Failure(event.get("failure", Failure.ERROR.value))
                code = proc.wait()
            finally:
                with self._lock:
                    self._live.discard(proc)
            if code == 0 and results is not None:
                return True, results, "", failure
            if not error:
                err.seek(0)
                tail = [ln for ln in err.read().strip().splitlines() if ln.strip()][-1:]
                why = (f"killed by signal {signal.Signals(-code).name}" if code < 0
                       else f"exited with status {code}")
                error = f"worker {why}" + (f": {tail[0][:300]}" if tail else "")
            return False, [], error, failure

    def _stop_children(self) -> None:
        with self._lock:
            live = list(self._live)
        for p in live:  # SIGTERM first: the worker marks its runs KILLED and the checkpoint stays valid
            try:
                p.send_signal(signal.SIGTERM)
            except OSError:
                pass
        for p in live:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
