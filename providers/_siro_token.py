"""Siro's user-scoped OAuth access token: minted by us, held in memory only, renewed before it expires.

Siro signs media URLs only for an OAuth access token bound to one user (docs.siro.ai "Download
redacted recording audio (signed URL)"). Such a token is minted with the organisation token from an
OAuth app's client secret (``POST /v1/core/oauth/apps/{clientId}/access-token``) and "expires after 16
hours. Once accessToken expires, a new one must be generated" (docs.siro.ai "Phones integration:
getting started"). The mint answer carries no expiry (``{"accessTokenId", "accessToken"}``), so the
lifetime is the documented 16 h, counted from just before the mint, less a safety margin.

The token lives in this object and nowhere else: never logged (it is registered with
``worker.redact`` the moment it exists, so even an accident is masked), never stored, never put in a
task payload, a ``Recording.hint`` or a ``MediaLink``. Several worker threads share one provider, so
one lock guards minting: a thread that finds the token stale mints, the others wait and reuse it.
``invalidate`` (after a 401) drops the token only if it is still the one that failed, so a burst of
401s on one token leads to one mint, not one per thread.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from worker.redact import register_secret

__all__ = ["RENEW_MARGIN", "TOKEN_LIFETIME", "AccessTokens"]

#: the documented lifetime of a Siro OAuth access token
TOKEN_LIFETIME = 16 * 3600.0
#: renew this long before the documented expiry (clock drift, a long download queue)
RENEW_MARGIN = 30 * 60.0


class AccessTokens:
    """The current access token for one account, minted on first use and renewed when stale.

    ``mint`` returns a new token (it raises our own errors on failure); ``clock`` is monotonic
    seconds (tests pass a fake one to make 16 hours pass)."""

    def __init__(
        self,
        mint: Callable[[], str],
        *,
        lifetime: float = TOKEN_LIFETIME,
        margin: float = RENEW_MARGIN,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._mint = mint
        self.lifetime = lifetime
        self.margin = margin
        self.clock = clock
        self.minted = 0  # how many tokens this account minted (figures, tests)
        self._lock = threading.Lock()
        self._token: str | None = None
        self._renew_at = 0.0

    def __repr__(self) -> str:  # never the token itself
        return f"AccessTokens(minted={self.minted}, held={self._token is not None})"

    def get(self) -> str:
        """A token that is not due for renewal; mints one when there is none or it is stale."""
        with self._lock:
            if self._token is not None and self.clock() < self._renew_at:
                return self._token
            self._token = None
            started = self.clock()
            token = self._mint()
            register_secret(token)
            self.minted += 1
            self._token = token
            self._renew_at = started + max(0.0, self.lifetime - self.margin)
            return token

    def invalidate(self, token: str) -> None:
        """Forget ``token`` (the gateway refused it) unless another thread already replaced it."""
        with self._lock:
            if self._token == token:
                self._token = None
