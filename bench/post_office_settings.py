"""Settings for the django-post-office side of the send benchmark (bench/post_office_bench.py).

A project of its own: post_office and anymail only, its own database (BENCH_PO_DATABASE_URL, default
the bench database's name plus `_po`). The backend comes from the environment the benchmark sets
for the ESP stand-in: EMAIL_BACKEND, ANYMAIL_POSTMARK_SERVER_TOKEN/_API_URL, EMAIL_URL (SMTP sink).
"""

from __future__ import annotations

import os

import environ

env = environ.Env()

_bench_url = os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/cadence_bench")
SECRET_KEY = env.str("SECRET_KEY", default="post-office-bench-only-0123456789abcdef0123456789")
DEBUG = False
USE_TZ = True
TIME_ZONE = "UTC"
INSTALLED_APPS = ["anymail", "post_office"]
DATABASES = {"default": env.db_url("BENCH_PO_DATABASE_URL", default=f"{_bench_url}_po")}
DATABASES["default"]["CONN_MAX_AGE"] = 60
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
TEMPLATES = [{"BACKEND": "django.template.backends.django.DjangoTemplates", "APP_DIRS": True}]
DEFAULT_FROM_EMAIL = "Cadence <hello@example.com>"

if "EMAIL_URL" in os.environ:
    globals().update(environ.Env.email_url_config(os.environ["EMAIL_URL"]))
ANYMAIL = {
    key.removeprefix("ANYMAIL_"): value for key, value in os.environ.items() if key.startswith("ANYMAIL_POSTMARK_")
}

# post_office's own sending: batches of BATCH_SIZE split over the processes, THREADS_PER_PROCESS
# threads each (its default, 5), one log row per mail (its default log level).
POST_OFFICE = {
    "BACKENDS": {
        "default": globals().get("EMAIL_BACKEND") or env.str("EMAIL_BACKEND", default="bench.backends.EmailBackend")
    },
    "BATCH_SIZE": env.int("POST_OFFICE_BATCH_SIZE", default=400),
    "DEFAULT_PRIORITY": "medium",
}
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "root": {"level": "WARNING"},
    "loggers": {"post_office": {"level": "WARNING"}},
}
