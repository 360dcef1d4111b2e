"""Drive the engine as the scheduler would: confirm, tick, send."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import time_machine
from django.db import transaction

from cadence.batch import batch_send
from cadence.models import Schedule
from cadence.schedules import schedule_start
from cadence.tick import schedules_claim_due
from messaging.models import Delivery
from preferences.models import Contact


def start(contact: Contact) -> Schedule:
    """Start the schedule as confirmation does, and send the first welcome mail at once."""
    schedule_start(contact=contact)
    for delivery in Delivery.objects.filter(contact=contact, status=Delivery.Status.QUEUED):
        batch_send(delivery_ids=[delivery.id])
    return Schedule.objects.get(pk=contact.pk)


def tick_and_send(now: datetime, **options: Any) -> list[Delivery]:
    """Run the tick at `now` and send what it claimed; return the deliveries created."""
    with time_machine.travel(now, tick=False):
        result = schedules_claim_due(now=now, keep_ids=True, **options)
        ids = [delivery_id for batch in result.batch_ids for delivery_id in batch]
        for delivery_id in ids:
            batch_send(delivery_ids=[delivery_id])
    transaction.get_connection()
    return list(Delivery.objects.filter(id__in=ids).order_by("created_at"))
