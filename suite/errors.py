"""User-facing errors: each carries a one-line message and the exit code the CLI returns for it."""
from __future__ import annotations

__all__ = ["TargetBenchError", "UsageError", "TrackingError", "CheckpointError", "EXIT_CODES"]


class TargetBenchError(Exception):
    """An error the user can fix; the CLI prints ``targetbench: error: <message>`` and exits with ``exit_code``."""

    exit_code = 2


class UsageError(TargetBenchError):
    """Bad input: unknown name, bad value, malformed file."""

    exit_code = 2


class TrackingError(TargetBenchError):
    """The tracking store cannot be reached or written."""

    exit_code = 3


class CheckpointError(TargetBenchError):
    """A checkpoint is missing, corrupt, or belongs to another trial."""

    exit_code = 4


#: documented exit codes of the ``targetbench`` command
EXIT_CODES = {0: "success", 1: "unexpected internal error (a bug: rerun with --debug and report it)",
              2: "bad input (unknown agent/env, bad --set value, malformed file)",
              3: "tracking store unreachable or not writable", 4: "bad checkpoint", 130: "interrupted"}
