"""Content-Security-Policy for the public pages (Django 5.2 has none built in).

The pages a person sees load only this site's stylesheet and post only to this site, so the
policy allows nothing else. A page that may be framed (the embeddable signup form, marked with
`xframe_options_exempt`) omits `frame-ancestors`; every other page may not be framed at all.

The admin is left out as a whole (CSP_EXCLUDE_PREFIXES), but an admin page that keeps to it can
carry a policy of its own (`strict_admin_policy`): the admin's own scripts and stylesheets, and inline
<style> elements only with the nonce of the response (its charts' SVG styles among them).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from functools import wraps
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.http import HttpRequest, HttpResponse

POLICY = (
    "default-src 'none'",
    "style-src 'self'",
    "img-src 'self' data:",
    "font-src 'self'",
    "form-action 'self'",
    "base-uri 'none'",
)


def _logo_origin() -> str:
    """Return the origin of the configured brand logo when it lives on another host, else ''."""
    parts = urlsplit(getattr(settings, "BRAND_LOGO_URL", "") or "")
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme in {"http", "https"} and parts.netloc else ""


def content_security_policy(*, framable: bool) -> str:
    """Return the policy header value; `framable` pages may be embedded by other sites.

    The brand's logo may come from the bank's own host (BRAND_LOGO_URL): that origin joins img-src.
    """
    logo = _logo_origin()
    policy = tuple(f"{part} {logo}" if logo and part.startswith("img-src") else part for part in POLICY)
    return "; ".join(policy if framable else (*policy, "frame-ancestors 'none'"))


ADMIN_POLICY = (
    "default-src 'none'",
    "script-src 'self'",
    "style-src 'self' 'nonce-{nonce}'",
    "img-src 'self' data:",
    "font-src 'self'",
    "form-action 'self'",
    "base-uri 'none'",
    "frame-ancestors 'none'",
)


def csp_nonce(request: HttpRequest) -> str:
    """Return the nonce an inline <style> of this response must carry ('' outside `strict_admin_policy`)."""
    return str(getattr(request, "_csp_nonce", ""))


def strict_admin_policy(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Give an admin view's response a policy with a fresh nonce for its inline styles; no inline script runs."""

    @wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        nonce = secrets.token_urlsafe(18)
        setattr(request, "_csp_nonce", nonce)  # noqa: B010 (HttpRequest declares no such attribute)
        response = view(request, *args, **kwargs)
        response["Content-Security-Policy"] = "; ".join(part.format(nonce=nonce) for part in ADMIN_POLICY)
        return response

    return wrapped


class ContentSecurityPolicyMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if "Content-Security-Policy" in response or request.path.startswith(tuple(settings.CSP_EXCLUDE_PREFIXES)):
            return response
        framable = getattr(response, "xframe_options_exempt", False)
        response["Content-Security-Policy"] = content_security_policy(framable=framable)
        return response
