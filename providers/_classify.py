"""Classifying vendor API responses: one pure function over one table (Airbyte CDK style).

The table maps an HTTP status to an ``Action``; a provider overrides single entries by passing its
own ``overrides`` (e.g. Envoy's 404 on a recording means "no recording"), never the whole function.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum

__all__ = ["DEFAULT_TABLE", "Action", "classify_status"]


class Action(StrEnum):
    OK = "ok"
    RETRY = "retry"  # transient: back off and try again
    RATE_LIMITED = "rate_limited"  # 429: wait Retry-After
    REFRESH_LINK = "refresh_link"  # the link expired: resolve again
    NOT_READY = "not_ready"
    NO_RECORDING = "no_recording"
    PARK = "park"  # permanent for this recording
    FAIL_ACCOUNT = "fail_account"  # auth and the like: stop this account's pass


DEFAULT_TABLE: Mapping[int, Action] = {
    400: Action.FAIL_ACCOUNT,
    401: Action.FAIL_ACCOUNT,
    403: Action.FAIL_ACCOUNT,
    404: Action.PARK,
    408: Action.RETRY,
    409: Action.RETRY,
    410: Action.REFRESH_LINK,
    422: Action.PARK,
    425: Action.RETRY,
    429: Action.RATE_LIMITED,
}


def classify_status(status: int, overrides: Mapping[int, Action] | None = None) -> Action:
    """The action for an API response status; 2xx is OK, 5xx retry, other 4xx park."""
    if overrides and status in overrides:
        return overrides[status]
    if 200 <= status < 300:
        return Action.OK
    if status in DEFAULT_TABLE:
        return DEFAULT_TABLE[status]
    if status >= 500:
        return Action.RETRY
    return Action.PARK
