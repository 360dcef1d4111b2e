"""How messaging answers what preferences reports."""

from __future__ import annotations

from typing import Any

from anymail.signals import AnymailTrackingEvent, tracking
from django.dispatch import receiver

from messaging.feedback import delivery_event_record
from messaging.models import Delivery
from messaging.services import deliveries_cancel
from preferences import signals
from preferences.models import Contact


@receiver(signals.contact_unsubscribed)
@receiver(signals.contact_suppressed)
def cancel_marketing(sender: Any, contact: Contact, **kwargs: Any) -> None:
    deliveries_cancel(contact=contact)


@receiver(tracking, dispatch_uid="messaging.delivery_feedback")
def record_delivery_feedback(sender: Any, event: AnymailTrackingEvent, esp_name: str, **kwargs: Any) -> None:
    """Record every ESP tracking event; events about unknown messages are dropped (the ESP gets 200)."""
    delivery_event_record(esp_name=esp_name, event=event)


@receiver(signals.data_export_collect)
def export_deliveries(sender: Any, contact: Contact, **kwargs: Any) -> tuple[str, list[dict[str, Any]]]:
    fields = ["id", "kind", "template", "status", "context", "esp_name", "created_at", "sent_at", "error"]
    rows = contact.deliveries.order_by("created_at").values(*fields)
    return "deliveries", [{**row, "id": str(row["id"])} for row in rows]


@receiver(signals.contact_erasing)
def anonymise_deliveries(sender: Any, contact: Contact, **kwargs: Any) -> None:
    """Keep each delivery's kind, status and dates (anonymous counts); drop what could name the person."""
    Delivery.objects.filter(contact=contact).exclude(status__in=[Delivery.Status.SENT, Delivery.Status.FAILED]).update(
        status=Delivery.Status.CANCELLED
    )
    Delivery.objects.filter(contact=contact).update(context={}, esp_message_id="", error="")


@receiver(signals.contact_converted)
def count_mails_before_conversion(sender: Any, contact: Contact, conversion: Any, **kwargs: Any) -> None:
    """Record how many marketing mails the contact had received when it converted."""
    sent = Delivery.objects.filter(
        contact=contact,
        marketing=True,
        status=Delivery.Status.SENT,
        sent_at__lte=conversion.converted_at,
    ).count()
    type(conversion).objects.filter(pk=conversion.pk).update(mails_before=sent)
    conversion.mails_before = sent
