"""The provider conformance suite: one contract, one subclass per vendor (fsspec style).

Every test runs the real pipeline (``run_pass``, or ``recarchive run --once`` as a process) over real
HTTP against the simulator, and checks the archive from outside: each ready recording stored once,
byte-exact against the simulator's SHA-256, nothing else. Waiting is never real: the rate limiter and
the pipeline sleep on a ``FakeClock`` that records every wait, and links expire through the
simulator's own controls.

Adding a vendor: a provider module, a simulator module, and one more subclass at the bottom of this
file stating what the vendor has and does not have (the ``*_skip`` reasons).
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import re
import threading
from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar

import httpx
import pytest

from config import Settings, settings_from_mapping
from providers import get_provider
from providers._http import VendorClient
from providers._ratelimit import TokenBucket
from providers.base import Provider, Window
from providers.simulator import VENDORS, Simulator
from providers.simulator import convoso as convoso_sim
from providers.simulator import salesloft as salesloft_sim
from providers.simulator import siro as siro_sim
from storage import Storage
from tests._e2e import cli, run_once, write_config
from tests.fixtures.s3 import S3Bucket
from worker.compliance.session import open_context
from worker.pipeline.archive import Outcome
from worker.pipeline.context import ArchiveContext
from worker.pipeline.passes import PassSummary

#: media for tests that need many recordings: 0.5 s MP3 is a cached encode plus a tag, so cheap
BULK: dict[str, Any] = {"kind": "mp3", "seconds": 0.5}
#: a Retry-After no backoff of ours produces, so the recorded waits show it was honoured
RETRY_AFTER = 7
#: a signed-URL or Convoso credential in a query, unmasked (``Signature=***`` is the masked form)
SIGNED_QUERY = re.compile(r"(?i)\b(signature|secret|auth_token|access)=(?!\*\*\*)[^&\s\"'<>]+")
#: short signed-link lifetimes, yet longer than the minute before expiry at which Convirza's provider
#: re-reads a call for a fresh link (with less, every download would start with a refresh)
LINK_TTL = 300.0


@pytest.fixture
def sim(sim_factory: Callable[..., Simulator]) -> Simulator:
    """A started, empty simulator whose links live ``LINK_TTL`` (expired on demand with its clock)."""
    return sim_factory(link_ttl=LINK_TTL)


class FakeClock:
    """Time that passes only when something waits: each sleep is recorded and returns at once."""

    def __init__(self) -> None:
        self._now = 1_000.0
        self._lock = threading.Lock()
        self.sleeps: list[float] = []

    def now(self) -> float:
        with self._lock:
            return self._now

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.sleeps.append(seconds)
            # at least a microsecond: a wait computed as ``until - now`` must reach ``until``
            self._now += max(1e-6, seconds)

    def waits_of(self, seconds: float) -> int:
        return sum(1 for s in self.sleeps if abs(s - seconds) < 1e-6)


class ProviderContract:
    """What every vendor must do through the pipeline. Subclasses set ``vendor`` and the facts below."""

    vendor: ClassVar[str]
    #: the vendor's list endpoint as the simulator logs it (request path, no query)
    list_path: ClassVar[str]
    #: API calls ``resolve_media`` makes per ready recording (documented in the provider module)
    item_calls_per_recording: ClassVar[int]
    #: API calls a pass makes for credentials of its own (Siro mints one OAuth access token)
    auth_calls: ClassVar[int] = 0
    #: status of the vendor's expired-link answer
    expired_status: ClassVar[int] = 403
    #: offset/page-number paging lists again from the start when it sees a shift (a total that
    #: changed, an id twice) and so finds an insert in the same pass; a keyset cursor does not shift,
    #: so an item inserted behind it is found by the next pass (lookback)
    relists_on_shift: ClassVar[bool]
    #: the listing itself hands out each recording's signed media link (used later, so it can expire)
    links_in_listing: ClassVar[bool] = False
    not_ready_skip: ClassVar[str | None] = None
    deleted_skip: ClassVar[str | None] = None
    total_skip: ClassVar[str | None] = None
    path_fallback_skip: ClassVar[str | None] = "only Convoso documents two spellings of its list path"
    #: account keys this contract's accounts get besides the simulator's (a Convoso account without
    #: lead_ids: ``{"lead_ids": None}`` removes the key)
    account_overrides: ClassVar[dict[str, Any]] = {}
    #: a field of the vendor's record of one recording that the ``bad_field`` fault can spoil (None: not
    #: simulated for this vendor)
    bad_field: ClassVar[str | None] = None
    #: the vendor lists calls without a recording (so "no recording" must wait for no_recording_after)
    no_recording_skip: ClassVar[str | None] = "not simulated for this vendor"
    #: the vendor's API serves a redacted version of the audio (Siro): metadata.json must say so
    serves_redacted: ClassVar[bool] = False

    # -- harness -------------------------------------------------------------------------------------

    @property
    def provider(self) -> type[Provider]:
        return get_provider(self.vendor)

    @property
    def page(self) -> int:
        return self.provider.max_page_size

    @property
    def partner(self) -> str:
        """Another vendor, for tests where a second account must be unaffected."""
        return next(v for v in VENDORS if v != self.vendor)

    @staticmethod
    def local(tmp_path: Path) -> dict[str, Any]:
        return {"url": f"file://{tmp_path / 'archive'}", "work_dir": str(tmp_path / "work")}

    def settings(self, sim: Simulator, storage: dict[str, Any], *vendors: str, **overrides: Any) -> Settings:
        accounts = [sim.account(v, name=f"t-{v}", **({**self.account_overrides, **overrides} if v == self.vendor
                                                     else {})) for v in (vendors or (self.vendor,))]
        return settings_from_mapping({"storage": storage, "accounts": accounts}, sim.environ())

    @staticmethod
    def timing(clock: FakeClock) -> dict[str, Any]:
        """Context options that make every wait (backoff, Retry-After, rate limit) a fake one."""
        return {"sleep": clock.sleep,
                "limiter_factory": lambda _account, _rate: TokenBucket(1000.0, clock=clock.now, sleep=clock.sleep)}

    def run(self, settings: Settings, clock: FakeClock | None = None, *, check_media: bool = False,
            **kw: Any) -> tuple[PassSummary, ArchiveContext]:
        return run_once(settings, check_media=check_media, **self.timing(clock or FakeClock()), **kw)

    def listed_ids(self, settings: Settings) -> list[str]:
        """What the provider itself yields for the account's whole history (no pipeline dedupe)."""
        account = settings.accounts[0]
        ctx = open_context(settings, check_media=False, **self.timing(FakeClock()))
        try:
            window = Window(account.start, datetime.now(UTC) + timedelta(seconds=1))
            return [r.recording_id for r in ctx.handle(account).provider.list_recordings(window)]
        finally:
            ctx.close()

    def account_of(self, summary: PassSummary, vendor: str | None = None) -> Any:
        return next(a for a in summary.accounts if a.provider == (vendor or self.vendor))

    def list_statuses(self, sim: Simulator) -> list[int]:
        return [r.status for r in sim.requests if r.kind == "api" and r.path == self.list_path]

    def media_statuses(self, sim: Simulator, recording_id: str) -> list[int]:
        return [r.status for r in sim.requests if r.kind == "media" and r.recording_id == recording_id]

    def assert_archived_exactly(self, sim: Simulator, storage: Storage, ids: list[str],
                                vendor: str | None = None) -> None:
        """Exactly ``ids`` are committed for the vendor, each once, its original byte-exact."""
        vendor = vendor or self.vendor
        commits: dict[str, list[tuple[str, dict[str, Any]]]] = defaultdict(list)
        for info in storage.list(f"{vendor}/"):
            if info.key.endswith("/metadata.json"):
                doc = json.loads(storage.read_bytes(info.key))
                commits[doc["recording_id"]].append((info.key, doc))
        assert sorted(commits) == sorted(ids)
        for rid in ids:
            [(key, doc)] = commits[rid]
            rec = sim.get(vendor, rid)
            folder = key.rsplit("/", 1)[0] + "/"
            assert sorted(o.key[len(folder):] for o in storage.list(folder)) == ["metadata.json",
                                                                                 f"original.{rec.ext}"]
            data = b"".join(storage.iter_bytes(f"{folder}original.{rec.ext}"))
            assert hashlib.sha256(data).hexdigest() == rec.sha256 == doc["objects"][0]["sha256"]

    # -- pagination ------------------------------------------------------------------------------------

    def test_exactly_one_full_page(self, sim: Simulator, tmp_path: Path) -> None:
        recs = sim.add(self.vendor, self.page, **BULK)
        summary, ctx = self.run(self.settings(sim, self.local(tmp_path)))
        acct = self.account_of(summary)
        assert acct.error is None and acct.counts[Outcome.ARCHIVED] == self.page
        assert self.list_statuses(sim) == [200]  # a full last page is not followed by an empty one
        self.assert_archived_exactly(sim, ctx.storage, [r.id for r in recs])
        assert all(sim.media_requests(r.id) == 1 for r in recs)

    def test_one_more_than_a_page_in_ceil_n_over_page_list_calls(self, sim: Simulator, tmp_path: Path) -> None:
        n = self.page + 1
        recs = sim.add(self.vendor, n, **BULK)
        settings = self.settings(sim, self.local(tmp_path))
        summary, ctx = self.run(settings)
        acct = self.account_of(summary)
        assert acct.error is None and acct.counts[Outcome.ARCHIVED] == n
        self.assert_archived_exactly(sim, ctx.storage, [r.id for r in recs])
        list_calls = math.ceil(n / self.page)
        assert self.list_statuses(sim) == [200] * list_calls
        assert ctx.api_calls(settings.accounts[0].name) == (list_calls + self.auth_calls
                                                            + self.item_calls_per_recording * n)
        assert acct.api_calls == ctx.api_calls(settings.accounts[0].name)

    def test_empty_listing(self, sim: Simulator, tmp_path: Path) -> None:
        summary, ctx = self.run(self.settings(sim, self.local(tmp_path)))
        acct = self.account_of(summary)
        assert acct.error is None and acct.found == 0 and not summary.failed
        assert self.list_statuses(sim) == [200]
        assert not [o for o in ctx.storage.list(f"{self.vendor}/")]
        assert acct.watermark == acct.window.until  # nothing pending: the watermark moves on

    def test_duplicates_across_pages_archived_once(self, sim: Simulator, tmp_path: Path) -> None:
        recs = sim.add(self.vendor, self.page + 2, **BULK)
        sim.set_api_fault(self.vendor, "duplicates_across_pages")  # page 2 repeats page 1's last item
        settings = self.settings(sim, self.local(tmp_path))
        listed = self.listed_ids(settings)
        assert sorted(listed) == sorted(r.id for r in recs)  # the provider yields each id once
        # offset paging takes the repeat for a shift and lists once more; a cursor just drops it
        assert len(self.list_statuses(sim)) == 2 * (2 if self.relists_on_shift else 1)
        summary, ctx = self.run(settings)
        acct = self.account_of(summary)
        assert acct.error is None
        assert acct.found == len(recs) and acct.counts[Outcome.ARCHIVED] == len(recs)
        self.assert_archived_exactly(sim, ctx.storage, [r.id for r in recs])
        assert all(sim.media_requests(r.id) == 1 for r in recs)

    def test_empty_page_with_nonzero_total(self, sim: Simulator, tmp_path: Path) -> None:
        if self.total_skip:
            pytest.skip(self.total_skip)
        recs = sim.add(self.vendor, 3)
        sim.set_api_fault(self.vendor, "empty_page_nonzero_total", extra=5)
        summary, ctx = self.run(self.settings(sim, self.local(tmp_path)), check_media=True)
        acct = self.account_of(summary)
        assert acct.error is None and acct.counts[Outcome.ARCHIVED] == 3
        assert self.list_statuses(sim) == [200, 200]  # the empty page ends it, whatever total says
        self.assert_archived_exactly(sim, ctx.storage, [r.id for r in recs])

    def test_insert_during_paging(self, sim: Simulator, tmp_path: Path) -> None:
        recs = sim.add(self.vendor, self.page + 1, **BULK)
        sim.set_api_fault(self.vendor, "insert_during_paging", times=1, count=1, **BULK)
        settings = self.settings(sim, self.local(tmp_path))
        first, ctx = self.run(settings)
        [inserted] = [r for r in sim.recordings(self.vendor) if r.id not in {x.id for x in recs}]
        everything = [r.id for r in recs] + [inserted.id]
        acct = self.account_of(first)
        assert acct.error is None
        if self.relists_on_shift:  # offset/page numbers shifted: the pass listed again from the start
            assert acct.counts[Outcome.ARCHIVED] == len(everything)
            self.assert_archived_exactly(sim, ctx.storage, everything)
        else:  # a keyset cursor does not shift: the insert lies behind it, found by the next pass
            assert acct.counts[Outcome.ARCHIVED] == len(recs)
            self.assert_archived_exactly(sim, ctx.storage, [r.id for r in recs])
        second, ctx = self.run(settings)
        acct = self.account_of(second)
        assert acct.counts[Outcome.ARCHIVED] == (0 if self.relists_on_shift else 1)
        assert acct.counts[Outcome.UNCHANGED] == (len(everything) if self.relists_on_shift else len(recs))
        self.assert_archived_exactly(sim, ctx.storage, everything)

    # -- the window ------------------------------------------------------------------------------------

    def test_window_edges(self, sim: Simulator, tmp_path: Path) -> None:
        start = datetime.now(UTC).replace(microsecond=0) - timedelta(days=1)
        before, at_since, inside, at_until = sim.add(self.vendor, 4, started_at=start, seconds=1.0)
        summary, ctx = self.run(self.settings(sim, self.local(tmp_path)), check_media=True,
                                since=at_since.created_at, until=at_until.created_at)
        acct = self.account_of(summary)
        assert acct.error is None and acct.found == 2 and acct.counts[Outcome.ARCHIVED] == 2
        self.assert_archived_exactly(sim, ctx.storage, [at_since.id, inside.id])
        assert sim.media_requests(before.id) == sim.media_requests(at_until.id) == 0

    def test_metadata_says_whether_the_audio_is_redacted(self, sim: Simulator, tmp_path: Path) -> None:
        [rec] = sim.add(self.vendor, 1, seconds=1.0)
        summary, ctx = self.run(self.settings(sim, self.local(tmp_path)), check_media=True)
        assert self.account_of(summary).counts[Outcome.ARCHIVED] == 1
        [meta] = [i.key for i in ctx.storage.list(f"{self.vendor}/") if i.key.endswith("/metadata.json")]
        document = json.loads(ctx.storage.read_bytes(meta))
        assert document["recording_id"] == rec.id
        assert document["media"].get("redacted", False) is self.serves_redacted

    # -- readiness -------------------------------------------------------------------------------------

    def test_not_ready_then_ready_on_a_later_pass(self, sim: Simulator, tmp_path: Path) -> None:
        if self.not_ready_skip:
            pytest.skip(self.not_ready_skip)
        ready = sim.add(self.vendor, 2, seconds=1.0)
        [waiting] = sim.add(self.vendor, 1, seconds=1.0, state="not_ready")
        settings = self.settings(sim, self.local(tmp_path))
        first, ctx = self.run(settings)
        acct = self.account_of(first)
        assert acct.counts[Outcome.ARCHIVED] == 2 and acct.counts[Outcome.NOT_READY] == 1
        assert not first.failed and not list(ctx.storage.list(f"_state/{acct.account}/parked/"))
        assert acct.watermark is not None and acct.watermark <= waiting.created_at
        self.assert_archived_exactly(sim, ctx.storage, [r.id for r in ready])
        sim.set_state(self.vendor, waiting.id, "ready")
        second, ctx = self.run(settings, check_media=True)
        acct = self.account_of(second)
        assert acct.counts[Outcome.ARCHIVED] == 1 and acct.counts[Outcome.UNCHANGED] == 2
        self.assert_archived_exactly(sim, ctx.storage, [r.id for r in [*ready, waiting]])

    def test_deleted_is_skipped_and_reported(self, sim: Simulator, tmp_path: Path) -> None:
        if self.deleted_skip:
            pytest.skip(self.deleted_skip)
        ready = sim.add(self.vendor, 2, seconds=1.0)
        [gone] = sim.add(self.vendor, 1, seconds=1.0, state="deleted")
        [late] = sim.add(self.vendor, 1, seconds=1.0)  # deleted after listing, before download

        fired: list[str] = []

        def delete_late(event: str, _payload: Any) -> None:
            if event == "listed" and not fired:  # the listing is in; nothing downloaded yet
                fired.append(event)
                sim.set_state(self.vendor, late.id, "deleted")

        summary, ctx = self.run(self.settings(sim, self.local(tmp_path)), report=delete_late)
        acct = self.account_of(summary)
        assert acct.error is None and not summary.failed
        assert acct.counts[Outcome.ARCHIVED] == 2 and acct.counts[Outcome.DELETED] == 2
        self.assert_archived_exactly(sim, ctx.storage, [r.id for r in ready])
        assert sim.media_requests(gone.id) == sim.media_requests(late.id) == 0
        last = json.loads(ctx.storage.read_bytes(f"_state/{acct.account}/last_pass.json"))
        assert last["deleted_ids"] == sorted([gone.id, late.id])

    # -- media links -----------------------------------------------------------------------------------

    def test_expired_links_are_refreshed(self, sim: Simulator, tmp_path: Path) -> None:
        recs = sim.add(self.vendor, 3, seconds=1.0)
        sim.set_fault(self.vendor, recs[0].id, "expired", times=1)

        fired: list[str] = []

        def expire_listed_links(event: str, _payload: Any) -> None:
            if event == "listed" and not fired:  # links handed out with the listing die before the download
                fired.append(event)
                sim.advance_clock(LINK_TTL + 1)

        summary, ctx = self.run(self.settings(sim, self.local(tmp_path)), check_media=True,
                                report=expire_listed_links)
        acct = self.account_of(summary)
        assert acct.error is None and acct.counts[Outcome.ARCHIVED] == 3
        self.assert_archived_exactly(sim, ctx.storage, [r.id for r in recs])
        statuses = self.media_statuses(sim, recs[0].id)
        assert statuses[0] == self.expired_status and statuses[-1] == 200
        for rec in recs[1:]:  # a listed link died with the clock; links resolved at download did not
            expected = [self.expired_status, 200] if self.links_in_listing else [200]
            assert self.media_statuses(sim, rec.id) == expected

    # -- rate limits -----------------------------------------------------------------------------------

    def test_429_on_the_api_is_honoured(self, sim: Simulator, tmp_path: Path) -> None:
        recs = sim.add(self.vendor, 2, seconds=1.0)
        sim.set_api_fault(self.vendor, "rate_limit", times=2, retry_after=RETRY_AFTER, endpoint="list")
        clock = FakeClock()
        summary, ctx = self.run(self.settings(sim, self.local(tmp_path)), clock)
        assert self.account_of(summary).counts[Outcome.ARCHIVED] == 2
        assert self.list_statuses(sim) == [429, 429, 200]
        assert clock.waits_of(RETRY_AFTER) == 2  # the limiter paused for Retry-After, twice
        self.assert_archived_exactly(sim, ctx.storage, [r.id for r in recs])

    def test_429_on_media_is_honoured(self, sim: Simulator, tmp_path: Path) -> None:
        recs = sim.add(self.vendor, 2, seconds=1.0)
        sim.set_fault(self.vendor, recs[0].id, "rate_limit", times=2, retry_after=RETRY_AFTER)
        clock = FakeClock()
        summary, ctx = self.run(self.settings(sim, self.local(tmp_path)), clock, check_media=True)
        assert self.account_of(summary).counts[Outcome.ARCHIVED] == 2
        assert self.media_statuses(sim, recs[0].id) == [429, 429, 200]
        assert clock.waits_of(RETRY_AFTER) == 2
        self.assert_archived_exactly(sim, ctx.storage, [r.id for r in recs])

    # -- bad vendor data -------------------------------------------------------------------------------

    def test_malformed_page_fails_only_this_account(self, sim: Simulator, tmp_path: Path) -> None:
        sim.add(self.vendor, self.page + 1, **BULK)
        others = sim.add(self.partner, 2, seconds=1.0)
        sim.set_api_fault(self.vendor, "malformed_json", page=2)
        summary, ctx = self.run(self.settings(sim, self.local(tmp_path), self.vendor, self.partner))
        bad, good = self.account_of(summary), self.account_of(summary, self.partner)
        assert summary.failed
        assert bad.error_reason == "bad_vendor_data" and "not JSON" in (bad.error or "")
        assert self.list_statuses(sim)[-1] == 200 and len(self.list_statuses(sim)) == 2
        # the pass streams: what was handed out before the bad page is archived whole, nothing half-done,
        # and the account's watermark does not move, so the next pass lists the same window again
        committed = [json.loads(ctx.storage.read_bytes(i.key))["recording_id"]
                     for i in ctx.storage.list(f"{self.vendor}/") if i.key.endswith("/metadata.json")]
        assert len(committed) < self.page + 1 and bad.counts[Outcome.ARCHIVED] == len(committed)
        self.assert_archived_exactly(sim, ctx.storage, committed)
        assert ctx.state.watermark(bad.account) is None
        assert good.error is None and good.counts[Outcome.ARCHIVED] == 2
        self.assert_archived_exactly(sim, ctx.storage, [r.id for r in others], vendor=self.partner)

    def test_string_numbers(self, sim: Simulator, tmp_path: Path) -> None:
        recs = sim.add(self.vendor, 3, seconds=2.0)
        sim.set_api_fault(self.vendor, "string_numbers")
        summary, ctx = self.run(self.settings(sim, self.local(tmp_path)), check_media=True)
        acct = self.account_of(summary)
        assert acct.error is None and acct.counts[Outcome.ARCHIVED] == 3
        self.assert_archived_exactly(sim, ctx.storage, [r.id for r in recs])
        for info in ctx.storage.list(f"{self.vendor}/"):
            if info.key.endswith("/metadata.json"):
                doc = json.loads(ctx.storage.read_bytes(info.key))
                expected = sim.get(self.vendor, doc["recording_id"]).vendor_duration_seconds
                assert doc["vendor_duration_seconds"] == pytest.approx(expected)

    def test_list_path_fallback(self, sim: Simulator, tmp_path: Path) -> None:
        if self.path_fallback_skip:
            pytest.skip(self.path_fallback_skip)
        recs = sim.add(self.vendor, 2, seconds=1.0)
        sim.set_api_fault(self.vendor, "convoso_lead_404")
        summary, ctx = self.run(self.settings(sim, self.local(tmp_path)))
        assert self.account_of(summary).counts[Outcome.ARCHIVED] == 2
        api = [(r.path, r.status) for r in sim.requests if r.kind == "api"]
        assert api == [(self.list_path, 404), (self.list_path.replace("/lead/", "/leads/"), 200)]
        self.assert_archived_exactly(sim, ctx.storage, [r.id for r in recs])

    # -- one bad record; "no recording" (PROVIDERS.md general rules) -------------------------------------

    def test_one_bad_record_parks_only_that_recording(self, sim: Simulator, tmp_path: Path) -> None:
        if self.bad_field is None:
            pytest.skip("the bad_field fault is not simulated for this vendor")
        good = sim.add(self.vendor, 2, seconds=1.0)
        [bad] = sim.add(self.vendor, 1, seconds=1.0)
        sim.set_fault(self.vendor, bad.id, "bad_field", field=self.bad_field)
        summary, ctx = self.run(self.settings(sim, self.local(tmp_path)))
        acct = self.account_of(summary)
        assert acct.error is None
        assert acct.counts[Outcome.ARCHIVED] == 2 and acct.counts[Outcome.PARKED] == 1
        [parked] = [r for r in acct.results if r.outcome == Outcome.PARKED]
        assert parked.recording_id == bad.id and self.bad_field.rsplit(".", 1)[-1] in (parked.message or "")
        self.assert_archived_exactly(sim, ctx.storage, [r.id for r in good])
        assert sim.media_requests(bad.id) == 0
        assert acct.watermark == acct.window.until  # the watermark moves past the parked recording

    def test_no_recording_is_final_only_after_no_recording_after(self, sim: Simulator, tmp_path: Path) -> None:
        if self.no_recording_skip:
            pytest.skip(self.no_recording_skip)
        ready = sim.add(self.vendor, 1, seconds=1.0)
        sim.add(self.vendor, 1, seconds=1.0, state="no_recording")  # its call started minutes ago
        first, ctx = self.run(self.settings(sim, self.local(tmp_path)))
        acct = self.account_of(first)
        assert acct.counts[Outcome.ARCHIVED] == 1 and acct.counts[Outcome.NOT_READY] == 1
        assert acct.counts[Outcome.NO_RECORDING] == 0  # the default 24 h have not passed
        second, ctx = self.run(self.settings(sim, self.local(tmp_path), no_recording_after="1m"))
        acct = self.account_of(second)
        assert acct.counts[Outcome.NO_RECORDING] == 1 and acct.counts[Outcome.NOT_READY] == 0
        assert acct.error is None and not acct.counts[Outcome.PARKED]
        self.assert_archived_exactly(sim, ctx.storage, [r.id for r in ready])

    # -- credentials -----------------------------------------------------------------------------------

    def test_auth_failure_exits_with_a_clear_message(self, sim: Simulator, tmp_path: Path) -> None:
        sim.add(self.vendor, 1, seconds=1.0)
        others = sim.add(self.partner, 1, seconds=1.0)
        wrong = f"wrong-{self.vendor}-token-5f2c9a"
        env = {**os.environ, **sim.environ(), sim.token_env(self.vendor): wrong}
        config = write_config(tmp_path / "c.toml", self.local(tmp_path),
                              [sim.account(self.vendor), sim.account(self.partner)])
        proc = cli("run", "--once", "--json", "--config", str(config), env=env)
        assert proc.returncode == 1, proc.stderr
        accounts = {a["provider"]: a for a in json.loads(proc.stdout)["accounts"]}
        assert "credentials" in accounts[self.vendor]["error"]
        assert accounts[self.vendor]["archived"] == 0
        assert accounts[self.partner]["archived"] == len(others) and accounts[self.partner]["error"] is None
        for secret in (wrong, *sim.environ().values()):
            assert secret not in proc.stdout + proc.stderr

    def test_no_token_or_signed_query_leaks(self, sim: Simulator, tmp_path: Path, s3_bucket: S3Bucket,
                                            caplog: pytest.LogCaptureFixture,
                                            capfd: pytest.CaptureFixture[str]) -> None:
        caplog.set_level(logging.DEBUG)
        recs = sim.add(self.vendor, 3, seconds=1.0)
        sim.set_fault(self.vendor, recs[0].id, "expired", times=1)
        sim.set_fault(self.vendor, recs[1].id, "html200")  # parked: its error message is stored
        storage = {"url": f"s3://{s3_bucket.name}/recordings", "endpoint_url": s3_bucket.endpoint_url,
                   "region": "us-east-1", "work_dir": str(tmp_path / "work")}
        settings = self.settings(sim, storage)
        summary, ctx = self.run(settings, check_media=True)
        acct = self.account_of(summary)
        assert acct.counts[Outcome.ARCHIVED] == 2 and acct.counts[Outcome.PARKED] == 1
        self.assert_archived_exactly(sim, ctx.storage, [recs[0].id, recs[2].id])
        token = settings.accounts[0].token.get_secret_value()
        blobs = [b"".join(ctx.storage.iter_bytes(o.key)) for o in ctx.storage.list("")]
        assert any(b"not_media" in blob for blob in blobs)  # the parked record is among them
        texts = [json.dumps(summary.as_dict()), caplog.text, *capfd.readouterr()]
        for text in [*texts, *(blob.decode("utf-8", "replace") for blob in blobs)]:
            assert token not in text
            assert not SIGNED_QUERY.search(text), SIGNED_QUERY.search(text)


