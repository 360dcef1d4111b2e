"""Batch sending through anymail's merge_data, merge_metadata and merge_headers."""

from __future__ import annotations

import re
from html import unescape

import pytest
import time_machine
from anymail.message import AnymailRecipientStatus
from django.conf import settings
from django.core import mail

from cadence.batch import batch_send
from messaging import services
from messaging.models import Delivery
from preferences.models import Contact, SuppressionEntry
from preferences.services import address_hash
from preferences.tokens import Purpose, read_token
from tests.factories import ContactFactory, DeliveryFactory

pytestmark = pytest.mark.django_db

BATCH = {"test": {"limit": 2, "placeholder": "[[{name}]]"}}
REAL_BATCH_SETTINGS = dict(settings.ESP_BATCH_SENDING)


@pytest.fixture(autouse=True)
def _batch_settings(settings):
    settings.ESP_BATCH_SENDING = BATCH
    settings.SITE_URL = "http://testserver"


def nurture(contact: Contact | None = None) -> Delivery:
    return DeliveryFactory.create(contact=contact or ContactFactory.create(), template="welcome")


def merged(content: str, values: dict[str, str], esp: dict[str, object] = BATCH["test"]) -> str:
    """Return the content as the ESP delivers it to one recipient: each merge field replaced verbatim."""
    for key, value in values.items():
        field = key if "key" in esp else str(esp["placeholder"]).format(name=key)
        content = content.replace(field, value)
    return content


def test_recipients_go_out_in_chunks_of_the_esp_limit_each_with_their_own_values():
    deliveries = [nurture(ContactFactory.create(first_name=f"Name{i}")) for i in range(5)]

    result = services.deliveries_send(delivery_ids=[d.id for d in deliveries])

    assert len(result.sent) == 5
    assert sorted(len(m.to) for m in mail.outbox) == [1, 2, 2]  # the calls go at once, in any order
    for message in mail.outbox:
        params = message.anymail_test_params
        assert params["is_batch_send"] is True
        for email in message.to:
            delivery = Delivery.objects.get(contact__email=email)
            assert params["merge_metadata"][email]["delivery_id"] == str(delivery.id)
            headers = params["merge_headers"][email]
            assert headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
            token = re.search(r"/unsubscribe/([^/]+)/>", headers["List-Unsubscribe"]).group(1)
            assert read_token(token, Purpose.UNSUBSCRIBE) == delivery.contact, "each person's own link"
    assert {d.status for d in Delivery.objects.all()} == {Delivery.Status.SENT}
    assert all(d.esp_message_id != "" and d.esp_name == "test" for d in Delivery.objects.all())


@pytest.mark.parametrize("esp", ["test", "mailgun", "sparkpost", "sendgrid"])
@time_machine.travel("2026-11-25T12:00:00Z", tick=False)  # links carry a timestamp: keep both sends in one second
def test_each_recipient_receives_exactly_what_a_single_send_would_render(settings, esp):
    configured = REAL_BATCH_SETTINGS[esp]
    settings.ESP_BATCH_SENDING = {"test": configured}
    people = [
        ContactFactory.create(first_name="Eva"),
        ContactFactory.create(first_name="<b>O'Brien</b>"),
        ContactFactory.create(),
    ]
    settings.ESP_BATCH_SENDING = {}
    services.deliveries_send(delivery_ids=[nurture(p).id for p in people])
    singles = {m.to[0]: m for m in mail.outbox}
    assert len(singles) == 3
    mail.outbox.clear()
    settings.ESP_BATCH_SENDING = {"test": configured}

    services.deliveries_send(delivery_ids=[nurture(p).id for p in people])

    sent_to = {}
    assert all(message.anymail_test_params.get("is_batch_send") for message in mail.outbox)
    for message in mail.outbox:
        for email in message.to:
            values = message.anymail_test_params["merge_data"][email]
            sent_to[email] = (
                merged(message.subject, values, configured),
                merged(message.body, values, configured),
                merged(message.alternatives[0][0], values, configured),
            )
    for email, single in singles.items():
        subject, text, html = sent_to[email]
        assert (subject, text) == (single.subject, single.body)
        # The CSS inliner re-serialises entities ("&#x27;" becomes "'"): compare what a reader sees.
        assert unescape(html) == unescape(single.alternatives[0][0])
    assert "&lt;b&gt;O&#x27;Brien&lt;/b&gt;" in sent_to[people[1].email][2], "the name is escaped in HTML"
    assert "<b>O'Brien</b>" in sent_to[people[1].email][1], "and plain in text"


