"""Coordination between daemon processes through Redis: locks, enqueue dedupe, shared rate limits.

Redis holds nothing durable here (CONTRACT §3): a flushed Redis only means that the next discovery
pass takes the lock afresh, enqueues again what is not committed, and the rate buckets start full.

- ``RedisLock``: one discovery pass per account at a time (two beats, or a pass slower than the
  schedule). ``SET NX PX`` with a random token, released by a compare-and-delete script so a pass
  that outlived its lock never frees the lock of the pass that followed it.
- ``RedisDedupe``: one queued archive task per recording (``SET NX EX``); the task clears its key
  when it finishes for good, so the next pass can enqueue the recording again if it is still not
  committed. A key that expires while its task still waits only lets a harmless duplicate through.
  While a task runs, the key is a short *lease* (``lease`` seconds, below one discovery interval)
  renewed by a ``Heartbeat`` thread of the task: a worker that dies (SIGKILL, OOM, a lost host)
  stops renewing, the lease runs out, and the next discovery pass enqueues the recording again —
  recovery within two discovery intervals plus the download, whatever the broker's visibility
  timeout (which only governs when the dead worker's own message comes back, a harmless duplicate).
- ``RedisRateLimiter``: ``providers._ratelimit.RateLimiter`` over one token bucket per account,
  computed atomically in a Lua script on Redis' clock, so every thread of every worker draws from
  the same budget; ``pause`` (a 429's Retry-After) stops all of them.
"""

from __future__ import annotations

import contextlib
import logging
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import redis

from providers._ratelimit import RateLimiter, TokenBucket

__all__ = ["KEY_PREFIX", "Coordinator", "Heartbeat", "RedisDedupe", "RedisLock", "RedisRateLimiter"]

log = logging.getLogger(__name__)

KEY_PREFIX = "recarchive:"

_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""

# KEYS[1]: the bucket hash. ARGV: rate (tokens/s), burst, mode ("take" | "pause"), pause seconds.
# Returns the milliseconds to wait before trying again; 0 when a token was taken (or for "pause").
_BUCKET = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + tonumber(clock[2]) / 1000
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts', 'paused')
local tokens = tonumber(state[1]) or burst
local ts = tonumber(state[2]) or now
local paused = tonumber(state[3]) or 0
local wait = 0
if ARGV[3] == 'pause' then
  local until_ms = now + tonumber(ARGV[4]) * 1000
  if until_ms > paused then
    paused = until_ms
    tokens = 0
    ts = until_ms
  end
elseif now < paused then
  wait = paused - now
