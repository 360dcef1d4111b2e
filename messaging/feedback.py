"""Delivery feedback: what ESP webhooks report about a delivery, and what follows from it.

anymail turns each ESP's webhook into an AnymailTrackingEvent and sends its `tracking` signal;
`messaging.receivers` hands every event to `delivery_event_record`.
"""

from __future__ import annotations

import hashlib
import json
import logging
from datetime import timedelta
from typing import Any
from uuid import UUID

from anymail.signals import AnymailTrackingEvent, EventType, RejectReason
from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from messaging import signals
from messaging.brake import send_brake_check
from messaging.models import Delivery, DeliveryEvent
from preferences.models import SuppressionEntry
from preferences.services import Evidence, contact_suppress, contact_unsubscribe, normalize_email

logger = logging.getLogger(__name__)

Type = DeliveryEvent.Type

# anymail's normalized event types -> ours (bounces are split into hard and soft below).
EVENT_TYPES: dict[str, str] = {
    EventType.QUEUED: Type.QUEUED,
    EventType.SENT: Type.SENT,
    EventType.DELIVERED: Type.DELIVERED,
    EventType.DEFERRED: Type.DEFERRED,
    EventType.BOUNCED: Type.BOUNCED,
    EventType.REJECTED: Type.REJECTED,
    EventType.FAILED: Type.FAILED,
    EventType.COMPLAINED: Type.COMPLAINED,
    EventType.OPENED: Type.OPENED,
    EventType.CLICKED: Type.CLICKED,
    EventType.UNSUBSCRIBED: Type.UNSUBSCRIBED,
}

# Events arrive out of order; a delivery's feedback only moves to a more telling one.
FEEDBACK_RANK: dict[str, int] = {
    Type.OTHER: 0,
    Type.QUEUED: 1,
    Type.SENT: 2,
    Type.DEFERRED: 3,
    Type.SOFT_BOUNCED: 4,
    Type.DELIVERED: 5,
    Type.OPENED: 6,
    Type.CLICKED: 7,
    Type.UNSUBSCRIBED: 8,
    Type.FAILED: 9,
    Type.REJECTED: 9,
    Type.BOUNCED: 10,
    Type.COMPLAINED: 11,
}

# SparkPost bounce classes that are temporary: https://support.sparkpost.com/docs/deliverability/bounce-classification-codes
SPARKPOST_SOFT_BOUNCE_CLASSES = frozenset({"20", "21", "22", "23", "24", "40", "60", "70", "100"})


def _raw(event: AnymailTrackingEvent) -> dict[str, Any]:
    """Return the ESP's own event as a JSON-safe dict."""
    raw = event.esp_event
    if hasattr(raw, "lists"):  # a QueryDict (form-encoded webhooks)
        raw = {key: values[-1] if len(values) == 1 else values for key, values in raw.lists()}
    if not isinstance(raw, dict):
        return {"value": str(raw)}
    return json.loads(json.dumps(raw, default=str))


def is_soft_bounce(esp_name: str, event: AnymailTrackingEvent, raw: dict[str, Any]) -> bool:
    """Return whether a bounce (or a Mailgun temporary failure) is temporary, as the ESP classes it."""
    esp = esp_name.lower()
    if esp == "postmark":
        return raw.get("Type") in {"SoftBounce", "Transient", "DnsError"}
    if esp == "mailgun":
        data = raw.get("event-data", raw)
        return data.get("event") == "failed" and data.get("severity") == "temporary"
    if esp == "sendgrid":
        return raw.get("type") == "blocked"
    if esp in {"brevo", "sendinblue"}:
        return raw.get("event") == "soft_bounce"
    if esp == "amazon ses":
        return raw.get("bounce", {}).get("bounceType") in {"Transient", "Undetermined"}
    if esp == "sparkpost":
        return str(raw.get("bounce_class", "")) in SPARKPOST_SOFT_BOUNCE_CLASSES
    if esp == "mailjet":
        return raw.get("event") == "bounce" and not raw.get("hard_bounce", True)
    return False


def classify(esp_name: str, event: AnymailTrackingEvent, raw: dict[str, Any]) -> str:
    """Return the DeliveryEvent.Type of an anymail event."""
    event_type = EVENT_TYPES.get(event.event_type, Type.OTHER)
    if event_type in {Type.BOUNCED, Type.DEFERRED} and is_soft_bounce(esp_name, event, raw):
        return Type.SOFT_BOUNCED
    return event_type


def event_key(event: AnymailTrackingEvent, raw: dict[str, Any]) -> str:
    """Return the de-duplication key: the ESP's event id (per recipient), else a hash of the raw event."""
    if event.event_id:
        return f"{event.event_id}:{event.recipient or ''}"[:255]
    digest = hashlib.sha256(json.dumps(raw, sort_keys=True, default=str).encode()).hexdigest()
    return f"sha256:{digest}"


