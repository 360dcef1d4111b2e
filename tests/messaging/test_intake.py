"""The webhook intake: only the configured ESP's doors, stored raw, processed in batches by anymail's parsers."""

from __future__ import annotations

import base64
import itertools
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

import pytest
from django.contrib.auth.models import Permission, User

from cadence.models import ContactHealth
from messaging.intake import event_posts_process
from messaging.models import Delivery, DeliveryEvent, EventPost
from preferences.models import ConsentEvent, Contact, SuppressionEntry
from tests.factories import ContactFactory, DeliveryFactory
from tests.messaging import esp_payloads
from tests.messaging.esp_payloads import BUILDERS, DELIVERY_ESP_NAMES, EPOCH, MAILGUN_SIGNING_KEY, WEBHOOK_SECRET

pytestmark = pytest.mark.django_db

AUTH = "Basic " + base64.b64encode(WEBHOOK_SECRET.encode()).decode()
BACKENDS = {
    "postmark": "anymail.backends.postmark.EmailBackend",
    "mailgun": "anymail.backends.mailgun.EmailBackend",
    "sendgrid": "anymail.backends.sendgrid.EmailBackend",
    "amazon_ses": "anymail.backends.amazon_ses.EmailBackend",
    "brevo": "anymail.backends.brevo.EmailBackend",
    "sparkpost": "anymail.backends.sparkpost.EmailBackend",
    "mailjet": "anymail.backends.mailjet.EmailBackend",
}
_numbers = itertools.count(1)


@pytest.fixture(autouse=True)
def _webhook_settings(settings):
    settings.ANYMAIL = {"WEBHOOK_SECRET": WEBHOOK_SECRET, "MAILGUN_WEBHOOK_SIGNING_KEY": MAILGUN_SIGNING_KEY}
    settings.EMAIL_BACKEND = BACKENDS["postmark"]
    settings.WEBHOOK_ESPS = []
    settings.WEBHOOK_INBOUND = False


def deployed_on(settings, esp: str) -> None:
    """Configure the service as it runs with `esp` (its backend; its webhook URL is then the one mounted)."""
    settings.EMAIL_BACKEND = BACKENDS[esp]


def sent(esp: str = "postmark", contact: Contact | None = None) -> Delivery:
    contact = contact or ContactFactory.create()
    number = next(_numbers)
    return DeliveryFactory.create(
        contact=contact,
        idempotency_key=f"nurture:{contact.pk}:{number}",
        status=Delivery.Status.SENT,
        esp_name=DELIVERY_ESP_NAMES[esp],
        esp_message_id=f"msg-{number}",
    )


def post(client, esp: str, event: str, delivery: Delivery, n: int = 1, auth: str | None = AUTH, **extra):
    request = BUILDERS[esp](event, delivery, n)
    if auth:
        request["HTTP_AUTHORIZATION"] = auth
    request.update(extra)
    return client.post(f"/anymail/{esp}/tracking/", **request)


def now_n() -> int:
    """The event number whose Mailgun signature timestamp is now (the builders sign at EPOCH + n)."""
    return int(time.time()) - EPOCH


@pytest.mark.parametrize("esp", list(BUILDERS))
def test_every_listed_esps_bounce_goes_post_stored_processed_suppressed_and_into_health(client, settings, esp):
    deployed_on(settings, esp)
    contact = ContactFactory.create()
    delivery = sent(esp, contact)
    waiting = DeliveryFactory.create(contact=contact)

    response = post(client, esp, "hard_bounce", delivery, n=now_n())

    assert response.status_code == 200, response.content
    stored = EventPost.objects.get()
    assert (stored.esp, stored.state) == (esp, EventPost.State.NEW)
    assert "HTTP_AUTHORIZATION" not in stored.meta  # the credentials stay at the door
    contact.refresh_from_db()
    assert contact.suppressed_at is None  # the request only took it

    totals = event_posts_process()

    assert totals["processed"] == 1 and totals["recorded"] == 1
    stored.refresh_from_db()
    assert stored.state == EventPost.State.PROCESSED and stored.events == 1
    contact.refresh_from_db()
    assert contact.suppression_reason == "hard_bounce"
    assert SuppressionEntry.objects.filter(reason="hard_bounce").count() == 1
    ledger = ConsentEvent.objects.get(contact=contact, kind=ConsentEvent.Kind.SUPPRESSED)
    assert ledger.evidence["delivery_id"] == str(delivery.pk)
    delivery.refresh_from_db()
    assert delivery.feedback == DeliveryEvent.Type.BOUNCED
    waiting.refresh_from_db()
    assert waiting.status == Delivery.Status.CANCELLED
    assert ContactHealth.objects.get(contact=contact).bounce_count == 1


