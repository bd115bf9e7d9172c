"""The archiving context as every command and worker opens it: the pipeline's, with compliance's
observers installed once (daily manifests, the id index that ``show`` reads), never by event name."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from config.settings import Settings
from worker.compliance.index import IndexHook
from worker.compliance.manifests import ManifestHook
from worker.pipeline.context import ArchiveContext, build_context
from worker.pipeline.hooks import ArchiveHooks, Hooks

__all__ = ["open_context"]


def open_context(settings: Settings, *, observers: Iterable[ArchiveHooks] = (), **options: Any) -> ArchiveContext:
    """``build_context`` plus the compliance observers, then ``observers`` (metrics, progress)."""
    ctx = build_context(settings, **options)
    ctx.hooks = Hooks([ManifestHook(ctx.storage, settings.retention), IndexHook(ctx.storage), *observers])
    return ctx
