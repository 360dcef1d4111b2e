"""Marketing announcements ride in each person's cadence: now where it allows a mail, else in their next mail."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.core import mail
from django.test import TestCase

from cadence.announcements import announcement_confirm, announcement_expand, announcement_plan
from cadence.batch import batch_send
from cadence.kinds import Kind
from cadence.models import Announcement, AnnouncementRecipient, Schedule
from cadence.schedules import schedules_create_after_sends
from messaging.models import Delivery
from tests.cadence.helpers import tick_and_send
from tests.factories import AnnouncementFactory, ContactFactory, DeliveryFactory

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 5, 4, 10, 0, tzinfo=UTC)  # a Monday, inside the send window


@pytest.fixture
def people(topics):
    """Two monthly subscribers: one last mailed 40 days ago (a mail may go now), one 3 days ago."""
    with time_machine.travel(NOW, tick=False):
        rested = ContactFactory.create(email="rested@example.com", topics=[topics[0]])
        recent = ContactFactory.create(email="recent@example.com", topics=[topics[0]], locale="nl")
        schedules_create_after_sends(sends=[(rested, NOW - timedelta(days=40)), (recent, NOW - timedelta(days=3))])
    return rested, recent


def send_now(announcement: Announcement) -> None:
    with time_machine.travel(NOW, tick=False):
        assert announcement_confirm(announcement=announcement, confirmed_by="marketer")
        sends: list[str] = []
        with TestCase.captureOnCommitCallbacks(execute=True):
            announcement_expand(announcement_id=announcement.pk, enqueue_sends=sends.extend)
        for delivery_id in sends:
            batch_send(delivery_ids=[delivery_id])


def test_as_soon_as_the_cadence_allows_goes_now_where_it_may_and_replaces_the_next_mail_of_the_rest(people):
    rested, recent = people
    announcement = AnnouncementFactory.create(
        kind=Announcement.Kind.MARKETING,
        audience=Announcement.Audience.ALL_CONTACTS,
        delivery_mode=Announcement.DeliveryMode.CADENCE_ALLOWS,
    )
    plan = announcement_plan(announcement, now=NOW)
    assert (plan.now, plan.next_mail) == ({"en": 1, "nl": 0}, {"en": 0, "nl": 1})
    recent_slot = Schedule.objects.get(pk=recent.pk).next_due_at
    assert plan.promised_by == recent_slot + timedelta(hours=1)

    send_now(announcement)

    assert [m.to for m in mail.outbox] == [[rested.email]]
    assert mail.outbox[0].subject == "Our app was down"
    # It took the rested person's slot: their nurture mail comes one interval after it.
    assert Schedule.objects.get(pk=rested.pk).next_due_at >= NOW + timedelta(days=30)
    assert AnnouncementRecipient.objects.get(contact=recent).state == AnnouncementRecipient.State.PENDING

    mail.outbox.clear()
    sent = tick_and_send(recent_slot + timedelta(minutes=1))
    assert [(d.contact_id, d.kind) for d in sent] == [(recent.pk, Kind.NURTURE)]
    assert mail.outbox[0].subject == "Onze app was onbereikbaar"  # the slot's mail is the announcement's
    assert "Gisteren was onze app twee uur onbereikbaar." in mail.outbox[0].body
    copies = AnnouncementRecipient.objects.filter(announcement=announcement)
    assert {c.state for c in copies} == {AnnouncementRecipient.State.DELIVERED}
    assert {c.delivered_at for c in copies} <= {None} | {d.sent_at for d in Delivery.objects.all()}

    # Exactly once: the next nurture mail carries nothing.
    mail.outbox.clear()
    tick_and_send(Schedule.objects.get(pk=recent.pk).next_due_at + timedelta(minutes=1))
    assert mail.outbox and not any("onbereikbaar" in m.body or "app was down" in m.body for m in mail.outbox)


def test_in_each_persons_next_mail_costs_no_mail_and_leads_the_digest(people):
    rested, recent = people
    announcement = AnnouncementFactory.create(
        kind=Announcement.Kind.MARKETING,
        audience=Announcement.Audience.ALL_CONTACTS,
        delivery_mode=Announcement.DeliveryMode.NEXT_MAIL,
    )
    plan = announcement_plan(announcement, now=NOW)
    assert (plan.total("now"), plan.total("next_mail")) == (0, 2)

    send_now(announcement)
    assert mail.outbox == []
    assert Delivery.objects.filter(kind=Kind.ANNOUNCEMENT).count() == 0

    sent = tick_and_send(NOW + timedelta(minutes=1))  # the rested person's nurture mail is due
    assert [d.contact_id for d in sent] == [rested.pk]
    message = mail.outbox[0]
    assert message.subject != "Our app was down"  # the digest keeps its own subject
    body = message.body
    assert body.index("Our app was down") < body.index("Here is what is new on your topics")
    html = message.alternatives[0][0]
    assert html.index("Yesterday our app was down") < html.index("Here is what is new on your topics")
    states = dict(AnnouncementRecipient.objects.values_list("contact_id", "state"))
    assert states == {rested.pk: "delivered", recent.pk: "pending"}


def test_a_copy_whose_mail_did_not_go_rides_in_the_next_one(people):
    rested, _recent = people
    announcement = AnnouncementFactory.create(
        kind=Announcement.Kind.MARKETING,
        audience=Announcement.Audience.ALL_CONTACTS,
        delivery_mode=Announcement.DeliveryMode.NEXT_MAIL,
    )
    send_now(announcement)
    lost = DeliveryFactory.create(contact=rested, kind=Kind.REENGAGEMENT, status=Delivery.Status.FAILED)
    AnnouncementRecipient.objects.filter(contact=rested).update(state="riding", delivered_in=lost.pk)

    tick_and_send(NOW + timedelta(minutes=1))
    assert "Our app was down" in mail.outbox[0].body
    copy = AnnouncementRecipient.objects.get(contact=rested)
    assert copy.state == "delivered" and copy.delivered_in != lost.pk