@pytest.mark.parametrize("esp", list(BUILDERS))
def test_an_open_reaches_relationship_health_once_per_batch(client, settings, esp):
    deployed_on(settings, esp)
    delivery = sent(esp)

    assert post(client, esp, "opened", delivery, n=now_n()).status_code == 200
    event_posts_process()

    health = ContactHealth.objects.get(contact=delivery.contact)
    assert health.last_engaged_at is not None


def test_a_postmark_shaped_post_on_a_mailgun_deployment_is_404_and_stores_nothing(client, settings):
    deployed_on(settings, "mailgun")
    contact = ContactFactory.create()
    delivery = sent("mailgun", contact)

    response = post(client, "postmark", "complained", delivery)

    assert response.status_code == 404
    assert not EventPost.objects.exists()
    event_posts_process()
    contact.refresh_from_db()
    assert contact.suppressed_at is None
    for url in ("/anymail/postmark/inbound/", "/anymail/sendgrid/tracking/", "/anymail/mailgun/inbound/"):
        assert client.post(url, data="{}", content_type="application/json", HTTP_AUTHORIZATION=AUTH).status_code == 404


def test_inbound_urls_answer_only_when_inbound_is_configured(client, settings):
    url = "/anymail/postmark/inbound/"
    assert client.post(url, data="{}", content_type="application/json", HTTP_AUTHORIZATION=AUTH).status_code == 404
    settings.WEBHOOK_INBOUND = True
    assert client.post(url, data="{}", content_type="application/json", HTTP_AUTHORIZATION=AUTH).status_code == 400


def test_a_second_esp_answers_during_a_migration(client, settings):
    settings.WEBHOOK_ESPS = ["sendgrid"]
    delivery = sent("sendgrid")
    assert post(client, "sendgrid", "delivered", delivery).status_code == 200
    assert post(client, "brevo", "delivered", delivery).status_code == 404


def test_an_event_through_one_esps_url_is_not_applied_to_a_delivery_another_esp_sent(client, settings):
    settings.WEBHOOK_ESPS = ["sendgrid"]  # postmark (the backend's) and sendgrid are both mounted
    contact = ContactFactory.create()
    by_postmark = sent("postmark", contact)

    assert post(client, "sendgrid", "hard_bounce", by_postmark).status_code == 200
    event_posts_process()

    contact.refresh_from_db()
    assert contact.suppressed_at is None
    assert not DeliveryEvent.objects.exists()


def test_a_replayed_signed_mailgun_webhook_is_refused_and_a_fresh_one_taken(client, settings):
    deployed_on(settings, "mailgun")
    settings.WEBHOOK_REPLAY_WINDOW_SECONDS = 900
    delivery = sent("mailgun")

    old = post(client, "mailgun", "hard_bounce", delivery, n=now_n() - 901)  # a valid signature, 15 minutes old
    ahead = post(client, "mailgun", "hard_bounce", delivery, n=now_n() + 901)
    fresh = post(client, "mailgun", "hard_bounce", delivery, n=now_n())

    assert (old.status_code, ahead.status_code, fresh.status_code) == (400, 400, 200)
    assert b"replay" in old.content
    assert EventPost.objects.count() == 1


def test_a_mailgun_post_with_a_forged_signature_is_refused_before_it_is_stored(client, settings):
    deployed_on(settings, "mailgun")
    request = esp_payloads.mailgun("hard_bounce", sent("mailgun"), n=now_n(), signing_key="not-the-key")
    response = client.post("/anymail/mailgun/tracking/", HTTP_AUTHORIZATION=AUTH, **request)
    assert response.status_code == 400
    assert not EventPost.objects.exists()


@pytest.mark.parametrize("esp", list(BUILDERS))
def test_wrong_credentials_are_refused_before_anything_is_stored(client, settings, esp):
    deployed_on(settings, esp)
    wrong = "Basic " + base64.b64encode(b"hook:guess").decode()
    assert post(client, esp, "hard_bounce", sent(esp), n=now_n(), auth=wrong).status_code in (400, 401)
    assert not EventPost.objects.exists()


NESTED = "[" * 50_000 + "]" * 50_000
DEEP_BUT_PARSABLE = '{"a":' * 100 + "1" + "}" * 100


