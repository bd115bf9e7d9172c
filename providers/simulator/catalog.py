"""The simulator's state: recordings per vendor, switchable faults, rate budgets and a request log.

Everything here is guarded by one re-entrant lock: the HTTP server is threaded and tests change
state while a client is paging. Recordings are kept in insertion order; listings sort them by the
vendor's time field and then by insertion, so ties are stable.

Media faults (``Simulator.set_fault(vendor, id, fault, times=None, **params)``; one per recording,
``times`` = the first N media requests, None = always):

- ``rate_limit`` 429 + ``Retry-After`` (``retry_after`` s, default 1; ``http_date=True`` for a date)
- ``cut`` full ``Content-Length`` but the connection closes at absolute byte ``at`` (default size/2);
  a ``Range`` request starting at or after ``at`` is served whole, so a resuming client succeeds
- ``html200`` / ``json200`` / ``empty200`` an error page, JSON error or empty body with status 200
- ``error500``; ``expired`` the vendor's expired-link answer (Convirza 410, Convoso 403 HTML,
  Salesloft/Envoy/Siro 403 S3 ``AccessDenied``)
- ``slow`` ``delay`` s (default 0.05) after each ``chunk`` bytes (default 8192)
- ``wrong_length`` ``Content-Length`` ``extra`` (default 1000) bytes larger than the body
- ``giant_length`` ``Content-Length: 10**13``; ``endless`` a body that never ends (no length)
- ``huge_headers`` one ``size``-byte header (default 100 000)
- ``redirect`` 302 to the same media on the simulator (the second hop is served normally);
  ``redirect_foreign`` 302 to ``target`` (default ``http://169.254.169.254/latest/meta-data/``)
- ``foreign_url`` the *API* hands out the media URL on ``target_host`` (default 127.0.0.2, same
  port); counted per rendering, not per media request. Salesloft: ``on="href"`` moves the
  Bearer-authenticated ``recording._href`` instead of the media URL.
- ``bad_field`` the *API* describes this recording with an unreadable ``field`` (a time or a number
  that is neither, e.g. ``field="call_started"``), every time it is listed; no media request is used
  up. The vendor's record of one recording is bad: that recording is parked, not the account.

- ``reprocessed`` the vendor re-renders the recording between requests: each media request gets the
  next of ``variants`` (a list of bytes, cycling) and ``data`` becomes the one last served; with
  ``delay`` (and ``chunk``) the body is also sent slowly, so racing downloads overlap.

API faults (``Simulator.set_api_fault(vendor, fault, times=None, **params)``; one per name, names
combine; ``endpoint="list"|"item"`` limits the first five to list or single-item calls):
``rate_limit`` (``retry_after``, ``http_date``), ``error500``, ``auth_fail`` (401 whatever the token),
``malformed_json`` / ``oversized_json`` (list page ``page``, default 1; the oversized page is a
streamed 41 MiB JSON body), ``deep_json`` (list page ``page``, default 1, nested ``depth`` (10,000)
levels deep), ``string_numbers`` (numbers quoted where documented as numbers),
``empty_page_nonzero_total`` (Convirza/Convoso ``total``, Envoy ``total_count``: ``extra`` (5) too high, so
the page after the last is empty with total > 0), ``duplicates_across_pages`` (each page after the first starts
with the previous page's last item), ``insert_during_paging`` (after page 1, ``count`` (1) new
recordings of ``kind``/``seconds`` sort right after its first item, shifting offsets),
``convoso_lead_404`` (``/v1/lead/get-recordings`` answers 404; ``/v1/leads/…`` still works).
"""

from __future__ import annotations

import bisect
import hashlib
import random
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

__all__ = [
    "API_FAULTS",
    "BAD_VALUE",
    "MEDIA_FAULTS",
    "STATES",
    "VENDORS",
    "Catalog",
    "FaultSpec",
    "RateBudget",
    "SimOptions",
    "SimRecording",
    "SimRequest",
    "spoil",
]

