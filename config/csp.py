"""Content-Security-Policy for the public pages (Django 5.2 has none built in).

The pages a person sees load only this site's stylesheet and post only to this site, so the
policy allows nothing else. A page that may be framed (the embeddable signup form, marked with
`xframe_options_exempt`) omits `frame-ancestors`; every other page may not be framed at all.
"""

from __future__ import annotations

from collections.abc import Callable
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