class TestConvirza(ProviderContract):
    vendor = "convirza"
    list_path = "/convirza/v3/conversations/calls"
    item_calls_per_recording = 0  # the listing carries each call's signed URL (include=recordings)
    expired_status = 410
    relists_on_shift = True
    links_in_listing = True
    not_ready_skip = "Convirza has no processing state: a call without recording_details has no recording"
    deleted_skip = "Convirza does not list deleted calls; there is nothing to skip or report"
    bad_field = "call_started"
    no_recording_skip = None


class TestConvoso(ProviderContract):
    vendor = "convoso"
    list_path = "/convoso/v1/lead/get-recordings"
    item_calls_per_recording = 0  # each entry's url is the file: nothing to resolve
    relists_on_shift = True
    not_ready_skip = "Convoso lists a recording only once its file exists: no not-ready state"
    deleted_skip = "Convoso does not list deleted recordings; there is nothing to skip or report"
    path_fallback_skip = None
    bad_field = "start_time"

    def test_an_unknown_lead_is_skipped_and_reported(self, sim: Simulator, tmp_path: Path,
                                                      caplog: pytest.LogCaptureFixture) -> None:
        recs = sim.add(self.vendor, 2, seconds=1.0)
        sim.set_option("convoso_unknown_leads", ["404404"])
        settings = self.settings(sim, self.local(tmp_path), lead_ids=["404404", convoso_sim.DEFAULT_LEAD])
        with caplog.at_level(logging.WARNING, logger="providers.convoso"):
            summary, ctx = self.run(settings)
        acct = self.account_of(summary)
        assert acct.error is None and not summary.failed and acct.counts[Outcome.ARCHIVED] == 2
        self.assert_archived_exactly(sim, ctx.storage, [r.id for r in recs])
        assert "lead 404404 skipped" in caplog.text
        [notice] = acct.notices  # and reported in the pass's summary and last_pass (status shows it)
        assert "lead 404404 is unknown to Convoso" in notice
        last = json.loads(ctx.storage.read_bytes(f"_state/{acct.account}/last_pass.json"))
        assert last["notices"] == [notice]