VENDORS = ("convirza", "convoso", "envoy", "salesloft", "siro")
STATES = ("ready", "not_ready", "no_recording", "deleted")
MEDIA_FAULTS = frozenset({
    "rate_limit", "cut", "html200", "json200", "empty200", "error500", "slow", "expired",
    "wrong_length", "redirect", "redirect_foreign", "foreign_url", "giant_length", "endless",
    "huge_headers", "bad_field", "reprocessed",
})
#: what an unreadable field is served as (neither a time nor a number nor a URL)
BAD_VALUE = "not-a-value ¿"
API_FAULTS = frozenset({
    "rate_limit", "error500", "malformed_json", "oversized_json", "deep_json", "auth_fail",
    "empty_page_nonzero_total", "string_numbers", "duplicates_across_pages", "insert_during_paging",
    "convoso_lead_404",
})
_SIRO_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"


@dataclass(eq=False)
class SimRecording:
    """One recording at a vendor. ``ext``/``kind`` is what the bytes are (wav/mp3/m4a/mp4), which is
    what an archiver must store them as, whatever the vendor's URL or content type claims."""

    id: str
    vendor: str
    started_at: datetime
    created_at: datetime
    kind: str
    seconds: float
    state: str
    lead_id: str | None
    data: bytes
    vendor_duration_seconds: float
    #: vendor wording for a non-ready state (envoy "processing"/"pending"/"failed", siro "error")
    detail: str | None = None
    #: salesloft: how ``recording._href`` answers: "json" | "redirect" | "bytes"
    delivery: str = "json"
    #: per-vendor fixed facts (convirza recording_id/filename, salesloft recording id, ...)
    extra: dict[str, Any] = field(default_factory=dict)
    #: siro video recordings: the separate audio-only file, served as the redacted audio
    audio: bytes | None = None
    seq: int = 0
    #: media served from this file, read per request and never held in memory (``data`` is then
    #: empty): benchmarks serve gigabytes this way (``Simulator.add(media_file=...)``)
    media_file: Path | None = None
    _file_sha256: str | None = field(default=None, repr=False)

    @property
    def ext(self) -> str:
        return self.kind

    @property
    def sha256(self) -> str:
        if self.media_file is None:
            return hashlib.sha256(self.data).hexdigest()
        if self._file_sha256 is None:  # hashed once, streamed: the file may be gigabytes
            digest = hashlib.sha256()
            with open(self.media_file, "rb") as handle:
                while block := handle.read(1 << 20):
                    digest.update(block)
            self._file_sha256 = digest.hexdigest()
        return self._file_sha256

    @property
    def size(self) -> int:
        return self.media_file.stat().st_size if self.media_file is not None else len(self.data)

    @property
    def is_video(self) -> bool:
        return self.kind == "mp4"

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id, "vendor": self.vendor, "sha256": self.sha256, "size": self.size,
            # what the media endpoint serves (a Siro video: its redacted audio-only file)
            "served_sha256": hashlib.sha256(self.audio).hexdigest() if self.audio is not None else self.sha256,
            "served_ext": "m4a" if self.audio is not None else self.ext,
            "ext": self.ext, "kind": self.kind, "state": self.state, "detail": self.detail,
            "started_at": self.started_at.isoformat().replace("+00:00", "Z"),
            "created_at": self.created_at.isoformat().replace("+00:00", "Z"),
            "seconds": self.seconds, "vendor_duration_seconds": self.vendor_duration_seconds,
            "lead_id": self.lead_id,
        }


@dataclass
class FaultSpec:
    name: str
    remaining: int | None  # None: always
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class SimRequest:
    time: float  # time.monotonic()
    vendor: str
    method: str
    path: str  # without the query (Convoso's auth_token and signed queries never reach the log)
    status: int
    kind: str  # "api" | "media" | "listing" | "control"
    recording_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"time": self.time, "vendor": self.vendor, "method": self.method, "path": self.path,
                "status": self.status, "kind": self.kind, "recording_id": self.recording_id}


