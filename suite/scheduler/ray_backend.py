"""The Ray backend: one Ray task per group attempt, with ``num_cpus``/``num_gpus`` per group (fractional GPUs
let several small groups share one device).

``address`` (or ``$RAY_ADDRESS``) joins an existing cluster with ``ray.init(address=...)``; otherwise a local
instance is started (and shut down at the end). On a cluster every node needs this package installed (the
same image), and the tracking URI must be reachable from every node (an MLflow server; a SQLite file only
works when all workers share its filesystem). Retries are the scheduler's, not Ray's: a failed or crashed
attempt is resubmitted, resuming from the group's checkpoint, which any node reaches when checkpoints live in a
remote store (``--checkpoint-uri``; the default with an http(s) tracking URI is the tracking server's artifact
store, see :mod:`suite.checkpoint_store`).

Node loss: an attempt whose node (or worker process) died is resubmitted without using one of the group's
``retries`` (the group did nothing wrong), up to :data:`MAX_LOST` times per group; Ray places it on a live node,
where it resumes from the group's last uploaded checkpoint and continues the same MLflow runs.
"""
from __future__ import annotations

import os
from typing import Any, Callable, Sequence

from suite.errors import UsageError
from suite.scheduler.backend import Failure, Outcome, Task, failure_of

__all__ = ["RayBackend", "MAX_LOST"]

#: attempts of one group lost to dead nodes or workers that are resubmitted without counting as retries
MAX_LOST = 3


def _lost_node(exc: BaseException) -> bool:
    """Whether ``ray.get`` failed because the task's node or worker process died (not the task's own error)."""
    import ray.exceptions as rex

    kinds = tuple(getattr(rex, n) for n in ("NodeDiedError", "WorkerCrashedError", "LocalRayletDiedError",
                                           "ObjectLostError", "OwnerDiedError") if hasattr(rex, n))
    return isinstance(exc, kinds)


def _run_remote(job: dict[str, Any]) -> dict[str, Any]:
    """Body of the Ray task: run one attempt (a job in its JSON form) in this worker process; never raises."""
    from suite.scheduler.worker import run_group

    try:
        return {"ok": True, "results": run_group(job)}
    except BaseException as exc:  # noqa: BLE001 - reported to the scheduler, which decides on retries
        text = str(exc).strip().splitlines()
        return {"ok": False, "error": f"{type(exc).__name__}: {text[0] if text else ''}"[:500],
                "failure": failure_of(exc).value}


class RayBackend:
    name = "ray"

    def __init__(self, workers: int | None, address: str | None = None) -> None:
        try:
            import ray  # noqa: F401
        except ImportError:
            raise UsageError("--backend ray needs Ray; allowed: install it with `pip install 'targetbench[ray]'` "
                             "or use --backend local") from None
        self.workers = workers
        self.lost = 0  # attempts resubmitted because their node or worker died
        self.address = address or os.environ.get("RAY_ADDRESS")

    def _init(self) -> bool:
        """Connect or start; True when this call started Ray (and must shut it down)."""
        import ray

        if ray.is_initialized():
            return False
        if self.address:
            ray.init(address=self.address, log_to_driver=False)
        else:
            ray.init(num_cpus=self.workers, include_dashboard=False, log_to_driver=False)
        return True

    def run(self, tasks: Sequence[Task], progress: Any, on_outcome: Callable[[Task, Outcome], None]) -> list[Outcome]:
        import ray

        started = self._init()
        remote = ray.remote(max_retries=0)(_run_remote)
        try:
            outcomes: list[Outcome | None] = [None] * len(tasks)
            pending: dict[Any, tuple[int, int]] = {}
            lost = [0] * len(tasks)

            def submit(i: int, attempt: int) -> None:
                t = tasks[i]
                ref = remote.options(num_cpus=t.num_cpus, num_gpus=t.num_gpus, max_retries=0).remote(t.job.to_json())
                pending[ref] = (i, attempt)
                progress.start(t.group, attempt)

            for i in range(len(tasks)):
                submit(i, 1)
            while pending:
                ready, _ = ray.wait(list(pending), num_returns=1)
                ref = ready[0]
                i, attempt = pending.pop(ref)
                task = tasks[i]
                try:
                    reply = ray.get(ref)
                except Exception as exc:  # the worker process died (crash, OOM, node lost)
                    text = str(exc).strip().splitlines()
                    reply = {"ok": False, "error": f"{type(exc).__name__}: {text[0] if text else ''}"[:500]}
                    if _lost_node(exc) and lost[i] < MAX_LOST:
                        lost[i] += 1
                        self.lost += 1
                        progress.attempt_failed(task.group, reply["error"], final=False)
                        submit(i, attempt)  # the same attempt again, on a live node: not one of its retries
                        continue
                if reply["ok"]:
                    progress.finish(task.group, reply["results"])
                    outcomes[i] = Outcome(True, reply["results"], None, attempt)
                    on_outcome(task, outcomes[i])
                    continue
                failure = Failure(reply.get("failure", Failure.ERROR.value))
                final = attempt >= task.retries + 1 or not failure.retried
                progress.attempt_failed(task.group, reply["error"], final=final)
                if final:
                    outcomes[i] = Outcome(False, [], reply["error"], attempt, failure)
                    on_outcome(task, outcomes[i])
                else:
                    submit(i, attempt + 1)
            return [o for o in outcomes if o is not None]
        except BaseException:
            for ref in list(locals().get("pending", {})):
                try:
                    ray.cancel(ref)
                except Exception:
                    pass
            raise
        finally:
            if started:
                ray.shutdown()