@pytest.mark.parametrize("body", [NESTED, DEEP_BUT_PARSABLE])
@pytest.mark.parametrize("esp", list(BUILDERS))
def test_deeply_nested_json_is_a_400_never_a_500_on_every_tracking_url(client, settings, esp, body):
    deployed_on(settings, esp)
    client.raise_request_exception = False
    content_type = "text/plain; charset=UTF-8" if esp == "amazon_ses" else "application/json"
    headers = {"HTTP_X_AMZ_SNS_MESSAGE_TYPE": "Notification"} if esp == "amazon_ses" else {}

    for auth in (AUTH, "Basic " + base64.b64encode(b"x:y").decode()):
        response = client.post(
            f"/anymail/{esp}/tracking/", data=body, content_type=content_type, HTTP_AUTHORIZATION=auth, **headers
        )
        assert 400 <= response.status_code < 500, response.status_code
    assert not EventPost.objects.exists()


@pytest.mark.parametrize("body", [NESTED, DEEP_BUT_PARSABLE])
def test_deeply_nested_json_to_the_signup_api_is_a_400(client, body):
    client.raise_request_exception = False
    response = client.post("/api/v1/subscribe/", data=body, content_type="application/json")
    assert response.status_code == 400


def test_an_oversized_body_is_413_and_a_large_array_post_is_taken(client, settings):
    settings.WEBHOOK_MAX_BODY_BYTES = 10_000
    settings.WEBHOOK_MAX_ARRAY_BODY_BYTES = 2_000_000
    settings.WEBHOOK_ESPS = ["sendgrid"]
    delivery = sent("postmark")
    big = json.loads(esp_payloads.postmark("delivered", delivery)["data"])
    big["Details"] = "x" * 20_000

    response = client.post(
        "/anymail/postmark/tracking/", data=json.dumps(big), content_type="application/json", HTTP_AUTHORIZATION=AUTH
    )
    assert response.status_code == 413
    assert not EventPost.objects.exists()

    event = json.loads(esp_payloads.sendgrid("delivered", sent("sendgrid"))["data"])[0]
    array = [{**event, "sg_event_id": f"e{i}"} for i in range(1000)]
    response = client.post(
        "/anymail/sendgrid/tracking/", data=json.dumps(array), content_type="application/json", HTTP_AUTHORIZATION=AUTH
    )
    assert response.status_code == 200
    assert event_posts_process()["events"] == 1000
    assert DeliveryEvent.objects.count() == 1000


@pytest.mark.parametrize(
    ("body", "content_type", "status"),
    [
        ("", "application/json", 400),
        ("   ", "application/json", 400),
        ('{"RecordType": "Delivery"}', "text/html", 415),
        ('{"RecordType": "Delivery"}', "application/x-www-form-urlencoded", 415),
        ("not json", "application/json", 400),
        ("null", "application/json", 400),
    ],
)
def test_empty_bodies_and_wrong_content_types_are_4xx(client, body, content_type, status):
    client.raise_request_exception = False
    response = client.post("/anymail/postmark/tracking/", data=body, content_type=content_type, HTTP_AUTHORIZATION=AUTH)
    assert response.status_code == status
    assert not EventPost.objects.exists()


def test_a_delivered_event_after_the_bounce_keeps_the_bounce_in_one_batch_and_across_batches(client):
    together, apart = sent(), sent()

    def send(event: str, delivery: Delivery) -> None:
        payload = json.loads(esp_payloads.postmark(event, delivery, n=next(_numbers))["data"])
        if event == "delivered":
            payload["DeliveredAt"] = "2025-11-24T18:00:00Z"  # hours after the bounce, as a confused ESP might say
        response = client.post(
            "/anymail/postmark/tracking/",
            data=json.dumps(payload),
            content_type="application/json",
            HTTP_AUTHORIZATION=AUTH,
        )
        assert response.status_code == 200

    send("hard_bounce", together)
    send("delivered", together)
    event_posts_process()
    send("hard_bounce", apart)
    event_posts_process()
    send("delivered", apart)
    event_posts_process()

    for delivery in (together, apart):
        delivery.refresh_from_db()
        assert delivery.feedback == DeliveryEvent.Type.BOUNCED
        assert delivery.events.count() == 2


