"""Settings, read from environment variables. Every variable is listed in the README."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any, cast
from urllib.parse import urlsplit, urlunsplit

import environ
from celery.schedules import crontab
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_lazy as _
from kombu import Exchange, Queue

BASE_DIR = Path(__file__).resolve().parent.parent
# Local state of `make run` and `make test` (SQLite, outbox, imports). Settings create no folder: the root
# filesystem of a container may be read-only; the code that writes a file creates its folder.
VAR_DIR = BASE_DIR / "var"

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
    "rest_framework_api_key",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_otp.plugins.otp_static",
    "axes",
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
    # HTTP request counts and latencies per view for /metrics (first and last: they time everything between).
    "django_prometheus.middleware.PrometheusBeforeMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "config.csp.ContentSecurityPolicyMiddleware",
    # Last, as django-axes asks: it turns a locked-out login into its lockout answer.
    "axes.middleware.AxesMiddleware",
    # After it, the HTTP metrics' closing half (django-prometheus wants it last).
    "django_prometheus.middleware.PrometheusAfterMiddleware",
]
# The middleware of ESP webhook posts (POST /anymail/...): they carry the ESP's credentials, never a
# session, a login or a language (config/intake_wsgi.py).
INTAKE_MIDDLEWARE = [
    "django_prometheus.middleware.PrometheusBeforeMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "django_prometheus.middleware.PrometheusAfterMiddleware",
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
    # Behind PgBouncer in transaction mode: no server-side cursors (QuerySet.iterator()), CONN_MAX_AGE=0.
    # https://docs.djangoproject.com/en/5.2/ref/databases/#transaction-pooling-server-side-cursors
    DATABASES["default"]["DISABLE_SERVER_SIDE_CURSORS"] = env.bool("DB_DISABLE_SERVER_SIDE_CURSORS", default=False)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# CACHE (throttling, rate limits)
REDIS_URL = env.str("REDIS_URL", default="redis://127.0.0.1:6379/0")


def _next_redis_db(url: str) -> str:
    """Return `url` with the next Redis database (14 for 15, the last of Redis's 16 by default)."""
    parts = urlsplit(url)
    if parts.scheme not in {"redis", "rediss"}:
        return url
    path = parts.path.strip("/")
    db = int(path) if path.isdigit() else 0
    return urlunsplit(parts._replace(path=f"/{db + 1 if db < 15 else db - 1}"))


# The cache lives in another Redis database than the Celery broker: clearing the cache (a deploy,
# a test run, `cache.clear()`) must never drop queued tasks. Default: the database after REDIS_URL's.
CACHE_URL = env.str("CACHE_URL", default="") or _next_redis_db(REDIS_URL)
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": CACHE_URL,
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
# With DEBUG off whitenoise serves what `manage.py collectstatic` (run when the image is built) put in
# STATIC_ROOT, under hashed names with compressed copies; with DEBUG on it serves from the apps' folders.
# https://whitenoise.readthedocs.io/en/stable/django.html
STATIC_URL = "/static/"
STATIC_ROOT = Path(env.str("STATIC_ROOT", default=str(BASE_DIR / "staticfiles")))
STORAGES: dict[str, dict[str, Any]] = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}
WHITENOISE_USE_FINDERS = DEBUG

# LOGINS (docs/security.md, "Logins")
# https://docs.djangoproject.com/en/5.2/topics/auth/passwords/#enabling-password-validation
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": env.int("PASSWORD_MIN_LENGTH", default=12)},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# django-axes counts failed logins in the database and locks the username from that client IP out
# for AXES_COOLOFF_HOURS after AXES_FAILURE_LIMIT failures; `manage.py axes_reset` lifts a lockout.
# https://django-axes.readthedocs.io/en/latest/4_configuration.html
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = timedelta(hours=env.float("AXES_COOLOFF_HOURS", default=1))
# Per username and IP together: a stranger cannot lock a colleague out from elsewhere; per IP alone
# too, so one client cannot try every username.
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"], "ip_address"]
AXES_RESET_ON_SUCCESS = True
AXES_CLIENT_IP_CALLABLE = "preferences.client.client_ip"
AXES_SENSITIVE_PARAMETERS = ["password", "otp_token"]
# Staff sign in to the admin with a password and a TOTP code (django-otp). Required unless DEBUG;
# switching it off in production is a start-up warning (cadence.W020). `manage.py otp_device add
# <username>` enrols a device and prints its otpauth:// URL once.
# https://django-otp-official.readthedocs.io/en/stable/
OTP_REQUIRED = env.bool("OTP_REQUIRED", default=not DEBUG)
OTP_TOTP_ISSUER = env.str("OTP_TOTP_ISSUER", default="Cadence")

