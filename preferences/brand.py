"""The sender's identity, from settings (BRAND_*): shown on every public page and in every mail."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.http import HttpRequest
from django.utils.translation import gettext as _


@dataclass(frozen=True)
class Brand:
    name: str
    logo_url: str
    postal_address: str
    privacy_url: str
    security_note: str


def current_brand() -> Brand:
    """Return the brand, its security note in the active language unless one is configured."""
    return Brand(
        name=settings.BRAND_NAME,
        logo_url=settings.BRAND_LOGO_URL,
        postal_address=settings.BRAND_POSTAL_ADDRESS,
        privacy_url=settings.BRAND_PRIVACY_URL,
        security_note=settings.BRAND_SECURITY_NOTE
        or _("We never ask for your PIN, password or access codes by email."),
    )


def brand_context(request: HttpRequest) -> dict[str, Any]:
    """Template context processor: `brand` on every page."""
    return {"brand": current_brand()}
