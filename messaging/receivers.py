"""How messaging answers what preferences reports."""

from __future__ import annotations

from typing import Any

from django.dispatch import receiver

from messaging.models import Delivery
from messaging.services import deliveries_cancel, delivery_create
from messaging.tasks import enqueue_delivery
from preferences import signals
from preferences.models import Contact


@receiver(signals.confirmation_requested)
def send_confirmation(sender: Any, contact: Contact, event_id: int, already_confirmed: bool, **kwargs: Any) -> None:
    kind = Delivery.Kind.ALREADY_SUBSCRIBED if already_confirmed else Delivery.Kind.CONFIRMATION
    delivery_create(
        contact=contact,
        kind=kind,
        template=kind,
        idempotency_key=f"{kind}:{contact.id}:{event_id}",
        enqueue=enqueue_delivery,
    )


@receiver(signals.contact_unsubscribed)
@receiver(signals.contact_suppressed)
def cancel_marketing(sender: Any, contact: Contact, **kwargs: Any) -> None:
    deliveries_cancel(contact=contact)


@receiver(signals.contact_converted)
def count_mails_before_conversion(sender: Any, contact: Contact, conversion: Any, **kwargs: Any) -> None:
    """Record how many marketing mails the contact had received when it converted."""
    sent = Delivery.objects.filter(
        contact=contact,
        kind__in=Delivery.MARKETING_KINDS,
        status=Delivery.Status.SENT,
        sent_at__lte=conversion.converted_at,
    ).count()
    type(conversion).objects.filter(pk=conversion.pk).update(mails_before=sent)
    conversion.mails_before = sent
