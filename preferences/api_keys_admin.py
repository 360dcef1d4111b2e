"""The admin of CRM API keys: django-rest-framework-api-key's, with an expiry every key must have.

The key is shown once, in the message after "Save"; the database keeps its prefix and a hash.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from rest_framework_api_key.admin import APIKeyModelAdmin
from rest_framework_api_key.models import APIKey


class APIKeyForm(forms.ModelForm):
    class Meta:
        model = APIKey
        fields = ["name", "expiry_date", "revoked"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if "expiry_date" in self.fields:
            self.fields["expiry_date"].required = True


class CrmApiKeyAdmin(APIKeyModelAdmin):
    form = APIKeyForm


if admin.site.is_registered(APIKey):
    admin.site.unregister(APIKey)
admin.site.register(APIKey, CrmApiKeyAdmin)
