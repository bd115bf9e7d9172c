"""The ``source`` record stored with a recording: the vendor's record with every secret removed.

``worker.redact.scrub_record`` drops secret-named keys and the query of every absolute URL. Some
vendors also hand out *relative* media paths that carry a signed query (Siro's
``audio/…/processed.m4a?…&Signature=…``, a Convoso ``url``); those are named by the provider and
lose their query here too, so that nothing that grants access is ever stored.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from worker.redact import scrub_record

__all__ = ["source_of"]


def source_of(record: Mapping[str, Any], *relative_url_keys: str) -> Mapping[str, Any]:
    """``scrub_record(record)`` with the query of each top-level ``relative_url_keys`` value removed."""
    scrubbed = scrub_record(record)
    if not isinstance(scrubbed, dict):  # scrub_record keeps a mapping a mapping; be explicit for mypy
        return {}
    for key in relative_url_keys:
        value = scrubbed.get(key)
        if isinstance(value, str) and "?" in value:
            scrubbed[key] = value.split("?", 1)[0] + "?***"
    return scrubbed
