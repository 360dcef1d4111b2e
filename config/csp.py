"""Content-Security-Policy for the public pages (Django 5.2 has none built in).

The pages a person sees load only this site's stylesheet and post only to this site, so the
policy allows nothing else. No page may be framed (`frame-ancestors 'none'`, and X-Frame-Options
DENY from Django's middleware), except the embeddable signup form by the sites listed in
SIGNUP_FRAME_ANCESTORS (`framable_by`): none by default.

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


def content_security_policy(*, frame_ancestors: list[str] | tuple[str, ...] = ()) -> str:
    """Return the policy header value; a page may be framed only by the origins in `frame_ancestors`.

    The brand's logo may come from the bank's own host (BRAND_LOGO_URL): that origin joins img-src.
    """
    logo = _logo_origin()
    policy = tuple(f"{part} {logo}" if logo and part.startswith("img-src") else part for part in POLICY)
    return "; ".join((*policy, f"frame-ancestors {' '.join(frame_ancestors) or chr(39) + 'none' + chr(39)}"))


def framable_by(setting: str) -> Callable[[Callable[..., HttpResponse]], Callable[..., HttpResponse]]:
    """Let the origins listed in the setting named `setting` frame the view's page; with none, nobody may.

    Listed origins get `frame-ancestors <origins>` and no X-Frame-Options (which cannot name them).
    """

    def decorate(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        @wraps(view)
        def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            response = view(request, *args, **kwargs)
            origins = list(getattr(settings, setting, []))
            if origins:
                setattr(response, "xframe_options_exempt", True)  # noqa: B010
                setattr(response, "csp_frame_ancestors", origins)  # noqa: B010
            return response

        return wrapped

    return decorate


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
        frame_ancestors = getattr(response, "csp_frame_ancestors", ())
        response["Content-Security-Policy"] = content_security_policy(frame_ancestors=frame_ancestors)
        return response
