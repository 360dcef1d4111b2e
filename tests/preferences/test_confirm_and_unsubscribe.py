from __future__ import annotations

import pytest
import time_machine
from django.test import Client
from django.utils import timezone

from cadence.kinds import Kind
from messaging.models import Delivery
from preferences.models import ConsentEvent, Contact
from preferences.tokens import Purpose, make_token
from tests.factories import ContactFactory, DeliveryFactory

pytestmark = pytest.mark.django_db


def test_following_the_confirmation_link_does_not_confirm(client):
    contact = ContactFactory(status=Contact.Status.PENDING, confirmed_at=None)
    response = client.get(f"/confirm/{make_token(contact, Purpose.CONFIRM)}/")

    assert response.status_code == 200
    assert '<form method="post"' in response.content.decode()
    contact.refresh_from_db()
    assert contact.status == Contact.Status.PENDING


def test_pressing_the_button_confirms_and_records_evidence(client):
    contact = ContactFactory(status=Contact.Status.PENDING, confirmed_at=None, locale="nl")
    response = client.post(f"/confirm/{make_token(contact, Purpose.CONFIRM)}/", HTTP_USER_AGENT="Phone/2")

    assert response.status_code == 200
    assert "U bent aangemeld" in response.content.decode()
    contact.refresh_from_db()
    assert contact.status == Contact.Status.CONFIRMED
    assert contact.confirmed_at is not None
    event = contact.consent_events.get(kind=ConsentEvent.Kind.CONFIRMED)
    assert event.user_agent == "Phone/2"
    assert event.before["status"] == "pending" and event.after["status"] == "confirmed"
    assert Delivery.objects.filter(contact=contact, kind=Kind.WELCOME).count() == 1


def test_confirming_twice_sends_one_welcome(client):
    contact = ContactFactory(status=Contact.Status.PENDING, confirmed_at=None)
    url = f"/confirm/{make_token(contact, Purpose.CONFIRM)}/"
    client.post(url)
    client.post(url)
    assert Delivery.objects.filter(contact=contact, kind=Kind.WELCOME).count() == 1
    assert contact.consent_events.filter(kind=ConsentEvent.Kind.CONFIRMED).count() == 1


@pytest.mark.parametrize("path", ["confirm", "preferences", "unsubscribe"])
def test_tampered_links_get_a_friendly_page_and_change_nothing(client, path):
    contact = ContactFactory(status=Contact.Status.PENDING, confirmed_at=None)
    token = make_token(contact, Purpose(path))
    bad = token[:-2] + ("xx" if not token.endswith("xx") else "yy")

    response = client.post(
        f"/{path}/{bad}/", "List-Unsubscribe=One-Click", content_type="application/x-www-form-urlencoded"
    )

    assert response.status_code == 404
    body = response.content.decode()
    assert "does not work" in body or "werkt niet" in body
    assert contact.email not in body
    contact.refresh_from_db()
    assert contact.status == Contact.Status.PENDING
    assert not contact.consent_events.exists()


def test_an_expired_confirmation_link_changes_nothing(client, settings):
    settings.CONFIRM_TOKEN_MAX_AGE = 60
    contact = ContactFactory(status=Contact.Status.PENDING, confirmed_at=None)
    token = make_token(contact, Purpose.CONFIRM)
    with time_machine.travel(timezone.now() + timezone.timedelta(minutes=5)):
        response = client.post(f"/confirm/{token}/")
    assert response.status_code == 404
    contact.refresh_from_db()
    assert contact.status == Contact.Status.PENDING


def test_one_click_unsubscribe_works_without_cookies_or_csrf():
    client = Client(enforce_csrf_checks=True)
    contact = ContactFactory()
    response = client.post(
        f"/unsubscribe/{make_token(contact, Purpose.UNSUBSCRIBE)}/",
        "List-Unsubscribe=One-Click",
        content_type="application/x-www-form-urlencoded",
    )

    assert response.status_code == 200
    assert not client.cookies
    contact.refresh_from_db()
    assert contact.status == Contact.Status.UNSUBSCRIBED
    event = contact.consent_events.get(kind=ConsentEvent.Kind.UNSUBSCRIBED)
    assert event.source == "one-click"
    assert event.evidence == {"rfc8058": True}


def test_opening_the_unsubscribe_page_does_not_unsubscribe(client):
    contact = ContactFactory()
    response = client.get(f"/unsubscribe/{make_token(contact, Purpose.UNSUBSCRIBE)}/")
    assert response.status_code == 200
    assert "less often" in response.content.decode()
    contact.refresh_from_db()
    assert contact.status == Contact.Status.CONFIRMED


def test_less_often_instead_keeps_the_subscription(client):
    contact = ContactFactory(frequency="biweekly")
    response = client.post(
        f"/unsubscribe/{make_token(contact, Purpose.UNSUBSCRIBE)}/", {"action": "less_often", "frequency": "quarterly"}
    )
    assert response.status_code == 200
    contact.refresh_from_db()
    assert contact.status == Contact.Status.CONFIRMED
    assert contact.frequency == "quarterly"
    assert contact.consent_events.get().after["frequency"] == "quarterly"


def test_unsubscribing_cancels_queued_marketing_mail(client):
    contact = ContactFactory()
    welcome = DeliveryFactory.create(contact=contact, kind=Kind.WELCOME)
    client.post(f"/unsubscribe/{make_token(contact, Purpose.UNSUBSCRIBE)}/", {"action": "unsubscribe"})
    welcome.refresh_from_db()
    assert welcome.status == Delivery.Status.CANCELLED


def test_the_ledger_refuses_edits_and_deletes():
    contact = ContactFactory()
    event = ConsentEvent.objects.create(contact=contact, kind=ConsentEvent.Kind.SIGNUP)
    event.source = "forged"
    with pytest.raises(ValueError):
        event.save()
    with pytest.raises(ValueError):
        event.delete()
