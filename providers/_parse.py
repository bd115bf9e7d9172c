"""Tolerant reading of vendor JSON: numbers as strings, missing optional fields, odd time formats.

Every helper raises ``BadVendorData`` (never ``KeyError``/``ValueError``/``TypeError``) so that a
malformed page stops only its account's pass, with a message naming the field.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, tzinfo
from typing import Any

from worker.errors import BadVendorData

__all__ = [
    "as_bool",
    "as_float",
    "as_int",
    "as_list",
    "as_mapping",
    "as_text",
    "optional_time",
    "parse_vendor_time",
]


def as_mapping(value: Any, what: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise BadVendorData(f"{what}: expected a JSON object, got {type(value).__name__}")
    return value


def as_list(value: Any, what: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise BadVendorData(f"{what}: expected a JSON array, got {type(value).__name__}")
    return value


def as_text(value: Any, what: str, *, required: bool = True) -> str | None:
    """An id or string field; integers are accepted and turned to text (ids come both ways)."""
    if value is None or value == "":
        if required:
            raise BadVendorData(f"{what}: missing")
        return None
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise BadVendorData(f"{what}: expected a string or integer, got {type(value).__name__}")
    return str(value)


def as_int(value: Any, what: str, *, default: int | None = None) -> int | None:
    """An integer that may arrive as a string (``"100"``); ``None``/``""`` give ``default``."""
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        raise BadVendorData(f"{what}: expected a number, got a boolean")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            try:
                number = float(value.strip())
            except ValueError:
                raise BadVendorData(f"{what}: {value[:40]!r} is not a number") from None
            if number.is_integer():
                return int(number)
    raise BadVendorData(f"{what}: {str(value)[:40]!r} is not an integer")


def as_float(value: Any, what: str) -> float | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise BadVendorData(f"{what}: expected a number, got a boolean")
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            raise BadVendorData(f"{what}: {value[:40]!r} is not a number") from None
    raise BadVendorData(f"{what}: expected a number, got {type(value).__name__}")


def as_bool(value: Any, what: str, *, default: bool = False) -> bool:
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in ("true", "false", "1", "0", "yes", "no"):
        return value.strip().lower() in ("true", "1", "yes")
    raise BadVendorData(f"{what}: {str(value)[:40]!r} is not a boolean")


def parse_vendor_time(value: Any, what: str, *, zone: tzinfo = UTC) -> datetime:
    """An ISO 8601 time, ``YYYY-MM-DD HH:MM:SS`` (naive: read in ``zone``) or unix seconds/millis."""
    if isinstance(value, bool) or value is None or value == "":
        raise BadVendorData(f"{what}: missing time")
    if isinstance(value, int | float):
        seconds = float(value) / 1000 if value > 10**11 else float(value)
        try:
            return datetime.fromtimestamp(seconds, UTC)
        except (OverflowError, OSError, ValueError):
            raise BadVendorData(f"{what}: {value!r} is not a valid unix time") from None
    if not isinstance(value, str):
        raise BadVendorData(f"{what}: expected a time string, got {type(value).__name__}")
    text = value.strip()
    if text.isdigit():
        return parse_vendor_time(int(text), what, zone=zone)
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise BadVendorData(f"{what}: {text[:40]!r} is not a time") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zone)
    return moment.astimezone(UTC)


def optional_time(value: Any, what: str, *, zone: tzinfo = UTC) -> datetime | None:
    if value is None or value == "":
        return None
    return parse_vendor_time(value, what, zone=zone)
