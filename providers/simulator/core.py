"""``Simulator``: the five vendor APIs, their media and their failure modes on loopback servers.

Every account's ``base_url`` is ``{sim.url}/{vendor}``; media is served by the same server under
``/{vendor}/media/…`` (Convoso: ``/convoso/recordings/``), and once more, fault-free, as a plain
directory listing under ``/files/`` (``listing.py``). Siro is three hosts, as at the vendor: its
external API on the main server, its API gateway (``media_api_url``) and the storage its signed URLs
point to each on a server of their own (``origin("siro-gateway")``, ``origin("siro-storage")``; with
a fixed ``port`` they listen on ``port + 1`` and ``port + 2``). Recordings, faults and switches are
changed from Python (this class) or over HTTP (``/_sim/…``, see ``control.py``).
"""

from __future__ import annotations

import hashlib
import hmac
import math
import secrets
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

from providers.simulator import control, convirza, convoso, envoy, listing, salesloft, siro
from providers.simulator._http import iso_s
from providers.simulator.catalog import (
    API_FAULTS,
    MEDIA_FAULTS,
    STATES,
    VENDORS,
    Catalog,
    FaultSpec,
    RateBudget,
    SimOptions,
    SimRecording,
    SimRequest,
)
from providers.simulator.media import KINDS, make_media, sniff_kind
from providers.simulator.server import SimServer
from providers.simulator.signing import Signer

__all__ = ["DEFAULT_KINDS", "DEFAULT_TTL", "Simulator"]

#: the kind of media each vendor serves when ``add`` is not told
DEFAULT_KINDS = {"convirza": "wav", "convoso": "wav", "envoy": "m4a", "salesloft": "mp3", "siro": "m4a"}
#: signed-link lifetimes: Convirza documents 7 days; the others are S3-presign-like
DEFAULT_TTL = {"convirza": 7 * 86400.0, "convoso": 3600.0, "envoy": 3600.0, "salesloft": 3600.0,
               "siro": 3600.0}
#: the servers besides the main one: role -> (port offset when the main port is fixed, routes)
_EXTRA_SERVERS = {"siro-gateway": (1, {"siro": siro.gateway_route}), "siro-storage": (2, {"siro": siro.storage_route})}
_ROUTES = {"convirza": convirza.route, "convoso": convoso.route, "envoy": envoy.route,
           "salesloft": salesloft.route, "siro": siro.route, "_sim": control.route, "files": listing.route}


