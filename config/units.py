"""Parsing the small value languages of the config and the CLI: durations, rates, timestamps."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

__all__ = ["RateLimit", "parse_day", "parse_duration", "parse_rate", "parse_timestamp", "parse_until", "utc_stamp"]

_DURATION = re.compile(r"^(\d+(?:\.\d+)?)(ms|s|m|h|d|w)$")
_DURATION_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_RATE = re.compile(r"^(\d+(?:\.\d+)?)\s*/\s*(s|m|h|sec|min|hour)$")
_RATE_UNITS = {"s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "hour": 3600}


@dataclass(frozen=True)
class RateLimit:
    """A request budget: ``per_second`` requests per second, bursting up to ``burst``."""

    per_second: float

    @property
    def burst(self) -> float:
        return max(1.0, self.per_second)

    def __str__(self) -> str:
        return f"{self.per_second:g}/s"


def parse_duration(text: str) -> timedelta:
    """``"90s"``, ``"5m"``, ``"2h"``, ``"1d"``, ``"1w"`` (a sum like ``"1h30m"`` too)."""
    raw = text.strip().lower().replace(" ", "")
    if not raw:
        raise ValueError("empty duration")
    total = 0.0
    for part in re.findall(r"\d+(?:\.\d+)?(?:ms|s|m|h|d|w)", raw):
        match = _DURATION.match(part)
        assert match is not None
        total += float(match.group(1)) * _DURATION_UNITS[match.group(2)]
    if "".join(re.findall(r"\d+(?:\.\d+)?(?:ms|s|m|h|d|w)", raw)) != raw:
        raise ValueError(f"duration {text!r} must look like '30s', '5m', '2h' or '1d'")
    if total <= 0:
        raise ValueError(f"duration {text!r} must be positive")
    return timedelta(seconds=total)


def parse_rate(text: str) -> RateLimit:
    """``"10/s"``, ``"600/m"``, ``"1000/min"``."""
    match = _RATE.match(text.strip().lower())
    if not match:
        raise ValueError(f"rate_limit {text!r} must look like '10/s' or '600/m'")
    per_second = float(match.group(1)) / _RATE_UNITS[match.group(2)]
    if per_second <= 0:
        raise ValueError(f"rate_limit {text!r} must be positive")
    return RateLimit(per_second)


def parse_timestamp(text: str) -> datetime:
    """ISO 8601 timestamp or date; a naive value means UTC (CONTRACT §1)."""
    raw = text.strip()
    if not raw:
        raise ValueError("empty timestamp")
    try:
        if len(raw) == 10:
            return datetime.combine(date.fromisoformat(raw), time(), tzinfo=UTC)
        value = datetime.fromisoformat(raw.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError as exc:
        raise ValueError(f"{text!r} is not an ISO 8601 timestamp (e.g. 2026-11-01T00:00:00Z)") from exc
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def parse_until(text: str) -> datetime:
    """The exclusive end of a ``--until`` window, one rule for every command (CONTRACT §1): a
    timestamp is exclusive as given; a bare date ``YYYY-MM-DD`` is inclusive, covering that whole UTC
    day, so its end is the next midnight."""
    moment = parse_timestamp(text)
    return moment + timedelta(days=1) if _is_bare_date(text) else moment


def _is_bare_date(text: str) -> bool:
    return len(text.strip()) == 10


def parse_day(text: str) -> date:
    """An inclusive UTC day, ``YYYY-MM-DD`` (a full timestamp is cut to its UTC day)."""
    return parse_timestamp(text).date()


def utc_stamp(moment: datetime | None = None) -> str:
    """``moment`` (now when ``None``) as the one timestamp text recarchive writes: ``2026-11-30T08:30:00Z``."""
    return (moment or datetime.now(UTC)).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
