"""Settings, read from environment variables. Every variable is listed in the README."""

from __future__ import annotations

from pathlib import Path
from typing import cast

import environ
from celery.schedules import crontab
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_lazy as _
from kombu import Exchange, Queue

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = BASE_DIR / "var"
VAR_DIR.mkdir(exist_ok=True)

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

# CORE
DEBUG = env.bool("DEBUG", default=False)
# No fallback: without DEBUG, a missing or short key stops the service at start-up (config/checks.py);
# `make run` and `make test` generate or pass one.
SECRET_KEY = env.str("SECRET_KEY", default="")
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])
SITE_URL = env.str("SITE_URL", default="http://127.0.0.1:8000").rstrip("/")

INSTALLED_APPS = [
    "config.apps.CadenceAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_celery_beat",
    "anymail",
    "import_export",
    "preferences",
    "messaging",
    "cadence",
    "config.apps.SiteConfig",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "config.csp.ContentSecurityPolicyMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "django.template.context_processors.i18n",
                "preferences.brand.brand_context",
            ],
        },
    },
]

# DATABASE
# https://django-environ.readthedocs.io/en/latest/types.html#environ-env-db-url
DATABASES = {"default": env.db_url("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'db.sqlite3'}")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # A file, not memory, so that a Celery worker started by a test sees the test database.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / "test.sqlite3")}
    # Concurrent signups: take the write lock when a transaction starts (a deferred transaction that
    # reads, then writes, fails at once with "database is locked") and wait for it up to 20 s.
    # https://docs.djangoproject.com/en/5.2/ref/databases/#sqlite-transaction-behavior
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {"timeout": 20, "transaction_mode": "IMMEDIATE", "init_command": "PRAGMA journal_mode=WAL;"}
    )
else:
    DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=60)
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# CACHE (throttling, rate limits)
REDIS_URL = env.str("REDIS_URL", default="redis://127.0.0.1:6379/0")
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": env.str("CACHE_KEY_PREFIX", default="cadence"),
    }
}

# I18N
LANGUAGE_CODE = "en"
LANGUAGES = [("en", _("English")), ("nl", _("Dutch"))]
LOCALE_PATHS = [BASE_DIR / "config" / "locale"]
USE_I18N = True
USE_TZ = True
TIME_ZONE = "UTC"
DEFAULT_CONTACT_TIMEZONE = env.str("DEFAULT_CONTACT_TIMEZONE", default="Europe/Amsterdam")

# STATIC
STATIC_URL = "/static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATIC_ROOT.mkdir(exist_ok=True)  # whitenoise serves from finders in development
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = True

# SECURITY
# An https SITE_URL turns on HTTPS-only cookies, the redirect to https and HSTS; each can be set on its
# own. `manage.py check --deploy` is clean for the production settings in the README.
# https://docs.djangoproject.com/en/5.2/howto/deployment/checklist/
HTTPS = SITE_URL.startswith("https://")
SESSION_COOKIE_SECURE = env.bool("SECURE_COOKIES", default=HTTPS)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if env.bool("BEHIND_PROXY", default=False) else None
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=HTTPS)
# Probes inside the cluster speak plain HTTP.
SECURE_REDIRECT_EXEMPT = env.list("SECURE_REDIRECT_EXEMPT", default=[r"^probes$"])
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31_536_000 if HTTPS else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=HTTPS)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=HTTPS)
X_FRAME_OPTIONS = "DENY"
# Content-Security-Policy of every page outside these prefixes (config/csp.py); the admin and the API
# docs use inline scripts and styles of their own.
CSP_EXCLUDE_PREFIXES = env.list("CSP_EXCLUDE_PREFIXES", default=["/admin/", "/api/docs/"])
# A form posted with an expired or missing CSRF cookie gets a page that says what to do.
CSRF_FAILURE_VIEW = "config.errors.csrf_failure"