class Simulator:
    """The vendor simulator. ``start()`` serves in a background thread; ``stop()`` ends it."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        seed: int = 0,
        link_ttl: float | dict[str, float] | None = None,
        media_cache_dir: str | Path | None = None,
    ) -> None:
        self.host = host
        self.seed = seed
        self._requested_port = port
        self._ttl = dict(DEFAULT_TTL)
        if isinstance(link_ttl, dict):
            self._ttl.update(link_ttl)
        elif link_ttl is not None:
            self._ttl = dict.fromkeys(VENDORS, float(link_ttl))
        self.media_cache_dir = Path(media_cache_dir) if media_cache_dir else None
        self.catalog = Catalog(seed)
        self.signer = Signer(secrets.token_bytes(32))
        self.options = SimOptions()
        self._server: SimServer | None = None
        self._extra: dict[str, tuple[SimServer, threading.Thread]] = {}
        #: per-vendor state a vendor module keeps (Siro: the OAuth access tokens it minted)
        self.vendor_state: dict[str, dict[str, Any]] = {}
        self._last_default: dict[str, datetime] = {}
        self._thread: threading.Thread | None = None

    # -- lifecycle ----------------------------------------------------------------------------------
    def start(self) -> Simulator:
        if self._server is not None:
            return self
        self._server = SimServer((self.host, self._requested_port), self, dict(_ROUTES))
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.1},
                                        name=f"recarchive-sim:{self.port}", daemon=True)
        self._thread.start()
        for role, (offset, routes) in _EXTRA_SERVERS.items():
            port = self._requested_port + offset if self._requested_port else 0
            server = SimServer((self.host, port), self, dict(routes))
            thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1},
                                      name=f"recarchive-sim:{role}", daemon=True)
            thread.start()
            self._extra[role] = (server, thread)
        return self

    def stop(self) -> None:
        server, thread = self._server, self._thread
        if server is None:
            return
        for extra, extra_thread in self._extra.values():
            _halt(extra, extra_thread)
        self._extra.clear()
        _halt(server, thread)
        self._server = self._thread = None

    def __enter__(self) -> Simulator:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the simulator is not started")
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        host = "127.0.0.1" if self.host in ("", "0.0.0.0") else self.host
        return f"http://{host}:{self.port}"

    def origin(self, role: str) -> str:
        """``http://host:port`` of a server: ``"siro-gateway"`` or ``"siro-storage"``."""
        if role not in self._extra:
            raise RuntimeError(f"the simulator has no running {role!r} server")
        host = "127.0.0.1" if self.host in ("", "0.0.0.0") else self.host
        return f"http://{host}:{int(self._extra[role][0].server_address[1])}"

    # -- accounts -----------------------------------------------------------------------------------
    def base_url(self, vendor: str) -> str:
        return f"{self.url}/{_vendor(vendor)}"

    def media_base_url(self, vendor: str) -> str | None:
        if _vendor(vendor) == "convoso":
            return f"{self.url}/convoso/recordings/"
        return None

    def storage_origin(self) -> str:
        """Where Envoy's and Salesloft's signed media URLs point: this server under another host name
        (``localhost`` for ``127.0.0.1`` and back), so that, as at the vendors, media lives on a host
        that is not the API's. Its origin differs from ``base_url``'s, so no credential may go there,
        and an account fetches it only with ``allowed_media_hosts`` naming it (``account`` adds it)."""
        host = "127.0.0.1" if self.host in ("", "0.0.0.0") else self.host
        other = {"127.0.0.1": "localhost", "localhost": "127.0.0.1"}.get(host, host)
        return f"http://{other}:{self.port}"

    def media_api_url(self, vendor: str) -> str | None:
        """Siro's API gateway (signed media URLs), a host of its own; None for the other vendors."""
        return f"{self.origin('siro-gateway')}/siro" if _vendor(vendor) == "siro" else None

    def token(self, vendor: str) -> str:
        digest = hmac.new(f"recarchive-sim:{self.seed}".encode(), _vendor(vendor).encode(), hashlib.sha256)
        return f"sim-{vendor}-{digest.hexdigest()[:24]}"

    @staticmethod
    def token_env(vendor: str) -> str:
        return f"SIM_{_vendor(vendor).upper()}_TOKEN"

    def environ(self) -> dict[str, str]:
        return {**{self.token_env(vendor): self.token(vendor) for vendor in VENDORS},
                siro.OAUTH_SECRET_ENV: siro.client_secret(self)}

    def link_ttl(self, vendor: str) -> float:
        return self._ttl[vendor]

    def set_link_ttl(self, seconds: float, vendor: str | None = None) -> None:
        for name in [_vendor(vendor)] if vendor else VENDORS:
            self._ttl[name] = float(seconds)

    def account(self, vendor: str, name: str | None = None, **overrides: Any) -> dict[str, Any]:
        """An ``[[accounts]]`` mapping for this vendor, ready for ``settings_from_mapping``."""
        vendor = _vendor(vendor)
        recordings = self.catalog.all(vendor)
        earliest = min((min(r.started_at, r.created_at) for r in recordings),
                       default=datetime.now(UTC) - timedelta(days=6))
        account: dict[str, Any] = {
            "name": name or f"sim-{vendor}", "provider": vendor, "base_url": self.base_url(vendor),
            "token_env": self.token_env(vendor), "start": iso_s(earliest - timedelta(days=1)),
        }
        if vendor == "convoso":
            leads = sorted({r.lead_id for r in recordings if r.lead_id}, key=_lead_key)
            account.update(media_base_url=self.media_base_url(vendor), lead_ids=leads or [convoso.DEFAULT_LEAD],
                           timezone=self.options.convoso_timezone)
        elif vendor == "siro":
            account.update(media_api_url=self.media_api_url(vendor), oauth_client_id=siro.client_id(self),
                           oauth_client_secret_env=siro.OAUTH_SECRET_ENV, oauth_user_id=siro.USER_ID)
        elif vendor == "envoy" and self.options.envoy_organization_id:
            account["organization_id"] = self.options.envoy_organization_id
        if vendor in ("envoy", "salesloft"):  # their media is on the storage host (``storage_origin``)
            account["allowed_media_hosts"] = [urlsplit(self.storage_origin()).netloc]  # host:port
        elif vendor == "siro":  # its signed media: the storage server, a host:port of its own
            account["allowed_media_hosts"] = [urlsplit(self.origin("siro-storage")).netloc]
        for key, value in overrides.items():  # None removes a key (a Convoso account without lead_ids)
            if value is None:
                account.pop(key, None)
            else:
                account[key] = value
        return account

    # -- recordings ---------------------------------------------------------------------------------
    def add(
        self,
        vendor: str,
        count: int = 1,
        *,
        kind: str | None = None,
        seconds: float = 5.0,
        started_at: datetime | None = None,
        state: str = "ready",
        lead_id: str | int | None = None,
        data: bytes | None = None,
        media_file: str | Path | None = None,
    ) -> list[SimRecording]:
        """Add ``count`` recordings. Without ``started_at`` they start seven seconds apart ending ten
        minutes ago (later calls continue after earlier ones, so insertion order is time order);
        with it, the i-th starts ``i`` minutes after it. ``kind`` defaults per vendor
        (``DEFAULT_KINDS``).

        External media instead of generated media: ``data`` (bytes) or ``media_file`` (a path, served
        from disk on every request and never read into memory, for recordings of gigabytes). Their
        ``kind`` is sniffed from the first bytes unless given; ``seconds`` should be their real
        duration, since it becomes the vendor's announced duration."""
        vendor = _vendor(vendor)
        source = _external_media(data, media_file)
        if source is not None and kind is None:
            kind = sniff_kind(source[0])
            if kind is None:
                raise ValueError("add: the external media is none of " + ", ".join(KINDS))
        kind = kind or DEFAULT_KINDS[vendor]
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
        if state not in STATES:
            raise ValueError(f"state must be one of {STATES}, got {state!r}")
        if count < 1:
            raise ValueError("count must be at least 1")
        now = datetime.now(UTC).replace(microsecond=0)
        if started_at is not None and started_at.tzinfo is None:
            started_at = started_at.replace(tzinfo=UTC)
        added = []
        first_default = now - timedelta(minutes=10) - timedelta(seconds=7 * (count - 1))
        previous = self._last_default.get(vendor)
        if previous is not None and first_default <= previous:  # later adds sort after earlier ones
            first_default = min(previous + timedelta(seconds=1), now - timedelta(seconds=7 * count))
        for index in range(count):
            if started_at is None:
                start = first_default + timedelta(seconds=7 * index)
                self._last_default[vendor] = start
            else:
                start = started_at.astimezone(UTC).replace(microsecond=0) + timedelta(minutes=index)
            added.append(self._new(vendor, kind, float(seconds), start, state, lead_id, now,
                                   None if source is None else source[1]))
        return added

    def _new(self, vendor: str, kind: str, seconds: float, start: datetime, state: str,
             lead_id: str | int | None, now: datetime, media: bytes | Path | None = None) -> SimRecording:
        rid = self.catalog.new_id(vendor)
        created = start
        if vendor in ("salesloft", "envoy"):  # the recording object appears after the call ends
            created = start + timedelta(seconds=math.ceil(seconds) + 2)
            if start <= now < created:
                created = now
            created += timedelta(milliseconds=self.catalog.rng(vendor).randrange(1000))
        recording = SimRecording(
            id=rid, vendor=vendor, started_at=start, created_at=created, kind=kind, seconds=seconds,
            state=state, lead_id=str(lead_id if lead_id is not None else convoso.DEFAULT_LEAD)
            if vendor == "convoso" else None,
            data=(make_media(kind, seconds, f"{vendor}:{rid}:{self.seed}", cache_dir=self.media_cache_dir)
                  if media is None else media if isinstance(media, bytes) else b""),
            vendor_duration_seconds=_vendor_duration(vendor, seconds),
            media_file=media if isinstance(media, Path) else None,
        )
        _VENDOR_EXTRA[vendor](self, recording)
        self.catalog.put(recording)
        return recording

    def recordings(self, vendor: str) -> list[SimRecording]:
        return self.catalog.all(_vendor(vendor))

    def get(self, vendor: str, recording_id: str) -> SimRecording:
        recording = self.catalog.get(_vendor(vendor), str(recording_id))
        if recording is None:
            raise KeyError(f"{vendor} has no recording {recording_id!r}")
        return recording

    def set_state(self, vendor: str, recording_id: str, state: str, *, detail: str | None = None) -> None:
        """Change a recording's state; ``detail`` picks the vendor's wording (Envoy ``pending`` /
        ``failed``, Siro ``error``)."""
        if state not in STATES:
            raise ValueError(f"state must be one of {STATES}, got {state!r}")
        recording = self.get(vendor, recording_id)
        with self.catalog.lock:
            recording.state = state
            recording.detail = detail

    def replace_media(self, vendor: str, recording_id: str, *, kind: str | None = None,
                      seconds: float | None = None) -> SimRecording:
        """New bytes for an existing recording (the vendor re-processed it): a new sha256."""
        recording = self.get(vendor, recording_id)
        with self.catalog.lock:
            recording.extra["revision"] = int(recording.extra.get("revision", 0)) + 1
            recording.kind = kind or recording.kind
            recording.seconds = float(seconds or recording.seconds)
            unique = f"{recording.vendor}:{recording.id}:{self.seed}:rev{recording.extra['revision']}"
            recording.data = make_media(recording.kind, recording.seconds, unique, cache_dir=self.media_cache_dir)
            recording.media_file = None
            recording.vendor_duration_seconds = _vendor_duration(recording.vendor, recording.seconds)
        return recording

    def set_delivery(self, vendor: str, recording_id: str, mode: str) -> None:
        """Salesloft: how the recording endpoint answers (``salesloft.DELIVERIES``): JSON with the URL at
        ``data.url`` (``json``, the default), ``url`` (``json_top``), ``data.recording_url``
        (``recording_url``) or ``download_url``; a 302 to it (``redirect``); or the bytes (``bytes``)."""
        if _vendor(vendor) != "salesloft" or mode not in salesloft.DELIVERIES:
            raise ValueError(f"set_delivery: salesloft only, mode {' | '.join(salesloft.DELIVERIES)}")
        self.get(vendor, recording_id).delivery = mode

    # -- faults and switches ------------------------------------------------------------------------
    def set_fault(self, vendor: str, recording_id: str, fault: str, *, times: int | None = None,
                  **params: Any) -> None:
        """A media fault for one recording (replacing any earlier one); ``times=None`` = always.
        Faults and their ``params`` are listed in ``providers.simulator.catalog``."""
        if fault not in MEDIA_FAULTS:
            raise ValueError(f"unknown media fault {fault!r}; known: {', '.join(sorted(MEDIA_FAULTS))}")
        recording = self.get(vendor, recording_id)
        with self.catalog.lock:
            self.catalog.faults[(recording.vendor, recording.id)] = FaultSpec(fault, times, dict(params))

    def clear_fault(self, vendor: str, recording_id: str) -> None:
        with self.catalog.lock:
            self.catalog.faults.pop((_vendor(vendor), str(recording_id)), None)

    def set_api_fault(self, vendor: str, fault: str, *, times: int | None = None, **params: Any) -> None:
        """An API fault for one vendor (one per fault name; different names combine). Faults and
        their ``params`` are listed in ``providers.simulator.catalog``."""
        vendor = _vendor(vendor)
        if fault not in API_FAULTS:
            raise ValueError(f"unknown API fault {fault!r}; known: {', '.join(sorted(API_FAULTS))}")
        if fault in ("malformed_json", "oversized_json", "deep_json"):
            params.setdefault("page", 1)
        with self.catalog.lock:
            self.catalog.api_faults[vendor][fault] = FaultSpec(fault, times, dict(params))

    def clear_api_fault(self, vendor: str, fault: str | None = None) -> None:
        with self.catalog.lock:
            faults = self.catalog.api_faults[_vendor(vendor)]
            if fault is None:
                faults.clear()
            else:
                faults.pop(fault, None)

    def clear_faults(self) -> None:
        with self.catalog.lock:
            self.catalog.faults.clear()
            for faults in self.catalog.api_faults.values():
                faults.clear()
            self.catalog.budgets.clear()

    def set_rate_limit(self, vendor: str, requests: int | None, per: float = 1.0, *,
                       retry_after: float | None = None, http_date: bool = False) -> None:
        """A per-token request budget on the vendor's API (``None`` removes it)."""
        with self.catalog.lock:
            if requests is None:
                self.catalog.budgets.pop(_vendor(vendor), None)
            else:
                self.catalog.budgets[_vendor(vendor)] = RateBudget(requests, per, retry_after, http_date)

    def set_option(self, name: str, value: Any) -> None:
        if not hasattr(self.options, name):
            raise ValueError(f"unknown simulator option {name!r}")
        setattr(self.options, name, value)

    def expire_links(self, vendor: str | None = None) -> None:
        """Every signed link handed out so far (by ``vendor``, or all) now answers as expired."""
        for name in [_vendor(vendor)] if vendor else VENDORS:
            self.signer.expire(name)

    def advance_clock(self, seconds: float) -> None:
        """Move the links' clock forward: links whose lifetime has passed answer as expired."""
        self.signer.skew += seconds

    # -- request log --------------------------------------------------------------------------------
    @property
    def requests(self) -> list[SimRequest]:
        return self.catalog.requests()

    def media_requests(self, recording_id: str) -> int:
        return sum(1 for r in self.catalog.requests() if r.kind == "media" and r.recording_id == str(recording_id))

    def clear_requests(self) -> None:
        self.catalog.clear_requests()


