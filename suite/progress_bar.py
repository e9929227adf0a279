"""A tqdm progress bar for ``targetbench run`` on a terminal: step, env steps/s, ETA and the latest training
return, redrawn in place; other messages print above it.

Only when stderr is a terminal (:func:`wanted`): piped or captured stderr keeps the plain progress lines the
scheduler and the tests read (:class:`suite.recorder.Recorder`).
"""
from __future__ import annotations

import sys
from typing import Any, TextIO

__all__ = ["ProgressBar", "wanted"]


def wanted(stream: TextIO | None = None) -> bool:
    """Whether progress should be a bar: ``stream`` (default stderr) is a terminal."""
    stream = stream or sys.stderr
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # closed or replaced streams
        return False


class ProgressBar:
    """The bar of one trial group: ``total`` env steps per seed; ``show`` moves it to a step."""

    #: seconds between redraws when the loop asks (the loop asks at every progress interval it is given)
    INTERVAL_S = 0.5

    def __init__(self, label: str, total: int, stream: TextIO | None = None) -> None:
        from tqdm import tqdm  # noqa: PLC0415 - only terminals need it

        self._tqdm = tqdm(total=total, desc=label, unit="step", file=stream or sys.stderr, dynamic_ncols=True,
                          leave=True, mininterval=self.INTERVAL_S,
                          bar_format="{desc} {percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt} [{elapsed}<{remaining}]"
                                     "{postfix}")
        self._step = 0

    def show(self, step: int, env_steps_per_s: float, train_return: float | None) -> None:
        """Move to ``step``, with the aggregate env steps/s and the latest training return (``None``: none yet)."""
        postfix: dict[str, Any] = {"env steps/s": f"{env_steps_per_s:,.0f}"}
        if train_return is not None:
            postfix["return"] = f"{train_return:.1f}"
        self._tqdm.set_postfix(postfix, refresh=False)
        self._tqdm.update(step - self._step)
        self._step = step

    def write(self, message: str) -> None:
        """Print a line above the bar."""
        self._tqdm.write(message, file=self._tqdm.fp)

    def close(self) -> None:
        self._tqdm.close()
