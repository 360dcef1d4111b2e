from __future__ import annotations

from config.devsecrets import read_demo_secrets

read_demo_secrets()  # before anything reads the settings: manage.py, celery -A config, the WSGI app

from config.celery import app as celery_app  # noqa: E402

__all__ = ["celery_app"]
