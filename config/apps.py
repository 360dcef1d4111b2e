from __future__ import annotations

from django.contrib.admin.apps import AdminConfig


class CadenceAdminConfig(AdminConfig):
    default_site = "config.admin.CadenceAdminSite"
