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
        {
            "action": "save",
            "topics": ["mortgage", "pension"],
            "frequency": "quarterly",
            "locale": "en",
            "service_reminders": "on",
        },
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
    client.post(
        url(contact),
        {"action": "save", "topics": ["saving"], "frequency": "monthly", "locale": "en", "service_reminders": "on"},
    )
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


def save(client, contact: Contact, **changes: object):
    """Post the one form with the contact's current choices and `changes` applied."""
    data = {
        "action": "save",
        "topics": list(contact.topics.values_list("slug", flat=True)),
        "frequency": contact.frequency,
        "locale": contact.locale,
        "service_reminders": "on",
        **changes,
    }
    if contact.general_updates and "general_updates" not in changes:
        data["general_updates"] = "on"
    return client.post(url(contact), data)


@pytest.mark.parametrize("months", [1, 3, 6])
def test_pausing_sets_the_end_of_the_pause(client, topics, months):
    contact = ContactFactory(topics=[topics[0]])
    with time_machine.travel("2026-01-31 10:00Z", tick=False):
        save(client, contact, pause=str(months))
    contact.refresh_from_db()
    expected = {1: "2026-02-28", 3: "2026-04-30", 6: "2026-07-31"}[months]
    assert contact.paused_until.date().isoformat() == expected
    assert contact.consent_events.get().kind == ConsentEvent.Kind.PAUSED
    assert not contact.may_receive_marketing(datetime(2026, 2, 1, tzinfo=UTC))


def test_a_pause_can_be_ended(client, topics):
    contact = ContactFactory(topics=[topics[0]], paused_until=timezone.now() + timezone.timedelta(days=20))
    save(client, contact, pause="resume")
    contact.refresh_from_db()
    assert contact.paused_until is None and contact.may_receive_marketing()


def test_ticking_a_topic_and_pausing_in_one_save_keeps_both(client, topics):
    contact = ContactFactory(topics=[topics[0]])
    save(client, contact, topics=["saving", "pension"], pause="3")
    contact.refresh_from_db()
    assert sorted(contact.topics.values_list("slug", flat=True)) == ["pension", "saving"]
    assert contact.is_paused()


def test_the_page_says_which_address_it_is_for(client, topics):
    contact = ContactFactory(email="eva.jansen@example.nl", topics=[topics[0]])
    assert "eva.jansen@example.nl" in client.get(url(contact)).content.decode()


def test_no_topics_and_no_general_updates_is_refused_and_says_why(client, topics):
    contact = ContactFactory(topics=[topics[0]])
    response = save(client, contact, topics=[])
    body = response.content.decode()
    assert response.status_code == 400
    assert "Choose at least one topic, or choose general updates" in body
    assert 'aria-invalid="true"' in body and 'aria-describedby="id_topics_errors"' in body
    contact.refresh_from_db()
    assert list(contact.topics.values_list("slug", flat=True)) == ["saving"]


def test_general_updates_is_an_explicit_choice_and_the_page_says_so(client, topics):
    contact = ContactFactory(topics=[topics[0]])
    response = save(client, contact, topics=[], general_updates="on")
    assert response.status_code == 200
    assert "you will get general updates about everything" in response.content.decode()
    contact.refresh_from_db()
    assert contact.general_updates and not contact.topics.exists()
    assert contact.consent_events.get().after["general_updates"] is True


def test_topics_and_general_updates_together_are_refused(client, topics):
    contact = ContactFactory(topics=[topics[0]])
    assert save(client, contact, general_updates="on").status_code == 400
    contact.refresh_from_db()
    assert not contact.general_updates


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


@pytest.mark.parametrize(
    ("lang", "labels"), [("nl", ["1 maand pauzeren", "3 maanden pauzeren"]), ("en", ["Pause for 1 month", "6 months"])]
)
def test_the_pause_choices_speak_the_page_language(client, topics, lang, labels):
    body = client.get(url(ContactFactory(), f"?lang={lang}")).content.decode()
    assert all(label in body for label in labels)
