"""The floor of any Python copier on the throughput bench: the least work a Python tool can do.

For each file of the simulator's ``/files/`` listing: one streamed ``GET`` with httpx, fed straight
into one boto3 ``PutObject`` (the body read as it arrives, ``ContentLength`` from the response), at
the same concurrency as the other tools, into the same moto server. No hashing, no sniffing, no
checks, no ``metadata.json``, no manifest or index entry, nothing written to disk: only the copy.

Why it is measured: it separates what recarchive's own work costs from what the bench's peers cost a
Python process at all (httpx and botocore per request and per chunk, moto's per-request work, all on
the same two cores). If this floor is already slower than rclone, no Python archiver that does at
least a copy can be faster than it on this bench, whatever it leaves out.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx

__all__ = ["run_floor"]

CHUNK = 128 * 1024  # what botocore sends at a time (its urllib3 blocksize)


class _Body:
    """A read()-able view of a streamed response body, for botocore's ``Body``: each read returns the
    next chunk as it arrived (the sender only needs "no more" to be ``b""``), so no byte is copied."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks

    def read(self, size: int = -1) -> bytes:
        del size
        return next(self._chunks, b"")


def run_floor(base_url: str, names: list[str], client: Any, bucket: str, concurrency: int) -> float:
    """Copy every ``base_url + name`` into ``bucket``; wall seconds."""
    started = time.monotonic()
    with httpx.Client(follow_redirects=True, timeout=120) as http:

        def copy(name: str) -> None:
            with http.stream("GET", base_url + name) as response:
                response.raise_for_status()
                size = int(response.headers["Content-Length"])
                client.put_object(Bucket=bucket, Key=name, Body=_Body(response.iter_raw(CHUNK)), ContentLength=size)

        with ThreadPoolExecutor(concurrency) as pool:
            list(pool.map(copy, names))
    return time.monotonic() - started
