"""API keys of the CRM integrations: one named key per integration, stored as a hash, with an expiry.

djangorestframework-api-key keeps the key's 8-character prefix (to find it) and a SHA-512 hash of
the whole key; the key itself is shown once, when it is made (`manage.py crm_key create` or the admin),
and never stored. Clients send `Authorization: Api-Key <prefix>.<secret>`.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.contrib.auth.models import AnonymousUser
from django.utils import timezone
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication
from rest_framework.request import Request
from rest_framework_api_key.models import AbstractAPIKey, APIKey
from rest_framework_api_key.permissions import KeyParser

KEYWORD = KeyParser.keyword


def crm_key_create(*, name: str, expires_in_days: int) -> tuple[AbstractAPIKey, str]:
    """Create a named key that expires in `expires_in_days`; return it and the clear key (shown once)."""
    if expires_in_days < 1:
        raise ValueError("A key must expire at least one day from now.")
    return APIKey.objects.create_key(name=name, expiry_date=timezone.now() + timedelta(days=expires_in_days))


class CrmApiKeyAuthentication(BaseAuthentication):
    """Authenticate a CRM integration by its API key; refuse an unknown, revoked or expired key with 401.

    The request has no user (an integration is not a person): `request.auth` is the APIKey.
    """

    def authenticate(self, request: Request) -> tuple[Any, AbstractAPIKey] | None:
        key = KeyParser().get(request._request)
        if key is None:
            return None
        try:
            api_key = APIKey.objects.get_from_key(key)
        except APIKey.DoesNotExist:
            raise exceptions.AuthenticationFailed("Unknown or revoked API key.") from None
        if api_key.expiry_date is None or api_key.has_expired:
            raise exceptions.AuthenticationFailed("This API key has expired.")
        return AnonymousUser(), api_key

    def authenticate_header(self, request: Request) -> str:
        return KEYWORD


class CrmApiKeyScheme(OpenApiAuthenticationExtension):
    """The API key in the OpenAPI schema: `Authorization: Api-Key <key>`."""

    target_class = CrmApiKeyAuthentication
    name = "crmApiKey"

    def get_security_definition(self, auto_schema: Any) -> dict[str, Any]:
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": f"`{KEYWORD} <key>`: a key made with `manage.py crm_key create --name <integration>`.",
        }