@dataclass
class RateBudget:
    """``requests`` per ``per`` seconds per token (sliding window)."""

    requests: int
    per: float = 1.0
    retry_after: float | None = None
    http_date: bool = False
    hits: dict[str, deque[float]] = field(default_factory=dict)

    def take(self, token: str) -> float | None:
        """None if the request may proceed, else the seconds until it may."""
        now = time.monotonic()
        window = self.hits.setdefault(token, deque())
        while window and now - window[0] >= self.per:
            window.popleft()
        if len(window) < self.requests:
            window.append(now)
            return None
        wait = self.per - (now - window[0])
        return self.retry_after if self.retry_after is not None else max(wait, 0.0)


@dataclass
class SimOptions:
    """Vendor behaviours a test may switch (control API: ``POST /_sim/options``)."""

    convoso_timezone: str = "America/New_York"
    #: the Convoso field table says offset/limit/total are strings; False serves ints (its example)
    convoso_string_numbers: bool = True
    #: Convoso: leads its API does not know (answered ``success: false``, code 6001)
    convoso_unknown_leads: list[str] = field(default_factory=list)
    #: Convoso call log: which field of a recording element carries the media ("src", "public_url"
    #: or "filename"; the others are left empty)
    convoso_log_media: str = "src"
    #: Salesloft: serve a bare JSON array (the document's example) instead of the data/metadata envelope
    salesloft_bare_array: bool = False
    #: Salesloft: the team's cost units a minute (600 on the public page; benchmarks may raise it)
    salesloft_budget: int = 600
    #: Salesloft: cost units of that budget spent by the customer's other integrations
    #: (``x-ratelimit-remaining-minute`` shrinks by it; a request it cannot pay answers 429)
    salesloft_other_usage: int = 0
    #: Salesloft: whether the API user has the "Download Conversations" permission (else 403)
    salesloft_download_permission: bool = True
    #: Envoy: when set, a request with a different ``X-Organization-ID`` answers 403
    envoy_organization_id: str | None = None
    #: Siro: sign the storage URLs its gateway hands out (S3-style query), checked by the storage host
    siro_signed_paths: bool = True


def spoil(record: dict[str, Any], field_path: str | None) -> dict[str, Any]:
    """``record`` with ``field_path`` (``a`` or ``a.b``) set to ``BAD_VALUE`` (a ``bad_field`` fault)."""
    if field_path:
        holder = record
        *parents, last = field_path.split(".")
        for name in parents:
            child = holder.get(name)
            if not isinstance(child, dict):
                child = holder[name] = {}
            holder = child
        holder[last] = BAD_VALUE
    return record


