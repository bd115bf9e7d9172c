"""The default dataset (``recarchive demo``) and the ``recarchive simulate`` server loop.

The mix exercises what an archiver must get right on a first run: every vendor's formats (WAV
behind Convirza's ``.mp3`` links, Salesloft and Siro video), recordings not ready yet, a call
without a recording and a recording deleted at the vendor. Durations come from a small palette so
the ffmpeg-encoded ones are generated once per machine (the media cache) and the dataset builds in
well under a second afterwards.
"""

from __future__ import annotations

import random
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

from providers.simulator.catalog import VENDORS
from providers.simulator.core import Simulator

__all__ = ["demo_accounts", "demo_dataset", "serve"]

_PALETTE = (4.0, 9.0, 17.0, 33.0, 61.0, 118.0)
#: per vendor: (kind, state) of each recording, in the order they are added
_MIX: dict[str, list[tuple[str, str]]] = {
    "convirza": [("wav", "ready")] * 6 + [("mp3", "ready")] * 3 + [("wav", "no_recording")],
    "convoso": [("wav", "ready")] * 10,
    "salesloft": [("mp3", "ready")] * 8 + [("mp4", "ready"), ("mp3", "not_ready")],
    "envoy": [("m4a", "ready")] * 7 + [("mp4", "ready")] * 2 + [("m4a", "not_ready")],
    "siro": [("m4a", "ready")] * 8 + [("mp4", "ready"), ("m4a", "not_ready"), ("m4a", "deleted")],
}
_CONVOSO_LEADS = ("270", "1044")
#: the account keys ``serve`` prints besides base_url and token_env (never a secret, only variable names)
_SHOWN = ("media_base_url", "lead_ids", "timezone", "media_api_url", "oauth_client_id", "oauth_client_secret_env",
          "oauth_user_id")


def demo_dataset(sim: Simulator) -> None:
    """Add ten or eleven recordings per vendor, spread over the last three days."""
    rng = random.Random(f"demo:{sim.seed}")
    now = datetime.now(UTC).replace(microsecond=0)
    for vendor in VENDORS:
        for index, (kind, state) in enumerate(_MIX[vendor]):
            started = now - timedelta(hours=2) - timedelta(seconds=rng.randrange(3 * 86400 - 4 * 3600))
            seconds = _PALETTE[index % len(_PALETTE)] if kind != "mp4" else rng.choice(_PALETTE[:3])
            lead = _CONVOSO_LEADS[index % 2] if vendor == "convoso" else None
            sim.add(vendor, kind=kind, seconds=seconds, started_at=started, state=state, lead_id=lead)


def demo_accounts(sim: Simulator, *, prefix: str = "demo") -> list[dict[str, Any]]:
    """One account per vendor, plus a second Convoso account without ``lead_ids`` (the whole account,
    discovered from the call log, as a contact centre archives it): ``[[accounts]]`` mappings."""
    accounts = [sim.account(vendor, name=f"{prefix}-{vendor}") for vendor in VENDORS]
    accounts.append(sim.account("convoso", name=f"{prefix}-convoso-all", lead_ids=None))
    return accounts


def serve(host: str = "127.0.0.1", port: int = 8080, *, dataset: str = "demo", seed: int = 0,
          show_tokens: bool = False, stop: threading.Event | None = None) -> None:
    """Serve the simulator until Ctrl-C (or ``stop`` is set), announcing one line per vendor.

    Tokens are not printed unless ``show_tokens``: ``GET /_sim/accounts`` hands out the accounts
    and the environment to use them with."""
    if dataset not in ("demo", "empty"):
        raise ValueError(f"unknown dataset {dataset!r}: use 'demo' or 'empty'")
    with Simulator(host, port, seed=seed) as sim:
        if dataset == "demo":
            demo_dataset(sim)
        print(f"recarchive simulator on {sim.url} (seed {seed}); Ctrl-C stops it", flush=True)
        for account in demo_accounts(sim, prefix="sim"):
            vendor = account["provider"]
            extras = "".join(f" {key}={_text(account[key])}" for key in _SHOWN if key in account)
            print(f"  {account['name']:<17} base_url={account['base_url']}{extras} token_env={account['token_env']}"
                  f" recordings={len(sim.recordings(vendor))}", flush=True)
        if show_tokens:
            for name, value in sim.environ().items():
                print(f"  export {name}={value}", flush=True)
        print(f"  accounts and token environment: GET {sim.url}/_sim/accounts", flush=True)
        waiter = stop or threading.Event()
        try:
            while not waiter.wait(0.5):
                pass
        except KeyboardInterrupt:
            pass


def _text(value: object) -> str:
    return ",".join(str(item) for item in value) if isinstance(value, list) else str(value)
