"""The writes of the cadence engine."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from cadence.models import Schedule
from messaging.models import Delivery
from messaging.services import delivery_create
from messaging.tasks import enqueue_delivery
from preferences.models import Contact
from preferences.policy import effective_frequency


@transaction.atomic
def schedule_start(*, contact: Contact) -> Schedule:
    """Start a confirmed contact's schedule and queue the welcome at once."""
    now = timezone.now()
    schedule, _created = Schedule.objects.update_or_create(
        contact=contact,
        defaults={"is_active": True, "next_due_at": now + effective_frequency(contact).interval},
    )
    delivery_create(
        contact=contact,
        kind=Delivery.Kind.WELCOME,
        template="welcome",
        idempotency_key=f"welcome:{contact.id}:0",
        enqueue=enqueue_delivery,
    )
    return schedule
