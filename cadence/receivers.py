"""How the cadence engine answers what preferences and messaging report."""

from __future__ import annotations

from typing import Any

from django.dispatch import receiver

from cadence.digest import digest_context
from cadence.models import ContactHealth, Schedule
from cadence.services import schedule_record_send, schedule_reschedule, schedule_start, schedule_stop
from messaging import signals as messaging_signals
from messaging.models import Delivery
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
def stop_schedule_on_erasure(sender: Any, contact: Contact, **kwargs: Any) -> None:
    schedule_stop(contact=contact)


@receiver(signals.preferences_changed)
def move_schedule(sender: Any, contact: Contact, changes: list[str] | None = None, **kwargs: Any) -> None:
    if changes is None or {"frequency", "paused_until", "status"} & set(changes):
        schedule_reschedule(contact=contact)


@receiver(signals.contact_unsubscribed)
@receiver(signals.contact_suppressed)
def stop_schedule(sender: Any, contact: Contact, **kwargs: Any) -> None:
    schedule_stop(contact=contact)


@receiver(messaging_signals.delivery_sent)
def record_send(sender: Any, delivery: Delivery, **kwargs: Any) -> None:
    schedule_record_send(delivery=delivery)


@receiver(messaging_signals.message_context_requested)
def add_digest(sender: Any, delivery: Delivery, **kwargs: Any) -> dict[str, Any]:
    return digest_context(delivery=delivery)
