from __future__ import annotations

import pytest

from preferences.models import ConsentEvent, Contact
from preferences.tokens import Purpose, make_token
from tests.factories import ContactFactory

pytestmark = pytest.mark.django_db


def url(contact: Contact) -> str:
    return f"/preferences/{make_token(contact, Purpose.PREFERENCES)}/"


def test_the_preference_centre_offers_the_service_reminder_opt_out_in_dutch_and_english(client):
    contact = ContactFactory(locale="nl")
    dutch = client.get(url(contact)).content.decode()
    assert "Serviceherinneringen" in dutch and 'id="id_service_reminders" checked' in dutch
    assert "Mail mij een link naar mijn gegevens" in dutch
    english = client.get(url(contact) + "?lang=en").content.decode()
    assert "Service reminders" in english and "Email me a link to my data" in english


def test_turning_reminders_off_is_recorded_and_confirmed(client):
    contact = ContactFactory(locale="en")
    body = client.post(url(contact), {"action": "service_reminders"}).content.decode()

    contact.refresh_from_db()
    assert contact.service_reminders is False
    assert "You will no longer receive reminders about products you hold." in body
    event = ConsentEvent.objects.get(contact=contact)
    assert event.kind == ConsentEvent.Kind.PREFERENCES
    assert event.before["service_reminders"] is True and event.after["service_reminders"] is False

    client.post(url(contact), {"action": "service_reminders", "service_reminders": "on"})
    contact.refresh_from_db()
    assert contact.service_reminders is True


def test_an_unsubscribed_customer_can_still_choose_service_reminders(client):
    contact = ContactFactory(status=Contact.Status.UNSUBSCRIBED)
    body = client.get(url(contact)).content.decode()
    assert 'name="service_reminders"' in body