# ERASURE (docs/security.md, "Erasure")
# The suppression list keeps HMAC-SHA256(key, address). Unset: a key derived from SECRET_KEY (and the
# SECRET_KEY_FALLBACKS are tried on lookup). Rotation: move the old key to SUPPRESSION_HASH_OLD_KEYS
# (comma-separated), set the new one, run `manage.py suppression_hashes --rehash`.
SUPPRESSION_HASH_KEY = env.str("SUPPRESSION_HASH_KEY", default="")
SUPPRESSION_HASH_OLD_KEYS = env.list("SUPPRESSION_HASH_OLD_KEYS", default=[])
SECRET_KEY_FALLBACKS = env.list("SECRET_KEY_FALLBACKS", default=[])

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
SECURE_REDIRECT_EXEMPT = env.list("SECURE_REDIRECT_EXEMPT", default=[r"^healthz$", r"^readyz$", r"^probes$"])
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31_536_000 if HTTPS else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=HTTPS)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=HTTPS)
X_FRAME_OPTIONS = "DENY"
# The sites that may frame the embeddable signup form (/subscribe/), as origins:
# "https://www.example-bank.nl,https://example-bank.nl". None by default: no site may frame it.
# https://developer.mozilla.org/en-US/docs/Web/HTTP/Headers/Content-Security-Policy/frame-ancestors
SIGNUP_FRAME_ANCESTORS = env.list("SIGNUP_FRAME_ANCESTORS", default=[])
for _origin in SIGNUP_FRAME_ANCESTORS:
    _parts = urlsplit(_origin)
    if _parts.scheme not in {"https", "http"} or not _parts.netloc or _parts.path not in {"", "/"} or " " in _origin:
        raise ImproperlyConfigured(
            f"SIGNUP_FRAME_ANCESTORS: {_origin!r} is not an origin such as https://www.example.org"
        )
SIGNUP_FRAME_ANCESTORS = [_origin.rstrip("/") for _origin in SIGNUP_FRAME_ANCESTORS]
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
    # The file backend is for development: with DEBUG off it stops the start (config/checks.py).
    EMAIL_BACKEND = env.str("EMAIL_BACKEND", default="django.core.mail.backends.filebased.EmailBackend")
# Seconds to wait for the SMTP relay, and for an ESP's API unless ANYMAIL_REQUESTS_TIMEOUT says otherwise.
EMAIL_TIMEOUT = env.float("EMAIL_TIMEOUT", default=30.0)

