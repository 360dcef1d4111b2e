"""How the cadence engine answers what preferences reports."""

from __future__ import annotations

from typing import Any

from django.dispatch import receiver

from cadence.models import ContactHealth, Schedule
from cadence.services import schedule_start
from preferences import signals
from preferences.models import Contact


@receiver(signals.contact_confirmed)
def start_schedule(sender: Any, contact: Contact, **kwargs: Any) -> None:
    schedule_start(contact=contact)


@receiver(signals.data_export_collect)
def export_schedule(sender: Any, contact: Contact, **kwargs: Any) -> tuple[str, Any]:
    schedule = Schedule.objects.filter(contact=contact).values("is_active", "next_due_at", "last_sent_at").first()
    return "schedule", schedule


@receiver(signals.data_export_collect)
def export_health(sender: Any, contact: Contact, **kwargs: Any) -> tuple[str, Any]:
    health = (
        ContactHealth.objects.filter(contact=contact).values("state", "reasons", "state_since", "computed_at").first()
    )
    return "relationship_health", health


@receiver(signals.contact_erasing)
def stop_schedule(sender: Any, contact: Contact, **kwargs: Any) -> None:
    Schedule.objects.filter(contact=contact).update(is_active=False)