def test_the_same_event_posted_three_times_is_recorded_once(client):
    delivery = sent()
    for _ in range(2):
        assert post(client, "postmark", "hard_bounce", delivery, n=5).status_code == 200
    event_posts_process()  # two in one batch
    assert post(client, "postmark", "hard_bounce", delivery, n=5).status_code == 200
    event_posts_process()  # and once more in the next

    assert EventPost.objects.filter(state=EventPost.State.PROCESSED).count() == 3
    assert DeliveryEvent.objects.count() == 1
    assert ConsentEvent.objects.filter(kind=ConsentEvent.Kind.SUPPRESSED).count() == 1
    assert ContactHealth.objects.get(contact=delivery.contact).bounce_count == 1


def test_a_post_anymail_cannot_parse_is_quarantined_kept_and_does_not_hold_back_the_batch(client):
    good = sent()
    shapeless = {"RecordType": "Bounce", "BouncedAt": "not a date", "Metadata": "not a dict", "ID": []}
    response = client.post(
        "/anymail/postmark/tracking/",
        data=json.dumps(shapeless),
        content_type="application/json",
        HTTP_AUTHORIZATION=AUTH,
    )
    assert response.status_code == 200
    assert post(client, "postmark", "hard_bounce", good).status_code == 200

    totals = event_posts_process()

    assert (totals["processed"], totals["quarantined"]) == (1, 1)
    quarantined = EventPost.objects.get(state=EventPost.State.QUARANTINED)
    assert quarantined.error and bytes(quarantined.body) == json.dumps(shapeless).encode()
    good.contact.refresh_from_db()
    assert good.contact.suppression_reason == "hard_bounce"


def test_quarantined_posts_are_visible_in_the_admin_only_with_the_permission(client):
    EventPost.objects.create(esp="postmark", body=b"{}", state=EventPost.State.QUARANTINED, error="KeyError: 'x'")
    staff = User.objects.create_user("ops", password="pw", is_staff=True)
    client.force_login(staff)
    assert client.get("/admin/messaging/eventpost/").status_code == 403
    staff.user_permissions.add(Permission.objects.get(codename="view_eventpost"))
    page = client.get("/admin/messaging/eventpost/?state=quarantined")
    assert page.status_code == 200 and b"postmark" in page.content
    post_page = client.get(f"/admin/messaging/eventpost/{EventPost.objects.get().pk}/change/")
    assert b"KeyError" in post_page.content and b"raw_body" not in post_page.content


# Amazon SNS, as it posts: https://docs.aws.amazon.com/sns/latest/dg/sns-message-and-json-formats.html
TOPIC_ARN = "arn:aws:sns:eu-west-1:123456789012:ses-events"
SNS_TOKEN = "2336412f37fb687f5d51e6e2425f004aed7b7526d5fa6e4d1f3b5b1b7c7e0f6e1c2c4f0a2d3e1c2b"


def sns_subscription_confirmation() -> dict:
    message_id = "165545c9-2a5c-472c-8df2-7ff2be2b3b1b"
    body = {
        "Type": "SubscriptionConfirmation",
        "MessageId": message_id,
        "Token": SNS_TOKEN,
        "TopicArn": TOPIC_ARN,
        "Message": f"You have chosen to subscribe to the topic {TOPIC_ARN}.\n"
        "To confirm the subscription, visit the SubscribeURL included in this message.",
        "SubscribeURL": "https://sns.eu-west-1.amazonaws.com/?Action=ConfirmSubscription"
        f"&TopicArn={TOPIC_ARN}&Token={SNS_TOKEN}",
        "Timestamp": "2025-11-24T00:40:04.751Z",
        "SignatureVersion": "1",
        "Signature": "EXAMPLEpH+DcEwjAPg8O9mY8dReBSwksfg2S7WKQcikcNKWLQjwu6A4VbeS0QHVCkhRS7fUQvi2egU3N858fiTDN6bkkOxYDVrY0Ad8L10Hs3zH81mtnPk5uvvolIC1CXGu43obcgFxeL3khZl8IKvO61GWB6jI9b5+gLPoBc1Q=",
        "SigningCertURL": "https://sns.eu-west-1.amazonaws.com/SimpleNotificationService-f3ecfb7224c7233fe7bb5f59f96de52f.pem",
    }
    return {
        "data": json.dumps(body),
        "content_type": "text/plain; charset=UTF-8",
        "HTTP_X_AMZ_SNS_MESSAGE_TYPE": "SubscriptionConfirmation",
        "HTTP_X_AMZ_SNS_MESSAGE_ID": message_id,
        "HTTP_X_AMZ_SNS_TOPIC_ARN": TOPIC_ARN,
    }


