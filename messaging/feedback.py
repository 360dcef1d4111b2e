"""Delivery feedback: what ESP webhooks report about deliveries, and what follows from it, per batch.

messaging.intake parses stored posts with anymail's parsers into AnymailTrackingEvents and hands a
batch of them to `delivery_events_record`, which works in a fixed number of statements per batch.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from anymail.signals import AnymailTrackingEvent, EventType, RejectReason
from django.conf import settings
from django.db import connection, transaction
from django.db.models import Count
from django.utils import timezone

from messaging import signals
from messaging.brake import send_brake_check
from messaging.bulk_sql import values_cte
from messaging.models import Delivery, DeliveryEvent
from messaging.webhooks import configured_esp, esp_key
from preferences.models import Contact, SuppressionEntry
from preferences.services import Evidence, contact_unsubscribe, contacts_suppress, normalize_email

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
        # anymail's esp_event is the whole {"msys": {"message_event": {...}}} wrapper SparkPost posts.
        wrapped = raw.get("msys")
        data = next(iter(wrapped.values()), {}) if isinstance(wrapped, dict) and wrapped else raw
        return str(data.get("bounce_class", "")) in SPARKPOST_SOFT_BOUNCE_CLASSES
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


@dataclass(frozen=True)
class TrackedEvent:
    """An anymail tracking event and the ESP whose URL it came through."""

    esp_name: str  # as anymail names it ("Postmark", "Amazon SES"): stored on DeliveryEvent
    esp: str  # the URL's key ("postmark", "amazon_ses")
    event: AnymailTrackingEvent


@dataclass
class _Match:
    id: UUID
    contact_id: Any
    email: str
    esp: str
    send_key: str
    feedback: str
    feedback_at: datetime | None
    message_id: str


def _delivery_id(event: AnymailTrackingEvent) -> UUID | None:
    metadata = event.metadata if isinstance(event.metadata, dict) else {}
    try:
        return UUID(str(metadata["delivery_id"]))
    except (KeyError, ValueError, TypeError, AttributeError):
        return None


def _matches(events: list[TrackedEvent]) -> list[_Match | None]:
    """Return the delivery each event is about, or None; the deliveries are locked (in id order).

    By the `delivery_id` in the metadata first (one query for the batch). Without it, by ESP message
    id only when exactly one delivery has that id and the event names its address: a batch send shares
    one message id among all its recipients (whose real events carry their delivery id), so an event
    naming one of them by the batch id alone could come from any other. An event is only about a
    delivery sent through the ESP whose URL it came through; a delivery that does not say which ESP
    took it (recorded before the ESP was written at claim) is taken to be the configured ESP's.
    """
    columns = [
        "id",
        "contact_id",
        "contact__email",
        "esp_name",
        "send_key",
        "feedback",
        "feedback_at",
        "esp_message_id",
    ]

    def load(**lookup: Any) -> list[_Match]:
        rows = Delivery.objects.select_for_update(of=("self",)).filter(**lookup).order_by("id").values_list(*columns)
        return [_Match(i, c, e, esp_key(n) if n else "", s, f, fa, m) for i, c, e, n, s, f, fa, m in rows]

    ids = {_delivery_id(tracked.event) for tracked in events} - {None}
    by_id = {match.id: match for match in load(id__in=ids)} if ids else {}
    wanted: list[UUID | None] = [_delivery_id(tracked.event) for tracked in events]
    message_ids = {
        str(tracked.event.message_id)
        for tracked, wanted_id in zip(events, wanted, strict=True)
        if tracked.event.message_id and (wanted_id is None or wanted_id not in by_id)
    }
    by_message: dict[str, list[_Match]] = {}
    if message_ids:
        for candidate in load(esp_message_id__in=message_ids):
            by_message.setdefault(candidate.message_id, []).append(candidate)
    primary = configured_esp()
    found: list[_Match | None] = []
    for tracked, wanted_id in zip(events, wanted, strict=True):
        match: _Match | None = by_id.get(wanted_id) if wanted_id is not None else None
        if match is None and tracked.event.message_id:
            candidates = by_message.get(str(tracked.event.message_id), [])
            if len(candidates) == 1 and _addressed_to(tracked.event, candidates[0].email):
                match = candidates[0]
        if match is not None and (match.esp or primary) != tracked.esp:
            logger.warning(
                "tracking event about a delivery another ESP sent, ignored",
                extra={"esp": tracked.esp, "delivery_esp": match.esp, "delivery_id": str(match.id)},
            )
            match = None
        found.append(match)
    return found


def _addressed_to(event: AnymailTrackingEvent, email: str) -> bool:
    """Return whether the event's recipient (when it names one) is the delivery's contact's address."""
    return not event.recipient or normalize_email(str(event.recipient)) == email