class Catalog:
    def __init__(self, seed: int) -> None:
        self.lock = threading.RLock()
        self.seed = seed
        self._recordings: dict[str, dict[str, SimRecording]] = {vendor: {} for vendor in VENDORS}
        self._rng = {vendor: random.Random(f"{seed}:{vendor}") for vendor in VENDORS}
        self._counters = {"convirza": 987000 + seed % 1000 * 10, "convoso": 8100 + seed % 1000 * 10}
        self._seq = 0
        #: per vendor: (``_seq`` it was built at, recordings by (started_at, seq), their start times);
        #: listing pages bisect it instead of sorting every recording per page (benchmarks list 1M)
        self._by_start: dict[str, tuple[int, list[SimRecording], list[datetime]]] = {}
        self.faults: dict[tuple[str, str], FaultSpec] = {}
        self.api_faults: dict[str, dict[str, FaultSpec]] = {vendor: {} for vendor in VENDORS}
        self.budgets: dict[str, RateBudget] = {}
        self._log: list[SimRequest] = []

    # -- ids ----------------------------------------------------------------------------------------
    def rng(self, vendor: str) -> random.Random:
        return self._rng[vendor]

    def new_id(self, vendor: str) -> str:
        with self.lock:
            rng = self._rng[vendor]
            if vendor in self._counters:
                self._counters[vendor] += rng.randint(1, 40)
                return str(self._counters[vendor])
            if vendor == "siro":
                return "".join(rng.choice(_SIRO_ALPHABET) for _ in range(20))
            value = str(uuid.UUID(int=rng.getrandbits(128), version=4))
            return f"call_{value}" if vendor == "envoy" else value

    def new_uuid(self, vendor: str) -> str:
        with self.lock:
            return str(uuid.UUID(int=self._rng[vendor].getrandbits(128), version=4))

    # -- recordings ---------------------------------------------------------------------------------
    def put(self, recording: SimRecording) -> None:
        with self.lock:
            self._seq += 1
            recording.seq = self._seq
            self._recordings[recording.vendor][recording.id] = recording

    def get(self, vendor: str, recording_id: str) -> SimRecording | None:
        with self.lock:
            return self._recordings[vendor].get(recording_id)

    def all(self, vendor: str) -> list[SimRecording]:
        with self.lock:
            return list(self._recordings[vendor].values())

    def sorted(self, vendor: str, *, by: str = "started_at") -> list[SimRecording]:
        """Recordings in listing order: ascending by ``by`` (a datetime attribute), then insertion."""
        if by == "started_at":
            return list(self._started(vendor)[0])
        with self.lock:
            items = list(self._recordings[vendor].values())
        return sorted(items, key=lambda rec: (getattr(rec, by), rec.seq))

    def between(self, vendor: str, start: datetime, end: datetime) -> list[SimRecording]:
        """Recordings with ``start <= started_at < end`` in ``sorted`` order, found by bisection."""
        items, starts = self._started(vendor)
        return items[bisect.bisect_left(starts, start):bisect.bisect_left(starts, end)]

    def _started(self, vendor: str) -> tuple[list[SimRecording], list[datetime]]:
        """The vendor's recordings by ``(started_at, seq)``, rebuilt only after a ``put`` (a start
        time never changes once put)."""
        with self.lock:
            cached = self._by_start.get(vendor)
            if cached is None or cached[0] != self._seq:
                items = sorted(self._recordings[vendor].values(), key=lambda rec: (rec.started_at, rec.seq))
                cached = self._by_start[vendor] = (self._seq, items, [rec.started_at for rec in items])
            return cached[1], cached[2]

    # -- faults -------------------------------------------------------------------------------------
    def take_fault(self, vendor: str, recording_id: str, names: frozenset[str] | None = None) -> FaultSpec | None:
        """The recording's fault if one is set (and of ``names``), counting this use against ``times``."""
        with self.lock:
            spec = self.faults.get((vendor, recording_id))
            if spec is None or (names is not None and spec.name not in names):
                return None
            self._count(spec, lambda: self.faults.pop((vendor, recording_id), None))
            return spec

    def bad_field(self, vendor: str, recording_id: str) -> str | None:
        """The field a ``bad_field`` fault makes unreadable in this recording's API record, if any
        (the fault stays: the record is bad every time it is listed)."""
        with self.lock:
            spec = self.faults.get((vendor, recording_id))
            return str(spec.params.get("field")) if spec is not None and spec.name == "bad_field" else None

    def take_api_fault(self, vendor: str, name: str, *, page: int | None = None,
                       endpoint: str | None = None) -> FaultSpec | None:
        """The vendor's API fault ``name`` if set and it applies to this ``page``/``endpoint``."""
        with self.lock:
            spec = self.api_faults[vendor].get(name)
            if spec is None:
                return None
            wanted_page = spec.params.get("page")
            if wanted_page is not None and page is not None and int(wanted_page) != page:
                return None
            if wanted_page is not None and page is None:
                return None
            wanted_endpoint = spec.params.get("endpoint")
            if wanted_endpoint is not None and endpoint is not None and wanted_endpoint != endpoint:
                return None
            self._count(spec, lambda: self.api_faults[vendor].pop(name, None))
            return spec

    @staticmethod
    def _count(spec: FaultSpec, drop: Any) -> None:
        if spec.remaining is not None:
            spec.remaining -= 1
            if spec.remaining <= 0:
                drop()

    # -- request log --------------------------------------------------------------------------------
    def log(self, entry: SimRequest) -> None:
        with self.lock:
            self._log.append(entry)

    def requests(self) -> list[SimRequest]:
        with self.lock:
            return list(self._log)

    def clear_requests(self) -> None:
        with self.lock:
            self._log.clear()
