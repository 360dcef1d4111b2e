"""Signup and link-request throttles: per client IP (generous) and per email address (strict), in the Redis cache.

The rates are read from settings at each request (SIGNUP_THROTTLE_PER_IP, SIGNUP_THROTTLE_PER_ADDRESS;
LINK_REQUEST_THROTTLE_PER_IP, LINK_REQUEST_THROTTLE_PER_ADDRESS for asking a new link).
"""

from __future__ import annotations

import hashlib
from typing import Any

from django.conf import settings
from rest_framework.throttling import SimpleRateThrottle
from rest_framework.views import APIView

from preferences.client import client_ip
from preferences.services import normalize_email

# The form views are plain Django views; these throttles never read the view they are given.
FORM_VIEW = APIView()


class SignupIPThrottle(SimpleRateThrottle):
    scope = "signup_ip"

    def get_rate(self) -> str:
        return settings.SIGNUP_THROTTLE_PER_IP

    def get_ident(self, request: Any) -> str:
        return client_ip(request) or "unknown"

    def get_cache_key(self, request: Any, view: Any) -> str:
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}


class SignupAddressThrottle(SimpleRateThrottle):
    scope = "signup_address"

    def get_rate(self) -> str:
        return settings.SIGNUP_THROTTLE_PER_ADDRESS

    def get_cache_key(self, request: Any, view: Any) -> str | None:
        data = getattr(request, "data", None) or request.POST
        email = data.get("email") if hasattr(data, "get") else None
        if not isinstance(email, str) or not email.strip():
            return None
        digest = hashlib.sha256(normalize_email(email).encode()).hexdigest()[:32]
        return self.cache_format % {"scope": self.scope, "ident": digest}


def signup_allowed(request: Any) -> bool:
    """Return False when this client or this address has signed up too often (for the form view)."""
    return all(throttle().allow_request(request, FORM_VIEW) for throttle in (SignupIPThrottle, SignupAddressThrottle))


class LinkRequestIPThrottle(SignupIPThrottle):
    scope = "link_request_ip"


class LinkRequestAddressThrottle(SignupAddressThrottle):
    scope = "link_request_address"


def link_request_allowed(request: Any) -> bool:
    """Return False when this client or this address has asked for a link too often."""
    return all(
        throttle().allow_request(request, FORM_VIEW) for throttle in (LinkRequestIPThrottle, LinkRequestAddressThrottle)
    )