# EMAIL
# Any ESP that django-anymail supports, by configuration:
# https://anymail.dev/en/stable/esps/  e.g. EMAIL_BACKEND=anymail.backends.postmark.EmailBackend
# or an SMTP relay (the bank's own) as one URL, django-environ's EMAIL_URL:
# smtp://user:password@relay.example.org:25, smtp+tls://… (STARTTLS, port 587), smtp+ssl://… (port 465);
# https://django-environ.readthedocs.io/en/latest/types.html#environ-env-email-url
# Without either, mail is written to files under var/outbox/.
EMAIL_FILE_PATH = env.str("EMAIL_FILE_PATH", default=str(VAR_DIR / "outbox"))
EMAIL_URL = env.str("EMAIL_URL", default="")
if EMAIL_URL:
    if "EMAIL_BACKEND" in env.ENVIRON:
        raise ImproperlyConfigured("Set EMAIL_URL (an SMTP relay) or EMAIL_BACKEND (an ESP), not both.")
    _email = env.email_url_config(EMAIL_URL)
    EMAIL_BACKEND = _email["EMAIL_BACKEND"]
    EMAIL_USE_TLS = bool(_email.get("EMAIL_USE_TLS", False))
    EMAIL_USE_SSL = bool(_email.get("EMAIL_USE_SSL", False))
    if EMAIL_USE_TLS and EMAIL_USE_SSL:
        raise ImproperlyConfigured("EMAIL_URL: choose STARTTLS (smtp+tls://) or implicit TLS (smtp+ssl://), not both.")
    if EMAIL_BACKEND.endswith(".smtp.EmailBackend") and not _email["EMAIL_HOST"]:
        raise ImproperlyConfigured("EMAIL_URL needs a host: smtp://relay.example.org:25")
    EMAIL_HOST = _email["EMAIL_HOST"] or "localhost"
    EMAIL_PORT = _email["EMAIL_PORT"] or (465 if EMAIL_USE_SSL else 587 if EMAIL_USE_TLS else 25)
    EMAIL_HOST_USER = _email["EMAIL_HOST_USER"] or ""
    EMAIL_HOST_PASSWORD = _email["EMAIL_HOST_PASSWORD"] or ""
else:
    EMAIL_BACKEND = env.str("EMAIL_BACKEND", default="django.core.mail.backends.filebased.EmailBackend")
# Seconds to wait for the SMTP relay, and for an ESP's API unless ANYMAIL_REQUESTS_TIMEOUT says otherwise.
EMAIL_TIMEOUT = env.float("EMAIL_TIMEOUT", default=30.0)
# BRAND
# The sender's identity on every public page and in every mail (preferences/brand.py).
BRAND_NAME = env.str("BRAND_NAME", default="Example Bank")
BRAND_LOGO_URL = env.str("BRAND_LOGO_URL", default="")
BRAND_POSTAL_ADDRESS = env.str("BRAND_POSTAL_ADDRESS", default="Example Street 1, 1011 AB Amsterdam")
BRAND_PRIVACY_URL = env.str("BRAND_PRIVACY_URL", default="")
# Empty: a translated "We never ask for your PIN, password or access codes by email."
BRAND_SECURITY_NOTE = env.str("BRAND_SECURITY_NOTE", default="")
BRAND_SENDER_ADDRESS = env.str("BRAND_SENDER_ADDRESS", default="hello@example.com")
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default=f'"{BRAND_NAME}" <{BRAND_SENDER_ADDRESS}>')
ANYMAIL = {
    # ESP keys come as ANYMAIL_<ESP>_API_KEY etc.; anymail reads them from the environment too.
    "WEBHOOK_SECRET": env.str("ANYMAIL_WEBHOOK_SECRET", default="") or None,
}
ANYMAIL = {k: v for k, v in ANYMAIL.items() if v is not None}

# DELIVERABILITY
# Every ANYMAIL_<ESP>_<NAME> variable (API keys, webhook signing keys such as
# ANYMAIL_MAILGUN_WEBHOOK_SIGNING_KEY, ANYMAIL_POSTAL_WEBHOOK_KEY, ANYMAIL_MAILERSEND_SIGNING_SECRET,
# ANYMAIL_RESEND_SIGNING_SECRET, ANYMAIL_MANDRILL_WEBHOOK_KEY) becomes ANYMAIL["<ESP>_<NAME>"].
# https://anymail.dev/en/stable/tips/securing_webhooks/
for _name, _value in env.ENVIRON.items():
    if _name.startswith("ANYMAIL_") and _name != "ANYMAIL_WEBHOOK_SECRET":
        _lowered = _value.strip().lower()
        ANYMAIL[_name.removeprefix("ANYMAIL_")] = {"true": True, "false": False}.get(_lowered, _value)
