"""Signup and link-request throttles: per client IP (generous), per mailbox (strict) and per mail domain (a
ceiling), in the Redis cache.

A mailbox is counted however its address is spelled (`preferences.mailbox`: case, IDN or punycode,
plus-tags, Gmail dots). The rates are read from settings at each request (SIGNUP_THROTTLE_PER_IP,
SIGNUP_THROTTLE_PER_ADDRESS, SIGNUP_THROTTLE_PER_DOMAIN; LINK_REQUEST_THROTTLE_PER_* for asking a new link).
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from rest_framework.throttling import SimpleRateThrottle
from rest_framework.views import APIView

from preferences.client import client_ip
from preferences.mailbox import domain_key, mailbox_key

# The form views are plain Django views; these throttles never read the view they are given.
FORM_VIEW = APIView()


class SignupIPThrottle(SimpleRateThrottle):
    scope = "signup_ip"
    rate_setting = "SIGNUP_THROTTLE_PER_IP"

    def get_rate(self) -> str:
        return str(getattr(settings, self.rate_setting))

    def get_ident(self, request: Any) -> str:
        return client_ip(request) or "unknown"

    def get_cache_key(self, request: Any, view: Any) -> str:
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}


class SignupAddressThrottle(SignupIPThrottle):
    """Per mailbox, however the address is spelled."""

    scope = "signup_address"
    rate_setting = "SIGNUP_THROTTLE_PER_ADDRESS"

    def ident_for(self, email: str) -> str:
        return mailbox_key(email)

    def get_cache_key(self, request: Any, view: Any) -> str | None:  # type: ignore[override]
        data = getattr(request, "data", None) or request.POST
        email = data.get("email") if hasattr(data, "get") else None
        if not isinstance(email, str) or not email.strip():
            return None
        return self.cache_format % {"scope": self.scope, "ident": self.ident_for(email)}


class SignupDomainThrottle(SignupAddressThrottle):
    """A ceiling per mail domain: many mailboxes of one domain are one target."""

    scope = "signup_domain"
    rate_setting = "SIGNUP_THROTTLE_PER_DOMAIN"

    def ident_for(self, email: str) -> str:
        return domain_key(email)


SIGNUP_THROTTLES = (SignupIPThrottle, SignupAddressThrottle, SignupDomainThrottle)


def signup_allowed(request: Any) -> bool:
    """Return False when this client, this mailbox or this domain has signed up too often (for the form view)."""
    return all(throttle().allow_request(request, FORM_VIEW) for throttle in SIGNUP_THROTTLES)


class LinkRequestIPThrottle(SignupIPThrottle):
    scope = "link_request_ip"
    rate_setting = "LINK_REQUEST_THROTTLE_PER_IP"


class LinkRequestAddressThrottle(SignupAddressThrottle):
    scope = "link_request_address"
    rate_setting = "LINK_REQUEST_THROTTLE_PER_ADDRESS"


class LinkRequestDomainThrottle(SignupDomainThrottle):
    scope = "link_request_domain"
    rate_setting = "LINK_REQUEST_THROTTLE_PER_DOMAIN"


def link_request_allowed(request: Any) -> bool:
    """Return False when this client, this mailbox or this domain has asked for a link too often."""
    return all(
        throttle().allow_request(request, FORM_VIEW)
        for throttle in (LinkRequestIPThrottle, LinkRequestAddressThrottle, LinkRequestDomainThrottle)
    )
