"""The admin's second factor: with OTP_REQUIRED, staff sign in with a password and a TOTP code.

`OTPRequiredAdminSite` behaves as django-otp's OTPAdminSite while OTP_REQUIRED is on (its login form
and template, and only a session verified by a device counts as staff) and as Django's own site when
it is off (the embedded `make run` demo, DEBUG on). Every admin view, the ops page and the dashboard
go through `has_permission`, so none is reachable with a password alone.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib import admin
from django.core import checks
from django.http import HttpRequest
from django_otp.admin import OTPAdminAuthenticationForm, OTPAdminSite


def otp_required() -> bool:
    return bool(getattr(settings, "OTP_REQUIRED", True))


class ConfirmedDeviceAuthenticationForm(OTPAdminAuthenticationForm):
    """django-otp's admin login form, which takes a token only from a confirmed device.

    django-otp lists only confirmed devices but accepts any device id posted; an enrolment that
    was never confirmed must not be a second factor.
    """

    def _chosen_device(self, user: Any) -> Any:
        device = super()._chosen_device(user)
        return device if device is not None and device.confirmed else None


class OTPRequiredAdminSite(admin.AdminSite):
    @property
    def login_form(self) -> Any:  # type: ignore[override]
        return ConfirmedDeviceAuthenticationForm if otp_required() else None

    @property
    def login_template(self) -> Any:  # type: ignore[override]
        return OTPAdminSite.login_template if otp_required() else None

    def has_permission(self, request: HttpRequest) -> bool:
        if not super().has_permission(request):
            return False
        return not otp_required() or bool(request.user.is_verified())  # type: ignore[union-attr]


@checks.register("logins", checks.Tags.security)
def otp_check(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """Warn when a production (DEBUG off) admin signs staff in with a password alone."""
    if settings.DEBUG or otp_required():
        return []
    return [
        checks.Warning(
            "OTP_REQUIRED is off: staff sign in to the admin with a password alone.",
            hint="Remove OTP_REQUIRED=false and enrol a TOTP device per staff user (manage.py otp_device add <user>).",
            id="cadence.W020",
        )
    ]
