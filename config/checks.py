"""Start-up checks: with DEBUG off, the service refuses to start without its secrets.

Registered as Django system checks (run by `runserver`, `migrate`, `check`) and run again by
`config.wsgi` before gunicorn serves a request, because gunicorn runs no system checks.
"""

from __future__ import annotations

from typing import Any

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


def refuse_to_start_without_secrets() -> None:
    """Raise ImproperlyConfigured when a start-up check fails (for servers that run no checks)."""
    errors = secrets_check()
    if errors:
        raise ImproperlyConfigured("\n".join(f"{error.id}: {error.msg}" for error in errors))
