from __future__ import annotations

import base64
import itertools
import json

import pytest
import time_machine

from cadence.kinds import Kind
from messaging.intake import event_posts_process
from messaging.models import Delivery, DeliveryEvent
from preferences.models import ConsentEvent, Contact, SuppressionEntry
from preferences.services import address_hash
from tests.factories import ContactFactory, DeliveryFactory
from tests.messaging import esp_payloads
from tests.messaging.esp_payloads import BUILDERS, CLICKED_URL, MAILGUN_SIGNING_KEY, WEBHOOK_SECRET

pytestmark = pytest.mark.django_db

ESPS = list(BUILDERS)
AUTH = "Basic " + base64.b64encode(WEBHOOK_SECRET.encode()).decode()
_numbers = itertools.count(1)


@pytest.fixture(autouse=True)
def _webhook_settings(settings):
    settings.ANYMAIL = {"WEBHOOK_SECRET": WEBHOOK_SECRET, "MAILGUN_WEBHOOK_SIGNING_KEY": MAILGUN_SIGNING_KEY}
    settings.WEBHOOK_ESPS = ESPS
    settings.WEBHOOK_REPLAY_WINDOW_SECONDS = 10**9  # the payloads are signed on their own dates
    settings.SOFT_BOUNCE_LIMIT = 2
    settings.SOFT_BOUNCE_WINDOW_DAYS = 30


def sent_delivery(contact: Contact | None = None, kind: str = Kind.NURTURE) -> Delivery:
    return DeliveryFactory.create(
        contact=contact or ContactFactory.create(),
        kind=kind,
        template="welcome",
        status=Delivery.Status.SENT,
        esp_name="test",
        esp_message_id=f"esp-{next(_numbers)}",
    )


def post(client, esp: str, event: str, delivery: Delivery, n: int | None = None, auth: str | None = AUTH):
    """Post the ESP's event about `delivery` (sent through that ESP) and process what the intake stored."""
    if delivery.pk and delivery.esp_name == "test":
        Delivery.objects.filter(pk=delivery.pk).update(esp_name=esp_payloads.DELIVERY_ESP_NAMES[esp])
    request = BUILDERS[esp](event, delivery, n or next(_numbers))
    if auth:
        request["HTTP_AUTHORIZATION"] = auth
    response = client.post(f"/anymail/{esp}/tracking/", **request)
    event_posts_process()
    return response


@pytest.mark.parametrize("esp", ESPS)
def test_a_delivered_event_marks_the_delivery_delivered(client, esp):
    delivery = sent_delivery()
    response = post(client, esp, "delivered", delivery)
    assert response.status_code == 200
    delivery.refresh_from_db()
    assert delivery.feedback == DeliveryEvent.Type.DELIVERED
    (event,) = delivery.events.all()
    assert event.type == DeliveryEvent.Type.DELIVERED and event.contact_id == delivery.contact_id
    assert event.detail  # the ESP's own event is kept


@pytest.mark.parametrize("esp", ESPS)
def test_a_hard_bounce_suppresses_the_contact_at_once_with_evidence(client, esp):
    contact = ContactFactory.create()
    delivery = sent_delivery(contact)
    queued = DeliveryFactory.create(contact=contact, template="welcome")

    assert post(client, esp, "hard_bounce", delivery).status_code == 200

    contact.refresh_from_db()
    assert contact.suppressed_at is not None and contact.suppression_reason == "hard_bounce"
    assert SuppressionEntry.objects.filter(address_hash=address_hash(contact.email), reason="hard_bounce").exists()
    ledger = ConsentEvent.objects.get(contact=contact, kind=ConsentEvent.Kind.SUPPRESSED)
    assert ledger.evidence["delivery_id"] == str(delivery.id) and ledger.source.startswith("esp:")
    queued.refresh_from_db()
    assert queued.status == Delivery.Status.CANCELLED
    delivery.refresh_from_db()
    assert delivery.feedback == DeliveryEvent.Type.BOUNCED


@pytest.mark.parametrize("esp", ESPS)
@time_machine.travel("2025-11-25T12:00:00Z", tick=True)  # the payloads' own dates fall within the window
def test_soft_bounces_suppress_only_after_the_limit_within_the_window(client, esp):
    contact = ContactFactory.create()
    first, second = sent_delivery(contact), sent_delivery(contact)

    assert post(client, esp, "soft_bounce", first).status_code == 200
    contact.refresh_from_db()
    assert contact.suppressed_at is None
    assert first.events.get().type == DeliveryEvent.Type.SOFT_BOUNCED

    assert post(client, esp, "soft_bounce", second).status_code == 200
    contact.refresh_from_db()
    assert contact.suppression_reason == "soft_bounces"
    ledger = ConsentEvent.objects.get(contact=contact, kind=ConsentEvent.Kind.SUPPRESSED)
    assert ledger.evidence["soft_bounces"] == 2