# PRODUCTION DEFAULTS
# With DEBUG off the service refuses to start on a development default (config/checks.py,
# cadence.E010-E012) unless one of these says it is meant: a SQLite file, a mail backend that
# sends nothing (file, console, memory), or the cache in the Celery broker's Redis database.
ALLOW_SQLITE_IN_PRODUCTION = env.bool("ALLOW_SQLITE_IN_PRODUCTION", default=False)
ALLOW_DEV_MAIL_BACKEND = env.bool("ALLOW_DEV_MAIL_BACKEND", default=False)
ALLOW_SHARED_REDIS_DB = env.bool("ALLOW_SHARED_REDIS_DB", default=False)

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
# WEBHOOK INTAKE (messaging/webhooks.py stores each post, messaging/intake.py processes them in batches)
# Only the tracking URL of the ESP of EMAIL_BACKEND answers, plus those listed here (a migration between
# ESPs: "postmark,sendgrid"); every other anymail URL answers 404. Inbound URLs only with WEBHOOK_INBOUND.
WEBHOOK_ESPS = env.list("WEBHOOK_ESPS", default=[])
WEBHOOK_INBOUND = env.bool("WEBHOOK_INBOUND", default=False)
# Largest post taken (bytes); ESPs that post arrays of events (SendGrid: up to 1,000 a post) get the second.
WEBHOOK_MAX_BODY_BYTES = env.int("WEBHOOK_MAX_BODY_BYTES", default=1024 * 1024)
WEBHOOK_MAX_ARRAY_BODY_BYTES = env.int("WEBHOOK_MAX_ARRAY_BODY_BYTES", default=8 * 1024 * 1024)
# A signed post (Mailgun's signature timestamp) older or further ahead than this is a replay: refused.
# https://documentation.mailgun.com/docs/mailgun/user-manual/tracking-messages/#securing-webhooks
WEBHOOK_REPLAY_WINDOW_SECONDS = env.int("WEBHOOK_REPLAY_WINDOW_SECONDS", default=3600)
# Deepest JSON nesting taken from anyone (webhooks and the API): deeper is refused with 400.
JSON_MAX_DEPTH = env.int("JSON_MAX_DEPTH", default=64)
# Posts claimed per processing transaction, and how long one task keeps taking batches.
EVENT_INTAKE_BATCH_POSTS = env.int("EVENT_INTAKE_BATCH_POSTS", default=500)
EVENT_INTAKE_MAX_SECONDS = env.float("EVENT_INTAKE_MAX_SECONDS", default=50.0)
# A web process asks for processing at most this often (seconds); beat asks every EVENT_INTAKE_BEAT_SECONDS.
EVENT_INTAKE_TRIGGER_SECONDS = env.float("EVENT_INTAKE_TRIGGER_SECONDS", default=0.5)
EVENT_INTAKE_BEAT_SECONDS = env.float("EVENT_INTAKE_BEAT_SECONDS", default=10.0)
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
# The same for an SMTP relay (EMAIL_URL): one connection per lane, each waiting on the relay's replies to
# MAIL, RCPT and DATA. Size it to the relay: Postfix takes 50 connections per client host by default, so
# 16 leaves room for three worker processes on one host.
SMTP_SEND_CONCURRENCY = env.int("SMTP_SEND_CONCURRENCY", default=16)
if SMTP_SEND_CONCURRENCY < 1:
    raise ImproperlyConfigured("SMTP_SEND_CONCURRENCY must be at least 1.")
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
# How long the links in a mail stay valid, in seconds (docs/security.md). Every mail carries fresh ones.
PREFERENCES_TOKEN_MAX_AGE = env.int("PREFERENCES_TOKEN_MAX_AGE", default=90 * 24 * 3600)
# Leaving must work from an old mail for a long while (RFC 8058 links sit in inboxes for months).
UNSUBSCRIBE_TOKEN_MAX_AGE = env.int("UNSUBSCRIBE_TOKEN_MAX_AGE", default=365 * 24 * 3600)
# The one-time link to see or download one's dossier (fresh proof of the mailbox).
DOSSIER_TOKEN_MAX_AGE = env.int("DOSSIER_TOKEN_MAX_AGE", default=30 * 60)
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
# A ceiling per mail domain (after preferences.mailbox normalisation): one company's or provider's
# mailboxes are one target. Generous: the big free providers carry many real signups.
SIGNUP_THROTTLE_PER_DOMAIN = env.str("SIGNUP_THROTTLE_PER_DOMAIN", default="1000/hour")
LINK_REQUEST_THROTTLE_PER_DOMAIN = env.str("LINK_REQUEST_THROTTLE_PER_DOMAIN", default="300/hour")

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
    Queue(name, Exchange(name, durable=True), routing_key=name, durable=True)
    for name in ("welcome", "bulk", "events", "default")
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
    # ESP events are processed on their own queue: a nurture round never delays a bounce's suppression.
    "messaging.tasks.event_posts_process": {"queue": "events"},
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
# One beat sends at a time: a second one idles behind a lease in Redis (config/beat.py) renewed every
# third of BEAT_LOCK_SECONDS, and takes over within BEAT_LOCK_SECONDS of the first one's end.
CELERY_BEAT_SCHEDULER = "config.beat:SingleBeatScheduler"
BEAT_LOCK_SECONDS = env.float("BEAT_LOCK_SECONDS", default=30.0)
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
# A CRM API key (`manage.py crm_key create`) lives this many days unless told otherwise.
CRM_API_KEY_DAYS = env.int("CRM_API_KEY_DAYS", default=365)
DASHBOARD_CACHE_SECONDS = env.int("DASHBOARD_CACHE_SECONDS", default=300)
# A cell that starts with "=" is a formula to Excel and LibreOffice; a contact's name must not run
# as one (CSV injection). The library strips the "="; ContactResource also quotes + - @ tab and CR.
# https://django-import-export.readthedocs.io/en/latest/installation.html#import-export-escape-formulae-on-export
IMPORT_EXPORT_ESCAPE_FORMULAE_ON_EXPORT = True
# Files of the admin's background import, written by the web and read by a worker: through a storage of
# their own, so both may run on different machines. A shared volume (FileSystemStorage, IMPORT_DIR is its
# folder) or a bucket, e.g. IMPORT_STORAGE_BACKEND=storages.backends.s3.S3Storage with
# IMPORT_STORAGE_OPTIONS='{"bucket_name": "cadence-imports"}' (django-storages; IMPORT_DIR is the key prefix).
# https://docs.djangoproject.com/en/5.2/ref/settings/#storages  https://django-storages.readthedocs.io/
# Unset, the library lets every staff user import and export; set, it asks for `<app>.import_<model>`
# and `<app>.export_<model>` (Contact declares both). Fails closed for any admin that adds the mixin later.
# https://django-import-export.readthedocs.io/en/latest/installation.html#import-export-import-permission-code
IMPORT_EXPORT_IMPORT_PERMISSION_CODE = "import"
IMPORT_EXPORT_EXPORT_PERMISSION_CODE = "export"
IMPORT_DIR = env.str("IMPORT_DIR", default=str(VAR_DIR / "imports"))
# An import validating or applying for longer than this lost its worker: beat fails it and deletes
# its file (preferences/import_jobs.py); the files of ended imports are deleted on the same run.
IMPORT_STALE_MINUTES = env.int("IMPORT_STALE_MINUTES", default=120)
STORAGES["imports"] = {
    "BACKEND": env.str("IMPORT_STORAGE_BACKEND", default="django.core.files.storage.FileSystemStorage"),
    "OPTIONS": {"location": IMPORT_DIR, **env.json("IMPORT_STORAGE_OPTIONS", default={})},
}
if STORAGES["imports"]["BACKEND"].endswith("FileSystemStorage"):
    STORAGES["imports"]["OPTIONS"].setdefault("file_permissions_mode", 0o600)  # personal data

