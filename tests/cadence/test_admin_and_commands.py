"""Marketers see the welcome series, content and silence risk in the admin; ops have the commands."""

from __future__ import annotations

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.utils import timezone

from cadence import tasks
from cadence.models import Schedule, WelcomeStep
from messaging.models import Delivery
from tests.factories import ContactFactory, ContentItemFactory

pytestmark = pytest.mark.django_db


def test_the_default_welcome_series_is_welcome_then_what_to_expect_then_first_picks():
    steps = [(s.position, s.delay.days, s.template) for s in WelcomeStep.objects.all()]
    assert steps == [(0, 0, "welcome"), (1, 3, "welcome_expect"), (2, 10, "welcome_picks")]


def test_the_content_admin_names_the_topics_at_risk_of_silence(admin_client, topics):
    for language in ("en", "nl"):
        ContentItemFactory(topic=topics[0], language=language)
        ContentItemFactory(topic=topics[1], language=language, evergreen=True)
    ContentItemFactory(topic=topics[2], language="en")
    page = admin_client.get("/admin/cadence/contentitem/").content.decode()
    assert "Silence risk" in page and "Pension" in page and "Saving," not in page
    filtered = admin_client.get("/admin/cadence/contentitem/?silence_risk=yes").content.decode()
    assert "1 content item" in filtered


def test_the_schedule_admin_warns_about_silent_subscribers(admin_client):
    Schedule.objects.create(
        contact=ContactFactory(), next_due_at=timezone.now() + timedelta(days=3),
        last_sent_at=timezone.now() - timedelta(days=60), welcome_step=9,
    )  # fmt: skip
    Schedule.objects.create(contact=ContactFactory(), next_due_at=timezone.now(), welcome_step=9)
    page = admin_client.get("/admin/cadence/schedule/").content.decode()
    assert "Silent: 1" in page
    listed = admin_client.get("/admin/cadence/schedule/?silence=silent").content.decode()
    assert listed.count('class="action-select"') == 1


def test_the_welcome_series_is_editable_in_the_admin(admin_client):
    response = admin_client.get("/admin/cadence/welcomestep/")
    assert response.status_code == 200 and "welcome_expect" in response.content.decode()


def test_the_tick_command_and_task_claim_what_is_due(sent_batches):
    for _ in range(3):
        Schedule.objects.create(
            contact=ContactFactory(), next_due_at=timezone.now() - timedelta(minutes=1), welcome_step=9
        )
    out = StringIO()
    call_command("cadence_tick", "--batch-size", "2", stdout=out)
    assert out.getvalue().startswith("claimed 3 in 2 batches")
    assert Delivery.objects.filter(kind="nurture").count() == 3
    assert tasks.tick() == 0
    assert tasks.silence_guard()["silent"] == 0