def _halt(server: SimServer, thread: threading.Thread | None) -> None:
    server.stopping.set()
    server.shutdown()
    server.close_connections()
    server.server_close()
    if thread is not None:
        thread.join(timeout=10)


def _vendor(vendor: str | None) -> str:
    if vendor not in VENDORS:
        raise ValueError(f"unknown vendor {vendor!r}; known: {', '.join(VENDORS)}")
    return vendor


def _external_media(data: bytes | None, media_file: str | Path | None) -> tuple[bytes, bytes | Path] | None:
    """``(first bytes, media)`` for media given to ``add``, or None to generate it."""
    if data is not None and media_file is not None:
        raise ValueError("add: give data or media_file, not both")
    if data is not None:
        if not data:
            raise ValueError("add: data is empty")
        return bytes(data[:64]), bytes(data)
    if media_file is None:
        return None
    path = Path(media_file).absolute()
    with open(path, "rb") as handle:  # FileNotFoundError names the path: a clear mistake
        head = handle.read(64)
    if not head:
        raise ValueError(f"add: {path} is empty")
    return head, path


def _lead_key(lead: str) -> tuple[int, str]:
    return (int(lead), lead) if lead.isdigit() else (1 << 62, lead)


def _vendor_duration(vendor: str, seconds: float) -> float:
    if vendor in ("convirza", "convoso"):
        return float(round(seconds))
    return round(seconds * 1000) / 1000


_VENDOR_EXTRA = {"convirza": convirza.extra, "convoso": convoso.extra, "envoy": envoy.extra,
                 "salesloft": salesloft.extra, "siro": siro.extra}
