"""The tick and the bounce and complaint brake: a braked day's nurture round waits, welcome steps go on."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.db import connection

from cadence.keys import nurture_send_key
from cadence.kinds import Kind
from cadence.models import Schedule
from cadence.schedules import welcome_series
from messaging.models import Delivery, SendBrake
from tests.cadence.helpers import start, tick_and_send
from tests.factories import ContactFactory

pytestmark = pytest.mark.django_db

MONDAY = datetime(2026, 11, 23, 9, 30, tzinfo=UTC)
TUESDAY = MONDAY + timedelta(days=1)


@pytest.fixture
def due_tomorrow(topics):
    """One contact past the welcome series and one in it, both due on Tuesday morning."""
    with time_machine.travel(MONDAY, tick=False):
        nurtured = ContactFactory(topics=[topics[0]], frequency="biweekly", confirmed_at=MONDAY)
        welcomed = ContactFactory(topics=[topics[0]], frequency="biweekly", confirmed_at=MONDAY)
        start(nurtured)
        start(welcomed)
    # Its last marketing mail an interval ago: the claim never takes a second one inside one interval.
    Schedule.objects.filter(pk=nurtured.pk).update(
        welcome_step=len(welcome_series()), next_due_at=TUESDAY, last_sent_at=MONDAY - timedelta(days=14)
    )
    Schedule.objects.filter(pk=welcomed.pk).update(next_due_at=TUESDAY)
    return nurtured, welcomed


def skip_unless_postgres(portable: bool) -> None:
    if not portable and connection.vendor != "postgresql":
        pytest.skip("the single-statement claim is PostgreSQL only")


@pytest.mark.parametrize("portable", [False, True])
def test_the_tick_marks_nurture_mail_with_the_days_round_and_welcome_mail_with_none(portable, due_tomorrow):
    skip_unless_postgres(portable)
    nurtured, _welcomed = due_tomorrow
    claimed = tick_and_send(TUESDAY + timedelta(minutes=1), portable=portable)
    assert sorted((d.contact_id == nurtured.pk, d.kind, d.send_key) for d in claimed) == [
        (False, "welcome", ""),
        (True, "nurture", "nurture:2026-11-24"),
    ]


@pytest.mark.parametrize("portable", [False, True])
def test_a_braked_nurture_round_claims_no_nurture_loses_nothing_and_resume_continues(
    portable, due_tomorrow, admin_client, django_capture_on_commit_callbacks
):
    skip_unless_postgres(portable)
    nurtured, welcomed = due_tomorrow
    now = TUESDAY + timedelta(minutes=1)
    brake = SendBrake.objects.create(send_key=nurture_send_key(now.date()), sent=300, bounced=20)
    slot = Schedule.objects.get(pk=nurtured.pk).slot

    claimed = tick_and_send(now, portable=portable)

    # The welcome step still goes; the nurture schedule is not claimed and stays due.
    assert [(d.contact_id, d.kind) for d in claimed] == [(welcomed.pk, "welcome")]
    assert not Delivery.objects.filter(contact=nurtured, kind=Kind.NURTURE).exists()
    schedule = Schedule.objects.get(pk=nurtured.pk)
    assert (schedule.next_due_at, schedule.slot) == (TUESDAY, slot)
    assert tick_and_send(now + timedelta(minutes=5), portable=portable) == []

    with django_capture_on_commit_callbacks(execute=True):
        admin_client.post("/admin/messaging/sendbrake/", {"action": "resume", "_selected_action": [brake.pk]})
    assert SendBrake.objects.get().status == SendBrake.Status.RESUMED

    resumed = tick_and_send(now + timedelta(minutes=10), portable=portable)
    assert [(d.contact_id, d.kind, d.send_key) for d in resumed] == [(nurtured.pk, "nurture", "nurture:2026-11-24")]
