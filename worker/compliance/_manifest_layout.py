"""Where the manifests live and when a day may be closed (shared by writing and checking)."""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, date, datetime, timedelta

from storage.keys import MANIFEST_PREFIX

__all__ = ["CLOSE_GRACE", "DAY_FILE", "ENTRY_SCHEMA", "MANIFEST_SCHEMA", "closable_until", "pending_key", "root"]

MANIFEST_SCHEMA = "recarchive.manifest/1"
ENTRY_SCHEMA = "recarchive.manifest-entry/1"
#: a day is closed once it ended this long ago (a hook finishing just after midnight still makes it)
CLOSE_GRACE = timedelta(hours=1)
DAY_FILE = re.compile(r"^(\d{4}-\d{2}-\d{2})\.jsonl$")


def root(account: str) -> str:
    return f"{MANIFEST_PREFIX}/{account}/"


def pending_key(account: str, day: date, metadata_full_key: str) -> str:
    name = hashlib.sha256(metadata_full_key.encode("utf-8", "surrogatepass")).hexdigest()[:32]
    return f"{root(account)}pending/{day:%Y-%m-%d}/{name}.json"


def closable_until(now: datetime) -> date:
    """The last day that may be closed at ``now``."""
    return (now.astimezone(UTC) - CLOSE_GRACE).date() - timedelta(days=1)
