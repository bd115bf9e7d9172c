"""The daemon's work as plain functions (no Celery import here): task bodies, Redis coordination
(locks, enqueue dedupe, shared rate limits), metrics and operational gauges, the set-up doctor.
``tasks/`` wraps these in Celery tasks of a few lines each."""
