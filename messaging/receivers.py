"""How messaging answers what preferences reports."""

from __future__ import annotations

from typing import Any

from anymail.signals import AnymailTrackingEvent, tracking
from django.db import transaction
from django.dispatch import receiver

from messaging.feedback import delivery_event_record
from messaging.models import Delivery
from messaging.services import deliveries_cancel, delivery_create
from messaging.tasks import enqueue_bulk, enqueue_delivery
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


@receiver(signals.invitations_requested)
def send_invitations(sender: Any, invitations: list[tuple[Contact, int]], **kwargs: Any) -> None:
    """Queue one invitation per contact: a confirmation-kind (service) mail asking to confirm, on `bulk`."""
    created = [
        delivery_create(
            contact=contact,
            kind=Delivery.Kind.CONFIRMATION,
            template="invitation",
            idempotency_key=f"invitation:{contact.id}:{event_id}",
        )
        for contact, event_id in invitations
    ]
    ids = [str(delivery.id) for delivery in created if delivery is not None]
    # Thousands of invitations must not hold up the confirmations people are waiting for on `welcome`.
    transaction.on_commit(lambda: enqueue_bulk(ids))


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
        kind__in=Delivery.MARKETING_KINDS,
        status=Delivery.Status.SENT,
        sent_at__lte=conversion.converted_at,
    ).count()
    type(conversion).objects.filter(pk=conversion.pk).update(mails_before=sent)
    conversion.mails_before = sent
