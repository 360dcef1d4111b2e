"""Property: over random ticks, announcements of both modes, re-engagement and frequency changes, outside the
welcome series nobody gets two marketing mails inside their effective interval, and everyone in a marketing
announcement's audience with consent gets it exactly once, by the date the admin promised."""

from __future__ import annotations

import itertools
import os
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import time_machine
from django.core import mail
from django.db import transaction
from django.test import TestCase
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st

from cadence.announcements import announcement_confirm, announcement_expand
from cadence.batch import batch_send
from cadence.health.services import _reengagement_fits
from cadence.keys import reengagement_key
from cadence.kinds import Kind
from cadence.models import Announcement, AnnouncementRecipient, Schedule
from cadence.schedules import schedules_create_after_sends
from messaging.models import Delivery
from messaging.services import delivery_create
from preferences.models import Contact
from preferences.policy import effective_frequency
from preferences.services import Evidence, contact_update_preferences
from tests.cadence.helpers import tick_and_send
from tests.factories import AnnouncementFactory, ContactFactory

pytestmark = pytest.mark.django_db

START = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)  # a Monday
FREQUENCIES = ["weekly", "biweekly", "monthly", "quarterly"]
PEOPLE = 6

people_strategy = st.lists(
    st.tuples(st.sampled_from(FREQUENCIES), st.integers(0, 100), st.sampled_from(["en", "nl"])),
    min_size=PEOPLE,
    max_size=PEOPLE,
)
operations = st.one_of(
    st.tuples(st.just("tick"), st.integers(1, 24 * 10)),
    st.tuples(st.just("announce_now"), st.integers(0, 1)),
    st.tuples(st.just("announce_next"), st.integers(0, 1)),
    st.tuples(st.just("reengage"), st.integers(0, PEOPLE - 1)),
    st.tuples(st.just("frequency"), st.integers(0, PEOPLE * len(FREQUENCIES) - 1)),
)


def evidence() -> Evidence:
    return Evidence(ip_address="127.0.0.1", user_agent="property", source="test")


