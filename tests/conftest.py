from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from urllib.parse import quote

import pytest
from django.core.cache import cache
from django.db import connection

from config.celery import app as celery_app
from tests.factories import TopicFactory

# The suite runs with DEBUG off, on SQLite on a fresh machine, and starts worker processes that run
# the production start-up checks: it says so explicitly (config/checks.py, cadence.E010/E011).
os.environ.setdefault("ALLOW_SQLITE_IN_PRODUCTION", "true")
os.environ.setdefault("ALLOW_DEV_MAIL_BACKEND", "true")


def pytest_configure(config: pytest.Config) -> None:
    """Local folders the settings no longer create, and static files from the apps' folders.

    With DEBUG off the settings serve hashed names from `collectstatic`'s output, which a test run has
    not built; tests/test_prod_journey.py runs that path for real.
    """
    from django.conf import settings

    from config.localdirs import ensure_local_dirs

    ensure_local_dirs()
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
    settings.WHITENOISE_USE_FINDERS = True


def pytest_runtest_setup(item: pytest.Item) -> None:
    """`@pytest.mark.postgres`: a test that needs PostgreSQL (its SQL, its locks) skips itself elsewhere."""
    if item.get_closest_marker("postgres") and connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL")


@pytest.fixture(autouse=True)
def _fresh_throttles(settings) -> Iterator[None]:
    """Each test starts with empty throttle counters and mail from the anymail test backend."""
    settings.EMAIL_BACKEND = "anymail.backends.test.EmailBackend"
    cache.clear()
    yield


@pytest.fixture(autouse=True)
def _password_alone_signs_staff_in(settings) -> None:
    """Admin tests sign staff in with force_login; the second factor has tests of its own
    (tests/config/test_logins.py), which switch OTP_REQUIRED back on."""
    settings.OTP_REQUIRED = False


@pytest.fixture
def celery_eager() -> Iterator[None]:
    """Run tasks in-process for tests about the service, not the queue."""
    celery_app.conf.task_always_eager = True
    celery_app.conf.task_eager_propagates = True
    yield
    celery_app.conf.task_always_eager = False
    celery_app.conf.task_eager_propagates = False


@pytest.fixture
def topics(db) -> list:
    return [
        TopicFactory(slug="saving", name_en="Saving", name_nl="Sparen"),
        TopicFactory(slug="mortgage", name_en="Mortgages", name_nl="Hypotheken"),
        TopicFactory(slug="pension", name_en="Pension", name_nl="Pensioen"),
    ]


def database_url_for_subprocess() -> str:
    """Return a DATABASE_URL that points another process at the current (test) database."""
    s = connection.settings_dict
    if s["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{s['NAME']}"
    auth = quote(s["USER"] or "")
    if s.get("PASSWORD"):
        auth += ":" + quote(s["PASSWORD"])
    return f"postgres://{auth}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"


def subprocess_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update({"DATABASE_URL": database_url_for_subprocess(), "PYTHONUNBUFFERED": "1", "CONN_MAX_AGE": "0"})
    # Workers refuse to start without their secrets (config/celery.py), as the web does.
    env.setdefault("ANYMAIL_WEBHOOK_SECRET", "tests:worker-webhook-secret")
    env.update(extra)
    return env


def chromium_path() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def use_import_storage(settings, folder) -> None:
    """Point the background import's storage (STORAGES["imports"]) at `folder` for one test."""
    settings.STORAGES = {
        **settings.STORAGES,
        "imports": {"BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": str(folder)}},
    }
