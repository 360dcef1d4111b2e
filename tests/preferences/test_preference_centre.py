from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
import time_machine
from django.utils import timezone

from preferences.models import ConsentEvent, Contact
from preferences.tokens import Purpose, make_token
from tests.factories import ContactFactory

pytestmark = pytest.mark.django_db


def url(contact: Contact, query: str = "") -> str:
    return f"/preferences/{make_token(contact, Purpose.PREFERENCES)}/{query}"


def test_the_page_shows_the_current_choices_in_the_contacts_language(client, topics):
    contact = ContactFactory(locale="nl", frequency="quarterly", topics=[topics[0]])
    body = client.get(url(contact)).content.decode()
    assert 'lang="nl"' in body
    assert "Sparen" in body and "Per kwartaal" in body
    assert re.search(r'<input type="checkbox" name="topics" value="saving" id="id_topics_\d" checked>', body)
    assert re.search(r'<input type="checkbox" name="topics" value="mortgage" id="id_topics_\d">', body)
    assert "aria-invalid" not in body


def test_the_language_can_be_switched(client, topics):
    contact = ContactFactory(locale="nl")
    body = client.get(url(contact, "?lang=en")).content.decode()
    assert 'lang="en"' in body and "Your email preferences" in body


def test_saving_records_before_and_after_and_says_what_changed(client, topics):
    contact = ContactFactory(frequency="monthly", topics=[topics[0]])
    response = client.post(
        url(contact),
        {"action": "save", "topics": ["mortgage", "pension"], "frequency": "quarterly", "locale": "en"},
        HTTP_USER_AGENT="UA",
    )
    body = response.content.decode()

    assert response.status_code == 200
    assert "Mortgages, Pension" in body
    assert "quarterly" in body
    contact.refresh_from_db()
    assert contact.frequency == "quarterly"
    assert sorted(contact.topics.values_list("slug", flat=True)) == ["mortgage", "pension"]
    event = contact.consent_events.get(kind=ConsentEvent.Kind.PREFERENCES)
    assert event.before["topics"] == ["saving"] and event.after["topics"] == ["mortgage", "pension"]
    assert event.before["frequency"] == "monthly" and event.after["frequency"] == "quarterly"
    assert event.user_agent == "UA" and event.source == "preference-centre"


def test_saving_without_changes_writes_no_ledger_entry(client, topics):
    contact = ContactFactory(frequency="monthly", topics=[topics[0]])
    client.post(url(contact), {"action": "save", "topics": ["saving"], "frequency": "monthly", "locale": "en"})
    assert not contact.consent_events.exists()


def test_a_bad_frequency_is_refused_and_nothing_changes(client, topics):
    contact = ContactFactory(frequency="monthly", topics=[topics[0]])
    response = client.post(
        url(contact), {"action": "save", "topics": ["mortgage"], "frequency": "hourly", "locale": "en"}
    )
    assert response.status_code == 400
    contact.refresh_from_db()
    assert contact.frequency == "monthly"
    assert list(contact.topics.values_list("slug", flat=True)) == ["saving"]


@pytest.mark.parametrize("months", [1, 3, 6])
def test_pausing_sets_the_end_of_the_pause(client, topics, months):
    contact = ContactFactory()
    with time_machine.travel("2026-01-31 10:00Z", tick=False):
        client.post(url(contact), {"action": "pause", "months": str(months)})
    contact.refresh_from_db()
    expected = {1: "2026-02-28", 3: "2026-04-30", 6: "2026-07-31"}[months]
    assert contact.paused_until.date().isoformat() == expected
    assert contact.consent_events.get().kind == ConsentEvent.Kind.PAUSED
    assert not contact.may_receive_marketing(datetime(2026, 2, 1, tzinfo=UTC))


def test_a_pause_can_be_ended(client, topics):
    contact = ContactFactory(paused_until=timezone.now() + timezone.timedelta(days=20))
    client.post(url(contact), {"action": "resume"})
    contact.refresh_from_db()
    assert contact.paused_until is None and contact.may_receive_marketing()


def test_unsubscribe_from_everything_then_subscribe_again(client, topics):
    contact = ContactFactory()
    client.post(url(contact), {"action": "unsubscribe"})
    contact.refresh_from_db()
    assert contact.status == Contact.Status.UNSUBSCRIBED

    client.post(url(contact), {"action": "resubscribe"})
    contact.refresh_from_db()
    assert contact.status == Contact.Status.CONFIRMED
    kinds = list(contact.consent_events.values_list("kind", flat=True))
    assert kinds == [ConsentEvent.Kind.UNSUBSCRIBED, ConsentEvent.Kind.RESUBSCRIBED]


@pytest.mark.parametrize(("lang", "labels"), [("nl", ["1 maand", "3 maanden"]), ("en", ["1 month", "6 months"])])
def test_the_pause_choices_speak_the_page_language(client, topics, lang, labels):
    body = client.get(url(ContactFactory(), f"?lang={lang}")).content.decode()
    assert all(label in body for label in labels)