else
  if now > ts then
    tokens = math.min(burst, tokens + (now - ts) * rate / 1000)
    ts = now
  end
  if tokens >= 1 then
    tokens = tokens - 1
  else
    wait = (1 - tokens) * 1000 / rate
  end
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', tostring(ts), 'paused', tostring(paused))
redis.call('PEXPIRE', KEYS[1], math.max(3600000, math.ceil(paused - now) + 60000))
return math.ceil(wait)
"""

#: the longest single sleep while waiting for a token: re-asking Redis notices a flush or a pause
_MAX_SLEEP = 2.0


class RedisLock:
    """A lock with expiry: ``acquire()`` -> bool (never blocks), ``release()`` frees only our own."""

    def __init__(self, client: redis.Redis, key: str, ttl: float) -> None:
        self.client = client
        self.key = key
        self.ttl_ms = max(1, int(ttl * 1000))
        self.token = secrets.token_hex(16)
        self._release = client.register_script(_RELEASE)
        self.held = False

    def acquire(self) -> bool:
        self.held = bool(self.client.set(self.key, self.token, nx=True, px=self.ttl_ms))
        return self.held

    def release(self) -> None:
        if self.held:
            self._release(keys=[self.key], args=[self.token])
            self.held = False


class RedisDedupe:
    """Per-recording enqueue markers: ``claim`` is true once per ``ttl`` for the same recording;
    ``hold`` turns the marker into a lease of ``lease`` seconds while a task works on it."""

    def __init__(self, client: redis.Redis, ttl: float, prefix: str = KEY_PREFIX, *, lease: float = 60.0) -> None:
        self.client = client
        self.ttl = max(1, int(ttl))
        self.lease_ms = max(1000, int(lease * 1000))
        self.prefix = prefix

    def key(self, account: str, recording_id: str) -> str:
        return f"{self.prefix}queued:{account}:{recording_id}"

    def claim(self, account: str, recording_id: str) -> bool:
        return bool(self.client.set(self.key(account, recording_id), "1", nx=True, ex=self.ttl))

    def hold(self, account: str, recording_id: str, seconds: float | None = None) -> None:
        """Mark the recording as being worked on for ``seconds`` (default: one lease) from now."""
        ms = self.lease_ms if seconds is None else max(1000, int(seconds * 1000))
        self.client.set(self.key(account, recording_id), "running", px=ms)

    def release(self, account: str, recording_id: str) -> None:
        self.client.delete(self.key(account, recording_id))

    @contextlib.contextmanager
    def heartbeat(self, account: str, recording_id: str) -> Iterator[None]:
        """Hold the lease while the block runs, renewed every third of it by a thread."""
        beat = Heartbeat(lambda: self.hold(account, recording_id), self.lease_ms / 3000)
        beat.start()
        try:
            yield
        finally:
            beat.stop()


class Heartbeat:
    """Calls ``renew`` now and every ``interval`` seconds from a daemon thread until ``stop``.

    A Redis error is logged and retried on the next beat: the lease then runs out on its own, which
    at worst lets a harmless duplicate task through."""

    def __init__(self, renew: Callable[[], None], interval: float) -> None:
        self._renew = renew
        self.interval = max(0.05, interval)
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="recarchive-heartbeat", daemon=True)

    def start(self) -> None:
        self._beat()
        self._thread.start()

    def stop(self) -> None:
        self._stopped.set()
        self._thread.join(timeout=self.interval + 5)

    def _run(self) -> None:
        while not self._stopped.wait(self.interval):
            self._beat()

    def _beat(self) -> None:
        try:
            self._renew()
        except redis.RedisError as exc:
            log.warning("lease renewal failed (%s); retrying on the next beat", type(exc).__name__)


class RedisRateLimiter:
    """A token bucket shared through Redis by every process that names the same ``key``.

    ``burst`` defaults to one token: requests are spaced ``1/rate`` apart, so no one-second window
    ever sees more than ``rate + 1`` of them, which is what a vendor's "N requests per second" means.
    When Redis cannot be reached the limiter falls back to a local bucket (logged once) rather than
    failing the download: a per-process limit is better than none, and worse than a stalled archive.
    """

    def __init__(self, client: redis.Redis, key: str, rate: float, burst: float = 1.0, *,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.client = client
        self.key = key
        self.rate = float(rate)
        self.burst = max(1.0, float(burst))
        self._sleep = sleep
        self._script = client.register_script(_BUCKET)
        self._fallback: TokenBucket | None = None

    def _call(self, mode: str, seconds: float = 0.0) -> int | None:
        try:
            return int(self._script(keys=[self.key], args=[repr(self.rate), repr(self.burst), mode, repr(seconds)]))
        except redis.RedisError as exc:
            if self._fallback is None:
                log.warning("shared rate limit %s unavailable (%s): limiting this process only",
                            self.key, type(exc).__name__)
                self._fallback = TokenBucket(self.rate, self.burst, sleep=self._sleep)
            return None

    def acquire(self) -> None:
        while True:
            wait_ms = self._call("take")
            if wait_ms is None:
                assert self._fallback is not None
                self._fallback.acquire()
                return
            if wait_ms <= 0:
                return
            self._sleep(min(wait_ms / 1000, _MAX_SLEEP))

    def pause(self, seconds: float) -> None:
        if self._call("pause", max(0.0, seconds)) is None:
            assert self._fallback is not None
            self._fallback.pause(seconds)


class Coordinator:
    """The daemon's Redis helpers for one broker URL, sharing one connection pool."""

    def __init__(self, client: redis.Redis, *, dedupe_ttl: float = 6 * 3600, lease: float = 60.0,
                 prefix: str = KEY_PREFIX) -> None:
        self.client = client
        self.prefix = prefix
        self.dedupe = RedisDedupe(client, dedupe_ttl, prefix, lease=lease)

    @classmethod
    def from_url(cls, url: str, **options: Any) -> Coordinator:
        client = redis.Redis.from_url(url, socket_connect_timeout=10, socket_timeout=30, health_check_interval=30)
        return cls(client, **options)

    def lock(self, account: str, ttl: float) -> RedisLock:
        return RedisLock(self.client, f"{self.prefix}lock:discover:{account}", ttl)

    def limiter(self, account: str, rate: float) -> RateLimiter:
        return RedisRateLimiter(self.client, f"{self.prefix}ratelimit:{account}", rate)

    def close(self) -> None:
        self.client.close()