class TestConvosoCallLog(ProviderContract):
    """A Convoso account without ``lead_ids``: the whole account, from the public call log."""

    vendor = "convoso"
    list_path = "/convoso/v1/log/retrieve"
    item_calls_per_recording = 0  # each recording element carries its file's URL
    relists_on_shift = True
    account_overrides = {"lead_ids": None}
    deleted_skip = "Convoso's call log does not list deleted recordings; there is nothing to skip or report"
    bad_field = "call_date"
    no_recording_skip = None

    def test_file_names_without_media_base_url_park_the_recordings_not_the_account(
            self, sim: Simulator, tmp_path: Path) -> None:
        recs = sim.add(self.vendor, 2, seconds=1.0)
        sim.set_option("convoso_log_media", "filename")
        summary, ctx = self.run(self.settings(sim, self.local(tmp_path), media_base_url=None))
        acct = self.account_of(summary)
        assert acct.error is None and acct.counts[Outcome.PARKED] == 2
        assert all("media_base_url" in (r.message or "") for r in acct.results)
        assert all(sim.media_requests(r.id) == 0 for r in recs)
        sim.set_option("convoso_log_media", "public_url")  # the same calls with absolute URLs: archived
        summary, ctx = self.run(self.settings(sim, self.local(tmp_path / "again"), media_base_url=None))
        assert self.account_of(summary).counts[Outcome.ARCHIVED] == 2
        self.assert_archived_exactly(sim, ctx.storage, [r.id for r in recs])


