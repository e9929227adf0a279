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

__all__ = ["provenance_tags", "package_versions", "git_state", "resolve_device"]

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


def provenance_tags(device: torch.device) -> dict[str, str]:
    """Tags recorded with every run. Paths are never recorded (no home directories in run records)."""
    commit, dirty = git_state()
    tags = {"git_commit": commit, "git_dirty": str(dirty).lower(), "hostname": socket.gethostname(),
            "platform": platform.platform(terse=True), "cpu_count": str(os.cpu_count()),
            "torch_device": str(device), "torch_threads": str(torch.get_num_threads())}
    if device.type == "cuda":
        tags["gpu"] = torch.cuda.get_device_name(device)
    tags.update({f"version.{k}": v for k, v in package_versions().items()})
    return tags
