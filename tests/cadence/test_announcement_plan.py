"""Before sending, the admin says what will happen; a service announcement stays a service message."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.core import mail
from django.test import TestCase

from cadence.announcements import announcement_confirm, announcement_expand
from cadence.batch import batch_send
from cadence.models import Announcement, AnnouncementRecipient
from cadence.schedules import schedules_create_after_sends
from preferences.models import Contact
from tests.factories import AnnouncementFactory, ContactFactory

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 5, 4, 10, 0, tzinfo=UTC)


def confirm_page(admin_client, announcement: Announcement) -> str:
    return admin_client.get(f"/admin/cadence/announcement/{announcement.pk}/confirm/").content.decode()


def send(announcement: Announcement) -> None:
    assert announcement_confirm(announcement=announcement, confirmed_by="marketer")
    sends: list[str] = []
    with TestCase.captureOnCommitCallbacks(execute=True):
        announcement_expand(announcement_id=announcement.pk, enqueue_sends=sends.extend)
    for delivery_id in sends:
        batch_send(delivery_ids=[delivery_id])


@time_machine.travel(NOW, tick=False)
@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        (Announcement.DeliveryMode.CADENCE_ALLOWS, [("English", "1", "1", "0"), ("Nederlands", "0", "1", "1")]),
        (Announcement.DeliveryMode.NEXT_MAIL, [("English", "0", "2", "0"), ("Nederlands", "0", "1", "1")]),
    ],
)
def test_the_confirm_page_says_who_gets_it_now_in_their_next_mail_and_never_per_language(admin_client, mode, expected):
    rested, recent, quarterly = (
        ContactFactory(locale="en"),
        ContactFactory(locale="en"),
        ContactFactory(locale="nl", frequency="quarterly"),
    )
    ContactFactory(locale="nl", status=Contact.Status.UNSUBSCRIBED, share_of_customer=10)  # a customer, no consent
    schedules_create_after_sends(
        sends=[(rested, NOW - timedelta(days=40)), (recent, NOW - timedelta(days=3)), (quarterly, NOW)]
    )
    announcement = AnnouncementFactory(
        kind=Announcement.Kind.MARKETING, audience=Announcement.Audience.ALL_CONTACTS, delivery_mode=mode
    )
    page = confirm_page(admin_client, announcement)
    plan = page[page.index('id="delivery-plan"') :]
    rows = re.findall(r'<tr><th scope="row">([^<]+)</th><td>(\d+)</td><td>(\d+)</td><td>(\d+)</td></tr>', plan)
    assert rows[:2] == expected
    # The latest next slot is the quarterly reader's: about three months away.
    days = int(re.search(r"Everyone with consent has it within (\d+) days", page).group(1))
    assert 90 <= days <= 95


def test_the_confirm_page_of_a_service_announcement_says_it_goes_to_everyone_and_carries_no_marketing(admin_client):
    announcement = AnnouncementFactory(kind=Announcement.Kind.SERVICE)
    page = confirm_page(admin_client, announcement)
    assert "Service announcement" in page and "whatever their marketing choices" in page
    assert 'id="delivery-plan"' not in page


def test_the_confirm_page_speaks_dutch(admin_client):
    admin_client.cookies["django_language"] = "nl"
    announcement = AnnouncementFactory(kind=Announcement.Kind.MARKETING)
    page = admin_client.get(
        f"/admin/cadence/announcement/{announcement.pk}/confirm/", HTTP_ACCEPT_LANGUAGE="nl"
    ).content.decode()
    assert "in hun volgende mail" in page


@time_machine.travel(NOW, tick=False)
def test_a_service_announcement_reaches_a_customer_without_marketing_consent_and_carries_no_marketing_block():
    unsubscribed = ContactFactory(email="left@example.com", share_of_customer=40, status=Contact.Status.UNSUBSCRIBED)
    subscriber = ContactFactory(email="reader@example.com", share_of_customer=40)
    schedules_create_after_sends(sends=[(subscriber, NOW - timedelta(days=3))])
    marketing = AnnouncementFactory(
        kind=Announcement.Kind.MARKETING,
        delivery_mode=Announcement.DeliveryMode.NEXT_MAIL,
        audience=Announcement.Audience.ALL_CONTACTS,
        subject_en="Our new savings account",
        body_en="Open one today and earn more.",
    )
    send(marketing)  # the subscriber's copy waits for their next marketing mail
    service = AnnouncementFactory(kind=Announcement.Kind.SERVICE, audience=Announcement.Audience.ALL_CUSTOMERS)
    send(service)

    assert sorted(address for message in mail.outbox for address in message.to) == sorted(
        [unsubscribed.email, subscriber.email]
    )
    for message in mail.outbox:
        html = message.alternatives[0][0]
        for text in (message.body, html):
            assert "Your money was safe at all times." in text
            assert "savings account" not in text and "Open one today" not in text
            assert "You receive this email because you asked for it" not in text
            assert "/unsubscribe/" not in text
            assert "This is a service message" in text
        assert "List-Unsubscribe" not in message.extra_headers
    assert AnnouncementRecipient.objects.get(announcement=marketing).state == AnnouncementRecipient.State.PENDING
