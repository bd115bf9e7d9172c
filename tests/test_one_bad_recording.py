"""Bad data about one recording parks that recording; only a bad listing or bad credentials stop
the account (PROVIDERS.md general rules, DEVELOPERS brief)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from config import settings_from_mapping
from providers.base import MediaLink, Recording
from providers.simulator import Simulator
from worker.compliance.session import open_context
from worker.errors import AuthError, BadVendorData
from worker.pipeline.passes import run_pass
from worker.pipeline.results import Outcome


def _settings(sim: Simulator, tmp_path: Path) -> Any:
    return settings_from_mapping({"storage": {"url": str(tmp_path / "archive"), "work_dir": str(tmp_path / "w")},
                                  "accounts": [sim.account("envoy", name="e")]}, sim.environ())


def test_a_malformed_answer_about_one_recording_parks_only_it(sim: Simulator, tmp_path: Path) -> None:
    recs = sim.add("envoy", 3, seconds=1.0)
    ctx = open_context(_settings(sim, tmp_path), check_media=False)
    provider = ctx.handle(ctx.settings.accounts[0]).provider
    real = provider.resolve_media

    def resolve(recording: Recording, *, refresh: bool = False) -> MediaLink:
        if recording.recording_id == recs[1].id:
            raise BadVendorData("GET api/v1/calls/…/recording: the answer is not JSON", recording_id=recs[1].id)
        return real(recording, refresh=refresh)

    provider.resolve_media = resolve  # type: ignore[method-assign]
    try:
        summary = run_pass(ctx, ctx.settings.accounts)
    finally:
        ctx.close()
    [acct] = summary.accounts
    assert acct.error is None  # the account goes on
    assert acct.counts[Outcome.ARCHIVED] == 2 and acct.counts[Outcome.PARKED] == 1
    [parked] = [r for r in acct.results if r.outcome is Outcome.PARKED]
    assert parked.recording_id == recs[1].id and parked.reason == "invalid_record"
    assert acct.watermark is not None  # parked: the watermark moves past it


def test_bad_credentials_on_one_recording_still_stop_the_account(sim: Simulator, tmp_path: Path) -> None:
    sim.add("envoy", 2, seconds=1.0)
    ctx = open_context(_settings(sim, tmp_path), check_media=False)
    provider = ctx.handle(ctx.settings.accounts[0]).provider

    def resolve(recording: Recording, *, refresh: bool = False) -> MediaLink:
        raise AuthError("the vendor refused the token", recording_id=recording.recording_id)

    provider.resolve_media = resolve  # type: ignore[method-assign]
    try:
        summary = run_pass(ctx, ctx.settings.accounts)
    finally:
        ctx.close()
    [acct] = summary.accounts
    assert acct.error_reason == "auth_failed" and acct.watermark is None
    assert not list(ctx.storage.list("_state/e/parked/"))
