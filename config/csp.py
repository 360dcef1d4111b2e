"""Content-Security-Policy for the public pages (Django 5.2 has none built in).

The pages a person sees load only this site's stylesheet and post only to this site, so the
policy allows nothing else. A page that may be framed (the embeddable signup form, marked with
`xframe_options_exempt`) omits `frame-ancestors`; every other page may not be framed at all.
"""

from __future__ import annotations

from collections.abc import Callable

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


def content_security_policy(*, framable: bool) -> str:
    """Return the policy header value; `framable` pages may be embedded by other sites."""
    return "; ".join(POLICY if framable else (*POLICY, "frame-ancestors 'none'"))


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
