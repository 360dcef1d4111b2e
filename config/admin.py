"""The admin site: the marketers' work first (contacts, dashboard, announcements, content), plumbing last."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
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


def _needs_change(func: Callable[..., Any], name: str) -> Callable[..., Any]:
    def action(modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet) -> Any:
        return func(modeladmin, request, queryset)

    action.__name__ = name
    action.allowed_permissions = ("change",)  # type: ignore[attr-defined]
    action.short_description = getattr(func, "short_description", name.replace("_", " "))  # type: ignore[attr-defined]
    return action


def actions_need_permission(admin_class: type[admin.ModelAdmin]) -> type[admin.ModelAdmin]:
    """Return `admin_class`, or a subclass of it in which each action that declares no permission needs `change`.

    Django runs an action without `permissions` for anyone who may see the list; django-celery-beat's
    enable, disable, toggle and run-now actions are such actions. The site fails closed instead.
    """
    actions: list[Any] = []
    guarded: dict[str, Any] = {}
    for action in admin_class.actions or ():
        name = action if isinstance(action, str) else action.__name__
        func = getattr(admin_class, action) if isinstance(action, str) else action
        if getattr(func, "allowed_permissions", None):
            actions.append(action)
            continue
        wrapped = _needs_change(func, name)
        if isinstance(action, str):
            guarded[name] = wrapped
            actions.append(name)
        else:
            actions.append(wrapped)
    if not guarded and actions == list(admin_class.actions or ()):
        return admin_class
    return type(
        admin_class.__name__, (admin_class,), {"__module__": admin_class.__module__, "actions": actions, **guarded}
    )


def _position(order: list[str], name: str) -> tuple[int, str]:
    return (order.index(name) if name in order else len(order), name)


class CadenceAdminSite(OTPRequiredAdminSite):
    site_header = _("Email preferences and cadence")
    site_title = _("Cadence admin")
    index_title = _("Your work")

    def register(self, model_or_iterable: Any, admin_class: Any = None, **options: Any) -> None:
        """Register as Django does; an action that declares no permission asks for `change` (fail closed)."""
        super().register(model_or_iterable, actions_need_permission(admin_class or admin.ModelAdmin), **options)

    def get_app_list(self, request: HttpRequest, app_label: str | None = None) -> list[dict[str, Any]]:
        apps = super().get_app_list(request, app_label)
        for app in apps:
            app["models"].sort(key=lambda model: _position(MODEL_ORDER, model["object_name"]))
        return sorted(apps, key=lambda app: _position(APP_ORDER, app["app_label"]))
