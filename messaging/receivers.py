"""How messaging answers what preferences reports."""

from __future__ import annotations

import hashlib
from typing import Any

from django.dispatch import receiver

from messaging.models import Delivery, DeliveryEvent
from messaging.services import deliveries_cancel, deliveries_cancel_many
from preferences import signals
from preferences.models import Contact


@receiver(signals.contact_unsubscribed)
@receiver(signals.contact_suppressed)
def cancel_marketing(sender: Any, contact: Contact, **kwargs: Any) -> None:
    deliveries_cancel(contact=contact)


@receiver(signals.contacts_suppressed)
def cancel_marketing_of_many(sender: Any, contacts: list[Contact], **kwargs: Any) -> None:
    deliveries_cancel_many(contact_ids=[contact.pk for contact in contacts])


@receiver(signals.data_export_collect)
def export_deliveries(sender: Any, contact: Contact, **kwargs: Any) -> tuple[str, list[dict[str, Any]]]:
    fields = ["id", "kind", "template", "status", "context", "esp_name", "created_at", "sent_at", "error"]
    rows = contact.deliveries.order_by("created_at").values(*fields)
    return "deliveries", [{**row, "id": str(row["id"])} for row in rows]


@receiver(signals.data_export_collect)
def export_delivery_events(sender: Any, contact: Contact, **kwargs: Any) -> tuple[str, list[dict[str, Any]]]:
    """Every ESP event about the contact's mails, with what the ESP reported (opens, clicks, IPs, user agents)."""
    fields = ["delivery_id", "esp_name", "type", "esp_type", "occurred_at", "description", "click_url", "detail"]
    rows = DeliveryEvent.objects.filter(contact=contact).order_by("occurred_at", "id").values(*fields)
    return "delivery_events", [{**row, "delivery_id": str(row["delivery_id"])} for row in rows]


@receiver(signals.contact_erasing)
def anonymise_deliveries(sender: Any, contact: Contact, **kwargs: Any) -> None:
    """Keep each delivery's kind, status and dates (anonymous counts); drop what could name the person."""
    Delivery.objects.filter(contact=contact).exclude(status__in=[Delivery.Status.SENT, Delivery.Status.FAILED]).update(
        status=Delivery.Status.CANCELLED
    )
    Delivery.objects.filter(contact=contact).update(context={}, esp_message_id="", error="")
    # An ESP's event id often embeds the recipient; a hash keeps it unique without naming anyone.
    events = list(DeliveryEvent.objects.filter(contact=contact).only("id", "event_id"))
    for event in events:
        if not event.event_id.startswith("sha256:"):
            event.event_id = "sha256:" + hashlib.sha256(event.event_id.encode()).hexdigest()
    DeliveryEvent.objects.bulk_update(events, ["event_id"], batch_size=500)
    DeliveryEvent.objects.filter(contact=contact).update(description="", click_url="", detail={})


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
