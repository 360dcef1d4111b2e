from __future__ import annotations

from django.apps import AppConfig
from django.contrib.admin.apps import AdminConfig


class CadenceAdminConfig(AdminConfig):
    default_site = "config.admin.CadenceAdminSite"


class SiteConfig(AppConfig):
    """The project itself: start-up checks, error pages and their translations."""

    name = "config"
    label = "site"
    verbose_name = "Site"

    def ready(self) -> None:
        from config import checks  # noqa: F401  (registers the start-up checks)