def test_soft_bounces_older_than_the_window_do_not_count(client, settings):
    settings.SOFT_BOUNCE_WINDOW_DAYS = 30
    contact = ContactFactory.create()
    old, new = sent_delivery(contact), sent_delivery(contact)
    post(client, "postmark", "soft_bounce", old)
    DeliveryEvent.objects.filter(delivery=old).update(occurred_at="2020-01-01T00:00:00Z")

    post(client, "postmark", "soft_bounce", new)

    contact.refresh_from_db()
    assert contact.suppressed_at is None


@pytest.mark.parametrize("esp", ESPS)
def test_a_complaint_suppresses_the_contact_at_once(client, esp):
    contact = ContactFactory.create()
    delivery = sent_delivery(contact)
    assert post(client, esp, "complained", delivery).status_code == 200
    contact.refresh_from_db()
    assert contact.suppression_reason == "complaint"
    assert not contact.may_receive_marketing()
    delivery.refresh_from_db()
    assert delivery.feedback == DeliveryEvent.Type.COMPLAINED


@pytest.mark.parametrize("esp", ESPS)
def test_opens_and_clicks_are_recorded_on_the_timeline_without_suppressing(client, esp):
    contact = ContactFactory.create()
    delivery = sent_delivery(contact)
    assert post(client, esp, "opened", delivery).status_code == 200
    assert post(client, esp, "clicked", delivery).status_code == 200
    types = list(DeliveryEvent.objects.filter(contact=contact).values_list("type", flat=True))
    assert sorted(types) == ["clicked", "opened"]
    assert DeliveryEvent.objects.get(type="clicked").click_url == CLICKED_URL
    delivery.refresh_from_db()
    assert delivery.feedback == DeliveryEvent.Type.CLICKED
    contact.refresh_from_db()
    assert contact.suppressed_at is None


@pytest.mark.parametrize("esp", ["postmark", "mailgun", "sendgrid", "brevo"])
def test_an_unsubscribe_reported_by_the_esp_unsubscribes(client, esp):
    contact = ContactFactory.create()
    assert post(client, esp, "unsubscribed", sent_delivery(contact)).status_code == 200
    contact.refresh_from_db()
    assert contact.status == Contact.Status.UNSUBSCRIBED
    assert ConsentEvent.objects.filter(contact=contact, kind=ConsentEvent.Kind.UNSUBSCRIBED).exists()


def test_a_later_open_does_not_hide_a_bounce(client):
    delivery = sent_delivery()
    post(client, "sendgrid", "hard_bounce", delivery)
    post(client, "sendgrid", "opened", delivery)
    delivery.refresh_from_db()
    assert delivery.feedback == DeliveryEvent.Type.BOUNCED


@pytest.mark.parametrize("esp", ESPS)
def test_the_same_event_posted_twice_is_recorded_once(client, esp):
    delivery = sent_delivery()
    assert post(client, esp, "opened", delivery, n=7).status_code == 200
    assert post(client, esp, "opened", delivery, n=7).status_code == 200
    assert delivery.events.count() == 1


@pytest.mark.parametrize("esp", ESPS)
def test_events_about_unknown_messages_are_answered_200_and_dropped(client, esp):
    stranger = ContactFactory.build(email="stranger@example.net")
    unknown = DeliveryFactory.build(contact=stranger, esp_message_id="not-ours")
    assert post(client, esp, "hard_bounce", unknown).status_code == 200
    assert DeliveryEvent.objects.count() == 0
    assert SuppressionEntry.objects.count() == 0


def test_an_event_without_metadata_is_found_by_the_esp_message_id(client):
    delivery = sent_delivery()
    payload = json.loads(esp_payloads.postmark("delivered", delivery)["data"])
    payload["Metadata"] = {}
    Delivery.objects.filter(pk=delivery.pk).update(esp_name="postmark")
    response = client.post(
        "/anymail/postmark/tracking/",
        data=json.dumps(payload),
        content_type="application/json",
        HTTP_AUTHORIZATION=AUTH,
    )
    assert response.status_code == 200
    event_posts_process()
    assert delivery.events.get().type == DeliveryEvent.Type.DELIVERED


@pytest.mark.parametrize("esp", ESPS)
def test_unauthenticated_posts_are_rejected(client, esp):
    delivery = sent_delivery()
    response = post(client, esp, "hard_bounce", delivery, auth=None)
    assert response.status_code in (400, 401)
    wrong = "Basic " + base64.b64encode(b"hook:guess").decode()
    assert post(client, esp, "hard_bounce", delivery, auth=wrong).status_code in (400, 401)
    assert DeliveryEvent.objects.count() == 0
    delivery.contact.refresh_from_db()
    assert delivery.contact.suppressed_at is None


def test_a_mailgun_post_with_a_forged_signature_is_rejected(client):
    delivery = sent_delivery()
    request = esp_payloads.mailgun("hard_bounce", delivery, n=99, signing_key="not-the-key")
    response = client.post("/anymail/mailgun/tracking/", HTTP_AUTHORIZATION=AUTH, **request)
    assert response.status_code == 400
    assert DeliveryEvent.objects.count() == 0
