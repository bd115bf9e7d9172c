"""Celery tasks of the daemon: thin wrappers over ``worker/`` functions, and the beat schedule.

``recarchive.discover`` (queue ``discover``) → ``worker.daemon.bodies.discover_and_enqueue``;
``recarchive.archive`` (queue ``download``) → ``worker.daemon.bodies.archive_task_body``;
``recarchive.transcode`` (queue ``transcode``) → ``worker.daemon.bodies.transcode_task_body``.
The app (``tasks.app``) imports the task modules; importing this package does nothing.
"""

from __future__ import annotations

__all__ = ["TASK_NAMES"]

TASK_NAMES = ("recarchive.discover", "recarchive.archive", "recarchive.transcode")
