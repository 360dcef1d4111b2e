"""ESP open and click webhooks reach relationship health: an engaged subscriber is never sunset."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

import pytest
import time_machine

from cadence.health import services as relationship
from cadence.models import ContactHealth, Schedule
from messaging.intake import event_posts_process
from messaging.models import Delivery
from preferences.models import Contact
from tests.factories import ContactFactory, DeliveryFactory
from tests.messaging.esp_payloads import BUILDERS, DELIVERY_ESP_NAMES, MAILGUN_SIGNING_KEY, WEBHOOK_SECRET

pytestmark = pytest.mark.django_db

# The payloads' events happen on 2025-11-24; the nightly recompute runs the day after.
NOW = datetime(2025, 11, 25, 3, 30, tzinfo=UTC)
AUTH = "Basic " + base64.b64encode(WEBHOOK_SECRET.encode()).decode()


@pytest.fixture(autouse=True)
def _webhook_settings(settings):
    settings.ANYMAIL = {"WEBHOOK_SECRET": WEBHOOK_SECRET, "MAILGUN_WEBHOOK_SIGNING_KEY": MAILGUN_SIGNING_KEY}
    settings.WEBHOOK_ESPS = list(BUILDERS)
    settings.WEBHOOK_REPLAY_WINDOW_SECONDS = 10**9  # the payloads are signed on their own dates


def long_quiet_subscriber() -> tuple[Contact, Delivery]:
    """A monthly subscriber of 14 months who was mailed last week and never opened anything (until now)."""
    contact = ContactFactory.create(confirmed_at=NOW - timedelta(days=430), frequency="monthly")
    Schedule.objects.create(
        contact=contact, next_due_at=NOW + timedelta(days=23), last_sent_at=NOW - timedelta(days=7), welcome_step=9
    )
    delivery = DeliveryFactory.create(
        contact=contact,
        idempotency_key=f"nurture:{contact.pk}:14",
        status=Delivery.Status.SENT,
        sent_at=NOW - timedelta(days=7),
        esp_name="postmark",
        esp_message_id="b7bc2f4a-e38e-4336-af7d-e6c392c2f817",
    )
    return contact, delivery


def post(client, esp: str, event: str, delivery: Delivery) -> int:
    """Post the ESP's event about `delivery` (sent through that ESP) and process what the intake stored."""
    Delivery.objects.filter(pk=delivery.pk).update(esp_name=DELIVERY_ESP_NAMES[esp])
    request = BUILDERS[esp](event, delivery, 1)
    request["HTTP_AUTHORIZATION"] = AUTH
    status = client.post(f"/anymail/{esp}/tracking/", **request).status_code
    event_posts_process()
    return status


@time_machine.travel(NOW, tick=False)
def test_without_engagement_a_long_quiet_subscriber_is_lost_and_sunset():
    contact, _delivery = long_quiet_subscriber()
    relationship.health_recompute_all()
    health = ContactHealth.objects.get(contact=contact)
    assert health.state == "lost" and health.sunset_stage == 1


@pytest.mark.parametrize("esp", ["postmark", "mailgun", "sendgrid"])
@pytest.mark.parametrize("event", ["opened", "clicked"])
@time_machine.travel(NOW, tick=False)
def test_an_open_or_click_webhook_keeps_the_subscriber_healthy_and_not_sunset(client, esp, event):
    contact, delivery = long_quiet_subscriber()

    assert post(client, esp, event, delivery) == 200
    relationship.health_recompute_all()

    health = ContactHealth.objects.get(contact=contact)
    assert health.last_engaged_at is not None and health.last_engaged_at.date() == datetime(2025, 11, 24).date()
    assert (health.state, health.sunset_stage) == ("healthy", 0)
    contact.refresh_from_db()
    assert contact.frequency == "monthly"


@time_machine.travel(NOW, tick=False)
def test_a_hard_bounce_webhook_counts_as_a_bounce_in_health(client):
    contact, delivery = long_quiet_subscriber()
    assert post(client, "postmark", "hard_bounce", delivery) == 200
    health = ContactHealth.objects.get(contact=contact)
    assert health.bounce_count == 1 and health.last_bounce_at is not None


@time_machine.travel(NOW, tick=False)
def test_a_repeated_webhook_is_counted_once(client):
    contact, delivery = long_quiet_subscriber()
    assert post(client, "postmark", "hard_bounce", delivery) == 200
    assert post(client, "postmark", "hard_bounce", delivery) == 200
    assert ContactHealth.objects.get(contact=contact).bounce_count == 1