ANYMAIL["REQUESTS_TIMEOUT"] = float(ANYMAIL.get("REQUESTS_TIMEOUT", EMAIL_TIMEOUT))
# Soft bounces of one contact within the window that suppress it.
SOFT_BOUNCE_LIMIT = env.int("SOFT_BOUNCE_LIMIT", default=3)
SOFT_BOUNCE_WINDOW_DAYS = env.int("SOFT_BOUNCE_WINDOW_DAYS", default=30)
# Messages per second for the whole ESP account, shared by every worker through Redis (0: no limit).
ESP_MAX_SEND_RATE = env.float("ESP_MAX_SEND_RATE", default=0)
ESP_RATE_LIMIT_KEY = env.str("ESP_RATE_LIMIT_KEY", default="esp-send-rate")
# Transient ESP errors: retry after base * 2**n seconds (between half and all of it), at most max, or
# after the ESP's Retry-After (the largest of the batch, at most SEND_RETRY_AFTER_MAX) when that is longer.
# The defaults keep a batch retrying for at least 6 hours (GOV.UK Notify: 4 hours) before it fails.
SEND_RETRY_BACKOFF = env.float("SEND_RETRY_BACKOFF", default=5)
SEND_RETRY_BACKOFF_MAX = env.float("SEND_RETRY_BACKOFF_MAX", default=900)
SEND_RETRY_AFTER_MAX = env.float("SEND_RETRY_AFTER_MAX", default=1800)
SEND_MAX_RETRIES = env.int("SEND_MAX_RETRIES", default=60)
# Messages sent at once per worker process to an ESP outside ESP_BATCH_SENDING (and over SMTP): each
# lane has one connection of its own for a whole chunk. 1 sends one after the other.
ESP_SEND_CONCURRENCY = env.int("ESP_SEND_CONCURRENCY", default=8)
if ESP_SEND_CONCURRENCY < 1:
    raise ImproperlyConfigured("ESP_SEND_CONCURRENCY must be at least 1.")
# Distinct messages per call to Postmark's /email/batch (at most 500); each lane sends whole calls.
# 0 sends one message per call (POST /email).
ESP_POSTMARK_BATCH_SIZE = env.int("ESP_POSTMARK_BATCH_SIZE", default=500)
if not 0 <= ESP_POSTMARK_BATCH_SIZE <= 500:
    raise ImproperlyConfigured("ESP_POSTMARK_BATCH_SIZE must be between 0 and 500.")
# Batch sending through anymail's merge_data: recipients per ESP call and the ESP's merge-field
# syntax ("{name}" is the variable). Only ESPs that merge per-recipient values into inline content
# AND take merge_headers (each person's List-Unsubscribe) through anymail are listed; the others go
# through messaging.esp's pool of concurrent sends (README, "ESP hand-off"): Postmark and Amazon SES
# merge only into stored templates, Brevo, Resend and Mailtrap have no inline merge, Mandrill takes
# no merge_headers, MailerSend's bulk endpoint returns no message ids, and Mailjet (50 per call,
# {{var:name}}) and Unisender Go (500, {{name}}) wait until their escaping of HTML values is checked.
# https://anymail.dev/en/stable/sending/templates/#batch-send
ESP_BATCH_SENDING = {
    "mailgun": {"limit": 1000, "placeholder": "%recipient.{name}%"},
    # SparkPost escapes {{x}} in HTML; {{{x}}} is verbatim (the HTML values come escaped already).
    "sparkpost": {"limit": 10000, "placeholder": "{{{{{{{name}}}}}}}"},
    "sendgrid": {"limit": 1000, "placeholder": "-{name}-", "key": "-{name}-"},
    "test": {"limit": env.int("TEST_ESP_BATCH_LIMIT", default=100), "placeholder": "[[{name}]]"},
}

