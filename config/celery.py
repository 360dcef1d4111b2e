from __future__ import annotations

import os
from typing import Any

from celery import Celery
from celery.signals import beat_init, worker_init

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("cadence")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@worker_init.connect
@beat_init.connect
def refuse_to_start_without_secrets(**kwargs: Any) -> None:
    """Workers sign every link they mail and beat starts them: like the web, neither starts without secrets.

    Celery logs and swallows an exception from a signal receiver, so the refusal is an exit.
    """
    from django.core.exceptions import ImproperlyConfigured

    from config.checks import refuse_to_start_without_secrets as check

    try:
        check()
    except ImproperlyConfigured as exc:
        raise SystemExit(f"Refusing to start:\n{exc}") from exc
