"""The beat schedule: one discovery entry per account, every ``schedule.discover_every``.

Each tick expires after one period: if the ``discover`` queue is backed up, a stale tick is dropped
rather than run late on top of the next one (the per-account lock would skip it anyway).
"""

from __future__ import annotations

from typing import Any

from config.settings import Settings

__all__ = ["beat_schedule"]


def beat_schedule(settings: Settings) -> dict[str, dict[str, Any]]:
    every = settings.schedule.discover_every.total_seconds()
    return {
        f"discover:{account.name}": {
            "task": "recarchive.discover",
            "schedule": every,
            "args": [account.name],
            "options": {"queue": "discover", "expires": every},
        }
        for account in settings.accounts
    }
