"""A real Celery worker consumes the welcome queue from real Redis and sends the welcome."""

from __future__ import annotations

import time

import pytest
from django.test import Client

from messaging.models import Delivery
from preferences.models import Contact
from preferences.tokens import Purpose, make_token
from tests.workers import purge_queues, running_worker

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.worker]


def wait_for(predicate, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return False


def test_a_real_worker_sends_confirmation_and_welcome_from_the_welcome_queue(topics):
    purge_queues("welcome")
    with running_worker(queues="welcome", name="journey", EMAIL_BACKEND="anymail.backends.test.EmailBackend"):
        response = Client().post(
            "/api/v1/subscribe/",
            {"email": "worker@example.com", "locale": "en", "topics": ["saving"]},
            content_type="application/json",
        )
        assert response.status_code == 202
        assert wait_for(lambda: Delivery.objects.filter(kind="confirmation", status="sent").exists())

        contact = Contact.objects.get(email="worker@example.com")
        Client().post(f"/confirm/{make_token(contact, Purpose.CONFIRM)}/")
        assert wait_for(lambda: Delivery.objects.filter(kind="welcome", status="sent").exists(), timeout=10)

    welcome = Delivery.objects.get(kind="welcome")
    assert welcome.contact_id == contact.id
    assert welcome.esp_name == "test"
    assert welcome.attempts == 1
