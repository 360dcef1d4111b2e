from __future__ import annotations

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class CadenceConfig(AppConfig):
    name = "cadence"
    verbose_name = _("Cadence and content")

    def ready(self) -> None:
        from cadence import receivers  # noqa: F401  (connects the receivers)
        from cadence.health import receivers as health_receivers  # noqa: F401
        from cadence.kinds import Kind
        from messaging.models import KIND_LABELS

        KIND_LABELS.update(Kind.choices)
