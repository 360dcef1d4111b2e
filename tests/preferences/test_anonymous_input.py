"""Anonymous input never rewrites a person, and nothing a person typed reaches a mail header
(issue 16, finding 3)."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.core import mail
from rest_framework.test import APIClient

from cadence.batch import batch_send
from cadence.kinds import Kind
from messaging.models import Delivery
from preferences.api_keys import crm_key_create
from preferences.importing import contacts_import_file
from preferences.models import Contact, PendingSignup
from preferences.tokens import Purpose, make_token
from tests.factories import ContactFactory, DeliveryFactory, TopicFactory

pytestmark = pytest.mark.django_db

EVIL = "Bob\r\nBcc: x@evil.example"


@pytest.fixture
def topics():
    return TopicFactory(slug="saving"), TopicFactory(slug="mortgage")


def signup_form(client, **fields):
    data = {"email": "ann@example.com", "topics": ["mortgage"], "frequency": "quarterly", "locale": "en"}
    data.update(consent="on", **fields)
    return client.post("/subscribe/", data)


def choices(contact: Contact) -> tuple:
    contact.refresh_from_db()
    return (
        contact.first_name,
        contact.locale,
        contact.frequency,
        contact.status,
        sorted(contact.topic_list(), key=str),
    )


def confirm_link_of_last_mail(settings) -> str:
    delivery = Delivery.objects.filter(kind=Kind.CONFIRMATION).latest("created_at")
    batch_send(delivery_ids=[delivery.id])
    link = next(line for line in mail.outbox[-1].body.splitlines() if "/confirm/" in line).strip()
    return link.removeprefix(settings.SITE_URL)


@pytest.mark.parametrize("status", [Contact.Status.PENDING, Contact.Status.UNSUBSCRIBED])
def test_a_signup_for_a_known_address_changes_nothing_until_the_owner_confirms(client, topics, settings, status):
    saving, _mortgage = topics
    contact = ContactFactory(
        email="ann@example.com", first_name="Ann", locale="nl", frequency="monthly", status=status, topics=[saving]
    )
    before = choices(contact)

    response = signup_form(client, first_name="Mallory")

    assert response.status_code == 200
    assert choices(contact) == before  # not a field moved, not the status
    assert PendingSignup.objects.filter(contact=contact).count() == 1
    # An older confirmation link (or one made without the waiting signup) does not apply it.
    if status == Contact.Status.PENDING:
        client.post(f"/confirm/{make_token(contact, Purpose.CONFIRM)}/")
        contact.refresh_from_db()
        assert contact.first_name == "Ann" and contact.frequency == "monthly"
        assert not PendingSignup.objects.exists()  # the owner chose: what waited is dropped
        return

    link = confirm_link_of_last_mail(settings)  # the mail went to the address, and only there
    assert client.get(link).status_code == 200
    assert choices(contact) == before  # a link scanner's GET changes nothing
    client.post(link)
    contact.refresh_from_db()
    assert contact.status == Contact.Status.CONFIRMED
    assert (contact.first_name, contact.locale, contact.frequency) == ("Mallory", "en", "quarterly")
    assert [t.slug for t in contact.topic_list()] == ["mortgage"]
    assert not PendingSignup.objects.exists()


def test_an_api_signup_for_a_crm_invited_customer_changes_nothing(client, topics):
    contact = ContactFactory(email="ann@example.com", first_name="Ann", status=Contact.Status.PENDING, source="crm")
    before = choices(contact)
    response = APIClient().post(
        "/api/v1/subscribe/",
        {
            "email": "Ann@Example.com",
            "first_name": "Eve",
            "topics": ["saving"],
            "locale": "en",
            "frequency": "biweekly",
        },
        format="json",
    )
    assert response.status_code == 202
    assert choices(contact) == before
    waiting = PendingSignup.objects.get(contact=contact)
    assert (waiting.first_name, waiting.topics) == ("Eve", ["saving"])


def test_a_new_address_is_still_created_with_its_choices(client, topics):
    assert signup_form(client, first_name="Ann").status_code == 200
    contact = Contact.objects.get(email="ann@example.com")
    assert contact.first_name == "Ann" and contact.frequency == "quarterly"
    assert not PendingSignup.objects.exists()


@pytest.mark.parametrize(
    "name", [EVIL, "Bob\nBcc", "Bob\rx", "Bo\tb", "Bob\x00", "Bo\u200bb", "Bob\u2028x", "Bob\x1b[31m"]
)
def test_a_name_with_control_characters_is_refused_by_the_signup_form(client, topics, name):
    response = signup_form(client, first_name=name)
    assert response.status_code == 400
    assert 'id="id_first_name_errors"' in response.content.decode() or "first_name" in response.content.decode()
    assert not Contact.objects.exists()


def test_a_name_with_an_ordinary_space_or_accent_is_fine(client, topics):
    assert signup_form(client, first_name="Anne Marie d'Éon").status_code == 200
    assert Contact.objects.get().first_name == "Anne Marie d'Éon"


def test_a_name_with_control_characters_is_refused_by_the_api(topics):
    response = APIClient().post(
        "/api/v1/subscribe/", {"email": "a@example.com", "first_name": EVIL, "topics": ["saving"]}, format="json"
    )
    assert response.status_code == 400 and "first_name" in response.json()
    assert not Contact.objects.exists()


def test_a_name_with_control_characters_is_refused_by_the_crm_api():
    crm = APIClient()
    crm.credentials(HTTP_AUTHORIZATION=f"Api-Key {crm_key_create(name='crm', expires_in_days=30)[1]}")
    created = crm.post("/api/v1/contacts/", {"external_id": "c-1", "email": "a@example.com", "first_name": EVIL})
    assert created.status_code == 400 and "first_name" in created.json()
    ContactFactory(external_id="c-2", first_name="Ann")
    changed = crm.patch("/api/v1/contacts/c-2/", {"first_name": EVIL}, format="json")
    assert changed.status_code == 400 and "first_name" in changed.json()
    assert Contact.objects.get(external_id="c-2").first_name == "Ann"


def test_a_name_with_control_characters_is_a_bad_row_of_an_import(tmp_path: Path):
    path = tmp_path / "contacts.csv"
    path.write_text('email,first_name\nok@example.com,Ann\nbad@example.com,"Bob\r\nBcc: x@evil.example"\n')
    report = contacts_import_file(path=path)
    assert not report.applied and not Contact.objects.exists()
    [(line, message)] = report.bad_lines()
    assert line == 4 and message.startswith("first_name: ") and "line breaks" in message


def test_a_stored_name_with_a_line_break_never_reaches_a_subject(settings):
    settings.ESP_BATCH_SENDING = {}
    contact = ContactFactory(first_name="Ann")
    Contact.objects.filter(pk=contact.pk).update(first_name=EVIL)  # stored before the doors were closed
    single = DeliveryFactory.create(contact=contact, kind=Kind.WELCOME)
    batch_send(delivery_ids=[single.id])
    single.refresh_from_db()
    assert single.status == Delivery.Status.SENT, single.error
    [message] = mail.outbox
    assert "\r" not in message.subject and "\n" not in message.subject and "Bob" in message.subject


def test_a_stored_name_with_a_line_break_is_not_merged_raw_by_the_esp(settings):
    settings.ESP_BATCH_SENDING = {"test": {"limit": 10, "placeholder": "[[{name}]]"}}
    evil, plain = ContactFactory(first_name="Ann"), ContactFactory(first_name="Eva")
    Contact.objects.filter(pk=evil.pk).update(first_name=EVIL)
    deliveries = [DeliveryFactory.create(contact=c, kind=Kind.WELCOME) for c in (evil, plain)]
    batch_send(delivery_ids=[d.id for d in deliveries])
    assert Delivery.objects.filter(status=Delivery.Status.SENT).count() == 2
    merge_data = mail.outbox[0].merge_data
    assert all("\r" not in value and "\n" not in value for values in merge_data.values() for value in values.values())
