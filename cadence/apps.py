from __future__ import annotations

from django.apps import AppConfig


class CadenceConfig(AppConfig):
    name = "cadence"
    verbose_name = "Cadence"

    def ready(self) -> None:
        from cadence import health_receivers, receivers  # noqa: F401
