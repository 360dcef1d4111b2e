from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from cadence.kinds import Kind
from messaging.models import Delivery
from preferences.models import ConsentEvent, Contact
from tests.factories import ContactFactory

pytestmark = pytest.mark.django_db

URL = "/api/v1/subscribe/"


def signup(client: Client, **overrides: object):
    payload: dict[str, Any] = {
        "email": "new@example.com",
        "first_name": "Eva",
        "locale": "nl",
        "topics": ["saving"],
        "frequency": "monthly",
        "source": "homepage",
    }
    payload.update(overrides)
    return client.post(URL, payload, content_type="application/json", HTTP_USER_AGENT="TestBrowser/1.0")


def test_a_signup_creates_a_pending_contact_with_a_ledger_entry(client, topics):
    response = signup(client)

    assert response.status_code == 202
    contact = Contact.objects.get(email="new@example.com")
    assert contact.status == Contact.Status.PENDING
    assert contact.locale == "nl"
    assert list(contact.topics.values_list("slug", flat=True)) == ["saving"]
    event = ConsentEvent.objects.get(contact=contact)
    assert event.kind == ConsentEvent.Kind.SIGNUP
    assert event.ip_address == "127.0.0.1"
    assert event.user_agent == "TestBrowser/1.0"
    assert event.source == "homepage"
    assert event.wording_version == "2026-11"
    assert event.before == {}
    assert event.after["topics"] == ["saving"] and event.after["frequency"] == "monthly"


def test_the_address_is_stored_normalised(client, topics):
    signup(client, email="  New@Example.COM ")
    assert Contact.objects.filter(email="new@example.com").exists()


def test_known_and_unknown_addresses_get_byte_identical_answers(client, topics):
    ContactFactory(email="known@example.com", status=Contact.Status.CONFIRMED)
    ContactFactory(email="pending@example.com", status=Contact.Status.PENDING, confirmed_at=None)

    unknown = signup(client, email="unknown@example.com")
    known = signup(client, email="known@example.com")
    pending = signup(client, email="pending@example.com")

    assert unknown.status_code == known.status_code == pending.status_code == 202
    assert unknown.content == known.content == pending.content
    assert dict(unknown.headers).keys() == dict(known.headers).keys()


def test_a_confirmed_contact_keeps_its_choices_and_gets_a_note_instead(client, topics):
    contact = ContactFactory(email="known@example.com", frequency="quarterly", topics=[topics[1]])

    signup(client, email="known@example.com", frequency="biweekly", topics=["saving"])

    contact.refresh_from_db()
    assert contact.status == Contact.Status.CONFIRMED
    assert contact.frequency == "quarterly"
    assert list(contact.topics.values_list("slug", flat=True)) == ["mortgage"]
    assert Delivery.objects.get(contact=contact).kind == Kind.ALREADY_SUBSCRIBED


def test_a_signup_queues_a_confirmation_mail(client, topics, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks() as callbacks:
        signup(client)
    delivery = Delivery.objects.get()
    assert delivery.kind == Kind.CONFIRMATION
    assert delivery.status == Delivery.Status.QUEUED
    assert len(callbacks) == 1


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"email": "not-an-address"}, "email"),
        ({"topics": []}, "topics"),
        ({"topics": ["no-such-topic"]}, "topics"),
        ({"frequency": "hourly"}, "frequency"),
        ({"locale": "de"}, "locale"),
    ],
)
def test_bad_input_gets_field_errors_and_creates_nothing(client, topics, overrides, field):
    response = signup(client, **overrides)

    assert response.status_code == 400
    assert field in response.json()
    assert not Contact.objects.exists()
    assert not ConsentEvent.objects.exists()


def test_signups_are_throttled_per_address(client, topics, settings):
    answers = [signup(client, email="same@example.com").status_code for _ in range(4)]
    assert answers == [202, 202, 202, 429]
    assert signup(client, email="other@example.com").status_code == 202


def test_signups_are_throttled_per_client(client, topics, settings):
    settings.SIGNUP_THROTTLE_PER_IP = "20/hour"
    answers = [signup(client, email=f"p{n}@example.com").status_code for n in range(21)]
    assert answers[:20] == [202] * 20
    assert answers[20] == 429


def test_the_signup_form_subscribes_and_keeps_input_on_errors(client, topics):
    page = client.get("/subscribe/?lang=nl")
    assert page.status_code == 200
    assert "Sparen" in page.content.decode()

    bad = client.post(
        "/subscribe/", {"email": "kept@example.com", "topics": ["saving"], "frequency": "monthly", "locale": "en"}
    )
    assert bad.status_code == 400
    assert 'value="kept@example.com"' in bad.content.decode()
    assert not Contact.objects.exists()

    good = client.post(
        "/subscribe/?source=partner-site",
        {"email": "kept@example.com", "topics": ["saving"], "frequency": "monthly", "locale": "en", "consent": "on"},
    )
    assert good.status_code == 200
    contact = Contact.objects.get(email="kept@example.com")
    assert contact.source == "partner-site"
    assert contact.consent_events.get().source == "partner-site"


def test_the_signup_form_may_be_embedded_only_by_the_listed_sites(client, topics, settings):
    assert client.get("/subscribe/").headers["X-Frame-Options"] == "DENY"
    settings.SIGNUP_FRAME_ANCESTORS = ["https://www.example-bank.nl"]
    assert "X-Frame-Options" not in client.get("/subscribe/").headers
    assert client.get("/admin/login/").headers["X-Frame-Options"] == "DENY"
