from __future__ import annotations

import base64

import pytest
from django.utils import timezone

from cadence.kinds import Kind
from messaging.brake import send_is_braked
from messaging.intake import event_posts_process
from messaging.models import Delivery, SendBrake
from preferences.models import Contact
from tests.factories import DeliveryFactory
from tests.messaging import esp_payloads

pytestmark = pytest.mark.django_db

AUTH = "Basic " + base64.b64encode(esp_payloads.WEBHOOK_SECRET.encode()).decode()
SEND = "import:7f3a"


@pytest.fixture(autouse=True)
def _webhooks(settings):
    settings.ANYMAIL = {"WEBHOOK_SECRET": esp_payloads.WEBHOOK_SECRET}
    settings.EMAIL_BACKEND = "anymail.backends.postmark.EmailBackend"
    settings.BRAKE_BOUNCE_RATE = 0.05
    settings.BRAKE_COMPLAINT_RATE = 0.003
    settings.BRAKE_MIN_SENDS = 300


def deliveries(n: int, status: str, send_key: str = SEND, start: int = 0) -> list[Delivery]:
    contacts = Contact.objects.bulk_create(
        Contact(email=f"{send_key.replace(':', '-')}-{status}-{i}@example.com", status="confirmed")
        for i in range(start, start + n)
    )
    now = timezone.now()
    return Delivery.objects.bulk_create(
        DeliveryFactory.build(
            contact=contact,
            kind=Kind.ANNOUNCEMENT,
            idempotency_key=f"{send_key}:{contact.pk}",
            marketing=True,
            status=status,
            send_key=send_key,
            sent_at=now if status == Delivery.Status.SENT else None,
            esp_message_id=f"msg-{contact.pk}" if status == Delivery.Status.SENT else "",
        )
        for contact in contacts
    )


def bounce(client, delivery: Delivery, n: int, event: str = "hard_bounce") -> None:
    response = client.post(
        "/anymail/postmark/tracking/", HTTP_AUTHORIZATION=AUTH, **esp_payloads.postmark(event, delivery, n)
    )
    assert response.status_code == 200
    event_posts_process()


@pytest.fixture
def send():
    """A send of 300 mails gone out and 50 still queued, and another send of the same size."""
    sent = deliveries(300, Delivery.Status.SENT)
    deliveries(50, Delivery.Status.QUEUED)
    other = deliveries(300, Delivery.Status.SENT, send_key="announcement:9")
    deliveries(10, Delivery.Status.QUEUED, send_key="announcement:9")
    return sent, other


def test_a_burst_of_hard_bounces_over_the_threshold_holds_the_rest_of_the_send(client, send):
    sent, other = send
    for n, delivery in enumerate(sent[:15], start=1):  # 5.0%: not over
        bounce(client, delivery, n)
    bounce(client, other[0], 100)
    assert not SendBrake.objects.exists()
    assert Delivery.objects.filter(send_key=SEND, status="queued").count() == 50

    bounce(client, sent[15], 16)  # 5.3%

    brake = SendBrake.objects.get()
    assert (brake.send_key, brake.status, brake.sent, brake.bounced, brake.held_count) == (SEND, "held", 300, 16, 50)
    assert Delivery.objects.filter(send_key=SEND, status="held").count() == 50
    assert not Delivery.objects.filter(send_key=SEND, status="queued").exists()
    assert send_is_braked(SEND) and not send_is_braked("announcement:9")
    # Another send is left alone.
    assert Delivery.objects.filter(send_key="announcement:9", status="queued").count() == 10


def test_one_complaint_in_three_hundred_is_past_the_complaint_threshold(client, send):
    sent, _other = send
    bounce(client, sent[0], 1, event="complained")
    assert SendBrake.objects.get().complained == 1
    assert Delivery.objects.filter(send_key=SEND, status="held").count() == 50


