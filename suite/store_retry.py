"""One outage policy for calls to the tracking store: retry with backoff, then one :class:`TrackingError` line.

* :func:`transient`: whether a failed call may succeed if tried again (no answer, a connection refused, a
  timeout, "database is locked", a server error). An answer that decides something (the name exists, the run
  does not exist, bad parameter, permission denied) is not transient: it goes back to the caller as it is.
* :func:`retry_store`: a call retried with exponential backoff, for a number of attempts or until a wait has
  passed; the last failure becomes a :class:`TrackingError` naming what was being done.
* :class:`Outage`: the view a long-lived caller (the sweep's driver) has of its store. Every call waits up to
  ``wait_s`` for a store that stopped answering; once a call has waited that long in vain, the store counts as
  down and later calls try once each (a sweep must not wait ``wait_s`` per call), until one succeeds.
"""
from __future__ import annotations

import time
from typing import Callable, TypeVar

from suite.errors import TargetBenchError, TrackingError

__all__ = ["transient", "retry_store", "Outage", "STORE_WAIT_S", "one_line"]

#: how long a sweep (its driver, and each group as it starts) waits for a tracking store that does not answer
STORE_WAIT_S = 120.0

#: MLflow error codes of a store that did not (properly) answer; every other code is an answer
_TRANSIENT_CODES = frozenset({"", "INTERNAL_ERROR", "TEMPORARILY_UNAVAILABLE", "REQUEST_LIMIT_EXCEEDED",
                              "DEADLINE_EXCEEDED", "ABORTED", "SERVICE_UNDER_MAINTENANCE",
                              "WORKSPACE_TEMPORARILY_UNAVAILABLE", "IO_ERROR"})

T = TypeVar("T")


def one_line(exc: BaseException) -> str:
    """``Type: first line of the message``, at most 300 characters."""
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"[:300]


def transient(exc: BaseException) -> bool:
    """Whether ``exc`` says the store did not answer (worth another try), rather than what it answered."""
    if isinstance(exc, TrackingError):
        return True
    if isinstance(exc, TargetBenchError):  # bad input, a bad checkpoint, a full disk: no store will fix it
        return False
    code = getattr(exc, "error_code", None)
    if code is not None:  # an MlflowException: the code says whether the store answered
        return str(code) in _TRANSIENT_CODES
    return isinstance(exc, Exception)


def retry_store(call: Callable[[], T], *, what: str, attempts: int | None = None, wait_s: float | None = None,
                backoff_s: float = 0.2, max_backoff_s: float = 10.0,
                retry_if: Callable[[BaseException], bool] = transient,
                on_retry: Callable[[BaseException, float], None] | None = None) -> T:
    """``call()``, tried again after 0.2, 0.4, 0.8, ... s (``backoff_s`` doubled, at most ``max_backoff_s``)
    while it fails with an error ``retry_if`` accepts, at most ``attempts`` times and, with ``wait_s``, no
    later than ``wait_s`` after the first failure (at least once). ``on_retry(error, delay)`` hears each
    retry. Errors ``retry_if`` refuses are raised as they are; the last accepted one becomes
    ``TrackingError("tracking store <what> failed after N tries: <error>")``."""
    if attempts is None and wait_s is None:
        attempts = 6
    deadline = None
    tries = 0
    while True:
        tries += 1
        try:
            return call()
        except Exception as exc:
            if not retry_if(exc):
                raise
            now = time.monotonic()
            if deadline is None and wait_s is not None:
                deadline = now + wait_s
            delay = min(backoff_s * 2 ** (tries - 1), max_backoff_s)
            if (attempts is not None and tries >= attempts) or (deadline is not None and now + delay > deadline):
                raise TrackingError(f"tracking store {what} failed after {tries} tries: {one_line(exc)}") from None
            if on_retry is not None:
                on_retry(exc, delay)
            time.sleep(delay)


class Outage:
    """A caller's running view of whether its store answers; see the module docstring.

    ``say`` hears one line when the store stops answering and one when it is back."""

    def __init__(self, uri: str, wait_s: float = STORE_WAIT_S, *, say: Callable[[str], None] | None = None,
                 backoff_s: float = 0.5) -> None:
        self.uri, self.wait_s, self.say, self.backoff_s = uri, float(wait_s), say, backoff_s
        self.down = False  # a call waited wait_s in vain, and none has succeeded since
        self.waited = False  # some call failed at least once since the last success (said once per episode)

    def call(self, fn: Callable[[], T], what: str) -> T:
        """``fn()`` under the policy; raises :class:`TrackingError` ("tracking store URI did not answer ...")
        once the store has not answered for ``wait_s`` (or at once while it is down). Answers that decide
        something (see :func:`transient`) are raised as they are."""
        def first_try_says() -> T:
            try:
                return fn()
            except Exception as exc:
                if transient(exc):
                    if not self.waited and self.say is not None:
                        self.say(f"tracking store {self.uri} does not answer ({one_line(exc)}) while {what}; "
                                 f"retrying for up to {self.wait_s:.0f} s")
                    self.waited = True
                raise

        try:
            result = retry_store(first_try_says, what=what, attempts=1 if self.down else None,
                                 wait_s=None if self.down else self.wait_s, backoff_s=self.backoff_s)
        except TrackingError as exc:
            self.down = True
            cause = str(exc).split(": ", 1)[-1]
            raise TrackingError(f"tracking store {self.uri} did not answer for {self.wait_s:.0f} s while {what} "
                                f"({cause})") from None
        if self.waited and self.say is not None:
            self.say(f"tracking store {self.uri} answers again")
        self.down = self.waited = False
        return result

    def recover(self) -> None:
        """Give the store a full wait again (before a last attempt, e.g. at the end of a sweep)."""
        self.down = False
