"""What a run record needs to be re-run: git commit, dirty flag, package versions and hardware."""
from __future__ import annotations

import functools
import os
import platform
import socket
import subprocess
from importlib import metadata
from pathlib import Path

import torch
from threadpoolctl import threadpool_info, threadpool_limits

from agents.nn.host_qnet import flushes_denormals

__all__ = ["provenance_tags", "package_versions", "git_state", "cpu_model", "blas_kernels", "resolve_device", "set_cpu_threads", "usable_cores",
           "replica_threads", "apply_cpu_threads", "AUTO_THREADS_ENV"]

#: environment variable that caps ``train.threads=auto`` (the local scheduler sets it to its share of the cores
#: when it runs several groups at once, so that groups do not oversubscribe the machine)
AUTO_THREADS_ENV = "TARGETBENCH_AUTO_THREADS"
#: the thread choice of this process's training, for the ``threads_resolved`` tag (set by apply_cpu_threads)
_resolved_threads: dict[str, str] = {}

_PACKAGES = ("targetbench", "torch", "numpy", "gymnasium", "minatar", "ale-py", "mlflow", "pandas")
_SOURCE_ROOT = Path(__file__).resolve().parents[1]


def resolve_device(name: str = "auto") -> torch.device:
    """``auto`` picks CUDA when a GPU is present, else the CPU; ``cpu``/``cuda``/``cuda:N`` are taken as given."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        from suite.errors import UsageError
        raise UsageError(f"device {name!r} requested but CUDA is not available; allowed here: auto, cpu")
    return device


@functools.lru_cache(maxsize=1)
def package_versions() -> dict[str, str]:
    """Installed versions of the packages that decide a run's numbers."""
    out = {"python": platform.python_version()}
    for name in _PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not-installed"
    return out


@functools.lru_cache(maxsize=1)
def git_state() -> tuple[str, bool]:
    """(commit, dirty) of the source tree the suite runs from; ("unknown", False) outside a git checkout."""
    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", str(_SOURCE_ROOT), *args], capture_output=True, text=True,
                              timeout=10, check=True).stdout.strip()
    try:
        commit = git("rev-parse", "HEAD")
        dirty = bool(git("status", "--porcelain", "--untracked-files=no"))
        return commit, dirty
    except (OSError, subprocess.SubprocessError):
        return "unknown", False


@functools.lru_cache(maxsize=1)
def cpu_model() -> str:
    """The processor's model name (``/proc/cpuinfo``; ``platform.processor()`` elsewhere), or ``unknown``.

    Recorded because another processor may take other BLAS or torch kernels, which can change the last bits of a
    run (docs/reliability.md)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith(("model name", "hardware", "cpu model")):
                return line.split(":", 1)[1].strip() or "unknown"
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def blas_kernels() -> str:
    """Which BLAS numpy and torch computed with: ``library version architecture`` of every loaded BLAS (OpenBLAS
    picks its kernel by processor: ``Haswell``, ``SkylakeX``, ``Zen``...), then torch's CPU capability
    (``AVX2``, ``AVX512``...). The same seed gives the same bits only where these match."""
    import numpy  # noqa: F401  (loads numpy's BLAS so that threadpoolctl sees it)

    libs = [" ".join(str(x) for x in (i.get("internal_api"), i.get("version"), i.get("architecture")) if x)
            for i in threadpool_info() if i.get("user_api") == "blas"]
    return "; ".join([*libs, f"torch {torch.backends.cpu.get_cpu_capability()}"])


def set_cpu_threads(torch_threads: int, blas_threads: int = 1) -> None:
    """Set torch's intra-op and numpy's BLAS thread counts (0 leaves a library's default), and flush subnormal
    floats to zero on this thread. Why the latter: optimizer moments of parameters that stop getting gradient
    decay into the subnormal range, where x86 arithmetic is many times slower (it made Adam's step several
    times slower on CartPole's MLP); values below 1.2e-38 carry nothing a Q-network needs. Recorded in the
    ``torch_threads``, ``blas_threads`` and ``cpu_flush_denormal`` tags."""
    if torch_threads:
        torch.set_num_threads(torch_threads)
    if blas_threads:
        threadpool_limits(blas_threads, user_api="blas")
    torch.set_flush_denormal(True)


def usable_cores() -> int:
    """Cores this process may run on (its CPU affinity), capped by ``$TARGETBENCH_AUTO_THREADS`` when set."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:
        cores = os.cpu_count() or 1
    cap = os.environ.get(AUTO_THREADS_ENV, "")
    return max(1, min(cores, int(cap)) if cap.isdigit() and int(cap) > 0 else cores)


def replica_threads(setting: str | int) -> int:
    """Threads an agent may split its replicas over, before its kernels are known (``train.threads``: ``auto``
    or 0 = the usable cores, N = N). The agent uses them only with numpy kernels, whose results are bitwise
    the same for any count, and caps them at one thread per ``MIN_REPLICAS_PER_THREAD`` replicas (below that
    the hand-off costs more than the split saves)."""
    if str(setting) == "auto" or int(setting) == 0:
        return usable_cores()
    return int(setting)


def apply_cpu_threads(setting: str | int, agent: object) -> int:
    """Set the process's thread counts for ``agent`` (built with :func:`replica_threads`) and return the threads
    its training computes on, recorded as the ``threads_resolved`` tag.

    numpy-kernel agents: their replica split is theirs (``agent.update_threads``); their torch ops (optimizer,
    copies) and BLAS calls are small and fastest on one thread each (2 torch threads made 16 CartPole seeds 2x
    slower). Other agents: ``auto`` is one torch thread (more may change the last bits, see TrainConfig); a
    count is taken as torch intra-op threads (0: torch's default)."""
    setting = str(setting)
    if getattr(agent, "kernels", "torch") == "numpy":
        set_cpu_threads(1, 1)
        resolved = int(getattr(agent, "update_threads", 1))
    elif setting == "auto":
        set_cpu_threads(1, 1)
        resolved = 1
    else:
        set_cpu_threads(int(setting), 1 if int(setting) else 0)
        resolved = torch.get_num_threads()
    _resolved_threads.update(threads_resolved=str(resolved), threads_setting=setting)
    return resolved


def provenance_tags(device: torch.device) -> dict[str, str]:
    """Tags recorded with every run. Paths are never recorded (no home directories in run records)."""
    commit, dirty = git_state()
    tags = {"git_commit": commit, "git_dirty": str(dirty).lower(), "hostname": socket.gethostname(),
            "platform": platform.platform(terse=True), "cpu_count": str(os.cpu_count()),
            "torch_device": str(device), "torch_threads": str(torch.get_num_threads()),
            "blas_threads": ",".join(str(i["num_threads"]) for i in threadpool_info() if i["user_api"] == "blas"),
            "cpu_flush_denormal": str(flushes_denormals()).lower(), "cpu_model": cpu_model(),
            "blas_kernel": blas_kernels(), **_resolved_threads}
    if device.type == "cuda":
        tags["gpu"] = torch.cuda.get_device_name(device)
    tags.update({f"version.{k}": v for k, v in package_versions().items()})
    return tags
