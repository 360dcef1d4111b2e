"""With DEBUG off the service refuses to start without its secrets; the documented production
environment passes `manage.py check --deploy` without a warning."""

from __future__ import annotations

import os
import re
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import SystemCheckError

from config.checks import secrets_check
from config.launch import ensure_local_secrets

BASE_DIR = Path(__file__).resolve().parent.parent
GOOD_KEY = secrets.token_urlsafe(64)


def production_env_from_readme() -> dict[str, str]:
    """Return the README's production environment, each `<placeholder>` filled with a random value."""
    readme = (BASE_DIR / "README.md").read_text()
    production = readme.split("\n## Production\n", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```env\n(.*?)```", production, re.DOTALL)
    assert block, "the README's Production section shows the environment in an ```env block"
    env = {}
    for line in block.group(1).splitlines():
        name, _, value = line.partition("=")
        env[name] = re.sub(r"<[^>]*>", lambda _m: secrets.token_urlsafe(48), value)
    return env


def clean_env(**env: str) -> dict[str, str]:
    """Return a process environment with nothing of this one's but the basics, plus `env`."""
    base = {name: os.environ[name] for name in ("PATH", "HOME", "LANG", "TMPDIR") if name in os.environ}
    return {**base, **env}


def run_manage(*args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=BASE_DIR,
        env=clean_env(**env),
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_without_debug_the_server_refuses_to_start_without_a_secret_key_or_webhook_secret():
    result = run_manage("check", DEBUG="false")

    assert result.returncode != 0
    assert "cadence.E001" in result.stderr and "cadence.E002" in result.stderr


def test_gunicorn_refuses_to_load_the_application_without_the_secrets():
    result = subprocess.run(
        [sys.executable, "-c", "import config.wsgi"],
        cwd=BASE_DIR,
        env=clean_env(DEBUG="false", SECRET_KEY="short"),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr and "cadence.E002" in result.stderr


@pytest.mark.parametrize("command", [["worker", "-P", "solo"], ["beat"]])
def test_celery_workers_and_beat_refuse_to_start_without_the_secrets(command, tmp_path):
    # A broker nobody listens on: the refusal comes before any connection.
    env = clean_env(DEBUG="false", SECRET_KEY="short", CELERY_BROKER_URL="redis://127.0.0.1:1/0")
    extra = ["-S", "celery.beat:PersistentScheduler", "-s", str(tmp_path / "sched")] if command == ["beat"] else []
    result = subprocess.run(
        [sys.executable, "-m", "celery", "-A", "config", *command, *extra],
        cwd=BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0
    assert "Refusing to start" in result.stderr and "cadence.E001" in result.stderr and "cadence.E002" in result.stderr


def test_the_documented_production_environment_passes_the_deploy_check_without_warnings():
    result = run_manage("check", "--deploy", "--fail-level", "WARNING", **production_env_from_readme())

    assert result.returncode == 0, result.stderr
    assert "no issues" in result.stdout


@pytest.mark.parametrize(
    "key",
    ["", "x" * 49, "insecure-development-key-change-me-0123456789-abcdefghijklmnop", "django-insecure-" + "a1b2c" * 10],
)
def test_a_missing_short_or_public_secret_key_is_an_error(settings, key):
    settings.DEBUG = False
    settings.SECRET_KEY = key
    settings.ANYMAIL = {"WEBHOOK_SECRET": "esp:long-password"}

    assert [error.id for error in secrets_check()] == ["cadence.E001"]
    with pytest.raises(SystemCheckError):
        call_command("check")


def test_the_signing_key_of_the_esp_in_use_is_required(settings):
    settings.DEBUG = False
    settings.SECRET_KEY = GOOD_KEY
    settings.EMAIL_BACKEND = "anymail.backends.mailgun.EmailBackend"
    settings.ANYMAIL = {"WEBHOOK_SECRET": "esp:long-password", "MAILGUN_API_KEY": "key"}

    assert [error.id for error in secrets_check()] == ["cadence.E003"]
    settings.ANYMAIL = {**settings.ANYMAIL, "MAILGUN_WEBHOOK_SIGNING_KEY": "signing-key"}
    assert secrets_check() == []


def test_with_debug_on_nothing_is_required(settings):
    settings.DEBUG = True
    settings.ANYMAIL = {}
    assert secrets_check() == []


def test_make_run_generates_the_secrets_once_and_keeps_them_under_var(tmp_path, monkeypatch):
    monkeypatch.delenv("SECRET_KEY", raising=False)
    monkeypatch.delenv("ANYMAIL_WEBHOOK_SECRET", raising=False)

    first = ensure_local_secrets(tmp_path)
    monkeypatch.delenv("SECRET_KEY")
    monkeypatch.delenv("ANYMAIL_WEBHOOK_SECRET")
    second = ensure_local_secrets(tmp_path)

    assert first == second
    assert len(first["SECRET_KEY"]) >= 50
    user, _, password = first["ANYMAIL_WEBHOOK_SECRET"].partition(":")
    assert user and len(password) >= 24
    assert (tmp_path / "webhook_secret").stat().st_mode & 0o777 == 0o600
