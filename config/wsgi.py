from __future__ import annotations

import os

from django.core.wsgi import get_wsgi_application

from config.intake_wsgi import intake_first

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
# ESP webhook posts go to a lean handler, the rest of the site to Django's (config/intake_wsgi.py).
application = intake_first(get_wsgi_application())

# The URLs are imported at the first request otherwise: once per worker, or once in gunicorn's master
# before it forks its workers (preload_app).
from django.urls import get_resolver  # noqa: E402

get_resolver().url_patterns  # noqa: B018

# gunicorn runs no system checks: refuse to serve without the production secrets.
from config.checks import refuse_to_start_without_secrets  # noqa: E402

refuse_to_start_without_secrets()