def test_the_pipe_never_claims_held_mail_and_resume_queues_it_again(
    client, send, admin_client, django_capture_on_commit_callbacks, monkeypatch
):
    from cadence.batch import batch_send

    sent, _other = send
    for n, delivery in enumerate(sent[:16], start=1):
        bounce(client, delivery, n)
    held_ids = list(Delivery.objects.filter(send_key=SEND, status="held").values_list("id", flat=True))
    batch_send(delivery_ids=held_ids)
    assert Delivery.objects.filter(send_key=SEND, status="held").count() == 50

    brake = SendBrake.objects.get()
    enqueued: list[tuple[list[str], str]] = []
    monkeypatch.setattr(
        "cadence.tasks.send_batch.apply_async", lambda args, queue: enqueued.append((list(args[0]), queue))
    )
    with django_capture_on_commit_callbacks(execute=True):
        admin_client.post("/admin/messaging/sendbrake/", {"action": "resume", "_selected_action": [brake.pk]})

    brake.refresh_from_db()
    assert brake.status == "resumed" and brake.decided_by == "admin"
    # The held mail is queued again and handed to the send task on its own queue in one batch: nothing was lost.
    assert Delivery.objects.filter(send_key=SEND, status="queued").count() == 50
    assert len(enqueued) == 1 and enqueued[0][1] == "bulk"
    assert sorted(enqueued[0][0]) == sorted(str(pk) for pk in held_ids)


def test_cancel_cancels_the_held_mail(client, send, admin_client):
    sent, _other = send
    for n, delivery in enumerate(sent[:16], start=1):
        bounce(client, delivery, n)
    brake = SendBrake.objects.get()
    admin_client.post("/admin/messaging/sendbrake/", {"action": "cancel", "_selected_action": [brake.pk]})
    assert Delivery.objects.filter(send_key=SEND, status="cancelled").count() == 50
    assert SendBrake.objects.get().status == "cancelled"


def test_metrics_and_the_ops_page_show_a_braked_send(client, send, admin_client, settings):
    sent, _other = send
    for n, delivery in enumerate(sent[:16], start=1):
        bounce(client, delivery, n)
    settings.METRICS_TOKEN = "metrics-token"
    metrics = client.get("/metrics", HTTP_AUTHORIZATION="Bearer metrics-token").content.decode()
    assert f'cadence_sends_braked{{send_key="{SEND}"}} 50.0' in metrics
    assert SEND in admin_client.get("/admin/ops/").content.decode()


def _resume(brake: SendBrake, at) -> None:
    SendBrake.objects.filter(pk=brake.pk).update(status=SendBrake.Status.RESUMED, decided_by="marketer", decided_at=at)
    Delivery.objects.filter(send_key=SEND, status="held").update(status="queued")


def test_a_resumed_send_is_judged_on_the_mail_sent_after_the_resume(client, send):
    sent, _other = send
    for n, delivery in enumerate(sent[:16], start=1):
        bounce(client, delivery, n)
    brake = SendBrake.objects.get()
    _resume(brake, timezone.now())
    # A late bounce of mail sent before the resume does not stop the resumed send again.
    bounce(client, sent[16], 17)
    assert SendBrake.objects.get().status == "resumed"
    assert Delivery.objects.filter(send_key=SEND, status="queued").count() == 50

    # 300 more go out after the resume, 16 of them bounce: it stops again, on those figures alone.
    after = deliveries(300, Delivery.Status.SENT, start=1000)
    deliveries(40, Delivery.Status.QUEUED, start=2000)
    for n, delivery in enumerate(after[:15], start=100):  # 5.0%: not over
        bounce(client, delivery, n)
    assert SendBrake.objects.get().status == "resumed"
    bounce(client, after[15], 200)  # 5.3%

    brake = SendBrake.objects.get()
    assert (brake.status, brake.sent, brake.bounced, brake.decided_by, brake.decided_at) == ("held", 300, 16, "", None)
    assert brake.held_count == 90 == Delivery.objects.filter(send_key=SEND, status="held").count()
    assert send_is_braked(SEND)


def test_a_cancelled_send_is_not_braked_again(client, send):
    sent, _other = send
    for n, delivery in enumerate(sent[:16], start=1):
        bounce(client, delivery, n)
    SendBrake.objects.update(status=SendBrake.Status.CANCELLED, decided_at=timezone.now())
    deliveries(5, Delivery.Status.QUEUED, start=3000)
    bounce(client, sent[20], 30)
    assert SendBrake.objects.get().status == "cancelled"
    # Mail added to the send later is not held: the brake decided once, the marketer decided after it.
    assert Delivery.objects.filter(send_key=SEND, status="queued").count() == 5
