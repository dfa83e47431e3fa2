"""The circuit breaker, driven by a fake clock: closed -> open -> half-open -> closed or open again."""

import pytest

from churnguard.services.breaker import CLOSED, HALF_OPEN, OPEN, CircuitBreaker, CircuitOpenError


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


class Dependency:
    """Counts calls; fails while ``down``."""

    def __init__(self) -> None:
        self.down = True
        self.calls = 0

    def __call__(self) -> str:
        self.calls += 1
        if self.down:
            raise ConnectionError("S3 is down")
        return "model"


def attempt(breaker, dep):
    try:
        return breaker.call(dep)
    except (ConnectionError, CircuitOpenError) as e:
        return e


def test_opens_after_threshold_and_stops_calling_the_dependency():
    clock, dep = Clock(), Dependency()
    changes = []
    b = CircuitBreaker(
        "store",
        failure_threshold=3,
        reset_timeout_s=5,
        clock=clock,
        on_state_change=lambda old, new: changes.append((old, new)),
    )
    for _ in range(3):
        assert isinstance(attempt(b, dep), ConnectionError)
    assert b.state == OPEN and dep.calls == 3
    for _ in range(100):
        err = attempt(b, dep)
        assert isinstance(err, CircuitOpenError)
    assert dep.calls == 3, "an open circuit must not touch the dependency"
    assert "S3 is down" in str(err) and err.retry_after_s == pytest.approx(5)
    assert changes == [(CLOSED, OPEN)]


def test_half_open_trial_success_closes_and_recovers_by_itself():
    clock, dep = Clock(), Dependency()
    b = CircuitBreaker("store", failure_threshold=2, reset_timeout_s=5, clock=clock)
    attempt(b, dep), attempt(b, dep)
    clock.t += 4.9
    assert isinstance(attempt(b, dep), CircuitOpenError)
    clock.t += 0.1
    assert b.state == HALF_OPEN
    dep.down = False
    assert attempt(b, dep) == "model"
    assert b.state == CLOSED and b.retry_after() == 0
    # Closed again: one new failure does not reopen it (the count restarted).
    dep.down = True
    attempt(b, dep)
    assert b.state == CLOSED


def test_failed_trial_reopens_with_doubling_capped_timeout():
    clock, dep = Clock(), Dependency()
    b = CircuitBreaker("store", failure_threshold=1, reset_timeout_s=5, max_reset_timeout_s=12, clock=clock)
    attempt(b, dep)
    waits = []
    for _ in range(4):
        waits.append(b.retry_after())
        clock.t += b.retry_after()
        assert isinstance(attempt(b, dep), ConnectionError)  # the half-open trial reached the dependency
        assert b.state == OPEN
    assert waits == [5, 10, 12, 12]
    assert dep.calls == 5


def test_only_one_trial_at_a_time_in_half_open():
    clock = Clock()
    b = CircuitBreaker("store", failure_threshold=1, reset_timeout_s=1, clock=clock)
    attempt(b, Dependency())
    clock.t += 1
    seen = []

    def trial():
        # A second caller arriving while the trial runs is refused, not let through.
        seen.append(attempt(b, lambda: "second"))
        return "first"

    assert b.call(trial) == "first"
    assert isinstance(seen[0], CircuitOpenError)
    assert b.state == CLOSED


def test_errors_that_are_answers_do_not_open_it():
    clock = Clock()
    b = CircuitBreaker(
        "registry", failure_threshold=1, clock=clock, counts_as_failure=lambda e: not isinstance(e, LookupError)
    )

    def not_found():
        raise LookupError("no champion yet")

    for _ in range(5):
        with pytest.raises(LookupError):
            b.call(not_found)
    assert b.state == CLOSED


def test_rejects_nonsense_settings():
    with pytest.raises(ValueError):
        CircuitBreaker("x", failure_threshold=0)