@dataclass
class _Row:
    tracked: TrackedEvent
    match: _Match
    key: str
    type: str
    occurred_at: datetime
    raw: dict[str, Any]
    description: str


def delivery_events_record(*, events: list[TrackedEvent]) -> int:
    """Record a batch of tracking events and act on them. Return how many were new.

    One query matches the batch's deliveries; one `INSERT … ON CONFLICT DO NOTHING` records the events
    (the event key de-duplicates whatever the ESP resends); each delivery's feedback moves to its most
    telling event, by precedence and then event time, never by arrival order (a late "delivered" never
    undoes a bounce); hard bounces and complaints (and soft bounces past SOFT_BOUNCE_LIMIT within
    SOFT_BOUNCE_WINDOW_DAYS) suppress in bulk with each event as ledger evidence; an unsubscribe
    reported by the ESP unsubscribes; the brake is checked once per send that bounced; receivers of
    `delivery_events_recorded` (relationship health) hear once, with the batch's events.
    """
    if not events:
        return 0
    with transaction.atomic():
        matches = _matches(events)
        rows: dict[tuple[str, str], _Row] = {}
        for tracked, match in zip(events, matches, strict=True):
            if match is None:
                logger.info(
                    "tracking event for an unknown message",
                    extra={"esp": tracked.esp, "message_id": tracked.event.message_id},
                )
                continue
            event = tracked.event
            raw = _raw(event)
            description = " ".join(str(part) for part in (event.description, event.mta_response) if part)
            row = _Row(
                tracked=tracked,
                match=match,
                key=event_key(event, raw),
                type=classify(tracked.esp_name, event, raw),
                occurred_at=event.timestamp or timezone.now(),
                raw=raw,
                description=description[:2000],
            )
            rows.setdefault((tracked.esp_name, row.key), row)
        inserted = _insert(list(rows.values()))
        new = [row for row in rows.values() if (row.tracked.esp_name, row.key) in inserted]
        _move_feedback(new)
        _act(new)
    return len(new)


def _insert(rows: list[_Row], chunk: int = 2000) -> set[tuple[str, str]]:
    """Insert the events, skipping those recorded before; return the (esp, key) of the new ones."""
    if not rows:
        return set()
    inserted: set[tuple[str, str]] = set()
    table = connection.ops.quote_name(DeliveryEvent._meta.db_table)
    columns = [
        "delivery_id", "contact_id", "esp_name", "event_id", "type", "esp_type", "occurred_at", "received_at",
        "description", "click_url", "detail",
    ]  # fmt: skip
    names = ", ".join(connection.ops.quote_name(column) for column in columns)
    now = timezone.now()
    for start in range(0, len(rows), chunk):
        values = []
        for row in rows[start : start + chunk]:
            event = row.tracked.event
            esp_type = f"{event.event_type}/{event.reject_reason}" if event.reject_reason else str(event.event_type)
            values.append(
                (row.match.id, row.match.contact_id, row.tracked.esp_name, row.key, row.type, esp_type[:64],
                 row.occurred_at, now, row.description, (event.click_url or "")[:2000], row.raw)
            )  # fmt: skip
        cte, params = values_cte(DeliveryEvent, columns, values)
        sql = (
            f"{cte} INSERT INTO {table} ({names}) SELECT {names} FROM v WHERE true "
            f"ON CONFLICT (esp_name, event_id) DO NOTHING RETURNING esp_name, event_id"
        )
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            inserted.update((esp_name, key) for esp_name, key in cursor.fetchall())
    return inserted


