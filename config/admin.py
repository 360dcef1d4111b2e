"""The admin site: the marketers' work first (contacts, dashboard, announcements, content), plumbing last."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from config.otp import OTPRequiredAdminSite

# Apps, then models within them, in the order a marketer works; anything not named comes after, by name.
APP_ORDER = ["preferences", "messaging", "cadence"]
MODEL_ORDER = [
    "Contact",
    "Topic",
    "ConsentEvent",
    "ImportJob",
    "Product",
    "Conversion",
    "CadencePolicy",
    "SuppressionEntry",
    "Announcement",
    "Delivery",
    "DeliveryEvent",
    "ContentItem",
    "WelcomeStep",
    "ReminderRule",
    "Schedule",
    "ContactHealth",
    "ContentReceipt",
]


def _position(order: list[str], name: str) -> tuple[int, str]:
    return (order.index(name) if name in order else len(order), name)


class CadenceAdminSite(OTPRequiredAdminSite):
    site_header = _("Email preferences and cadence")
    site_title = _("Cadence admin")
    index_title = _("Your work")

    def get_app_list(self, request: HttpRequest, app_label: str | None = None) -> list[dict[str, Any]]:
        apps = super().get_app_list(request, app_label)
        for app in apps:
            app["models"].sort(key=lambda model: _position(MODEL_ORDER, model["object_name"]))
        return sorted(apps, key=lambda app: _position(APP_ORDER, app["app_label"]))
