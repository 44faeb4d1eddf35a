"""Exponential backoff per account and per source address.

After ``free_attempts`` failures in a row, each further attempt must wait
``base_delay * 2 ** (failures - free_attempts)`` (capped at ``max_delay``) after the
last failure; an attempt inside the wait is refused without checking the password, and
counts as a failure. A success clears the account's count; an address's count fades
after ``forget_after`` without failures. State lives in the process; the account
lockout (``IdentityStore.record_failed_login``) is the durable part.

>>> from datetime import UTC, datetime
>>> throttle = Backoff(free_attempts=1)
>>> t0 = datetime(2026, 1, 1, tzinfo=UTC)
>>> for _ in range(3):
...     throttle.fail("ip:10.0.0.1", t0)
>>> throttle.wait("ip:10.0.0.1", t0)
2.0
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass
class _Failures:
    count: int
    last: datetime


class Backoff:
    """Failure counts with exponential waits, keyed by ``account:NAME`` or ``ip:ADDR``."""

    def __init__(
        self,
        *,
        free_attempts: int = 3,
        base_delay: float = 1.0,
        max_delay: float = 900.0,
        forget_after: timedelta = timedelta(hours=1),
    ) -> None:
        self.free_attempts = free_attempts
        self.base_delay = base_delay
        self.max_delay = max_delay
        self.forget_after = forget_after
        self._failures: dict[str, _Failures] = {}
        self._lock = threading.Lock()

    def wait(self, key: str, now: datetime) -> float:
        """Seconds still to wait before ``key`` may try again (0 when it may)."""
        with self._lock:
            failures = self._failures.get(key)
            if failures is None:
                return 0.0
            if now - failures.last > self.forget_after:
                del self._failures[key]
                return 0.0
            excess = failures.count - self.free_attempts
            if excess <= 0:
                return 0.0
            # The exponent is capped: after thousands of failures 2**n would overflow.
            delay = min(self.base_delay * 2.0 ** min(excess - 1, 64), self.max_delay)
            return max(0.0, delay - (now - failures.last).total_seconds())

    def fail(self, key: str, now: datetime) -> None:
        with self._lock:
            failures = self._failures.get(key)
            if failures is None or now - failures.last > self.forget_after:
                self._failures[key] = _Failures(1, now)
            else:
                failures.count += 1
                failures.last = now

    def clear(self, key: str) -> None:
        with self._lock:
            self._failures.pop(key, None)
