from __future__ import annotations

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
application = get_wsgi_application()

# gunicorn runs no system checks: refuse to serve without the production secrets.
from config.checks import refuse_to_start_without_secrets  # noqa: E402

refuse_to_start_without_secrets()
