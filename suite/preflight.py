"""Checks a command makes before it spends any work: can it write where it will write?

Shared by the commands (``run``, ``sweep``, ``analyze``, ``reproduce``) so none of them has to import another
command's module (or :mod:`suite.cli`, which imports them all) for it.
"""
from __future__ import annotations

import os
from pathlib import Path

from suite.errors import UsageError

__all__ = ["check_writable"]


def check_writable(folder: Path, what: str = "results folder") -> None:
    """Create ``folder`` if needed and check it can be written, before any work is spent (one-line UsageError)."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"{what} {folder} cannot be created: {exc.strerror}") from None
    if not os.access(folder, os.W_OK):
        raise UsageError(f"{what} {folder} is not writable")