def _move_feedback(rows: list[_Row]) -> None:
    """Move each delivery's feedback to its most telling event: higher precedence, then the later event."""
    changed: dict[UUID, Delivery] = {}
    for row in sorted(rows, key=lambda row: (FEEDBACK_RANK[row.type], row.occurred_at)):
        match = row.match
        current = (FEEDBACK_RANK.get(match.feedback, -1), match.feedback_at)
        rank = FEEDBACK_RANK[row.type]
        if rank > current[0] or (rank == current[0] and (current[1] is None or row.occurred_at >= current[1])):
            match.feedback, match.feedback_at = row.type, row.occurred_at
            changed[match.id] = Delivery(id=match.id, feedback=row.type, feedback_at=row.occurred_at)
    if not changed:
        return
    now = timezone.now()
    values = [(delivery.id, delivery.feedback, delivery.feedback_at, now) for delivery in changed.values()]
    cte, params = values_cte(Delivery, ["id", "feedback", "feedback_at", "updated_at"], values)
    table = connection.ops.quote_name(Delivery._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"{cte} UPDATE {table} SET feedback = v.feedback, feedback_at = v.feedback_at, updated_at = v.updated_at "
            f"FROM v WHERE {table}.id = v.id",
            params,
        )


def _evidence(row: _Row) -> Evidence:
    return Evidence(
        source=f"esp:{row.tracked.esp_name}"[:100],
        extra={
            "esp": row.tracked.esp_name,
            "event": str(row.tracked.event.event_type),
            "event_id": row.key,
            "delivery_id": str(row.match.id),
            "recipient": row.tracked.event.recipient,
            "occurred_at": row.occurred_at.isoformat(),
            "description": row.description[:500],
        },
    )


def _act(rows: list[_Row]) -> None:
    """Suppress, unsubscribe, brake and tell cadence, once for the batch."""
    acting: list[_Row] = []
    for row in rows:
        if _addressed_to(row.tracked.event, row.match.email):
            acting.append(row)
        else:
            # Recorded, but the address is not the contact's (now): it suppresses nobody.
            logger.warning("tracking event names another address than its delivery's", extra={"esp": row.tracked.esp})
    suppressions: list[tuple[Any, str, Evidence]] = []
    soft: list[_Row] = []
    for row in acting:
        reason = row.tracked.event.reject_reason
        if row.type == Type.BOUNCED or (row.type == Type.REJECTED and reason == RejectReason.BOUNCED):
            suppressions.append((row.match.contact_id, SuppressionEntry.Reason.HARD_BOUNCE, _evidence(row)))
        elif row.type == Type.COMPLAINED or (row.type == Type.REJECTED and reason == RejectReason.SPAM):
            suppressions.append((row.match.contact_id, SuppressionEntry.Reason.COMPLAINT, _evidence(row)))
        elif row.type == Type.UNSUBSCRIBED or (row.type == Type.REJECTED and reason == RejectReason.UNSUBSCRIBED):
            contact_unsubscribe(contact=Contact.objects.get(pk=row.match.contact_id), evidence=_evidence(row))
        elif row.type == Type.SOFT_BOUNCED:
            soft.append(row)
    if soft:
        since = timezone.now() - timedelta(days=settings.SOFT_BOUNCE_WINDOW_DAYS)
        counts = dict(
            DeliveryEvent.objects.filter(
                contact_id__in={row.match.contact_id for row in soft}, type=Type.SOFT_BOUNCED, occurred_at__gte=since
            )
            .values("contact_id")
            .annotate(deliveries=Count("delivery_id", distinct=True))
            .values_list("contact_id", "deliveries")
        )
        for row in soft:
            if counts.get(row.match.contact_id, 0) >= settings.SOFT_BOUNCE_LIMIT:
                evidence = _evidence(row)
                evidence.extra["soft_bounces"] = counts[row.match.contact_id]
                suppressions.append((row.match.contact_id, SuppressionEntry.Reason.SOFT_BOUNCES, evidence))
    if suppressions:
        contacts_suppress(suppressions=suppressions)
    for send_key in sorted(
        {row.match.send_key for row in acting if row.type in (Type.BOUNCED, Type.COMPLAINED, Type.REJECTED)} - {""}
    ):
        send_brake_check(send_key=send_key)
    if acting:
        signals.delivery_events_recorded.send(
            sender=DeliveryEvent,
            events=[signals.RecordedEvent(row.match.contact_id, row.type, row.occurred_at) for row in acting],
        )
