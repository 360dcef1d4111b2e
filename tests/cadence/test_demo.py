"""`manage.py demo` (run by `make run`) loads what a newcomer needs to try the journey by hand."""

from __future__ import annotations

import re
from datetime import timedelta
from itertools import pairwise

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.utils import timezone
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from cadence import heartbeat
from cadence.keys import welcome_key
from cadence.management.commands.demo import DEMO_ESP
from cadence.models import ContactHealth, ContentItem, Schedule
from cadence.ops import figures as ops
from messaging.models import Delivery
from preferences.models import Contact, Conversion, LeaveFeedback, Topic
from preferences.policy import effective_frequency, load_policies

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _debug(settings):
    """The demo runs only with DEBUG on, as under `make run`."""
    settings.DEBUG = True


def test_the_demo_loads_topics_contacts_prospects_content_and_a_superuser(capsys, client):
    call_command("demo", contacts=300)
    out = capsys.readouterr().out

    assert Topic.objects.count() == 6
    assert all(topic.name_nl and topic.name_en and topic.name_nl != topic.name_en for topic in Topic.objects.all())
    for topic in Topic.objects.all():
        assert set(ContentItem.objects.filter(topic=topic).values_list("language", flat=True)) == {"en", "nl"}
    assert Contact.objects.count() == 300
    assert Contact.objects.filter(share_of_customer=0, status="confirmed").count() > 50, "prospects included"
    assert Conversion.objects.exists() and ContactHealth.objects.exists()
    outcomes = set(LeaveFeedback.objects.values_list("outcome", flat=True))
    assert LeaveFeedback.Outcome.LEFT in outcomes and len(outcomes) > 1, "saves and leavers for the dashboard"
    assert Schedule.objects.count() == Contact.objects.filter(status="confirmed").count()

    password = re.search(r"password: (\S+)\)", out).group(1)
    assert get_user_model().objects.get(username="admin").check_password(password)
    link = re.search(r"Preference centre:\s+http://[^/]+(/preferences/\S+/)", out).group(1)
    assert client.get(link).status_code == 200


def test_running_the_demo_again_adds_nothing(capsys):
    call_command("demo", contacts=100)
    call_command("demo", contacts=100)
    assert Contact.objects.count() == 100
    assert Topic.objects.count() == 6


def test_the_demo_keeps_the_promise_on_the_ops_page(client, settings):
    settings.PROBE_CHECKS = ["database", "broker", "tick"]  # the demo's data, not its processes: no worker here
    call_command("demo", contacts=400)
    # What `make run` starts next: beat ticks and runs the guard.
    heartbeat.tick_record()
    every = IntervalSchedule.objects.create(every=5, period=IntervalSchedule.MINUTES)
    PeriodicTask.objects.create(
        name="cadence-silence-guard", task="cadence.tasks.silence_guard", interval=every, last_run_at=timezone.now()
    )
    client.force_login(get_user_model().objects.get(username="admin"))

    response = client.get("/admin/ops/")

    failing = [(c.label, c.value) for c in response.context["conditions"] if not c.holds]
    assert response.context["verdict"] and not failing, failing
    assert "The promise holds" in response.content.decode()
    percentiles = response.context["percentiles"]
    assert percentiles["count"] >= 5 and percentiles["p95"] <= 60, "welcomes seconds after confirmation"
    assert sum(n for _hour, n in ops.sends_per_hour()) > 20, "the sends chart shows the last two days' mail"
    events = dict(response.context["webhook_events"])
    assert events[(DEMO_ESP, "opened")] > 0 and events[(DEMO_ESP, "delivered")] > 0
    assert Contact.objects.filter(suppression_reason="hard_bounce").exists(), "a few bounces"
    assert Contact.objects.filter(status="unsubscribed").exists(), "and leavers"
    assert len(set(ContactHealth.objects.values_list("state", flat=True))) >= 2


def test_the_history_follows_each_persons_cadence_and_the_tick_sends_nothing_yet():
    call_command("demo", contacts=200)
    now = timezone.now()
    assert not Schedule.objects.filter(is_active=True, next_due_at__lte=now).exists()
    for contact in Contact.objects.filter(status="confirmed", suppressed_at=None)[:50]:
        sent = list(
            Delivery.objects.filter(contact=contact, kind="nurture")
            .order_by("sent_at")
            .values_list("sent_at", flat=True)
        )
        interval = effective_frequency(contact, load_policies()).interval
        assert all(later - earlier >= interval for earlier, later in pairwise(sent))
        welcome = Delivery.objects.get(contact=contact, idempotency_key=welcome_key(contact.pk, 0))
        assert timedelta(0) < welcome.sent_at - contact.confirmed_at < timedelta(minutes=1)
        assert contact.schedule.last_sent_at == Delivery.objects.filter(contact=contact).latest("sent_at").sent_at


def test_the_demo_refuses_to_run_without_debug(settings):
    settings.DEBUG = False
    with pytest.raises(CommandError, match="DEBUG"):
        call_command("demo", contacts=10)
    assert not Contact.objects.exists()
    assert not get_user_model().objects.filter(username="admin").exists()