class TestSalesloft(ProviderContract):
    vendor = "salesloft"
    list_path = "/salesloft/v2/conversations"
    item_calls_per_recording = 1  # GET the recording endpoint (recording._href) for the media URL
    relists_on_shift = True
    deleted_skip = "Salesloft does not list deleted conversations; there is nothing to skip or report"
    total_skip = "Salesloft pages by next_page, not by a total"
    bad_field = "event_start_date"
    no_recording_skip = None

    def test_every_answer_of_the_recording_endpoint(self, sim: Simulator, tmp_path: Path) -> None:
        recs = sim.add(self.vendor, len(salesloft_sim.DELIVERIES), seconds=1.0)
        for rec, mode in zip(recs, salesloft_sim.DELIVERIES, strict=True):
            sim.set_delivery(self.vendor, rec.id, mode)
        summary, ctx = self.run(self.settings(sim, self.local(tmp_path)), check_media=True)
        acct = self.account_of(summary)
        assert acct.error is None and acct.counts[Outcome.ARCHIVED] == len(recs)
        self.assert_archived_exactly(sim, ctx.storage, [r.id for r in recs])

    def test_two_per_second_and_slower_as_the_shared_budget_runs_low(self, sim: Simulator, tmp_path: Path) -> None:
        recs = sim.add(self.vendor, 3, seconds=1.0)
        sim.set_option("salesloft_other_usage", salesloft_sim.BUDGET - 40)  # other integrations used the rest
        clock, rates, pauses = FakeClock(), [], []

        class Bucket(TokenBucket):
            def pause(self, seconds: float) -> None:
                pauses.append(seconds)
                super().pause(seconds)

        def limiter(_account: Any, rate: float) -> TokenBucket:
            rates.append(rate)
            return Bucket(1000.0, clock=clock.now, sleep=clock.sleep)

        summary, ctx = run_once(self.settings(sim, self.local(tmp_path)), check_media=False, sleep=clock.sleep,
                                limiter_factory=limiter)
        assert rates == [2.0]  # PROVIDERS.md: about 2 requests/s unless the account says otherwise
        assert self.account_of(summary).counts[Outcome.ARCHIVED] == 3
        self.assert_archived_exactly(sim, ctx.storage, [r.id for r in recs])
        # 39 units left after the listing, then 38, 37, 36: each answer paused the whole account's
        # budget for 60 / (left + 1) s, longer as it fell
        assert sorted(pauses) == pytest.approx([60 / 40, 60 / 39, 60 / 38, 60 / 37], rel=1e-3)
        assert clock.waits_of(60 / 40) >= 1  # and the next request waited for it

    def test_a_missing_download_permission_is_named(self, sim: Simulator, tmp_path: Path) -> None:
        sim.add(self.vendor, 2, seconds=1.0)
        sim.set_option("salesloft_download_permission", False)
        summary, ctx = self.run(self.settings(sim, self.local(tmp_path)))
        acct = self.account_of(summary)
        assert "Download Conversations" in (acct.error or "") and not list(ctx.storage.list(f"{self.vendor}/"))

    def test_media_on_the_storage_host_needs_allowed_media_hosts(self, sim: Simulator, tmp_path: Path) -> None:
        [rec] = sim.add(self.vendor, 1, seconds=1.0)
        summary, _ctx = self.run(self.settings(sim, self.local(tmp_path), allowed_media_hosts=None),
                                 check_media=True)
        [result] = self.account_of(summary).results
        assert result.outcome == Outcome.PARKED and result.reason == "unsafe_url"
        assert 'add "localhost' in (result.message or "") and "to allowed_media_hosts" in (result.message or "")
        assert sim.media_requests(rec.id) == 0


