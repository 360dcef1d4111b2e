"""The door for ESP webhook posts, ahead of the site's middleware.

A webhook post is authenticated by the ESP's credentials, never by a session, a CSRF token, a login
or a language: the site's middleware (sessions, locale, CSRF, authentication, OTP, messages, CSP,
axes, whitenoise) has nothing to do for it, yet cost most of the post's time. `intake_first` sends
POSTs under /anymail/ to a handler with INTAKE_MIDDLEWARE only (the HTTP metrics, the security
middleware's HTTPS redirect and headers) and everything else to the site's handler.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from django.conf import settings
from django.core.handlers.wsgi import WSGIHandler

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
INTAKE_PREFIX = "/anymail/"


class IntakeHandler(WSGIHandler):
    """Django's WSGI handler, built with settings.INTAKE_MIDDLEWARE in place of MIDDLEWARE."""

    def load_middleware(self, is_async: bool = False) -> None:
        # BaseHandler reads the list from settings.MIDDLEWARE only; it is swapped while the chain is built,
        # once, at start-up, before any request.
        site_middleware = settings.MIDDLEWARE
        settings.MIDDLEWARE = settings.INTAKE_MIDDLEWARE
        try:
            super().load_middleware(is_async)
        finally:
            settings.MIDDLEWARE = site_middleware


def intake_first(site: WSGIApp) -> WSGIApp:
    """Return a WSGI application that hands webhook posts to an IntakeHandler and the rest to `site`."""
    intake = IntakeHandler()

    def application(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("REQUEST_METHOD") == "POST" and environ.get("PATH_INFO", "").startswith(INTAKE_PREFIX):
            return intake(environ, start_response)
        return site(environ, start_response)

    return application
