"""User-facing errors: each carries a one-line message and the exit code the CLI returns for it."""
from __future__ import annotations

import errno
from typing import Callable

__all__ = ["TargetBenchError", "UsageError", "TrackingError", "UnpushedError", "CheckpointError", "WriteError",
           "EXIT_CODES", "WRITE_ERRNOS", "BROKEN_PIPE_EXIT", "run_resumable_command"]


class TargetBenchError(Exception):
    """An error the user can fix; the CLI prints ``targetbench: error: <message>`` and exits with ``exit_code``."""

    exit_code = 2


class UsageError(TargetBenchError):
    """Bad input: unknown name, bad value, malformed file."""

    exit_code = 2


class TrackingError(TargetBenchError):
    """The tracking store cannot be reached or written."""

    exit_code = 3


class UnpushedError(TrackingError):
    """Training is complete but its records could not all be written: the tracking store was unreachable at
    the end. Everything is kept in the final checkpoint; ``targetbench push`` (or ``--resume``) writes it."""


class CheckpointError(TargetBenchError):
    """A checkpoint is missing, corrupt, or belongs to another trial."""

    exit_code = 4


class WriteError(TargetBenchError):
    """A file could not be written: disk full, quota exceeded, file too large or a read-only file system."""

    exit_code = 5


#: errno values of a failed write that the user can fix (free space, raise the quota, remount); the CLI reports
#: an OSError with one of them as a :class:`WriteError`, not as an internal error
WRITE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS})

#: exit status when the reader of stdout closed it early (``| head``): 128 + SIGPIPE, what a Unix tool killed by
#: SIGPIPE reports, so ``set -o pipefail`` scripts see the same as with ``cat`` or ``grep``
BROKEN_PIPE_EXIT = 141

#: documented exit codes of the ``targetbench`` command
EXIT_CODES = {0: "success", 1: "unexpected internal error (a bug: rerun with --debug and report it)",
              2: "bad input (unknown agent/env, bad --set value, malformed file)",
              3: "tracking store unreachable or not writable", 4: "bad checkpoint",
              5: "disk full or write failed (free space and rerun; --resume continues from the last checkpoint)",
              6: "verify: a rerun differs from the shipped per-run data",
              130: "interrupted",
              BROKEN_PIPE_EXIT: "stdout closed by its reader (e.g. piped into head): output stopped quietly"}


def run_resumable_command(prog: str, run: Callable[[], int]) -> int:
    """Run a make-target entry point (``make benchmark``, ``make results``): a :class:`TargetBenchError` is one
    ``PROG: error: ...`` line and its exit code; Ctrl-C says that a rerun continues (finished trials are skipped)."""
    import sys

    try:
        return run()
    except TargetBenchError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print(f"{prog}: interrupted (rerun to continue: finished trials are skipped, the rest resume)",
              file=sys.stderr)
        return 130