def find_delivery(event: AnymailTrackingEvent) -> Delivery | None:
    """Return the Delivery an event is about, or None.

    By the `delivery_id` in the metadata first. Without it, by ESP message id only when exactly one
    delivery has that id and the event names its address: a batch send shares one message id among
    all its recipients (whose real events carry their delivery id), so an event naming one of them
    by the batch id alone could come from any other.
    """
    metadata = event.metadata if isinstance(event.metadata, dict) else {}
    delivery_id = metadata.get("delivery_id")
    if delivery_id:
        try:
            found = Delivery.objects.select_related("contact").filter(id=UUID(str(delivery_id))).first()
        except ValueError:
            found = None
        if found is not None:
            return found
    if not event.message_id:
        return None
    candidates = list(Delivery.objects.select_related("contact").filter(esp_message_id=str(event.message_id))[:2])
    if len(candidates) != 1 or not addressed_to(event, candidates[0]):
        return None
    return candidates[0]


def addressed_to(event: AnymailTrackingEvent, delivery: Delivery) -> bool:
    """Return whether the event's recipient (when it names one) is the delivery's contact's address."""
    return not event.recipient or normalize_email(str(event.recipient)) == delivery.contact.email


def delivery_event_record(*, esp_name: str, event: AnymailTrackingEvent) -> DeliveryEvent | None:
    """Record one tracking event and act on it. Return the new DeliveryEvent.

    Return None when the message is unknown or the event was recorded before (same ESP event id).
    A hard bounce or a complaint suppresses the contact, soft bounces do so after
    SOFT_BOUNCE_LIMIT within SOFT_BOUNCE_WINDOW_DAYS, and an unsubscribe reported by the ESP
    unsubscribes the contact. Receivers of `delivery_event_recorded` (relationship health) hear of it.
    """
    delivery = find_delivery(event)
    if delivery is None:
        logger.info("tracking event for an unknown message", extra={"esp": esp_name, "message_id": event.message_id})
        return None
    raw = _raw(event)
    event_type = classify(esp_name, event, raw)
    occurred_at = event.timestamp or timezone.now()
    description = " ".join(str(part) for part in (event.description, event.mta_response) if part)
    with transaction.atomic():
        try:
            with transaction.atomic():
                recorded = DeliveryEvent.objects.create(
                    delivery=delivery,
                    contact_id=delivery.contact_id,
                    esp_name=esp_name,
                    event_id=event_key(event, raw),
                    type=event_type,
                    esp_type=f"{event.event_type}/{event.reject_reason}" if event.reject_reason else event.event_type,
                    occurred_at=occurred_at,
                    description=description[:2000],
                    click_url=(event.click_url or "")[:2000],
                    detail=raw,
                )
        except IntegrityError:
            return None
        locked = Delivery.objects.select_for_update().get(pk=delivery.pk)
        if FEEDBACK_RANK[event_type] >= FEEDBACK_RANK.get(locked.feedback, -1):
            locked.feedback = event_type
            locked.feedback_at = occurred_at
            locked.save(update_fields=["feedback", "feedback_at", "updated_at"])
        if addressed_to(event, delivery):
            _act_on(recorded, event, delivery)
            signals.delivery_event_recorded.send(sender=DeliveryEvent, event=recorded)
        else:
            # Recorded, but the address is not the contact's (now): it suppresses nobody.
            logger.warning("tracking event names another address than its delivery's", extra={"esp": esp_name})
    return recorded


def _act_on(recorded: DeliveryEvent, event: AnymailTrackingEvent, delivery: Delivery) -> None:
    _act_on_contact(recorded, event, delivery)
    if recorded.type in (Type.BOUNCED, Type.COMPLAINED, Type.REJECTED):
        send_brake_check(send_key=delivery.send_key)


def _act_on_contact(recorded: DeliveryEvent, event: AnymailTrackingEvent, delivery: Delivery) -> None:
    contact = delivery.contact
    evidence = Evidence(
        source=f"esp:{recorded.esp_name}"[:100],
        extra={
            "esp": recorded.esp_name,
            "event": recorded.esp_type,
            "event_id": recorded.event_id,
            "delivery_id": str(delivery.id),
            "recipient": event.recipient,
            "occurred_at": recorded.occurred_at.isoformat(),
            "description": recorded.description[:500],
        },
    )
    reason = event.reject_reason
    if recorded.type == Type.BOUNCED or (recorded.type == Type.REJECTED and reason == RejectReason.BOUNCED):
        contact_suppress(contact=contact, reason=SuppressionEntry.Reason.HARD_BOUNCE, evidence=evidence)
    elif recorded.type == Type.COMPLAINED or (recorded.type == Type.REJECTED and reason == RejectReason.SPAM):
        contact_suppress(contact=contact, reason=SuppressionEntry.Reason.COMPLAINT, evidence=evidence)
    elif recorded.type == Type.UNSUBSCRIBED or (recorded.type == Type.REJECTED and reason == RejectReason.UNSUBSCRIBED):
        contact_unsubscribe(contact=contact, evidence=evidence)
    elif recorded.type == Type.SOFT_BOUNCED:
        since = timezone.now() - timedelta(days=settings.SOFT_BOUNCE_WINDOW_DAYS)
        bounced_deliveries = (
            DeliveryEvent.objects.filter(contact=contact, type=Type.SOFT_BOUNCED, occurred_at__gte=since)
            .values("delivery_id")
            .distinct()
            .count()
        )
        if bounced_deliveries >= settings.SOFT_BOUNCE_LIMIT:
            evidence.extra["soft_bounces"] = bounced_deliveries
            contact_suppress(contact=contact, reason=SuppressionEntry.Reason.SOFT_BOUNCES, evidence=evidence)
