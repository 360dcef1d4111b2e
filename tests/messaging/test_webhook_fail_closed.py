"""ESP webhooks fail closed: no secret, no feedback; a bad body records nothing; a batch message
id alone acts on nobody."""

from __future__ import annotations

import base64
import json

import pytest

from messaging.intake import event_posts_process
from messaging.models import Delivery, DeliveryEvent, EventPost
from preferences.models import ConsentEvent, SuppressionEntry
from tests.factories import ContactFactory, DeliveryFactory
from tests.messaging import esp_payloads
from tests.messaging.esp_payloads import MAILGUN_SIGNING_KEY, WEBHOOK_SECRET

pytestmark = pytest.mark.django_db

AUTH = "Basic " + base64.b64encode(WEBHOOK_SECRET.encode()).decode()
SIGNING_KEYS = {
    "MAILGUN_WEBHOOK_SIGNING_KEY": MAILGUN_SIGNING_KEY,
    "MAILERSEND_SIGNING_SECRET": "mailersend-secret",
    "POSTAL_WEBHOOK_KEY": "postal-key",
    "UNISENDER_GO_API_KEY": "unisender-key",
}
# ESPs that post JSON to their tracking webhook.
JSON_ESPS = [
    "postmark",
    "sendgrid",
    "sparkpost",
    "mailjet",
    "mailgun",
    "brevo",
    "amazon_ses",
    "mailersend",
    "resend",
    "mailtrap",
    "unisender_go",
]
MALFORMED_BODIES = ["", "{", '{"RecordType": "Bounce", ', "null", "{}", "[]", '"HardBounce"', "[1]", "\xff"]


def sent(contact, message_id: str) -> Delivery:
    return DeliveryFactory.create(
        contact=contact, status=Delivery.Status.SENT, esp_name="postmark", esp_message_id=message_id
    )


@pytest.fixture(autouse=True)
def _every_esp_mounted(settings):
    settings.WEBHOOK_ESPS = [*JSON_ESPS, "mandrill"]


def postmark_post(client, payload: dict, auth: str | None = AUTH):
    headers = {"HTTP_AUTHORIZATION": auth} if auth else {}
    response = client.post(
        "/anymail/postmark/tracking/", data=json.dumps(payload), content_type="application/json", **headers
    )
    event_posts_process()
    return response


def nothing_recorded() -> bool:
    return (
        not DeliveryEvent.objects.exists()
        and not SuppressionEntry.objects.exists()
        and not ConsentEvent.objects.filter(kind=ConsentEvent.Kind.SUPPRESSED).exists()
    )


def test_without_a_webhook_secret_an_unauthenticated_hard_bounce_is_refused_and_suppresses_nobody(client, settings):
    settings.ANYMAIL = {}
    contact = ContactFactory()
    delivery = sent(contact, "pm-1")
    payload = json.loads(esp_payloads.postmark("hard_bounce", delivery)["data"])

    response = postmark_post(client, payload, auth=None)

    assert response.status_code == 400
    contact.refresh_from_db()
    assert contact.suppressed_at is None
    assert nothing_recorded()


def test_a_forged_event_naming_another_recipient_of_a_batch_message_id_does_nothing_to_that_contact(client, settings):
    settings.ANYMAIL = {"WEBHOOK_SECRET": WEBHOOK_SECRET}
    attacker, victim = ContactFactory(), ContactFactory()
    sent(attacker, "batch-42")
    victims = sent(victim, "batch-42")
    payload = json.loads(esp_payloads.postmark("hard_bounce", victims)["data"])
    payload["Metadata"] = {}  # the batch id and the victim's address, nothing else

    assert postmark_post(client, payload).status_code == 200

    victim.refresh_from_db()
    assert victim.suppressed_at is None
    assert not DeliveryEvent.objects.filter(contact=victim).exists()
    assert nothing_recorded()


def test_an_event_with_ones_own_delivery_id_naming_another_address_suppresses_nobody(client, settings):
    settings.ANYMAIL = {"WEBHOOK_SECRET": WEBHOOK_SECRET}
    attacker, victim = ContactFactory(), ContactFactory()
    own = sent(attacker, "batch-43")
    sent(victim, "batch-43")
    payload = json.loads(esp_payloads.postmark("hard_bounce", own)["data"])
    payload["Email"] = victim.email

    assert postmark_post(client, payload).status_code == 200

    attacker.refresh_from_db()
    victim.refresh_from_db()
    assert attacker.suppressed_at is None and victim.suppressed_at is None
    assert not SuppressionEntry.objects.exists()


def test_a_real_batch_event_with_its_delivery_id_still_suppresses_its_own_recipient(client, settings):
    settings.ANYMAIL = {"WEBHOOK_SECRET": WEBHOOK_SECRET}
    first, second = ContactFactory(), ContactFactory()
    sent(first, "batch-44")
    seconds = sent(second, "batch-44")

    assert postmark_post(client, json.loads(esp_payloads.postmark("hard_bounce", seconds)["data"])).status_code == 200

    second.refresh_from_db()
    first.refresh_from_db()
    assert second.suppression_reason == "hard_bounce" and first.suppressed_at is None


@pytest.mark.parametrize("body", MALFORMED_BODIES)
@pytest.mark.parametrize("esp", JSON_ESPS)
def test_a_malformed_or_empty_body_gets_400_and_records_nothing(client, settings, esp, body):
    settings.ANYMAIL = {"WEBHOOK_SECRET": WEBHOOK_SECRET, **SIGNING_KEYS}
    client.raise_request_exception = False

    response = client.post(
        f"/anymail/{esp}/tracking/",
        data=body.encode("latin-1"),
        content_type="application/json",
        HTTP_AUTHORIZATION=AUTH,
    )

    # Refused at the door, or (a JSON array the door cannot tell from the ESP's) stored and quarantined.
    assert response.status_code in (400, 200), response.content
    event_posts_process()
    if response.status_code == 200:
        assert EventPost.objects.get().state == EventPost.State.QUARANTINED
    assert nothing_recorded()


def test_a_mailgun_post_without_the_signing_key_configured_gets_400(client, settings):
    settings.ANYMAIL = {"WEBHOOK_SECRET": WEBHOOK_SECRET}
    client.raise_request_exception = False
    delivery = sent(ContactFactory(), "mg-1")

    response = client.post(
        "/anymail/mailgun/tracking/", HTTP_AUTHORIZATION=AUTH, **esp_payloads.mailgun("hard_bounce", delivery)
    )

    assert response.status_code == 400
    assert nothing_recorded()


def test_a_form_post_of_garbage_to_mandrill_gets_400(client, settings):
    settings.ANYMAIL = {"WEBHOOK_SECRET": WEBHOOK_SECRET}
    client.raise_request_exception = False

    response = client.post("/anymail/mandrill/", {"mandrill_events": "{not json"}, HTTP_AUTHORIZATION=AUTH)

    assert response.status_code == 400
    assert not EventPost.objects.exists()
    assert nothing_recorded()