# CONSENT AND CADENCE
# The frequencies a subscriber may choose, as "key=days". Changing the list needs no migration.
CADENCE_FREQUENCIES = env.list("CADENCE_FREQUENCIES", default=["biweekly=14", "monthly=30", "quarterly=91"])
CADENCE_DEFAULT_FREQUENCY = env.str("CADENCE_DEFAULT_FREQUENCY", default="monthly")
CONSENT_WORDING_VERSION = env.str("CONSENT_WORDING_VERSION", default="2026-11")
CONFIRM_TOKEN_MAX_AGE = env.int("CONFIRM_TOKEN_MAX_AGE", default=7 * 24 * 3600)
# Per client IP generous (an office or a mobile carrier shares one), per address strict; the form also
# has a honeypot field.
SIGNUP_THROTTLE_PER_IP = env.str("SIGNUP_THROTTLE_PER_IP", default="200/hour")
SIGNUP_THROTTLE_PER_ADDRESS = env.str("SIGNUP_THROTTLE_PER_ADDRESS", default="3/hour")
# Topics in one signup or preference change at most; longer lists are refused with 400.
MAX_TOPICS_PER_REQUEST = env.int("MAX_TOPICS_PER_REQUEST", default=50)
# Reverse proxies in front of the app that append to X-Forwarded-For. 0 (the default): the client IP
# is REMOTE_ADDR and X-Forwarded-For is ignored, as any client can set it.
NUM_PROXIES = env.int("NUM_PROXIES", default=0)
LINK_REQUEST_THROTTLE_PER_IP = env.str("LINK_REQUEST_THROTTLE_PER_IP", default="10/hour")
LINK_REQUEST_THROTTLE_PER_ADDRESS = env.str("LINK_REQUEST_THROTTLE_PER_ADDRESS", default="3/hour")

# CELERY
# https://docs.celeryq.dev/en/stable/userguide/configuration.html
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default=REDIS_URL)
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = "UTC"
CELERY_TASK_DEFAULT_QUEUE = "default"
# Each queue has its own exchange and routing key, so routing does not depend on the broker's defaults.
# Durable queues and exchanges, persistent messages: with RabbitMQ a broker restart loses no queued task.
CELERY_TASK_QUEUES = [
    Queue(name, Exchange(name, durable=True), routing_key=name, durable=True) for name in ("welcome", "bulk", "default")
]
CELERY_TASK_DEFAULT_DELIVERY_MODE = "persistent"
CELERY_TASK_DEFAULT_EXCHANGE = "default"
CELERY_TASK_DEFAULT_ROUTING_KEY = "default"
CELERY_TASK_ROUTES = {
    # The producer picks the queue of each send (Delivery.queue); bulk when none is given.
    "cadence.tasks.send_batch": {"queue": "bulk"},
    "cadence.tasks.*": {"queue": "default"},
    "cadence.insights.tasks.*": {"queue": "default"},
    "messaging.tasks.*": {"queue": "default"},
}
# Tasks that send are idempotent in the database, so a redelivered message is harmless.
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SOFT_TIME_LIMIT = env.int("CELERY_TASK_SOFT_TIME_LIMIT", default=240)
CELERY_TASK_TIME_LIMIT = env.int("CELERY_TASK_TIME_LIMIT", default=300)
# Must exceed the longest task (and any countdown), or Redis redelivers running tasks.
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": env.int("CELERY_VISIBILITY_TIMEOUT", default=3600)}
if max(SEND_RETRY_BACKOFF_MAX, SEND_RETRY_AFTER_MAX) >= CELERY_BROKER_TRANSPORT_OPTIONS["visibility_timeout"]:
    raise ImproperlyConfigured(
        "SEND_RETRY_BACKOFF_MAX and SEND_RETRY_AFTER_MAX must stay below CELERY_VISIBILITY_TIMEOUT."
    )
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_WORKER_SEND_TASK_EVENTS = True
CELERY_TASK_SEND_SENT_EVENT = True
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
# Keep Django's LOGGING (JSON, redaction) in worker and beat processes instead of Celery's own.
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_BROKER_TRANSPORT_OPTIONS.setdefault("socket_connect_timeout", 5)
# After a broker connection loss, let a running send finish and record SENT: its redelivered copy
# then finds the row claimed and does nothing. Cancelling it could stop it between the ESP call and
# that write, leaving a mail sent but recorded as `sending`. (Celery 6 will default to True.)
CELERY_WORKER_CANCEL_LONG_RUNNING_TASKS_ON_CONNECTION_LOSS = False

# REMINDERS (service reminders before a product renews or ends)
# Reminders go out once the contact's local clock reaches this hour (0-23); the tick runs every 15 minutes.
REMINDER_SEND_HOUR = env.int("REMINDER_SEND_HOUR", default=9)
if not 0 <= REMINDER_SEND_HOUR <= 23:
    raise ImproperlyConfigured("REMINDER_SEND_HOUR must be between 0 and 23.")
