"""One silence rule: the guard, relationship health and the ops figures treat a pause alike."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import time_machine

from cadence.guard import silence_count
from cadence.health import rules as health
from cadence.health.services import health_recompute
from cadence.models import ContactHealth, Schedule
from cadence.ops.figures import overdue_by_reason
from tests.factories import ContactFactory

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 25, 10, tzinfo=UTC)


def person(*, last_days_ago: float | None, paused_until: datetime | None) -> Schedule:
    contact = ContactFactory.create(
        frequency="monthly", paused_until=paused_until, confirmed_at=NOW - timedelta(days=400)
    )
    return Schedule.objects.create(
        contact=contact,
        next_due_at=NOW + timedelta(days=5),
        last_sent_at=None if last_days_ago is None else NOW - timedelta(days=last_days_ago),
        welcome_step=9,
    )


def verdicts(schedule: Schedule) -> dict[str, bool]:
    """What the guard, health and ops each say of this one person."""
    with time_machine.travel(NOW, tick=False):
        health_recompute(contact_ids=[schedule.contact_id], act=False)
        counts = silence_count(now=NOW)
        ops = overdue_by_reason(now=NOW)
    row = ContactHealth.objects.get(contact_id=schedule.contact_id)
    return {
        "guard": counts.silent + counts.welcome_overdue > 0,
        "health": health.OVERDUE in row.reasons,
        "ops": ops["silent"] + ops["welcome_overdue"] > 0,
    }


def test_a_paused_person_is_silent_to_nobody():
    """On the main before this rule, health called this person overdue while the guard did not."""
    schedule = person(last_days_ago=90, paused_until=NOW + timedelta(days=20))
    assert verdicts(schedule) == {"guard": False, "health": False, "ops": False}


def test_a_paused_person_without_any_mail_is_not_waiting_for_a_welcome():
    schedule = person(last_days_ago=None, paused_until=NOW + timedelta(days=20))
    assert verdicts(schedule) == {"guard": False, "health": False, "ops": False}


def test_after_a_pause_silence_counts_from_its_end_for_everyone():
    ended_long_ago = person(last_days_ago=200, paused_until=NOW - timedelta(days=60))
    assert verdicts(ended_long_ago) == {"guard": True, "health": True, "ops": True}


def test_a_pause_that_just_ended_gives_a_fresh_interval_to_everyone():
    just_ended = person(last_days_ago=200, paused_until=NOW - timedelta(days=3))
    assert verdicts(just_ended) == {"guard": False, "health": False, "ops": False}
