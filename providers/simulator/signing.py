"""HMAC-signed, expiring media links, as vendors hand them out (S3 presigned URLs, Convirza's
``secret=…&expires=…``).

A link is valid until its ``expires`` (unix seconds) passes. ``Signer.expire`` bumps a per-vendor
generation that is mixed into every signature: links signed under an older generation then verify
as *expired* (not as forged), which lets a test expire every outstanding link at once without
sleeping. A signature that matches no generation is *invalid* (403 at every vendor).
"""

from __future__ import annotations

import hashlib
import hmac
import threading
import time
from enum import StrEnum

__all__ = ["LinkState", "Signer"]


class LinkState(StrEnum):
    VALID = "valid"
    EXPIRED = "expired"
    INVALID = "invalid"


class Signer:
    """Signs ``(vendor, path, expires)`` with a per-simulator key.

    ``clock`` is the simulator's notion of now (seconds since the epoch); ``skew`` moves it, so a test
    can make time pass for links without waiting.
    """

    def __init__(self, key: bytes) -> None:
        self._key = key
        self._generation: dict[str, int] = {}
        self._lock = threading.Lock()
        self.skew = 0.0

    def now(self) -> float:
        return time.time() + self.skew

    def _mac(self, vendor: str, path: str, expires: int, generation: int) -> str:
        message = f"{vendor}\n{path}\n{expires}\n{generation}".encode()
        return hmac.new(self._key, message, hashlib.sha256).hexdigest()

    def sign(self, vendor: str, path: str, ttl: float) -> tuple[int, str]:
        """``(expires, signature)`` for a link to ``path`` valid for ``ttl`` seconds from now."""
        expires = int(self.now() + ttl)
        with self._lock:
            generation = self._generation.get(vendor, 0)
        return expires, self._mac(vendor, path, expires, generation)

    def verify(self, vendor: str, path: str, expires: str | None, signature: str | None) -> LinkState:
        if not expires or not signature:
            return LinkState.INVALID
        try:
            expires_at = int(expires)
        except ValueError:
            return LinkState.INVALID
        with self._lock:
            current = self._generation.get(vendor, 0)
        for generation in range(current, -1, -1):
            if hmac.compare_digest(self._mac(vendor, path, expires_at, generation), signature):
                if generation != current or self.now() > expires_at:
                    return LinkState.EXPIRED
                return LinkState.VALID
        return LinkState.INVALID

    def expire(self, vendor: str) -> None:
        """Every link of ``vendor`` signed so far now answers as expired."""
        with self._lock:
            self._generation[vendor] = self._generation.get(vendor, 0) + 1