# A reminder whose day passed while beat was down is still created within this many days.
REMINDER_CATCH_UP_DAYS = env.int("REMINDER_CATCH_UP_DAYS", default=3)
# RELATIONSHIP HEALTH AND MARKETERS' ADMIN
HEALTH_REENGAGE_EVERY_DAYS = env.int("HEALTH_REENGAGE_EVERY_DAYS", default=180)
HEALTH_SUNSET_AFTER_MONTHS = env.int("HEALTH_SUNSET_AFTER_MONTHS", default=12)
HEALTH_SUNSET_STOP_AFTER_MONTHS = env.int("HEALTH_SUNSET_STOP_AFTER_MONTHS", default=6)
ADMIN_COUNT_CAP = env.int("ADMIN_COUNT_CAP", default=10000)
CRM_SYNC_GROUP = env.str("CRM_SYNC_GROUP", default="crm-sync")
DASHBOARD_CACHE_SECONDS = env.int("DASHBOARD_CACHE_SECONDS", default=300)
# A cell that starts with "=" is a formula to Excel and LibreOffice; a contact's name must not run
# as one (CSV injection). The library strips the "="; ContactResource also quotes + - @ tab and CR.
# https://django-import-export.readthedocs.io/en/latest/installation.html#import-export-escape-formulae-on-export
IMPORT_EXPORT_ESCAPE_FORMULAE_ON_EXPORT = True
# Unset, the library lets every staff user import and export; set, it asks for `<app>.import_<model>`
# and `<app>.export_<model>` (Contact declares both). Fails closed for any admin that adds the mixin later.
# https://django-import-export.readthedocs.io/en/latest/installation.html#import-export-import-permission-code
IMPORT_EXPORT_IMPORT_PERMISSION_CODE = "import"
IMPORT_EXPORT_EXPORT_PERMISSION_CODE = "export"
IMPORT_DIR = env.str("IMPORT_DIR", default=str(VAR_DIR / "imports"))

# CADENCE
# When nurture mail may arrive, in each contact's own time zone: "mon-fri 09:00-17:00", "daily 08:00-20:00".
CADENCE_SEND_WINDOW = env.str("CADENCE_SEND_WINDOW", default="mon-fri 09:00-17:00")
# The tick claims due schedules (CLAIM_SIZE per transaction), one send task per BATCH_SIZE mails, until a limit.
CADENCE_TICK_BATCH_SIZE = env.int("CADENCE_TICK_BATCH_SIZE", default=200)
CADENCE_TICK_CLAIM_SIZE = env.int("CADENCE_TICK_CLAIM_SIZE", default=2000)
CADENCE_TICK_MAX_BATCHES = env.int("CADENCE_TICK_MAX_BATCHES", default=400)
CADENCE_TICK_MAX_SECONDS = env.float("CADENCE_TICK_MAX_SECONDS", default=45.0)
# Items per nurture digest, and how old a non-evergreen item may be and still count as fresh.
CADENCE_DIGEST_SIZE = env.int("CADENCE_DIGEST_SIZE", default=3)
CADENCE_FRESH_DAYS = env.int("CADENCE_FRESH_DAYS", default=90)
# A delivery still "sending" after this long belongs to a worker that died: it is marked lost.
CADENCE_STUCK_SENDING_MINUTES = env.int("CADENCE_STUCK_SENDING_MINUTES", default=15)
# One silence guard at a time; the lock frees itself after this long should a guard die holding it.
CADENCE_GUARD_LOCK_SECONDS = env.int("CADENCE_GUARD_LOCK_SECONDS", default=600)
if CADENCE_STUCK_SENDING_MINUTES * 60 <= CELERY_TASK_TIME_LIMIT:
    raise ImproperlyConfigured(
        "CADENCE_STUCK_SENDING_MINUTES must exceed CELERY_TASK_TIME_LIMIT (a slow send is not lost)."
    )
# BOUNCE AND COMPLAINT BRAKE: a send past these rates (over its mails sent within the window, once at
# least BRAKE_MIN_SENDS went out) holds the rest of itself. Gmail and Yahoo refuse senders above 0.3%.
BRAKE_BOUNCE_RATE = env.float("BRAKE_BOUNCE_RATE", default=0.05)
BRAKE_COMPLAINT_RATE = env.float("BRAKE_COMPLAINT_RATE", default=0.003)
BRAKE_MIN_SENDS = env.int("BRAKE_MIN_SENDS", default=300)
BRAKE_WINDOW_HOURS = env.int("BRAKE_WINDOW_HOURS", default=24)
# RETENTION: deliveries and their ESP events older than this are pruned (counts kept per month)
DELIVERY_RETENTION_DAYS = env.int("DELIVERY_RETENTION_DAYS", default=400)
DELIVERY_RETENTION_BATCH_SIZE = env.int("DELIVERY_RETENTION_BATCH_SIZE", default=5000)
DELIVERY_RETENTION_MAX_SECONDS = env.float("DELIVERY_RETENTION_MAX_SECONDS", default=120.0)

