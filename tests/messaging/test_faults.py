"""ESP faults injected through anymail's test backend: retries, permanent failures, nothing twice."""

from __future__ import annotations

import pytest
from anymail.exceptions import AnymailAPIError

from cadence import tasks
from cadence.batch import batch_send
from cadence.kinds import Kind
from messaging import services
from messaging.models import Delivery
from tests.factories import DeliveryFactory

pytestmark = pytest.mark.django_db


def queued(kind: str = Kind.WELCOME) -> Delivery:
    return DeliveryFactory.create(kind=kind, template="welcome")


def api_error(status: int) -> AnymailAPIError:
    return AnymailAPIError(f"ESP answered {status}", status_code=status)


@pytest.mark.parametrize("status", [500, 429, 503])
def test_a_transient_error_queues_the_delivery_again_and_says_why(esp_faults, status):
    esp_faults.then(api_error(status))
    delivery = queued()
    with pytest.raises(services.TransientSendError):
        batch_send(delivery_ids=[delivery.id])
    delivery.refresh_from_db()
    assert delivery.status == Delivery.Status.QUEUED
    assert delivery.error.startswith(f"transient: {status}")
    assert esp_faults.accepted == {}


def test_a_permanent_error_fails_the_delivery_visibly_and_is_not_retried(esp_faults, settings):
    esp_faults.then(api_error(400))
    delivery = queued()
    tasks.send_batch.apply(args=[[str(delivery.id)]])
    delivery.refresh_from_db()
    assert delivery.status == Delivery.Status.FAILED
    assert delivery.error.startswith("permanent: 400") and delivery.attempts == 1


def test_the_task_retries_transient_errors_then_sends_exactly_once(esp_faults):
    esp_faults.then(api_error(500), api_error(429), None)
    delivery = queued()
    tasks.send_batch.apply(args=[[str(delivery.id)]])
    delivery.refresh_from_db()
    assert delivery.status == Delivery.Status.SENT and delivery.attempts == 3
    assert esp_faults.accepted == {str(delivery.id): 1}
    # A redelivered task finds nothing to send.
    tasks.send_batch.apply(args=[[str(delivery.id)]])
    assert esp_faults.accepted == {str(delivery.id): 1}


def test_the_task_gives_up_after_its_retries_and_marks_the_delivery_failed(esp_faults, settings):
    settings.SEND_MAX_RETRIES = 2
    esp_faults.then(*[api_error(503)] * 5)
    delivery = queued()
    tasks.send_batch.apply(args=[[str(delivery.id)]])
    delivery.refresh_from_db()
    assert delivery.status == Delivery.Status.FAILED
    assert delivery.attempts == 3 and delivery.error.startswith("gave up")
    assert esp_faults.accepted == {}


@pytest.mark.parametrize(
    ("retries", "low", "high"),
    [(0, 2.5, 5), (1, 5, 10), (2, 10, 20), (5, 80, 160), (7, 300, 600), (12, 300, 600)],
)
def test_retry_delays_grow_exponentially_with_jitter_and_a_ceiling(settings, retries, low, high):
    settings.SEND_RETRY_BACKOFF = 5
    settings.SEND_RETRY_BACKOFF_MAX = 600
    delays = {services.retry_delay(retries) for _ in range(200)}
    assert all(low <= d <= high for d in delays)
    assert len(delays) > 1, "jitter spreads the workers"


def test_a_batch_with_a_transient_error_sends_only_the_rest_on_retry(esp_faults, settings):
    settings.ESP_BATCH_SENDING = {"test": {"limit": 2, "placeholder": "[[{name}]]"}}
    deliveries = [queued(Kind.NURTURE) for i in range(4)]
    ids = [str(d.id) for d in deliveries]
    esp_faults.then(None, api_error(502), None)  # first chunk goes, second fails once

    tasks.send_batch.apply(args=[ids])

    assert {d.status for d in Delivery.objects.all()} == {Delivery.Status.SENT}
    assert esp_faults.accepted == dict.fromkeys(ids, 1)


def test_a_batch_chunk_refused_for_good_fails_only_that_chunk(esp_faults, settings):
    settings.ESP_BATCH_SENDING = {"test": {"limit": 2, "placeholder": "[[{name}]]"}}
    deliveries = [queued(Kind.NURTURE) for i in range(4)]
    esp_faults.then(api_error(400), None)

    result = services.deliveries_send(delivery_ids=[d.id for d in deliveries])

    assert len(result.failed) == 2 and len(result.sent) == 2
    failed = Delivery.objects.filter(status=Delivery.Status.FAILED)
    assert failed.count() == 2 and all(d.error.startswith("permanent: 400") for d in failed)