class TestEnvoy(ProviderContract):
    vendor = "envoy"
    list_path = "/envoy/api/v1/calls"
    item_calls_per_recording = 1  # GET /calls/{id}/recording for the time-limited URL
    relists_on_shift = True  # page numbers shift like offsets
    deleted_skip = "Envoy does not list deleted calls; there is nothing to skip or report"
    total_skip = "Envoy stops at total_pages: an inflated total_count within one page asks for nothing more"
    bad_field = "call_start_time"
    no_recording_skip = None

    def test_unknown_recording_status_is_not_ready_and_named(self, sim: Simulator, tmp_path: Path) -> None:
        [ready] = sim.add(self.vendor, 1, seconds=1.0)
        [odd] = sim.add(self.vendor, 1, seconds=1.0, state="not_ready")
        sim.set_state(self.vendor, odd.id, "not_ready", detail="queued")
        summary, ctx = self.run(self.settings(sim, self.local(tmp_path)))
        acct = self.account_of(summary)
        assert acct.counts[Outcome.ARCHIVED] == 1 and acct.counts[Outcome.NOT_READY] == 1
        assert dict(acct.unknown_statuses) == {"QUEUED": 1}
        self.assert_archived_exactly(sim, ctx.storage, [ready.id])

    def test_media_on_the_storage_host_needs_allowed_media_hosts(self, sim: Simulator, tmp_path: Path) -> None:
        [rec] = sim.add(self.vendor, 1, seconds=1.0)
        summary, _ctx = self.run(self.settings(sim, self.local(tmp_path), allowed_media_hosts=None),
                                 check_media=True)
        [result] = self.account_of(summary).results
        assert result.outcome == Outcome.PARKED and result.reason == "unsafe_url"
        assert 'add "localhost' in (result.message or "") and "to allowed_media_hosts" in (result.message or "")
        assert sim.media_requests(rec.id) == 0


