"""A circuit breaker: stop calling a dependency that keeps failing, and try it again by itself.

Closed: calls go through; ``failure_threshold`` consecutive failures open the circuit.
Open: calls are refused at once (``CircuitOpenError``) for ``reset_timeout_s``.
Half-open: after that, exactly one trial call goes through; success closes the circuit,
failure opens it again for twice as long (capped at ``max_reset_timeout_s``), so a dependency
that stays down is asked less and less often, and one that recovers is used again at once.

Pure Python, clock injected, so tests drive it with a fake clock::

    breaker = CircuitBreaker("model-store", failure_threshold=3, reset_timeout_s=5)
    value = breaker.call(load_champion)          # raises CircuitOpenError while open
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TypeVar

from churnguard.domain.errors import ChurnGuardError

T = TypeVar("T")

CLOSED = "closed"
OPEN = "open"
HALF_OPEN = "half_open"


class CircuitOpenError(ChurnGuardError):
    """The dependency failed repeatedly; it is not called again until ``retry_after_s`` has passed."""

    def __init__(self, name: str, retry_after_s: float, last_error: str | None) -> None:
        self.retry_after_s = retry_after_s
        self.last_error = last_error
        super().__init__(
            f"{name} is failing ({last_error or 'unknown error'}); not retried for another {retry_after_s:.1f} s"
        )


class CircuitBreaker:
    def __init__(
        self,
        name: str,
        failure_threshold: int = 3,
        reset_timeout_s: float = 5.0,
        max_reset_timeout_s: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
        counts_as_failure: Callable[[BaseException], bool] = lambda e: True,
        on_state_change: Callable[[str, str], None] | None = None,
    ) -> None:
        if failure_threshold < 1 or reset_timeout_s <= 0:
            raise ValueError("failure_threshold must be >= 1 and reset_timeout_s > 0")
        self.name = name
        self.failure_threshold = failure_threshold
        self.reset_timeout_s = reset_timeout_s
        self.max_reset_timeout_s = max(max_reset_timeout_s, reset_timeout_s)
        self.clock = clock
        self.counts_as_failure = counts_as_failure
        self.on_state_change = on_state_change or (lambda old, new: None)
        self._state = CLOSED
        self._failures = 0
        self._opened_at = 0.0
        self._timeout = reset_timeout_s
        self._trial_in_flight = False
        self._last_error: str | None = None
        self._lock = threading.Lock()

    @property
    def state(self) -> str:
        """The state as the next call would see it (an expired open circuit reads as half-open)."""
        with self._lock:
            if self._state == OPEN and self.clock() - self._opened_at >= self._timeout:
                return HALF_OPEN
            return self._state

    def retry_after(self) -> float:
        with self._lock:
            return max(0.0, self._opened_at + self._timeout - self.clock()) if self._state == OPEN else 0.0

    def call(self, fn: Callable[[], T]) -> T:
        self._before()
        try:
            result = fn()
        except BaseException as e:
            if self.counts_as_failure(e):
                self._failure(e)
            else:
                self._success()  # the dependency answered; the answer was just unwelcome
            raise
        self._success()
        return result

    # ----- transitions --------------------------------------------------------------------
    def _set(self, new: str) -> None:
        old, self._state = self._state, new
        if old != new:
            self.on_state_change(old, new)

    def _before(self) -> None:
        with self._lock:
            if self._state == CLOSED:
                return
            now = self.clock()
            if self._state == OPEN:
                remaining = self._opened_at + self._timeout - now
                if remaining > 0:
                    raise CircuitOpenError(self.name, remaining, self._last_error)
                self._set(HALF_OPEN)
            # Half-open: one trial at a time; concurrent callers are refused until it reports.
            if self._trial_in_flight:
                raise CircuitOpenError(self.name, 0.0, self._last_error)
            self._trial_in_flight = True

    def _success(self) -> None:
        with self._lock:
            self._trial_in_flight = False
            self._failures = 0
            self._timeout = self.reset_timeout_s
            self._set(CLOSED)

    def _failure(self, e: BaseException) -> None:
        with self._lock:
            self._last_error = f"{type(e).__name__}: {e}"[:300]
            was_trial = self._state == HALF_OPEN
            self._trial_in_flight = False
            self._failures += 1
            if was_trial:
                self._timeout = min(self._timeout * 2, self.max_reset_timeout_s)
            if was_trial or self._failures >= self.failure_threshold:
                self._opened_at = self.clock()
                self._set(OPEN)