# REST FRAMEWORK
REST_FRAMEWORK = {
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAdminUser"],
    "DEFAULT_THROTTLE_RATES": {
        "signup_ip": SIGNUP_THROTTLE_PER_IP,
        "signup_address": SIGNUP_THROTTLE_PER_ADDRESS,
        "link_request_ip": LINK_REQUEST_THROTTLE_PER_IP,
        "link_request_address": LINK_REQUEST_THROTTLE_PER_ADDRESS,
    },
    "NUM_PROXIES": NUM_PROXIES,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Cadence API",
    "DESCRIPTION": "Signup, preferences and CRM sync for the email preference and cadence service.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # Swagger UI served from this app, not a CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

# LOGGING
LOG_JSON = env.bool("LOG_JSON", default=False)
LOG_LEVEL = env.str("LOG_LEVEL", default="INFO")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "json": {"()": "pythonjsonlogger.json.JsonFormatter", "fmt": "%(asctime)s %(levelname)s %(name)s %(message)s"},
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "json" if LOG_JSON else "plain"}},
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}
# No email addresses or tokens in logs, whatever the formatter.
LOGGING["filters"] = {"redact": {"()": "config.logredact.RedactFilter"}}
cast(dict, LOGGING["handlers"])["console"]["filters"] = ["redact"]

# OPERATIONS (/probes, /metrics, the ops page)
# /metrics answers only to "Authorization: Bearer <METRICS_TOKEN>"; unset, it answers 403 to everyone.
METRICS_TOKEN = env.str("METRICS_TOKEN", default="")
# The checks /probes runs; a web-only liveness probe may want "database,broker".
PROBE_CHECKS = env.list("PROBE_CHECKS", default=["database", "broker", "tick", "worker"])
# The tick runs every minute; older than this, beat is taken for dead.
PROBE_TICK_MAX_AGE = env.int("PROBE_TICK_MAX_AGE", default=180)
PROBE_WORKER_TIMEOUT = env.float("PROBE_WORKER_TIMEOUT", default=1.0)
# The ops page keeps the workers' answer to its "who consumes which queue" broadcast this long.
OPS_CONSUMERS_CACHE_SECONDS = env.int("OPS_CONSUMERS_CACHE_SECONDS", default=15)
# The tick is behind when a schedule has been due for longer than this (seconds); silence is the guard's.
OPS_OVERDUE_GRACE = env.int("OPS_OVERDUE_GRACE", default=3600)

# PERIODIC TASKS: the whole beat schedule, in one place (run exactly one beat; see the README).
# Tasks outside an app's tasks.py module, so that the worker registers them.
CELERY_IMPORTS = ["cadence.insights.tasks"]
CELERY_BEAT_SCHEDULE: dict[str, dict] = {
    # Claim what is due and queue it (the nurture and welcome series).
    "cadence-tick": {"task": "cadence.tasks.tick", "schedule": 60.0},
    # Count and repair silence; recover deliveries of lost tasks and dead workers.
    "cadence-silence-guard": {"task": "cadence.tasks.silence_guard", "schedule": crontab(minute="*/5")},
    # Service reminders go out once the contact's local clock reaches REMINDER_SEND_HOUR.
    "reminders-tick": {"task": "cadence.tasks.reminders_tick", "schedule": crontab(minute="*/15")},
    # Announcements confirmed for a later time start within a minute of it.
    "announcements-start": {"task": "cadence.tasks.start_scheduled_announcements", "schedule": 60.0},
    "health-recompute-all": {"task": "cadence.tasks.health_recompute_all", "schedule": crontab(minute=30, hour=3)},
    "dashboard-refresh": {"task": "cadence.insights.tasks.dashboard_refresh", "schedule": DASHBOARD_CACHE_SECONDS},
    "delivery-retention": {"task": "messaging.tasks.deliveries_prune", "schedule": crontab(minute=15, hour="1-5")},
}