def sns_validated_notification() -> dict:
    message_id = "a1b2c3d4-0000-4c2c-8f9d-bdfb0c7b0001"
    body = {
        "Type": "Notification",
        "MessageId": message_id,
        "TopicArn": TOPIC_ARN,
        "Message": "Successfully validated SNS topic for Amazon SES event publishing.",
        "Timestamp": "2025-11-24T00:40:05.000Z",
        "SignatureVersion": "1",
        "Signature": "EXAMPLEw6JRN...",
        "SigningCertURL": "https://sns.eu-west-1.amazonaws.com/SimpleNotificationService-example.pem",
        "UnsubscribeURL": "https://sns.eu-west-1.amazonaws.com/?Action=Unsubscribe&SubscriptionArn=example",
    }
    return {
        "data": json.dumps(body),
        "content_type": "text/plain; charset=UTF-8",
        "HTTP_X_AMZ_SNS_MESSAGE_TYPE": "Notification",
        "HTTP_X_AMZ_SNS_MESSAGE_ID": message_id,
        "HTTP_X_AMZ_SNS_TOPIC_ARN": TOPIC_ARN,
    }


@pytest.fixture
def sns_stand_in() -> Iterator[tuple[str, list[dict[str, list[str]]]]]:
    """A local stand-in for Amazon SNS's API: records each call, answers ConfirmSubscription as SNS does."""
    calls: list[dict[str, list[str]]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            calls.append(parse_qs(self.rfile.read(length).decode()))
            body = (
                '<ConfirmSubscriptionResponse xmlns="http://sns.amazonaws.com/doc/2010-03-31/">'
                f"<ConfirmSubscriptionResult><SubscriptionArn>{TOPIC_ARN}:4f0c1f7e</SubscriptionArn>"
                "</ConfirmSubscriptionResult><ResponseMetadata><RequestId>7a8b</RequestId></ResponseMetadata>"
                "</ConfirmSubscriptionResponse>"
            ).encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/xml")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", calls
    server.shutdown()
    server.server_close()


def test_the_whole_sns_sequence_challenge_confirmation_notification(client, settings, sns_stand_in):
    endpoint, calls = sns_stand_in
    deployed_on(settings, "amazon_ses")
    settings.ANYMAIL = {
        **settings.ANYMAIL,
        "AMAZON_SES_CLIENT_PARAMS": {
            "endpoint_url": endpoint,
            "aws_access_key_id": "AKIDEXAMPLE",
            "aws_secret_access_key": "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
        },
    }
    url = "/anymail/amazon_ses/tracking/"

    # 1. SNS posts the confirmation without credentials first: a 401 challenge, as anymail answers.
    challenge = client.post(url, **sns_subscription_confirmation())
    assert challenge.status_code == 401
    assert challenge["WWW-Authenticate"].startswith("Basic realm=")
    assert not EventPost.objects.exists()
    # Credentials that are wrong do not get a confirmation either.
    wrong = "Basic " + base64.b64encode(b"hook:guess").decode()
    assert client.post(url, HTTP_AUTHORIZATION=wrong, **sns_subscription_confirmation()).status_code == 400
    event_posts_process()
    assert calls == []

    # 2. Then with the credentials: taken, and confirmed by anymail (boto3) when processed.
    assert client.post(url, HTTP_AUTHORIZATION=AUTH, **sns_subscription_confirmation()).status_code == 200
    event_posts_process()
    assert len(calls) == 1
    assert calls[0]["Action"] == ["ConfirmSubscription"] and calls[0]["Token"] == [SNS_TOKEN]
    assert calls[0]["TopicArn"] == [TOPIC_ARN]

    # 3. SES's "validated" notification, then a bounce notification: challenged, then taken and acted on.
    assert client.post(url, HTTP_AUTHORIZATION=AUTH, **sns_validated_notification()).status_code == 200
    contact = ContactFactory.create()
    delivery = sent("amazon_ses", contact)
    assert post(client, "amazon_ses", "hard_bounce", delivery, auth=None).status_code == 401
    assert post(client, "amazon_ses", "hard_bounce", delivery).status_code == 200
    event_posts_process()

    assert set(EventPost.objects.values_list("state", flat=True)) == {EventPost.State.PROCESSED}
    contact.refresh_from_db()
    assert contact.suppression_reason == "hard_bounce"
    assert len(calls) == 1
