"""What most providers share: the constructor, Bearer auth, no extra media hosts, 5 requests/s.

A provider subclasses ``VendorBase`` and overrides only what its vendor does differently (Convoso's
token in the query string, Envoy's organisation header, Convirza's media hosts, Siro's budget).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

if TYPE_CHECKING:
    from config.settings import AccountSettings
    from providers._http import VendorClient

__all__ = ["VendorBase"]


class VendorBase:
    name: ClassVar[str]
    max_page_size: ClassVar[int]
    listing_sorted: ClassVar[bool] = False
    #: PROVIDERS.md: 5 requests/s per account unless the vendor's limit is known
    default_rate_limit: ClassVar[float] = 5.0

    def __init__(self, account: AccountSettings, client: VendorClient) -> None:
        self.account = account
        self.client = client

    @classmethod
    def client_auth(cls, account: AccountSettings) -> tuple[dict[str, str], dict[str, str]]:
        """``Authorization: Bearer`` — sent to the API host only (``VendorClient`` sees to that)."""
        return {"Authorization": f"Bearer {account.token.get_secret_value()}"}, {}

    def media_hosts(self) -> list[str]:
        """Media hosts allowed by default besides ``base_url``'s and ``media_base_url``'s."""
        return []
