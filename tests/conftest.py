"""Shared fixtures: real servers started on free loopback ports and stopped by the tests."""

from __future__ import annotations

import logging

pytest_plugins = [
    "tests.fixtures.s3",
    "tests.fixtures.sim",
    "tests.fixtures.redis",
]

# moto's embedded werkzeug server logs every request at INFO: keep test output about our code
logging.getLogger("werkzeug").setLevel(logging.WARNING)
