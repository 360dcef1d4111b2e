"""The ops page opens with one verdict, its thresholds, and links to the people behind each count."""

from __future__ import annotations

import html
import re
from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.utils import timezone
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from cadence import heartbeat
from cadence.kinds import Kind
from cadence.models import Schedule
from messaging.models import Delivery
from tests.factories import ContactFactory, DeliveryFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_client(client):
    client.force_login(User.objects.create_superuser("ops", "ops@example.com", "pw"))
    return client


def _verdict(page: str) -> str:
    found = re.search(r'<h2 id="ops-verdict-title"[^>]*>([^<]+)</h2>', page)
    assert found is not None, "the ops page has no verdict"
    return found.group(1)


def _guard_ran(minutes_ago: int) -> None:
    every = IntervalSchedule.objects.create(every=5, period=IntervalSchedule.MINUTES)
    PeriodicTask.objects.update_or_create(
        name="cadence-silence-guard",
        defaults={
            "task": "cadence.tasks.silence_guard",
            "interval": every,
            "last_run_at": timezone.now() - timedelta(minutes=minutes_ago),
        },
    )


def test_the_verdict_says_the_promise_does_not_hold_and_links_the_silent_people(staff_client):
    now = timezone.now()
    heartbeat.tick_record(now=now)
    _guard_ran(minutes_ago=2)
    for i in range(3):
        contact = ContactFactory(email=f"quiet{i}@example.com")
        Schedule.objects.create(
            contact=contact, next_due_at=now + timedelta(days=1), last_sent_at=now - timedelta(days=90)
        )
    page = staff_client.get("/admin/ops/").content.decode()
    assert _verdict(page) == "The promise does not hold right now."
    assert page.index("ops-verdict") < page.index("Recent failed deliveries")
    link = html.unescape(re.search(r'<a href="([^"]*silence=silent)">3</a>', page).group(1))
    listed = staff_client.get(link).content.decode()
    assert listed.count('class="action-select"') == 3 and "quiet2@example.com" in listed
    assert "No schedule due for more than 60 minutes" in page
    assert "The tick ran in the last 180 seconds" in page


def test_the_verdict_holds_when_every_condition_does_and_shows_the_guard_and_tick_runs(staff_client, settings):
    settings.PROBE_CHECKS = ["database", "broker", "tick"]  # no worker runs in this test
    now = timezone.now()
    heartbeat.tick_record(now=now)
    _guard_ran(minutes_ago=3)
    contact = ContactFactory(confirmed_at=now - timedelta(seconds=30))
    Schedule.objects.create(contact=contact, next_due_at=now + timedelta(days=30), last_sent_at=now)
    for seconds in [1, 2, 3, 4, 40]:
        other = ContactFactory(confirmed_at=now - timedelta(minutes=5))
        Schedule.objects.create(contact=other, next_due_at=now + timedelta(days=30), last_sent_at=now)
        DeliveryFactory.create(
            contact=other,
            kind=Kind.WELCOME,
            queue=Delivery.Queue.WELCOME,
            status=Delivery.Status.SENT,
            sent_at=other.confirmed_at + timedelta(seconds=seconds),
        )
    # The series' second mail goes three days after confirmation by design: it is no late welcome.
    veteran = ContactFactory(confirmed_at=now - timedelta(days=3, hours=1))
    Schedule.objects.create(contact=veteran, next_due_at=now + timedelta(days=7), last_sent_at=now, welcome_step=2)
    DeliveryFactory.create(
        contact=veteran,
        kind=Kind.WELCOME,
        template="welcome_expect",
        status=Delivery.Status.SENT,
        sent_at=now - timedelta(hours=1),
    )
    page = staff_client.get("/admin/ops/").content.decode()
    assert _verdict(page) == "The promise holds: nobody is left silent.", page[page.index("ops-verdict") :][:3000]
    assert "The silence guard ran in the last 15 minutes" in page
    assert re.search(r"p50 / p95 / p99</th><td class=\"n\">3\.0 / 3\d\.\d / 3\d\.\d s", page)


def test_the_ops_page_lists_consumers_per_queue(staff_client):
    page = staff_client.get("/admin/ops/").content.decode()
    assert '<th class="n">consumers</th>' in page
    assert "welcome" in page and "bulk" in page


def test_the_consumer_broadcast_is_made_once_per_period_not_per_page_load(staff_client, monkeypatch, settings):
    from django.core.cache import cache

    from cadence.ops import overview as ops_views

    settings.OPS_CONSUMERS_CACHE_SECONDS = 60
    cache.delete(ops_views.CONSUMERS_CACHE_KEY)
    answers = iter([None, {"bulk": 2, "welcome": 1, "default": 1}])
    broadcasts: list[int] = []

    def broadcast():
        broadcasts.append(1)
        return next(answers)

    monkeypatch.setattr(ops_views, "_broadcast_consumers_per_queue", broadcast)
    for _ in range(3):
        staff_client.get("/admin/ops/")
    assert len(broadcasts) == 1  # "nobody answered" is kept too: three loads, one wait
    cache.delete(ops_views.CONSUMERS_CACHE_KEY)  # the period is over
    assert ops_views.consumers_per_queue() == {"bulk": 2, "welcome": 1, "default": 1}
    assert ops_views.consumers_per_queue() == {"bulk": 2, "welcome": 1, "default": 1}
    assert len(broadcasts) == 2


def _beat_wrote_the_guard(minutes_ago: int) -> None:
    """Beat wrote the guard's entry (it does so when it starts) and has not run it yet."""
    every = IntervalSchedule.objects.create(every=5, period=IntervalSchedule.MINUTES)
    task, _created = PeriodicTask.objects.update_or_create(
        name="cadence-silence-guard", defaults={"task": "cadence.tasks.silence_guard", "interval": every}
    )
    PeriodicTask.objects.filter(pk=task.pk).update(
        last_run_at=None, date_changed=timezone.now() - timedelta(minutes=minutes_ago)
    )


@pytest.mark.parametrize(("started_minutes_ago", "verdict"), [
    (1, "The promise holds: nobody is left silent."),
    (40, "The promise does not hold right now."),
])  # fmt: skip
def test_a_guard_not_yet_due_after_a_fresh_start_breaks_no_promise(
    staff_client, settings, started_minutes_ago, verdict
):
    """A fresh `make run`: beat started a minute ago and the guard's first run is still ahead."""
    settings.PROBE_CHECKS = ["database", "broker", "tick"]
    heartbeat.tick_record(now=timezone.now())
    _beat_wrote_the_guard(minutes_ago=started_minutes_ago)
    page = staff_client.get("/admin/ops/").content.decode()
    assert _verdict(page) == verdict
    assert ("not yet due" in page) == (started_minutes_ago == 1)
