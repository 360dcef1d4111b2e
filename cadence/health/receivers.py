"""Keep relationship health current: recompute on preference changes, record ESP engagement and bounces."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.dispatch import receiver

from cadence.health.services import health_record_event
from cadence.tasks import health_recompute_contact
from messaging import signals as messaging_signals
from messaging.models import DeliveryEvent
from preferences import signals
from preferences.models import Contact

# What an ESP event means for the relationship; other events (delivered, deferred...) say nothing of it.
HEALTH_EVENTS: dict[str, str] = {
    DeliveryEvent.Type.OPENED: "open",
    DeliveryEvent.Type.CLICKED: "click",
    DeliveryEvent.Type.BOUNCED: "bounce",
    DeliveryEvent.Type.COMPLAINED: "complaint",
}


@receiver(signals.preferences_changed)
@receiver(signals.contact_suppressed)
@receiver(signals.contact_confirmed)
def recompute_health(sender: Any, contact: Contact, **kwargs: Any) -> None:
    contact_id = str(contact.pk)
    transaction.on_commit(lambda: health_recompute_contact.delay(contact_id))


@receiver(messaging_signals.delivery_event_recorded, dispatch_uid="cadence.health_from_delivery_event")
def record_engagement(sender: Any, event: DeliveryEvent, **kwargs: Any) -> None:
    """An open or click keeps the relationship healthy (and ends a sunset); bounces and complaints count too."""
    kind = HEALTH_EVENTS.get(event.type)
    if kind is not None:
        health_record_event(contact_id=event.contact_id, kind=kind, at=event.occurred_at)
