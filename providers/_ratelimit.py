"""Request budgets per account: a local token bucket, and the protocol a shared one satisfies.

``recarchive run`` uses ``TokenBucket`` (one process); the daemon swaps in a Redis-backed limiter
(``worker/daemon/redis_coord.py``) so every worker of an account draws from one budget. A 429 from the
vendor pauses the whole budget for its ``Retry-After`` through ``pause``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Protocol

__all__ = ["RateLimiter", "TokenBucket", "Unlimited"]


class RateLimiter(Protocol):
    def acquire(self) -> None:
        """Block until one request may be sent."""
        ...

    def pause(self, seconds: float) -> None:
        """Send nothing for ``seconds`` (the vendor said 429 with Retry-After)."""
        ...


class TokenBucket:
    """Thread-safe token bucket: ``rate`` tokens a second, at most ``burst`` saved up."""

    def __init__(
        self,
        rate: float,
        burst: float | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.rate = rate
        self.burst = max(1.0, burst if burst is not None else rate)
        self._clock = clock
        self._sleep = sleep
        self._tokens = self.burst
        self._updated = clock()
        self._paused_until = 0.0
        self._lock = threading.Lock()

    def acquire(self) -> None:
        while True:
            with self._lock:
                now = self._clock()
                if now < self._paused_until:
                    wait = self._paused_until - now
                else:
                    self._tokens = min(self.burst, self._tokens + (now - self._updated) * self.rate)
                    self._updated = now
                    if self._tokens >= 1:
                        self._tokens -= 1
                        return
                    wait = (1 - self._tokens) / self.rate
            self._sleep(wait)

    def pause(self, seconds: float) -> None:
        with self._lock:
            until = self._clock() + max(0.0, seconds)
            if until > self._paused_until:
                self._paused_until = until
                self._tokens = 0.0
                self._updated = until


class Unlimited:
    """No budget at all (tests of logic that must not sleep)."""

    def acquire(self) -> None:
        return None

    def pause(self, seconds: float) -> None:
        return None
