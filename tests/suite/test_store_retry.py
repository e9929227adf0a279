"""The outage policy every call to the tracking store goes through (suite/store_retry.py): retries with
backoff, answers that decide are not retried, and a caller that has waited in vain once tries once per call
until the store answers again."""
import pytest

import suite.store_retry as store_retry
from suite.errors import CheckpointError, TrackingError
from suite.store_retry import Outage, retry_store, transient


class Coded(Exception):
    """An MLflow-style error with an error code."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.error_code = code


class Flaky:
    """Fails ``failures`` times with ``error``, then returns ``"ok"``."""

    def __init__(self, failures: int, error: Exception = ConnectionRefusedError("refused")) -> None:
        self.failures, self.error, self.calls = failures, error, 0

    def __call__(self) -> str:
        self.calls += 1
        if self.calls <= self.failures:
            raise self.error
        return "ok"


@pytest.fixture(autouse=True)
def no_sleep(monkeypatch):
    """Time passes only in the sleeps: each one advances the clock the policy reads."""
    now = [0.0]
    monkeypatch.setattr(store_retry.time, "sleep", lambda s: now.__setitem__(0, now[0] + s))
    monkeypatch.setattr(store_retry.time, "monotonic", lambda: now[0])
    return now


def test_what_is_worth_another_try():
    assert transient(ConnectionRefusedError()) and transient(TrackingError("down"))
    assert transient(Coded("INTERNAL_ERROR")) and transient(Coded("TEMPORARILY_UNAVAILABLE"))
    for code in ("RESOURCE_ALREADY_EXISTS", "RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE",
                 "PERMISSION_DENIED"):
        assert not transient(Coded(code)), code
    assert not transient(CheckpointError("bad checkpoint"))


def test_retries_then_one_tracking_error_line(no_sleep):
    assert retry_store(Flaky(3), what="read") == "ok"
    call = Flaky(10)
    with pytest.raises(TrackingError) as info:
        retry_store(call, what="read", attempts=4)
    assert call.calls == 4 and str(info.value) == ("tracking store read failed after 4 tries: "
                                                   "ConnectionRefusedError: refused")
    assert no_sleep[0] == pytest.approx(0.2 + 0.4 + 0.8 + 0.2 + 0.4 + 0.8)  # backoff doubles; none after the last


def test_a_wait_bounds_the_retries(no_sleep):
    call = Flaky(100)
    with pytest.raises(TrackingError):
        retry_store(call, what="read", wait_s=5.0, backoff_s=1.0)
    assert call.calls == 3 and no_sleep[0] == 3.0  # 1 + 2 s slept; the next 4 s would pass the 5 s wait


def test_an_answer_is_not_retried():
    call = Flaky(1, Coded("RESOURCE_ALREADY_EXISTS"))
    with pytest.raises(Coded):
        retry_store(call, what="create")
    assert call.calls == 1


def test_outage_waits_once_then_tries_once_per_call_until_the_store_answers(no_sleep):
    said = []
    outage = Outage("http://store", wait_s=10.0, say=said.append, backoff_s=1.0)
    down = Flaky(1000)
    with pytest.raises(TrackingError) as info:
        outage.call(down, "reading runs")
    assert "did not answer for 10 s while reading runs" in str(info.value) and "\n" not in str(info.value)
    waited = down.calls
    assert waited > 1 and outage.down and len(said) == 1
    with pytest.raises(TrackingError):
        outage.call(down, "tagging runs")
    assert down.calls == waited + 1  # down: one try, no second wait
    assert outage.call(Flaky(0), "reading runs") == "ok" and not outage.down  # it answers: full waits again
    assert said[-1] == "tracking store http://store answers again"
    assert outage.call(Flaky(3), "reading runs") == "ok"
    outage.down = True
    outage.recover()
    assert outage.call(Flaky(2), "pushing") == "ok"  # a last full wait after recover()
