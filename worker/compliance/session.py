"""The archiving context as every command and worker opens it: the pipeline's, with compliance's
observers installed once (daily manifests; more join here, never by event-name strings)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from config.settings import Settings
from worker.compliance.manifests import ManifestHook
from worker.pipeline.context import ArchiveContext, build_context
from worker.pipeline.hooks import ArchiveHooks, Hooks

__all__ = ["open_context"]


def open_context(settings: Settings, *, observers: Iterable[ArchiveHooks] = (), **options: Any) -> ArchiveContext:
    """``build_context`` plus the compliance observers, then ``observers`` (metrics, progress)."""
    ctx = build_context(settings, **options)
    ctx.hooks = Hooks([ManifestHook(ctx.storage, settings.retention), *observers])
    return ctx
