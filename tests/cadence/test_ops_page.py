from __future__ import annotations

from datetime import timedelta

import pytest
import redis
from django.conf import settings
from django.contrib.auth.models import User
from django.utils import timezone

from cadence.kinds import Kind
from cadence.ops import figures as ops
from messaging.models import Delivery
from tests.factories import ContactFactory, DeliveryEventFactory, DeliveryFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_client(client):
    client.force_login(User.objects.create_superuser("ops", "ops@example.com", "pw"))
    return client


@pytest.fixture
def welcome_queue():
    client = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    keys = ops.priority_keys("welcome")
    client.delete(*keys)
    yield lambda: sum(client.llen(key) for key in keys)
    client.delete(*keys)


def failed_delivery(**fields) -> Delivery:
    contact = ContactFactory.create()
    return DeliveryFactory.create(
        contact=contact,
        kind=Kind.WELCOME,
        idempotency_key=f"welcome:{contact.pk}:0",
        queue=Delivery.Queue.WELCOME,
        status=Delivery.Status.FAILED,
        error="permanent: 400: bad sender",
        **fields,
    )


def test_the_admin_index_links_to_the_ops_page(staff_client):
    assert 'href="/admin/ops/"' in staff_client.get("/admin/").content.decode()


def test_the_ops_page_is_for_staff_only(client):
    response = client.get("/admin/ops/")
    assert response.status_code == 302 and "/admin/login/" in response["Location"]


def test_the_ops_page_shows_failures_and_a_chart_of_sends_per_hour(staff_client):
    failure = failed_delivery()
    now = timezone.now()
    contact = ContactFactory.create()
    for hours_ago in (0, 0, 5, 47, 60):
        DeliveryFactory.create(contact=contact, status=Delivery.Status.SENT, sent_at=now - timedelta(hours=hours_ago))

    page = staff_client.get("/admin/ops/").content.decode()

    assert f"/admin/ops/retry/{failure.pk}/" in page
    assert "permanent: 400: bad sender" in page
    assert "<svg" in page and "cdn" not in page and '<script src="http' not in page
    assert page.count('<g class="bar">') == 48
    assert "(4 in all)" in page  # the one sent 60 hours ago is outside the chart
    assert "Recent failed deliveries" in page
    assert "ESP webhook events, last 24 hours" in page


def test_the_ops_page_speaks_dutch(staff_client):
    page = staff_client.get("/admin/ops/", HTTP_ACCEPT_LANGUAGE="nl").content.decode()
    assert "Recente mislukte bezorgingen" in page
    assert "De belofte: niemand stil" in page


def test_retry_queues_a_failed_delivery_again_and_enqueues_it(
    staff_client, welcome_queue, django_capture_on_commit_callbacks
):
    failure = failed_delivery()

    with django_capture_on_commit_callbacks(execute=True):
        response = staff_client.post(f"/admin/ops/retry/{failure.pk}/")

    assert response.status_code == 302
    failure.refresh_from_db()
    assert failure.status == Delivery.Status.QUEUED and failure.error == ""
    assert welcome_queue() == 1


def test_retry_does_nothing_to_a_delivery_that_is_not_failed(
    staff_client, welcome_queue, django_capture_on_commit_callbacks
):
    sent = failed_delivery(sent_at=timezone.now())
    Delivery.objects.filter(pk=sent.pk).update(status=Delivery.Status.SENT)

    with django_capture_on_commit_callbacks(execute=True):
        staff_client.post(f"/admin/ops/retry/{sent.pk}/")

    sent.refresh_from_db()
    assert sent.status == Delivery.Status.SENT
    assert welcome_queue() == 0


def test_retry_refuses_a_lost_delivery_the_guard_already_replaced_so_no_second_mail_goes(
    staff_client, celery_eager, django_capture_on_commit_callbacks
):
    from django.core import mail

    from cadence.guard import silence_repair

    contact = ContactFactory.create()
    lost = DeliveryFactory.create(
        contact=contact,
        kind=Kind.WELCOME,
        idempotency_key=f"welcome:{contact.pk}:0",
        status=Delivery.Status.SENDING,
        claimed_at=timezone.now() - timedelta(hours=1),
    )
    with django_capture_on_commit_callbacks(execute=True):
        silence_repair()
    assert len(mail.outbox) == 1  # the late welcome

    with django_capture_on_commit_callbacks(execute=True):
        response = staff_client.post(f"/admin/ops/retry/{lost.pk}/", follow=True)

    lost.refresh_from_db()
    assert lost.status == Delivery.Status.FAILED
    assert len(mail.outbox) == 1
    assert "replaced by a late one" in response.content.decode()
    assert Delivery.objects.filter(contact=contact, status=Delivery.Status.SENT).count() == 1


def test_retry_refuses_a_failed_delivery_the_esp_reported_on(
    staff_client, welcome_queue, django_capture_on_commit_callbacks
):
    from messaging.models import DeliveryEvent

    failure = failed_delivery()
    DeliveryEventFactory.create(delivery=failure, type=DeliveryEvent.Type.DELIVERED)
    with django_capture_on_commit_callbacks(execute=True):
        staff_client.post(f"/admin/ops/retry/{failure.pk}/")

    failure.refresh_from_db()
    assert failure.status == Delivery.Status.FAILED
    assert welcome_queue() == 0
