"""Logging set-up: human lines or JSON lines on stderr, always through the secret filter.

``RECARCHIVE_LOG_FORMAT=json`` (or ``--log-json``) gives one JSON object per line, for log shippers.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from datetime import UTC, datetime

from worker.redact import SecretFilter, guard_library_loggers, mask_secrets

__all__ = ["JsonFormatter", "setup_logging"]


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        document = {
            "time": datetime.fromtimestamp(record.created, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": mask_secrets(record.getMessage()),
        }
        for key in ("account", "provider", "recording_id", "outcome", "reason"):
            value = getattr(record, key, None)
            if value is not None:
                document[key] = value
        if record.exc_info:
            document["exception"] = mask_secrets(self.formatException(record.exc_info))
        return json.dumps(document, ensure_ascii=False)


def setup_logging(level: int = logging.WARNING, *, json_lines: bool | None = None) -> None:
    """Install one stderr handler on the root logger (idempotent)."""
    if json_lines is None:
        json_lines = os.environ.get("RECARCHIVE_LOG_FORMAT", "").lower() == "json"
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "_recarchive", False):
            root.removeHandler(handler)
    handler = logging.StreamHandler(sys.stderr)
    handler._recarchive = True  # type: ignore[attr-defined]
    handler.addFilter(SecretFilter())
    handler.setFormatter(JsonFormatter() if json_lines else
                         logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root.addHandler(handler)
    guard_library_loggers()
    root.setLevel(level)
    for noisy in ("httpx", "httpcore", "botocore", "boto3", "s3transfer", "urllib3"):
        logging.getLogger(noisy).setLevel(max(level, logging.WARNING))
