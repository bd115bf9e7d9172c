"""Shared pieces of the provider unit tests: a MockTransport harness, accounts, and leak checks."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from config.settings import AccountSettings
from providers._http import VendorClient

TOKEN = "tok-SECRET-7f3a9c55d1"

Handler = Callable[[httpx.Request], httpx.Response]


def make_account(provider: str, base_url: str, **extra: Any) -> AccountSettings:
    values: dict[str, Any] = {
        "name": f"acme-{provider}",
        "provider": provider,
        "base_url": base_url,
        "token_env": "ACME_TOKEN",
        "start": datetime(2026, 1, 1, tzinfo=UTC),
        "token": SecretStr(TOKEN),
    }
    values.update(extra)
    return AccountSettings(**values)


@dataclass
class Harness:
    provider: Any
    client: VendorClient
    requests: list[httpx.Request]

    def params(self, index: int = -1) -> dict[str, str]:
        return dict(self.requests[index].url.params.multi_items())

    def paths(self) -> list[str]:
        return [request.url.path for request in self.requests]


@pytest.fixture
def build() -> Iterator[Callable[[type[Any], AccountSettings, Handler], Harness]]:
    """``build(ProviderClass, account, handler)``: a provider over a MockTransport that records requests."""
    clients: list[httpx.Client] = []

    def _build(provider_cls: type[Any], account: AccountSettings, handler: Handler) -> Harness:
        requests: list[httpx.Request] = []

        def record(request: httpx.Request) -> httpx.Response:
            requests.append(request)
            return handler(request)

        http = httpx.Client(transport=httpx.MockTransport(record))
        clients.append(http)
        headers, params = provider_cls.client_auth(account)
        client = VendorClient(account.base_url, http=http, auth_headers=headers, auth_params=params,
                              sleep=lambda _s: None)
        return Harness(provider_cls(account, client), client, requests)

    yield _build
    for http in clients:
        http.close()


def reply(body: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> httpx.Response:
    return httpx.Response(status, content=json.dumps(body).encode(), headers={
        "Content-Type": "application/json", **(headers or {})})


def raw_reply(content: bytes, status: int = 200, content_type: str = "text/html") -> httpx.Response:
    return httpx.Response(status, content=content, headers={"Content-Type": content_type})


def assert_no_query(value: Any) -> None:
    """No string anywhere in ``value`` is a URL with a query (or mentions the token)."""
    if isinstance(value, Mapping):
        for item in value.values():
            assert_no_query(item)
    elif isinstance(value, list | tuple):
        for item in value:
            assert_no_query(item)
    elif isinstance(value, str):
        assert not ("://" in value and "?" in value.split("://", 1)[1].replace("?***", "")), value
        assert TOKEN not in value


def assert_clean(exc: BaseException) -> None:
    """The token never shows in an error, nor a signed query."""
    text = str(exc) + repr(exc)
    assert TOKEN not in text
    assert "secret=" not in text.replace("secret=***", "")


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)  # type: ignore[misc]
