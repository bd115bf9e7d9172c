"""The archiving pipeline as plain functions, the Celery app and the CLI.

``celery -A worker worker`` looks up ``worker.app``; it is created lazily so that importing this
package (the CLI does) neither imports Celery nor touches a broker.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.2.0"
__all__ = ["__version__", "app"]


def __getattr__(name: str) -> Any:
    if name in ("app", "celery"):
        from tasks.app import get_app

        return get_app()
    raise AttributeError(name)
