"""Announcements in the admin: a preview per language, a test send, the audience by language and consent, a time."""

from __future__ import annotations

import html
import re
from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone

from cadence.announcements import announcements_start_due
from cadence.models import Announcement
from messaging.models import Delivery
from tests.factories import AnnouncementFactory, ContactFactory

pytestmark = pytest.mark.django_db


def test_the_draft_page_shows_the_announcement_rendered_in_both_languages(admin_client):
    announcement = AnnouncementFactory()
    page = admin_client.get(f"/admin/cadence/announcement/{announcement.pk}/change/").content.decode()
    frames = [html.unescape(srcdoc) for srcdoc in re.findall(r'srcdoc="([^"]*)"', page)]
    assert len(frames) == 2
    english, dutch = frames
    assert "Yesterday our app was down for two hours." in english and '<html lang="en">' in english
    assert "Gisteren was onze app twee uur onbereikbaar." in dutch and '<html lang="nl">' in dutch
    assert "Onze app was onbereikbaar" in page  # the Dutch subject above its preview


def test_a_test_send_goes_to_the_chosen_address_in_the_chosen_languages_and_is_not_a_delivery(admin_client):
    announcement = AnnouncementFactory()
    response = admin_client.post(
        f"/admin/cadence/announcement/{announcement.pk}/test/", {"address": "me@bank.example", "language": "both"}
    )
    assert response.status_code == 302
    assert sorted(m.subject for m in mail.outbox) == ["[Test] Onze app was onbereikbaar", "[Test] Our app was down"]
    assert {tuple(m.to) for m in mail.outbox} == {("me@bank.example",)}
    assert not Delivery.objects.exists()
    refused = admin_client.post(
        f"/admin/cadence/announcement/{announcement.pk}/test/", {"address": "not an address", "language": "nl"}
    )
    assert refused.status_code == 200 and len(mail.outbox) == 2


def test_before_confirming_the_audience_is_counted_by_language_and_consent(admin_client):
    for locale in ("en", "en", "nl"):
        ContactFactory(locale=locale, share_of_customer=30)  # confirmed: marketing consent
    ContactFactory(locale="nl", share_of_customer=30, paused_until=timezone.now() + timedelta(days=30))
    ContactFactory(locale="nl", share_of_customer=30, status="unsubscribed")
    announcement = AnnouncementFactory(kind=Announcement.Kind.SERVICE)
    page = admin_client.get(f"/admin/cadence/announcement/{announcement.pk}/confirm/").content.decode()
    rows = re.findall(r'<tr><th scope="row">([^<]+)</th><td>(\d+)</td><td>(\d+)</td><td>(\d+)</td></tr>', page)
    assert rows == [("English", "2", "0", "2"), ("Nederlands", "1", "2", "3")]


def test_an_announcement_confirmed_for_a_later_time_starts_when_beat_finds_it_due(admin_client):
    ContactFactory(share_of_customer=30)
    later = timezone.now() + timedelta(hours=2)
    announcement = AnnouncementFactory(scheduled_at=later)
    started: list[int] = []
    admin_client.post(f"/admin/cadence/announcement/{announcement.pk}/confirm/", {"confirm": "yes"})
    announcement.refresh_from_db()
    assert announcement.status == Announcement.Status.CONFIRMED and announcement.audience_count == 1
    assert announcements_start_due(enqueue=started.append) == 0
    assert announcements_start_due(enqueue=started.append, now=later + timedelta(seconds=30)) == 1
    assert started == [announcement.pk]