def test_mails_that_differ_beyond_name_and_links_go_in_separate_messages():
    english = [nurture(ContactFactory.create(locale="en")) for _ in range(2)]
    dutch = [nurture(ContactFactory.create(locale="nl")) for _ in range(2)]
    services.deliveries_send(delivery_ids=[d.id for d in english + dutch])
    groups = sorted(sorted(m.to) for m in mail.outbox)
    assert groups == sorted([sorted(d.contact.email for d in english), sorted(d.contact.email for d in dutch)])


def test_one_refused_recipient_does_not_fail_the_others(esp_faults):
    good, bad = nurture(), nurture()
    esp_faults.then(
        {
            "recipient_status": {
                good.contact.email: AnymailRecipientStatus(message_id="m-1", status="sent"),
                bad.contact.email: AnymailRecipientStatus(message_id=None, status="rejected"),
            }
        }
    )
    result = services.deliveries_send(delivery_ids=[good.id, bad.id])
    good.refresh_from_db()
    bad.refresh_from_db()
    assert result.sent == [str(good.id)] and result.failed == [str(bad.id)]
    assert good.status == Delivery.Status.SENT and good.esp_message_id == "m-1"
    assert bad.status == Delivery.Status.FAILED and "rejected" in bad.error


def test_without_batch_support_each_recipient_gets_a_message_of_their_own(settings):
    settings.ESP_BATCH_SENDING = {}
    deliveries = [nurture() for _ in range(3)]
    result = services.deliveries_send(delivery_ids=[d.id for d in deliveries])
    assert len(result.sent) == 3
    assert [len(m.to) for m in mail.outbox] == [1, 1, 1]
    assert all("List-Unsubscribe" in m.extra_headers for m in mail.outbox)


def test_a_batch_claims_only_queued_rows_and_never_sends_twice():
    first, second, cancelled = nurture(), nurture(), nurture()
    Delivery.objects.filter(pk=cancelled.pk).update(status=Delivery.Status.CANCELLED)
    ids = [first.id, second.id, cancelled.id]

    services.deliveries_send(delivery_ids=ids)
    again = services.deliveries_send(delivery_ids=ids)

    assert again.sent == [] and sum(len(m.to) for m in mail.outbox) == 2
    cancelled.refresh_from_db()
    assert cancelled.status == Delivery.Status.CANCELLED


def test_an_address_on_the_suppression_list_is_not_mailed_even_as_a_new_contact():
    contact = ContactFactory.create(email="returns@example.com")
    SuppressionEntry.objects.create(address_hash=address_hash("Returns@Example.com "), reason="hard_bounce")
    delivery, other = nurture(contact), nurture()

    result = services.deliveries_send(delivery_ids=[delivery.id, other.id])

    assert result.cancelled == [str(delivery.id)] and result.sent == [str(other.id)]
    assert all(contact.email not in m.to for m in mail.outbox)
    single = nurture(contact)
    batch_send(delivery_ids=[single.id])
    single.refresh_from_db()
    assert single.status == Delivery.Status.CANCELLED and single.error == "suppressed address"


def test_consent_is_checked_again_for_every_recipient_of_a_batch():
    confirmed, left = nurture(), nurture(ContactFactory.create(status=Contact.Status.UNSUBSCRIBED))
    result = services.deliveries_send(delivery_ids=[confirmed.id, left.id])
    assert result.sent == [str(confirmed.id)] and result.cancelled == [str(left.id)]


def test_a_mail_that_cannot_be_rendered_fails_alone():
    broken = DeliveryFactory.create(template="no_such_template")
    fine = nurture()
    result = services.deliveries_send(delivery_ids=[broken.id, fine.id])
    broken.refresh_from_db()
    assert result.sent == [str(fine.id)] and result.failed == [str(broken.id)]
    assert broken.status == Delivery.Status.FAILED and broken.error.startswith("render error")
