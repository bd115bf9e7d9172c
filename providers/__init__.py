"""Vendor adapters, one module each, registered in a plain sorted dict (fsspec style)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from providers.base import MediaLink, Provider, Readiness, Recording, Window

if TYPE_CHECKING:
    from config.settings import AccountSettings
    from providers._http import VendorClient

__all__ = ["PROVIDERS", "MediaLink", "Provider", "Readiness", "Recording", "Window", "get_provider", "make_provider"]

#: provider name -> "module:Class"; imported on first use
PROVIDERS: dict[str, str] = {
    "convirza": "providers.convirza:ConvirzaProvider",
    "convoso": "providers.convoso:ConvosoProvider",
    "envoy": "providers.envoy:EnvoyProvider",
    "salesloft": "providers.salesloft:SalesloftProvider",
    "siro": "providers.siro:SiroProvider",
}


def get_provider(name: str) -> type[Provider]:
    import importlib

    try:
        target = PROVIDERS[name]
    except KeyError:
        raise KeyError(f"unknown provider {name!r}; known: {', '.join(sorted(PROVIDERS))}") from None
    module_name, _, class_name = target.partition(":")
    cls: type[Provider] = getattr(importlib.import_module(module_name), class_name)
    return cls


def make_provider(account: AccountSettings, client: VendorClient) -> Provider:
    return get_provider(account.provider)(account, client)
