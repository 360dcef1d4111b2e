"""Property: over any sequence of signups, frequency changes, pauses and clock jumps, nobody gets more
than one nurture mail per chosen interval, and no reachable subscriber is ever planned past the grace."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.db import transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cadence import rules
from cadence.kinds import Kind
from cadence.models import Schedule
from messaging.models import Delivery
from preferences.frequencies import get_frequency
from preferences.models import Contact
from preferences.services import Evidence, contact_update_preferences
from tests.cadence.helpers import start, tick_and_send
from tests.factories import ContactFactory

pytestmark = pytest.mark.django_db

START = datetime(2026, 3, 20, 8, 0, tzinfo=UTC)  # a week before the switch to summer time
FREQUENCIES = ["biweekly", "monthly", "quarterly"]
ZONES = ["Europe/Amsterdam", "America/New_York", "Asia/Tokyo"]

operations = st.one_of(
    st.tuples(st.just("signup"), st.sampled_from(FREQUENCIES), st.sampled_from(ZONES)),
    st.tuples(st.just("frequency"), st.integers(0, 5), st.sampled_from(FREQUENCIES)),
    st.tuples(st.just("pause"), st.integers(0, 5), st.sampled_from([1, 3])),
    st.tuples(st.just("resume"), st.integers(0, 5), st.just(0)),
)
jumps = st.tuples(st.just("jump"), st.integers(1, 24 * 12), st.just(0))
steps_strategy = st.lists(st.one_of(operations, jumps, jumps, jumps), min_size=8, max_size=30)


def evidence() -> Evidence:
    return Evidence(ip_address="127.0.0.1", user_agent="property", source="test")


def check_never_planned_past_the_grace(now: datetime) -> None:
    for schedule in Schedule.objects.select_related("contact").filter(is_active=True):
        contact = schedule.contact
        if not contact.may_receive_marketing(now) and not contact.is_paused(now):
            continue
        reference = schedule.last_sent_at or contact.confirmed_at
        assert reference is not None  # a confirmed contact has a confirmation time
        deadline = rules.silent_since(
            last_marketing_at=reference,
            interval=get_frequency(contact.frequency).interval,
            paused_until=contact.paused_until,
        )
        assert schedule.next_due_at <= deadline, f"{contact.frequency} contact planned past the grace"


@settings(
    max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
@given(steps=steps_strategy)
def test_never_more_than_one_nurture_per_interval_and_never_silent_beyond_the_grace(steps, topics):
    with transaction.atomic():
        now = START
        contacts: list[Contact] = []
        nurture_sends: dict[str, list[tuple[datetime, str]]] = {}
        for op, a, b in steps:
            with time_machine.travel(now, tick=False):
                if op == "signup":
                    contact = ContactFactory(frequency=a, time_zone=b, confirmed_at=now, topics=[topics[0]])
                    start(contact)
                    contacts.append(contact)
                elif op in {"frequency", "pause", "resume"} and contacts:
                    contact = contacts[a % len(contacts)]
                    kwargs = (
                        {"frequency": b}
                        if op == "frequency"
                        else {"pause_months": b}
                        if op == "pause"
                        else {"resume": True}
                    )
                    contact_update_preferences(contact=contact, evidence=evidence(), **kwargs)
            if op == "jump":
                now += timedelta(hours=a)
            for delivery in tick_and_send(now):
                if delivery.kind == Kind.NURTURE and delivery.status == Delivery.Status.SENT:
                    contact = Contact.objects.get(pk=delivery.contact_id)
                    nurture_sends.setdefault(str(contact.pk), []).append((delivery.sent_at, contact.frequency))
            with time_machine.travel(now, tick=False):
                check_never_planned_past_the_grace(now)

        for sends in nurture_sends.values():
            for (earlier, _), (later, frequency) in itertools.pairwise(sends):
                assert later - earlier >= get_frequency(frequency).interval, "two nurture mails within one interval"
        transaction.set_rollback(True)
