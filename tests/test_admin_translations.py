"""The admin is Dutch for a Dutch marketer: app, model and field names, list columns, filters and actions."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import polib
import pytest
from django.apps import apps
from django.contrib import admin
from django.contrib.auth.models import User
from django.utils import timezone
from django.utils.functional import Promise

from cadence import heartbeat

BASE_DIR = Path(__file__).resolve().parent.parent
OUR_APPS = ["preferences", "messaging", "cadence"]
TRANSLATED = {
    entry.msgid
    for path in BASE_DIR.glob("*/locale/nl/LC_MESSAGES/django.po")
    if ".venv" not in path.parts
    for entry in polib.pofile(str(path))
    if entry.msgstr and not entry.obsolete and "fuzzy" not in entry.flags
}


def _untranslated(label: object) -> bool:
    """Return whether `label` is not a lazy text with a Dutch translation in our catalogues."""
    return not isinstance(label, Promise) or label._args[0] not in TRANSLATED  # type: ignore[attr-defined]


def _admin_labels() -> list[tuple[str, object]]:
    labels: list[tuple[str, object]] = []
    for model, model_admin in admin.site._registry.items():
        if model._meta.app_label not in OUR_APPS:
            continue
        name = model.__name__
        for column in model_admin.list_display:
            attr = getattr(model_admin, column, None) if isinstance(column, str) else column
            if attr is not None and hasattr(attr, "short_description"):
                labels.append((f"{name} column {column}", attr.short_description))
        for list_filter in model_admin.list_filter:
            if isinstance(list_filter, type):
                labels.append((f"{name} filter {list_filter.__name__}", list_filter.title))
        for action in model_admin.actions or []:
            function = getattr(model_admin, action) if isinstance(action, str) else action
            labels.append((f"{name} action {function.__name__}", getattr(function, "short_description", None)))
    return labels


def _model_labels() -> list[tuple[str, object]]:
    labels: list[tuple[str, object]] = []
    for app_label in OUR_APPS:
        config = apps.get_app_config(app_label)
        labels.append((app_label, config.verbose_name))
        for model in config.get_models():
            labels.append((f"{model.__name__} name", model._meta.verbose_name))
            labels.append((f"{model.__name__} plural", model._meta.verbose_name_plural))
            for field in model._meta.get_fields():
                if field.auto_created:  # reverse relations and the automatic "ID"
                    continue
                labels.append((f"{model.__name__}.{field.name}", getattr(field, "verbose_name", None)))
    return labels


def test_every_app_model_and_field_name_has_a_dutch_translation():
    assert [where for where, label in _model_labels() if _untranslated(label)] == []


def test_every_list_column_filter_and_action_of_the_admin_has_a_dutch_translation():
    assert [where for where, label in _admin_labels() if _untranslated(label)] == []


@pytest.mark.django_db
def test_the_admin_home_speaks_dutch_and_shows_the_marketers_work_first(client):
    client.force_login(User.objects.create_superuser("marketer", password="pw"))
    page = client.get("/admin/", HTTP_ACCEPT_LANGUAGE="nl").content.decode()
    assert "Contacten en voorkeuren" in page and "Mail en mededelingen" in page and "Cadans en inhoud" in page
    assert "Preferences" not in page and "Messaging" not in page
    order = [page.index(text) for text in ["Contacten en voorkeuren", "Mail en mededelingen", "Cadans en inhoud"]]
    assert order == sorted(order)
    first_plumbing = min(
        page.index(f'href="/admin/{app}/"') for app in ["django_celery_beat", "rest_framework_api_key", "auth"]
    )
    assert page.index('href="/admin/cadence/"') < first_plumbing
    assert page.index("Marketingdashboard") < page.index("Contacten en voorkeuren")


@pytest.fixture
def ticked(settings) -> Iterator[None]:
    """The tick ran a minute ago, so the probes show its age (and the key is gone afterwards)."""
    settings.PROBE_CHECKS = ["database", "cache", "tick"]
    heartbeat.tick_record(now=timezone.now() - timedelta(minutes=1))
    yield
    heartbeat.redis_client(settings.REDIS_URL).delete(heartbeat.TICK_KEY)


@pytest.mark.django_db
def test_the_ops_page_is_dutch_for_a_dutch_reader(client, ticked):
    client.force_login(User.objects.create_superuser("ops", password="pw"))
    page = client.get("/admin/ops/", HTTP_ACCEPT_LANGUAGE="nl").content.decode()
    assert "De belofte klopt nu niet." in page or "De belofte klopt: niemand blijft stil." in page
    assert re.search(r"laatste tick 6\d s geleden \(grens \d+ s\)", page)
    for english in ["The promise", "consumers", "Queues", "last tick", "ago", "answers", "Recent failed"]:
        assert english not in page, english


@pytest.mark.django_db
def test_the_readiness_details_stay_english_for_machines(client, settings, ticked):
    settings.METRICS_TOKEN = "token"
    checks = client.get("/readyz?role=beat", HTTP_AUTHORIZATION="Bearer token").json()["checks"]
    assert re.match(r"last tick 6\ds ago \(limit \d+s\)", checks["tick"]["detail"])
