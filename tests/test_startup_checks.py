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
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.core.management.base import SystemCheckError

from config.checks import production_defaults_check, refuse_to_start_without_secrets, secrets_check
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


def production_settings(settings) -> None:
    """Set settings that pass the secrets check, so only the production defaults are judged."""
    settings.DEBUG = False
    settings.SECRET_KEY = GOOD_KEY
    settings.ANYMAIL = {"WEBHOOK_SECRET": "esp:long-password", "POSTMARK_SERVER_TOKEN": "token"}
    settings.EMAIL_BACKEND = "anymail.backends.postmark.EmailBackend"
    settings.DATABASES = {**settings.DATABASES}
    settings.ALLOW_SQLITE_IN_PRODUCTION = False
    settings.ALLOW_DEV_MAIL_BACKEND = False
    settings.ALLOW_SHARED_REDIS_DB = False
    settings.CELERY_BROKER_URL = "redis://redis.internal:6379/0"
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://redis.internal:6379/1",
        }
    }


def sqlite_databases() -> dict:
    return {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": "/tmp/production.sqlite3"}}


def postgres_databases() -> dict:
    return {"default": {"ENGINE": "django.db.backends.postgresql", "NAME": "cadence"}}


def test_production_settings_with_postgres_an_esp_and_two_redis_databases_pass(settings):
    production_settings(settings)
    settings.DATABASES = postgres_databases()

    assert production_defaults_check() == []


def test_production_refuses_sqlite_unless_it_is_explicitly_allowed(settings):
    production_settings(settings)
    settings.DATABASES = sqlite_databases()

    assert [error.id for error in production_defaults_check()] == ["cadence.E010"]
    with pytest.raises(ImproperlyConfigured, match=r"cadence\.E010"):
        refuse_to_start_without_secrets()
    settings.ALLOW_SQLITE_IN_PRODUCTION = True
    assert production_defaults_check() == []


@pytest.mark.parametrize("backend", ["filebased", "console", "locmem"])
def test_production_refuses_a_mail_backend_that_sends_nothing_unless_allowed(settings, backend):
    production_settings(settings)
    settings.DATABASES = postgres_databases()
    settings.EMAIL_BACKEND = f"django.core.mail.backends.{backend}.EmailBackend"

    assert [error.id for error in production_defaults_check()] == ["cadence.E011"]
    settings.ALLOW_DEV_MAIL_BACKEND = True
    assert production_defaults_check() == []


@pytest.mark.parametrize(
    ("broker", "cache"),
    [
        ("redis://redis.internal:6379/0", "redis://redis.internal:6379/0"),
        ("redis://redis.internal:6379", "redis://:password@redis.internal:6379/0"),
        ("redis://localhost:6379/3", "redis://127.0.0.1/3"),
    ],
)
def test_production_refuses_the_cache_in_the_brokers_redis_database_unless_allowed(settings, broker, cache):
    production_settings(settings)
    settings.DATABASES = postgres_databases()
    settings.CELERY_BROKER_URL = broker
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": cache}}

    assert [error.id for error in production_defaults_check()] == ["cadence.E012"]
    settings.ALLOW_SHARED_REDIS_DB = True
    assert production_defaults_check() == []


def test_a_rabbitmq_broker_shares_nothing_with_the_redis_cache(settings):
    production_settings(settings)
    settings.DATABASES = postgres_databases()
    settings.CELERY_BROKER_URL = "amqp://guest:guest@rabbit.internal:5672//"

    assert production_defaults_check() == []


def test_without_database_url_or_email_backend_check_deploy_fails_and_names_both():
    env = production_env_from_readme()
    del env["DATABASE_URL"], env["EMAIL_BACKEND"]

    result = run_manage("check", "--deploy", **env)

    assert result.returncode != 0
    assert "cadence.E010" in result.stderr and "cadence.E011" in result.stderr


def test_the_explicit_settings_let_that_start_pass():
    env = production_env_from_readme()
    del env["DATABASE_URL"], env["EMAIL_BACKEND"]

    result = run_manage("check", "--deploy", ALLOW_SQLITE_IN_PRODUCTION="true", ALLOW_DEV_MAIL_BACKEND="true", **env)

    assert result.returncode == 0, result.stderr


def test_the_cache_defaults_to_the_database_after_the_brokers():
    env = clean_env(REDIS_URL="redis://:pw@redis.internal:6379/4")
    code = "from django.conf import settings; print(settings.CELERY_BROKER_URL, settings.CACHES['default']['LOCATION'])"
    result = subprocess.run(
        [sys.executable, "-c", f"import django; django.setup(); {code}"],
        cwd=BASE_DIR,
        env={**env, "DJANGO_SETTINGS_MODULE": "config.settings"},
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.stdout.split() == ["redis://:pw@redis.internal:6379/4", "redis://:pw@redis.internal:6379/5"]


def test_gunicorn_refuses_to_load_on_sqlite_with_the_file_backend():
    env = production_env_from_readme()
    del env["DATABASE_URL"], env["EMAIL_BACKEND"]
    result = subprocess.run(
        [sys.executable, "-c", "import config.wsgi"],
        cwd=BASE_DIR,
        env=clean_env(**env),
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert result.returncode != 0
    assert "cadence.E010" in result.stderr and "cadence.E011" in result.stderr
