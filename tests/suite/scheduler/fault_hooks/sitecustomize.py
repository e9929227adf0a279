"""Fault injection for the combined-fault test (tests/suite/scheduler/test_combined_faults.py), loaded by every
Python process of the sweep under test through ``PYTHONPATH``: a checkpoint write fails with ENOSPC (what a
full disk gives) when the test has dropped a token file into ``$TARGETBENCH_FAULT_TOKENS``. A writer claims a
token by renaming it (atomic: one token, one failed write, whichever process writes next). Nothing happens
without the variable.
"""
import errno
import importlib.abc
import importlib.util
import os
import sys

_TOKENS = os.environ.get("TARGETBENCH_FAULT_TOKENS")
_TARGET = "suite.checkpoint"


def _claim() -> bool:
    try:
        names = sorted(n for n in os.listdir(_TOKENS) if n.startswith("fail-checkpoint-") and "." not in n)
    except OSError:
        return False
    for name in names:
        try:
            os.rename(os.path.join(_TOKENS, name), os.path.join(_TOKENS, f"{name}.claimed-{os.getpid()}"))
            return True
        except OSError:  # another writer claimed it first
            continue
    return False


def _patch(module) -> None:
    write = module._WriteRecorder.write

    def failing_write(self, data):
        if _claim():
            exc = OSError(errno.ENOSPC, "No space left on device (injected by the combined-fault test)")
            self.error = self.error or exc
            raise exc
        return write(self, data)

    module._WriteRecorder.write = failing_write


class _PatchOnImport(importlib.abc.MetaPathFinder):
    """Patches ``suite.checkpoint`` right after it is first imported (importing it here would load torch into
    every process, the ones that never checkpoint included)."""

    def find_spec(self, name, path, target=None):
        if name != _TARGET:
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(name)
        if spec is None or spec.loader is None:
            return spec
        run = spec.loader.exec_module

        def exec_module(module):
            run(module)
            _patch(module)

        spec.loader.exec_module = exec_module
        return spec


if _TOKENS:
    sys.meta_path.insert(0, _PatchOnImport())
