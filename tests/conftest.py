"""Shared fixtures: real servers started on free loopback ports and stopped by the tests."""

from __future__ import annotations

pytest_plugins = [
    "tests.fixtures.s3",
    "tests.fixtures.sim",
    "tests.fixtures.redis",
]
