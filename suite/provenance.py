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

__all__ = ["provenance_tags", "package_versions", "git_state", "resolve_device", "set_cpu_threads"]

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


def provenance_tags(device: torch.device) -> dict[str, str]:
    """Tags recorded with every run. Paths are never recorded (no home directories in run records)."""
    commit, dirty = git_state()
    tags = {"git_commit": commit, "git_dirty": str(dirty).lower(), "hostname": socket.gethostname(),
            "platform": platform.platform(terse=True), "cpu_count": str(os.cpu_count()),
            "torch_device": str(device), "torch_threads": str(torch.get_num_threads()),
            "blas_threads": ",".join(str(i["num_threads"]) for i in threadpool_info() if i["user_api"] == "blas"),
            "cpu_flush_denormal": str(flushes_denormals()).lower()}
    if device.type == "cuda":
        tags["gpu"] = torch.cuda.get_device_name(device)
    tags.update({f"version.{k}": v for k, v in package_versions().items()})
    return tags
