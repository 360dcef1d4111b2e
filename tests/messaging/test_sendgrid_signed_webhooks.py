"""SendGrid's Signed Event Webhook: with its public key set, anymail verifies each post's ECDSA signature
(beside the basic auth): a signed post is recorded, an unsigned or forged one is refused with nothing recorded."""

from __future__ import annotations

import base64
import time

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from messaging.intake import event_posts_process
from messaging.models import Delivery, DeliveryEvent, EventPost
from tests.messaging.esp_payloads import BUILDERS, WEBHOOK_SECRET
from tests.messaging.test_webhooks import AUTH, sent_delivery

pytestmark = pytest.mark.django_db


@pytest.fixture
def signing_key(settings):
    """A key pair like SendGrid's; the public half is set as anymail's verification key."""
    private = ec.generate_private_key(ec.SECP256R1())
    public = private.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    settings.WEBHOOK_ESPS = ["sendgrid"]  # its door is mounted beside the configured ESP's
    settings.ANYMAIL = {
        "WEBHOOK_SECRET": WEBHOOK_SECRET,
        "SENDGRID_TRACKING_WEBHOOK_VERIFICATION_KEY": base64.b64encode(public).decode(),
    }
    return private


def signed(request: dict, private: ec.EllipticCurvePrivateKey) -> dict:
    timestamp = str(int(time.time()))
    signature = private.sign(timestamp.encode() + request["data"].encode(), ec.ECDSA(hashes.SHA256()))
    return {
        **request,
        "HTTP_X_TWILIO_EMAIL_EVENT_WEBHOOK_SIGNATURE": base64.b64encode(signature).decode(),
        "HTTP_X_TWILIO_EMAIL_EVENT_WEBHOOK_TIMESTAMP": timestamp,
    }


def test_a_post_signed_with_sendgrids_key_is_recorded(client, signing_key):
    delivery = sent_delivery()
    Delivery.objects.filter(pk=delivery.pk).update(esp_name="sendgrid")  # an event applies to its ESP's mail only
    request = signed(BUILDERS["sendgrid"]("delivered", delivery, 1), signing_key)

    response = client.post("/anymail/sendgrid/tracking/", HTTP_AUTHORIZATION=AUTH, **request)

    assert response.status_code == 200
    event_posts_process()
    assert DeliveryEvent.objects.filter(delivery=delivery, type=DeliveryEvent.Type.DELIVERED).exists()


@pytest.mark.parametrize("forgery", ["unsigned", "other key", "changed body"])
def test_an_unsigned_or_forged_post_is_refused_and_records_nothing(client, signing_key, forgery):
    delivery = sent_delivery()
    request = BUILDERS["sendgrid"]("hard_bounce", delivery, 2)
    if forgery == "other key":
        request = signed(request, ec.generate_private_key(ec.SECP256R1()))
    elif forgery == "changed body":
        request = {**signed(request, signing_key), "data": request["data"].replace("bounce", "delivered")}

    response = client.post("/anymail/sendgrid/tracking/", HTTP_AUTHORIZATION=AUTH, **request)

    assert response.status_code == 400
    assert not EventPost.objects.exists()  # refused at the door: nothing stored, so nothing to record
    event_posts_process()
    assert not DeliveryEvent.objects.exists()
