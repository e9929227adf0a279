"""MLflow system metrics (``system/*``: CPU, memory, disk, network, and GPU when present) for batched runs.

MLflow's own switch (``mlflow.enable_system_metrics_logging`` / ``start_run(log_system_metrics=True)``) starts
one ``SystemMetricsMonitor`` thread per active fluent run, which polls the store for the run's status and writes
with ``log_batch`` on its own. Our runs are made through a client (:class:`suite.tracking.RunGroup`, one run
per seed, many per process), and every point goes out through the group's buffer (checkpointed, written in
bulk, exactly once). So one :class:`SystemSampler` per process samples with MLflow's own monitor classes (the
same metric names the MLflow UI's "System metrics" tab shows: ``system/cpu_utilization_percentage``,
``system/system_memory_usage_megabytes``, ``system/gpu_0_utilization_percentage``, ...) in a thread, and the
training thread takes the averages at its log points and logs them to every run of the group (one machine
runs them all). Sampling costs a few psutil calls every ``interval_s`` seconds (MLflow's default, 10 s, or
``MLFLOW_SYSTEM_METRICS_SAMPLING_INTERVAL``); the training thread only reads a dict.

GPU metrics need ``nvidia-ml-py`` (``pynvml``) and a GPU: where either is missing there are none, silently.
"""
from __future__ import annotations

import logging
import os
import threading
from typing import Any

from analysis import record_names as names

__all__ = ["SystemSampler", "PREFIX"]

#: the prefix MLflow gives system metrics (its UI groups them by it)
PREFIX = names.SYSTEM_PREFIX


def _monitors(gpu: bool) -> list[Any]:
    from mlflow.system_metrics.metrics.cpu_monitor import CPUMonitor  # noqa: PLC0415
    from mlflow.system_metrics.metrics.disk_monitor import DiskMonitor  # noqa: PLC0415
    from mlflow.system_metrics.metrics.network_monitor import NetworkMonitor  # noqa: PLC0415

    monitors = [CPUMonitor(), DiskMonitor(), NetworkMonitor()]
    if gpu:
        try:
            from mlflow.system_metrics.metrics.gpu_monitor import GPUMonitor  # noqa: PLC0415

            monitors.append(GPUMonitor())
        except Exception:  # no pynvml, or no GPU it can see
            pass
    return monitors


class SystemSampler:
    """Samples the machine every ``interval_s`` seconds in a daemon thread; :meth:`take` returns the mean of
    each metric since the last take (``system/``-prefixed), sampling once more first when nothing was sampled
    since (so even a run shorter than the interval records its system metrics)."""

    def __init__(self, interval_s: float | None = None, gpu: bool = False) -> None:
        env = os.environ.get("MLFLOW_SYSTEM_METRICS_SAMPLING_INTERVAL")
        self.interval_s = float(interval_s if interval_s is not None else env or 10.0)
        logging.getLogger("mlflow.system_metrics").setLevel(logging.ERROR)
        self._monitors = _monitors(gpu)
        self._lock = threading.Lock()
        self._samples = 0
        self._stop = threading.Event()
        self._sample()  # psutil's CPU percentage counts from its previous call: this sets the origin
        with self._lock:
            for monitor in self._monitors:
                monitor.clear_metrics()
            self._samples = 0
        self._thread = threading.Thread(target=self._run, name="targetbench-system-metrics", daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        with self._lock:
            for monitor in self._monitors:
                try:
                    monitor.collect_metrics()
                except Exception:  # one failing source (a disk vanished) must not stop the others
                    pass
            self._samples += 1

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self._sample()

    def take(self) -> dict[str, float]:
        """``{system/NAME: mean since the last take}``."""
        if self._samples == 0:
            self._sample()
        with self._lock:
            out: dict[str, float] = {}
            for monitor in self._monitors:
                try:
                    out.update({PREFIX + k: float(v) for k, v in monitor.aggregate_metrics().items()})
                except Exception:
                    pass
                monitor.clear_metrics()
            self._samples = 0
        return out

    @property
    def due(self) -> bool:
        """Whether a sample was taken since the last :meth:`take` (the training thread's cue to log)."""
        return self._samples > 0

    def close(self) -> None:
        self._stop.set()