# CADENCE
# When nurture mail may arrive, in each contact's own time zone: "mon-fri 09:00-17:00", "daily 08:00-20:00".
CADENCE_SEND_WINDOW = env.str("CADENCE_SEND_WINDOW", default="mon-fri 09:00-17:00")
# The tick claims due schedules (CLAIM_SIZE per transaction), one send task per BATCH_SIZE mails, until a limit.
# A batch's own work (claim, load, digests, records) is paid per batch and per group of equal mails: 1,000
# sends half again as many mails per second as 200 (bench/RESULTS.md) at about 130 MB per worker process.
CADENCE_TICK_BATCH_SIZE = env.int("CADENCE_TICK_BATCH_SIZE", default=1000)
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
# Seconds between ticks (a test runs it every second).
CADENCE_TICK_SECONDS = env.float("CADENCE_TICK_SECONDS", default=60.0)
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
# Processed ESP webhook posts (their raw bodies) are deleted this many days after processing, by the same
# nightly job; quarantined ones stay until an admin deletes them.
EVENT_POST_RETENTION_DAYS = env.int("EVENT_POST_RETENTION_DAYS", default=14)

# REST FRAMEWORK
REST_FRAMEWORK = {
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    # The CRM API takes hashed, expiring API keys (preferences/crm_api.py); DRF's clear-text tokens are gone.
    "DEFAULT_AUTHENTICATION_CLASSES": ["rest_framework.authentication.SessionAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAdminUser"],
    # JSON nested deeper than JSON_MAX_DEPTH is a 400, never a RecursionError (500).
    "DEFAULT_PARSER_CLASSES": [
        "config.jsonlimits.DepthLimitedJSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_THROTTLE_RATES": {
        "signup_ip": SIGNUP_THROTTLE_PER_IP,
        "signup_address": SIGNUP_THROTTLE_PER_ADDRESS,
        "link_request_ip": LINK_REQUEST_THROTTLE_PER_IP,
        "link_request_address": LINK_REQUEST_THROTTLE_PER_ADDRESS,
        "signup_domain": SIGNUP_THROTTLE_PER_DOMAIN,
        "link_request_domain": LINK_REQUEST_THROTTLE_PER_DOMAIN,
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
    "loggers": {
        # Django's own console handler (DEBUG only) would print "Not Found: /confirm/<token>/" unredacted:
        # everything goes through the root's console handler and its filter instead.
        "django": {"handlers": [], "level": "INFO", "propagate": True},
        "django.db.backends": {"level": "WARNING"},
    },
}
# No email addresses or tokens in logs, whatever the formatter.
LOGGING["filters"] = {
    "redact": {"()": "config.logredact.RedactFilter"},
    "short_tokens": {"()": "config.accesslog.ShortenTokensFilter"},
}
cast(dict, LOGGING["handlers"])["console"]["filters"] = ["redact"]
# runserver's request lines, as gunicorn's access log (gunicorn.conf.py): tokens cut to their first characters.
cast(dict, LOGGING["loggers"])["django.server"] = {
    "handlers": ["console"],
    "filters": ["short_tokens"],
    "level": "INFO",
    "propagate": False,
}

# OPERATIONS (/probes, /metrics, the ops page)
# /metrics answers only to "Authorization: Bearer <METRICS_TOKEN>"; unset, it answers 403 to everyone.
METRICS_TOKEN = env.str("METRICS_TOKEN", default="")
# The checks of /probes and /readyz?role=all (/readyz's other roles name their own, cadence/probes.py).
PROBE_CHECKS = env.list("PROBE_CHECKS", default=["database", "broker", "tick", "worker"])
# The tick runs every minute; older than this, beat is taken for dead.
PROBE_TICK_MAX_AGE = env.int("PROBE_TICK_MAX_AGE", default=180)
PROBE_WORKER_TIMEOUT = env.float("PROBE_WORKER_TIMEOUT", default=1.0)
# /readyz, /probes and the ops page keep the worker ping's answer this long (seconds): one broadcast per period.
PROBE_WORKER_CACHE_SECONDS = env.int("PROBE_WORKER_CACHE_SECONDS", default=15)
# The ops page keeps the workers' answer to its "who consumes which queue" broadcast this long.
OPS_CONSUMERS_CACHE_SECONDS = env.int("OPS_CONSUMERS_CACHE_SECONDS", default=15)
# The tick is behind when a schedule has been due for longer than this (seconds); silence is the guard's.
OPS_OVERDUE_GRACE = env.int("OPS_OVERDUE_GRACE", default=3600)
# The ops verdict fails when the oldest unprocessed ESP webhook post is older than this (seconds).
OPS_EVENT_INTAKE_LAG_MAX = env.int("OPS_EVENT_INTAKE_LAG_MAX", default=60)

# PERIODIC TASKS: the whole beat schedule, in one place (run exactly one beat; see the README).
# Tasks outside an app's tasks.py module, so that the worker registers them.
CELERY_IMPORTS = ["cadence.insights.tasks"]
CELERY_BEAT_SCHEDULE: dict[str, dict] = {
    # Claim what is due and queue it (the nurture and welcome series).
    "cadence-tick": {"task": "cadence.tasks.tick", "schedule": CADENCE_TICK_SECONDS},
    # A backstop for processing stored ESP posts (web processes ask for it as posts arrive).
    "event-posts-process": {"task": "messaging.tasks.event_posts_process", "schedule": EVENT_INTAKE_BEAT_SECONDS},
    # Count and repair silence; recover deliveries of lost tasks and dead workers.
    "cadence-silence-guard": {"task": "cadence.tasks.silence_guard", "schedule": crontab(minute="*/5")},
    # Service reminders go out once the contact's local clock reaches REMINDER_SEND_HOUR.
    "reminders-tick": {"task": "cadence.tasks.reminders_tick", "schedule": crontab(minute="*/15")},
    # Announcements confirmed for a later time start within a minute of it.
    "announcements-start": {"task": "cadence.tasks.start_scheduled_announcements", "schedule": 60.0},
    "health-recompute-all": {"task": "cadence.tasks.health_recompute_all", "schedule": crontab(minute=30, hour=3)},
    "dashboard-refresh": {"task": "cadence.insights.tasks.dashboard_refresh", "schedule": DASHBOARD_CACHE_SECONDS},
    "delivery-retention": {"task": "messaging.tasks.deliveries_prune", "schedule": crontab(minute=15, hour="1-5")},
    # Fail imports whose worker was lost and delete the files of ended imports.
    "import-jobs-reap": {"task": "preferences.tasks.reap_import_jobs", "schedule": 600.0},
}