class Run:
    """The world of one example: its clock, its people and every marketing mail they got."""

    def __init__(self, contacts: list[Contact]) -> None:
        self.now = START
        self.contacts = contacts
        self.sends: dict[Any, list[tuple[datetime, str]]] = {}  # contact -> (sent at, delivery id)
        self.lengthened: dict[Any, datetime] = {}  # contact -> when they chose a longer interval
        self.announcements: list[Announcement] = []

    def record(self, deliveries: list[Delivery]) -> None:
        for delivery in deliveries:
            if delivery.marketing and delivery.status == Delivery.Status.SENT and delivery.kind != Kind.WELCOME:
                assert delivery.sent_at is not None
                self.sends.setdefault(delivery.contact_id, []).append((delivery.sent_at, str(delivery.id)))
                self.check_interval(delivery.contact_id)

    def check_interval(self, contact_id: Any) -> None:
        contact = Contact.objects.get(pk=contact_id)
        interval = effective_frequency(contact).interval
        sends = sorted(self.sends[contact_id])
        earlier, later = sends[-2:] if len(sends) > 1 else (None, None)
        if earlier is not None and later is not None:
            assert later[0] - earlier[0] >= interval, f"two marketing mails inside one {contact.frequency} interval"

    def send_all(self, ids: list[str]) -> None:
        for delivery_id in ids:
            batch_send(delivery_ids=[delivery_id])
        self.record(list(Delivery.objects.filter(id__in=ids)))

    def tick(self, at: datetime) -> None:
        """Let time pass to `at` as beat does, ticking every minute: a tick a minute after each due moment
        on the way (ticks in between would claim nothing), then one at `at`."""
        for _ in range(200):
            due = Schedule.objects.filter(is_active=True, next_due_at__lt=at).order_by("next_due_at").first()
            if due is None:
                break
            self.tick_once(min(max(self.now, due.next_due_at) + timedelta(minutes=1), at))
            if self.now >= at:
                return
        self.tick_once(at)

    def tick_once(self, at: datetime) -> None:
        self.now = at
        self.record(tick_and_send(at))

    def announce(self, mode: str, n: int) -> None:
        with time_machine.travel(self.now, tick=False):
            announcement = AnnouncementFactory.create(
                kind=Announcement.Kind.MARKETING,
                audience=Announcement.Audience.ALL_CONTACTS,
                delivery_mode=mode,
                subject_en=f"Marker {len(self.announcements)}",
                subject_nl=f"Marker {len(self.announcements)}",
                body_en=f"Body-{len(self.announcements)}-end",
                body_nl=f"Body-{len(self.announcements)}-end",
            )
            assert announcement_confirm(announcement=announcement, confirmed_by="marketer")
            ids: list[str] = []
            with TestCase.captureOnCommitCallbacks(execute=True):
                announcement_expand(announcement_id=announcement.pk, enqueue_sends=ids.extend)
            self.send_all(ids)
        announcement.refresh_from_db()
        self.announcements.append(announcement)

    def reengage(self, index: int) -> None:
        contact = self.contacts[index]
        with time_machine.travel(self.now, tick=False):
            contact.refresh_from_db()
            if _reengagement_fits(contact, self.now):
                delivery = delivery_create(
                    contact=contact,
                    kind=Kind.REENGAGEMENT,
                    template="reengagement",
                    idempotency_key=reengagement_key(contact.pk, self.now.date()),
                    marketing=True,
                    queue=Delivery.Queue.BULK,
                )
                if delivery is not None:
                    self.send_all([str(delivery.id)])

    def change_frequency(self, choice: int) -> None:
        contact = self.contacts[choice % PEOPLE]
        frequency = FREQUENCIES[choice // PEOPLE]
        with time_machine.travel(self.now, tick=False):
            contact.refresh_from_db()
            before = effective_frequency(contact).interval
            contact_update_preferences(contact=contact, evidence=evidence(), frequency=frequency)
            contact.refresh_from_db()
            if effective_frequency(contact).interval > before:
                self.lengthened.setdefault(contact.pk, self.now)

    def run_out(self, until: datetime) -> None:
        """Tick at every due moment up to `until` (the promise of the last announcement, and a bit)."""
        for _ in range(200):
            due = Schedule.objects.filter(is_active=True).order_by("next_due_at").first()
            if due is None or due.next_due_at > until:
                break
            self.tick_once(max(self.now, due.next_due_at) + timedelta(minutes=1))


# Fixed examples in CI, so that a run judges the code and not the draw; a wider random search runs with
#   PROPERTY_EXAMPLES=300 make test ARGS="tests/cadence/test_announcement_properties.py --hypothesis-seed=N"
WIDE_SEARCH = os.environ.get("PROPERTY_EXAMPLES")


# Time passes as beat lets it (Run.tick): a tick a minute after each due moment. Ticking only at the
# steps' own moments once made a copy look late that the engine would have sent on time.
@settings(
    max_examples=int(WIDE_SEARCH or 12),
    derandomize=not WIDE_SEARCH,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(people=people_strategy, steps=st.lists(operations, min_size=4, max_size=14))
def test_announcements_keep_every_interval_and_reach_everyone_once_by_the_promised_date(people, steps, topics):
    note(f"people={people!r}")
    note(f"steps={steps!r}")
    with transaction.atomic():
        mail.outbox.clear()
        with time_machine.travel(START, tick=False):
            contacts = [
                ContactFactory(frequency=frequency, locale=locale, topics=[topics[0]], confirmed_at=START)
                for frequency, _days, locale in people
            ]
            schedules_create_after_sends(
                sends=[(c, START - timedelta(days=days)) for c, (_f, days, _l) in zip(contacts, people, strict=True)]
            )
        run = Run(contacts)
        for op, value in steps:
            if op == "tick":
                run.tick(run.now + timedelta(hours=value))
            elif op == "announce_now":
                run.announce(Announcement.DeliveryMode.CADENCE_ALLOWS, value)
            elif op == "announce_next":
                run.announce(Announcement.DeliveryMode.NEXT_MAIL, value)
            elif op == "reengage":
                run.reengage(value)
            else:
                run.change_frequency(value)
        promised = [a.promised_by for a in run.announcements if a.promised_by is not None]
        lengthened_at_all = bool(run.lengthened)
        run.run_out(max([run.now, *promised]) + (timedelta(days=100) if lengthened_at_all else timedelta(hours=2)))

        # Never two marketing mails inside one interval (checked at every send, and once more over all).
        for contact_id, sends in run.sends.items():
            interval = effective_frequency(Contact.objects.get(pk=contact_id)).interval
            for earlier, later in itertools.pairwise(sorted(sends)):
                if contact_id not in run.lengthened:
                    assert later[0] - earlier[0] >= interval

        # Everyone in the audience with consent got each announcement exactly once, by the promised date.
        for number, announcement in enumerate(run.announcements):
            copies = AnnouncementRecipient.objects.filter(announcement=announcement)
            assert copies.count() == announcement.audience_count == PEOPLE
            for copy in copies:
                received = [m for m in mail.outbox if copy.contact.email in m.to and f"Body-{number}-end" in m.body]
                assert len(received) == 1, f"announcement {number} reached a person {len(received)} times"
                assert copy.state == AnnouncementRecipient.State.DELIVERED
                assert copy.delivered_at is not None
                changed = run.lengthened.get(copy.contact_id)
                # Nobody waits for a next mail when `promised_by` is empty: everyone got it at once.
                assert announcement.confirmed_at is not None
                deadline = announcement.promised_by or announcement.confirmed_at + timedelta(minutes=1)
                if changed is None or changed > copy.delivered_at:
                    assert copy.delivered_at <= deadline, "delivered after the promised date"
        transaction.set_rollback(True)
