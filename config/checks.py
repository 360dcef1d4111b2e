"""Start-up checks: with DEBUG off, the service refuses to start without its secrets or on a
development default (SQLite, a mail backend that sends nothing, the cache in the broker's Redis database).

Registered as Django system checks (run by `runserver`, `migrate`, `check`) and run again by
`config.wsgi` before gunicorn serves a request, because gunicorn runs no system checks.
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core import checks
from django.core.exceptions import ImproperlyConfigured

TAG = "secrets"
SECRET_KEY_MIN_LENGTH = 50
SECRET_KEY_MIN_UNIQUE_CHARACTERS = 5
# Django's own marker, and the public development key this project once fell back to.
INSECURE_PREFIXES = ("django-insecure", "insecure-")

# The ESPs whose webhooks anymail can verify with a key of their own, and that key's ANYMAIL name.
# https://anymail.dev/en/stable/tips/securing_webhooks/
WEBHOOK_SIGNING_KEYS: dict[str, str] = {
    "mailgun": "MAILGUN_WEBHOOK_SIGNING_KEY",
    "mailersend": "MAILERSEND_SIGNING_SECRET",
    "mandrill": "MANDRILL_WEBHOOK_KEY",
    "postal": "POSTAL_WEBHOOK_KEY",
    "resend": "RESEND_SIGNING_SECRET",
    "mailtrap": "MAILTRAP_TRACKING_SECRET",
    "unisender_go": "UNISENDER_GO_API_KEY",
}


def esp_in_use() -> str | None:
    """Return the anymail ESP of EMAIL_BACKEND ("mailgun"), or None for a non-anymail backend."""
    parts = settings.EMAIL_BACKEND.split(".")
    if len(parts) == 4 and parts[:2] == ["anymail", "backends"]:
        return parts[2]
    return None


def anymail_setting(name: str) -> Any:
    """Return an anymail setting as anymail reads it: ANYMAIL[name], else ANYMAIL_<name>."""
    return getattr(settings, "ANYMAIL", {}).get(name) or getattr(settings, f"ANYMAIL_{name}", None)


def _secret_key() -> str:
    try:
        return str(settings.SECRET_KEY or "")
    except ImproperlyConfigured:  # Django refuses to read an empty SECRET_KEY
        return ""


@checks.register(TAG, checks.Tags.security)
def secrets_check(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """Return an error for each secret a production (DEBUG off) deployment lacks."""
    if settings.DEBUG:
        return []
    errors: list[checks.CheckMessage] = []
    key = _secret_key()
    if (
        len(key) < SECRET_KEY_MIN_LENGTH
        or len(set(key)) < SECRET_KEY_MIN_UNIQUE_CHARACTERS
        or key.startswith(INSECURE_PREFIXES)
    ):
        errors.append(
            checks.Error(
                f"SECRET_KEY is missing, shorter than {SECRET_KEY_MIN_LENGTH} characters or a known "
                "development key. It signs every link in every mail.",
                hint='Set SECRET_KEY to a long random value: python -c "import secrets; print(secrets.token_urlsafe(64))"',
                id="cadence.E001",
            )
        )
    webhook_secret = anymail_setting("WEBHOOK_SECRET")
    webhook_secrets = [webhook_secret] if isinstance(webhook_secret, str) else list(webhook_secret or [])
    if not webhook_secrets or not all(":" in secret for secret in webhook_secrets):
        errors.append(
            checks.Error(
                "ANYMAIL_WEBHOOK_SECRET is not set (as user:password): anyone could post forged bounces "
                "and complaints to /anymail/<esp>/tracking/.",
                hint="Set ANYMAIL_WEBHOOK_SECRET=user:long-random-password and put it in the ESP's webhook URL.",
                id="cadence.E002",
            )
        )
    esp = esp_in_use()
    signing_key = WEBHOOK_SIGNING_KEYS.get(esp or "")
    if signing_key and not anymail_setting(signing_key):
        errors.append(
            checks.Error(
                f"EMAIL_BACKEND sends through {esp}, whose webhooks are signed, but ANYMAIL_{signing_key} is not set.",
                hint=f"Copy the webhook signing key from the {esp} dashboard into ANYMAIL_{signing_key}.",
                id="cadence.E003",
            )
        )
    return errors


# Mail backends that deliver nothing: the mail is "sent" and recorded as sent, and nobody gets it.
DEV_MAIL_BACKENDS = frozenset(
    {
        "django.core.mail.backends.filebased.EmailBackend",
        "django.core.mail.backends.console.EmailBackend",
        "django.core.mail.backends.locmem.EmailBackend",
        "django.core.mail.backends.dummy.EmailBackend",
    }
)


def redis_database(url: str) -> tuple[str, int, int] | None:
    """Return (host, port, database) of a redis:// or rediss:// URL, else None."""
    parts = urlsplit(url or "")
    if parts.scheme not in {"redis", "rediss"}:
        return None
    host = (parts.hostname or "localhost").lower()
    host = "127.0.0.1" if host == "localhost" else host
    path = parts.path.strip("/")
    return host, parts.port or 6379, int(path) if path.isdigit() else 0


