"""The client behind a request, as the throttles and the consent ledger both record it."""

from __future__ import annotations

from typing import Any

from django.conf import settings


def client_ip(request: Any) -> str | None:
    """Return the client's IP address.

    REMOTE_ADDR, unless NUM_PROXIES reverse proxies are configured: then the address the outermost
    of them saw, read from the right of X-Forwarded-For (entries to its left are the client's own
    claim). Without configured proxies X-Forwarded-For is ignored, as any client can set it.
    """
    meta = request.META
    proxies = settings.NUM_PROXIES
    if proxies > 0:
        forwarded = [part.strip() for part in meta.get("HTTP_X_FORWARDED_FOR", "").split(",") if part.strip()]
        if forwarded:
            return forwarded[-min(proxies, len(forwarded))]
    return meta.get("REMOTE_ADDR") or None
