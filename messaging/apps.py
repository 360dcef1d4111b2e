from __future__ import annotations

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class MessagingConfig(AppConfig):
    name = "messaging"
    verbose_name = _("Mail and announcements")

    def ready(self) -> None:
        from messaging import receivers  # noqa: F401