def shared_redis_database() -> tuple[str, int, int] | None:
    """Return the Redis database the cache and the Celery broker share, or None."""
    broker = redis_database(str(getattr(settings, "CELERY_BROKER_URL", "") or ""))
    if broker is None:
        return None
    for cache in settings.CACHES.values():
        if not str(cache.get("BACKEND", "")).endswith("RedisCache"):
            continue
        locations = cache.get("LOCATION", "")
        for location in [locations] if isinstance(locations, str) else list(locations):
            if redis_database(location) == broker:
                return broker
    return None


@checks.register("production", checks.Tags.security)
def production_defaults_check(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """Return an error for each development default a production (DEBUG off) start would run on."""
    if settings.DEBUG:
        return []
    errors: list[checks.CheckMessage] = []
    sqlite = [alias for alias, db in settings.DATABASES.items() if db["ENGINE"].endswith("sqlite3")]
    if sqlite and not settings.ALLOW_SQLITE_IN_PRODUCTION:
        errors.append(
            checks.Error(
                "The database is a SQLite file on this machine (DATABASE_URL is not set): every machine "
                "would run its own database.",
                hint="Set DATABASE_URL=postgres://user:password@host:5432/cadence, or "
                "ALLOW_SQLITE_IN_PRODUCTION=true if one machine with SQLite is really meant.",
                id="cadence.E010",
            )
        )
    if settings.EMAIL_BACKEND in DEV_MAIL_BACKENDS and not settings.ALLOW_DEV_MAIL_BACKEND:
        errors.append(
            checks.Error(
                f"EMAIL_BACKEND is {settings.EMAIL_BACKEND}: mail would be recorded as sent and reach nobody.",
                hint="Set EMAIL_BACKEND to an anymail ESP or EMAIL_URL to an SMTP relay, or "
                "ALLOW_DEV_MAIL_BACKEND=true if no mail should leave this instance.",
                id="cadence.E011",
            )
        )
    shared = shared_redis_database()
    if shared and not settings.ALLOW_SHARED_REDIS_DB:
        host, port, db = shared
        errors.append(
            checks.Error(
                f"The cache and the Celery broker share Redis database {db} on {host}:{port}: clearing the "
                "cache would drop every queued task.",
                hint="Set CACHE_URL to another Redis database (by default it is REDIS_URL's next one), or "
                "ALLOW_SHARED_REDIS_DB=true.",
                id="cadence.E012",
            )
        )
    return errors


def refuse_to_start_without_secrets() -> None:
    """Raise ImproperlyConfigured when a start-up check fails (for servers that run no checks)."""
    errors = secrets_check() + production_defaults_check()
    from config.otp import otp_check

    for warning in otp_check():
        logging.getLogger(__name__).warning("%s: %s", warning.id, warning.msg)
    if errors:
        raise ImproperlyConfigured("\n".join(f"{error.id}: {error.msg}" for error in errors))
