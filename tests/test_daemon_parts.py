"""The daemon's plain functions against real parts (private redis-server, moto S3, the simulator):
queue payloads, time limits, Redis locks / dedupe / the shared rate limit, one discovery pass.
Whole Celery workers are driven in ``test_daemon.py``.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest

from config import settings_from_mapping
from providers.base import Recording, Window
from providers.simulator import Simulator
from storage.metadata import load_metadata
from tests._daemon_support import daemon_mapping
from tests.fixtures.s3 import S3Bucket
from worker.compliance.session import open_context
from worker.daemon.bodies import (
    DaemonOptions,
    archive_task_body,
    discover_and_enqueue,
    recording_from_payload,
    recording_to_payload,
    task_time_limits,
)
from worker.daemon.redis_coord import Coordinator, RedisLock, RedisRateLimiter
from worker.pipeline.context import RetryPolicy
from worker.pipeline.state import ParkedRecord

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]

FAST_RETRIES = {"RECARCHIVE_RETRY_BACKOFF": "0.2", "RECARCHIVE_MAX_RETRIES": "2"}


# -- plain functions ---------------------------------------------------------------------------------

def _recording(**changes: Any) -> Recording:
    base = dict(provider="convirza", account="acme", recording_id="987",
                started_at=datetime(2026, 2, 14, 18, 20, tzinfo=UTC),
                listed_at=datetime(2026, 2, 14, 18, 21, tzinfo=UTC), vendor_duration_seconds=182.0,
                expires_at=datetime(2026, 2, 21, tzinfo=UTC), source={"call_id": "987", "duration": 182},
                hint={"url": "https://media.example.com/r/987.mp3?secret=s3cr3t-token&expires=1", "kind": "x"})
    base.update(changes)
    return Recording(**base)


def test_payload_round_trip_never_carries_a_signed_url() -> None:
    rec = _recording()
    payload = recording_to_payload(rec)
    text = json.dumps(payload)
    assert "s3cr3t-token" not in text and "?" not in text
    assert payload["hint"] == {"kind": "x"} and payload["hint_dropped"] == ["url"]
    back = recording_from_payload(json.loads(text))
    assert back == rec  # hint is not compared; every other field survives the queue
    assert back.hint == {"kind": "x"}
    creds = recording_to_payload(_recording(hint={"href": "https://user:pw@api.example.com/x", "path": "a/b.wav"}))
    assert creds["hint"] == {"path": "a/b.wav"}


def test_time_limits_scale_with_the_recording() -> None:
    options = DaemonOptions()
    short = task_time_limits(_recording(vendor_duration_seconds=60.0), options)
    long = task_time_limits(_recording(vendor_duration_seconds=4 * 3600.0), options)
    video = task_time_limits(_recording(vendor_duration_seconds=4 * 3600.0, is_video=True), options)
    unknown = task_time_limits(_recording(vendor_duration_seconds=None), options)
    assert short[0] < long[0] < video[0] and all(s < h for s, h in (short, long, video, unknown))
    assert video[1] <= options.visibility_timeout  # never outlives the broker's redelivery timeout


def test_redis_lock_dedupe_and_shared_rate_limit(redis_url: str) -> None:
    a = Coordinator.from_url(redis_url)
    b = Coordinator.from_url(redis_url)
    try:
        first, second = a.lock("acme", 30), b.lock("acme", 30)
        assert first.acquire() and not second.acquire()
        second.release()  # not ours: must not free the holder's lock
        assert not b.lock("acme", 30).acquire()
        first.release()
        assert second.acquire()
        second.release()
        short = RedisLock(a.client, "recarchive:lock:discover:short", 0.2)
        assert short.acquire()
        time.sleep(0.3)
        assert b.lock("short", 30).acquire()  # an expired lock frees itself

        assert a.dedupe.claim("acme", "r1") and not b.dedupe.claim("acme", "r1")
        a.dedupe.release("acme", "r1")
        assert b.dedupe.claim("acme", "r1")

        # one bucket for everyone: a pause set through one client holds back the other
        limiter_a = RedisRateLimiter(a.client, "recarchive:ratelimit:acme", rate=50)
        limiter_b = RedisRateLimiter(b.client, "recarchive:ratelimit:acme", rate=50)
        limiter_a.acquire()
        limiter_a.pause(0.6)
        started = time.monotonic()
        limiter_b.acquire()
        assert time.monotonic() - started >= 0.5
        # 2 threads x 10 tokens at 20/s cannot finish before (20 - 1) / 20 s
        slow_a = RedisRateLimiter(a.client, "recarchive:ratelimit:slow", rate=20)
        slow_b = RedisRateLimiter(b.client, "recarchive:ratelimit:slow", rate=20)
        started = time.monotonic()
        threads = [threading.Thread(target=lambda lim=lim: [lim.acquire() for _ in range(10)])
                   for lim in (slow_a, slow_b)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert time.monotonic() - started >= 19 / 20 - 0.01
    finally:
        a.close()
        b.close()


def test_discovery_pass_enqueues_once_and_holds_the_watermark(sim: Simulator, s3_bucket: S3Bucket,
                                                            redis_url: str) -> None:
    ready = sim.add("siro", 4)
    late = sim.add("siro", 1, state="not_ready")[0]
    settings = settings_from_mapping(daemon_mapping(sim, s3_bucket, redis_url, ["siro"]), sim.environ())
    account = settings.accounts[0]
    coord = Coordinator.from_url(redis_url)
    ctx = open_context(settings, retry=RetryPolicy(max_attempts=2, park_on_exhaustion=False),
                        limiter_factory=lambda acct, rate: coord.limiter(acct.name, rate))
    queued: list[Recording] = []
    try:
        first = discover_and_enqueue(ctx, account, queued.append, coord.lock(account.name, 60), coord.dedupe)
        assert (first.found, first.enqueued, first.pending, first.not_ready) == (5, 4, 4, 1)
        listed = {r.recording_id: r for r in queued}
        assert set(listed) == {r.id for r in ready}
        assert first.watermark is not None
        assert first.watermark <= min([r.listed_at for r in queued] + [late.created_at])

        again = discover_and_enqueue(ctx, account, queued.append, coord.lock(account.name, 60), coord.dedupe)
        assert (again.enqueued, again.already_queued) == (0, 4)  # dedupe: nothing enqueued twice

        # archive the two oldest (as the download task would) and park the third
        ordered = sorted(queued, key=lambda r: r.listed_at)
        for rec in ordered[:2]:
            result = archive_task_body(ctx, account, recording_to_payload(rec))
            assert result.outcome == "archived"
            coord.dedupe.release(account.name, rec.recording_id)
        ctx.state.park(account.name, ParkedRecord(recording_id=ordered[2].recording_id, reason="unavailable",
                                                  message="test", parked_at="2026-01-01T00:00:00Z", attempts=3))
        coord.dedupe.release(account.name, ordered[2].recording_id)
        third = discover_and_enqueue(ctx, account, queued.append, coord.lock(account.name, 60), coord.dedupe)
        assert (third.archived, third.parked, third.pending, third.already_queued) == (2, 1, 1, 1)
        assert third.watermark is not None
        assert third.watermark <= ordered[3].listed_at  # never past the one still pending
        last = ctx.state.last_pass(account.name)
        assert last is not None and last["pending"] == 1 and last["not_ready_ids"] == [late.id]

        sim.set_state("siro", late.id, "ready")
        archive_task_body(ctx, account, recording_to_payload(ordered[3]))
        coord.dedupe.release(account.name, ordered[3].recording_id)
        fourth = discover_and_enqueue(ctx, account, queued.append, coord.lock(account.name, 60), coord.dedupe)
        assert (fourth.enqueued, fourth.pending) == (1, 1)  # the late one, now ready
    finally:
        ctx.close()
        coord.close()


def test_a_dropped_hint_is_read_again_from_the_vendor(sim: Simulator, s3_bucket: S3Bucket, redis_url: str) -> None:
    """Convoso's resolve_media needs the listing's file URL: if it ever carried a signed query, the
    queue got none, and the task re-reads the recording by id before archiving it."""
    rec = sim.add("convoso", 1)[0]
    settings = settings_from_mapping(daemon_mapping(sim, s3_bucket, redis_url, ["convoso"]), sim.environ())
    account = settings.accounts[0]
    ctx = open_context(settings, retry=RetryPolicy(max_attempts=2, park_on_exhaustion=False))
    try:
        listed = [r for r in ctx.handle(account).provider.list_recordings(
            Window(account.start, datetime.now(UTC)))]
        signed = replace(listed[0], hint={"url": f"{listed[0].hint['url']}?Signature=abc&Expires=1"})
        payload = recording_to_payload(signed)
        assert payload["hint"] == {} and payload["hint_dropped"] == ["url"]
        result = archive_task_body(ctx, account, payload)
        assert result.outcome == "archived"
        document = load_metadata(ctx.storage.read_bytes(result.keys[-1].split("/", 1)[1]))
        assert document["objects"][0]["sha256"] == rec.sha256
    finally:
        ctx.close()