class TestSiro(ProviderContract):
    vendor = "siro"
    list_path = "/siro/v1/core/recordings"
    item_calls_per_recording = 1  # POST /recordings/{id}/signedUrl on the gateway
    auth_calls = 1  # one OAuth access token minted per pass (a process keeps it for 16 h)
    serves_redacted = True  # "Download redacted recording audio (signed URL)"
    relists_on_shift = False
    total_skip = "Siro pages by cursor: its listing has no total"

    def signed_statuses(self, sim: Simulator) -> list[int]:
        return [r.status for r in sim.requests if r.kind == "api" and r.path.endswith("/signedUrl")]

    def test_three_hosts_one_token_and_a_401_mints_once_more(self, sim: Simulator, tmp_path: Path) -> None:
        recs = sim.add(self.vendor, 3, seconds=1.0)
        sim.set_api_fault(self.vendor, "auth_fail", times=1, endpoint="signed_url")  # revoked at the vendor
        summary, ctx = self.run(self.settings(sim, self.local(tmp_path)), check_media=True)
        acct = self.account_of(summary)
        assert acct.error is None and acct.counts[Outcome.ARCHIVED] == 3
        self.assert_archived_exactly(sim, ctx.storage, [r.id for r in recs])
        assert siro_sim.minted(sim) == 2  # the pass's token, and one more after the 401
        assert sorted(self.signed_statuses(sim)) == [200, 200, 200, 401]
        assert all(sim.media_requests(r.id) == 1 for r in recs)
        for info in ctx.storage.list(f"{self.vendor}/"):  # what Siro serves is its redacted audio: recorded
            if info.key.endswith("/metadata.json"):
                assert json.loads(ctx.storage.read_bytes(info.key))["media"]["redacted"] is True

    def test_unknown_processing_word_is_not_ready_and_named(self, sim: Simulator, tmp_path: Path) -> None:
        [ready] = sim.add(self.vendor, 1, seconds=1.0)
        [odd] = sim.add(self.vendor, 1, seconds=1.0, state="not_ready")
        sim.set_state(self.vendor, odd.id, "not_ready", detail="queued")
        settings = self.settings(sim, self.local(tmp_path))
        summary, ctx = self.run(settings)
        acct = self.account_of(summary)
        assert acct.counts[Outcome.ARCHIVED] == 1 and acct.counts[Outcome.NOT_READY] == 1
        assert acct.unknown_statuses == {"isProcessingDone=queued": 1}  # reported by name
        self.assert_archived_exactly(sim, ctx.storage, [ready.id])
        account = settings.accounts[0]
        headers, params = self.provider.client_auth(account)
        with httpx.Client() as http:  # the provider alone: what it says of the recording
            provider = self.provider(account, VendorClient(account.base_url, http=http, auth_headers=headers,
                                                           auth_params=params))
            window = Window(account.start, datetime.now(UTC))
            listed = {r.recording_id: r for r in provider.list_recordings(window)}
        assert listed[odd.id].unknown_status == "isProcessingDone=queued"
        assert self.signed_statuses(sim) == [200]  # nothing was asked of the gateway for it

    def test_the_oauth_token_and_client_secret_never_leak(self, sim: Simulator, tmp_path: Path,
                                                          caplog: pytest.LogCaptureFixture,
                                                          capfd: pytest.CaptureFixture[str]) -> None:
        caplog.set_level(logging.DEBUG)
        recs = sim.add(self.vendor, 3, seconds=1.0)
        sim.set_fault(self.vendor, recs[1].id, "html200")  # parked: its error message is stored
        sim.set_api_fault(self.vendor, "auth_fail", times=1, endpoint="signed_url")
        settings = self.settings(sim, self.local(tmp_path))
        summary, ctx = self.run(settings, check_media=True)
        assert self.account_of(summary).counts[Outcome.ARCHIVED] == 2
        tokens = list(sim.vendor_state["siro"]["tokens"])
        secret = settings.accounts[0].oauth_client_secret.get_secret_value()
        assert len(tokens) == 2 and secret
        blobs = [b"".join(ctx.storage.iter_bytes(o.key)).decode("utf-8", "replace") for o in ctx.storage.list("")]
        for text in [json.dumps(summary.as_dict()), caplog.text, *capfd.readouterr(), *blobs]:
            assert secret not in text and not any(token in text for token in tokens)
