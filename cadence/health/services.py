"""The writes of relationship health: recompute in batches and on events, re-engage, sunset."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from cadence.enqueue import delivery_enqueue
from cadence.health import rules as health
from cadence.keys import reengagement_key
from cadence.kinds import Kind
from cadence.models import ContactHealth
from cadence.schedules import schedule_take_slot
from messaging.models import Delivery, DeliveryEvent
from messaging.services import delivery_create
from preferences.frequencies import get_frequency
from preferences.models import ConsentEvent, Contact
from preferences.policy import effective_frequency, load_policies
from preferences.services import Evidence, contact_sunset

logger = logging.getLogger(__name__)

RECENT = timedelta(days=90)
BATCH_SIZE = 1000

# The ESP events that say something of a relationship; the others (delivered, deferred...) say nothing.
ENGAGEMENT_EVENTS = frozenset({DeliveryEvent.Type.OPENED, DeliveryEvent.Type.CLICKED})
HEALTH_EVENTS = ENGAGEMENT_EVENTS | {DeliveryEvent.Type.BOUNCED, DeliveryEvent.Type.COMPLAINED}


def _thresholds() -> health.Thresholds:
    return health.Thresholds(lost_after=timedelta(days=30 * settings.HEALTH_SUNSET_AFTER_MONTHS))


def _preference_signals(contact_ids: list[Any], since: Any) -> dict[Any, tuple[bool, bool]]:
    """Return {contact id: (topics dropped, frequency lowered)} from recent ledger entries."""
    found: dict[Any, tuple[bool, bool]] = {}
    events = ConsentEvent.objects.filter(
        contact_id__in=contact_ids, kind=ConsentEvent.Kind.PREFERENCES, occurred_at__gte=since
    ).values_list("contact_id", "before", "after")
    for contact_id, before, after in events:
        dropped, lowered = found.get(contact_id, (False, False))
        if len(after.get("topics") or []) < len(before.get("topics") or []):
            dropped = True
        if (
            before.get("frequency")
            and after.get("frequency")
            and get_frequency(after["frequency"]).days > get_frequency(before["frequency"]).days
        ):
            lowered = True
        found[contact_id] = (dropped, lowered)
    return found


def health_recompute(*, contact_ids: Iterable[Any], act: bool = True) -> dict[str, int]:
    """Recompute the health of the given confirmed contacts and store it. Return counts by state.

    With `act`, a contact that turned cooling from lack of engagement gets one re-engagement mail
    (at most every HEALTH_REENGAGE_EVERY_DAYS), and a lost one is sunset: first the least frequent
    cadence, then, HEALTH_SUNSET_STOP_AFTER_MONTHS later without engagement, no marketing mail.
    """
    now = timezone.now()
    ids = list(contact_ids)
    contacts = list(
        Contact.objects.filter(pk__in=ids, status=Contact.Status.CONFIRMED).select_related("schedule", "health")
    )
    if not contacts:
        return {}
    policies = load_policies()
    prefs = _preference_signals([c.pk for c in contacts], now - RECENT)
    thresholds = _thresholds()
    rows: list[ContactHealth] = []
    counts: dict[str, int] = {}
    for contact in contacts:
        current = getattr(contact, "health", None) or ContactHealth(contact=contact, state_since=now)
        schedule = getattr(contact, "schedule", None)
        dropped, lowered = prefs.get(contact.pk, (False, False))
        assessment = health.assess(
            health.Indicators(
                now=now,
                interval=effective_frequency(contact, policies).interval,
                subscribed_at=contact.confirmed_at or contact.created_at,
                last_sent_at=schedule.last_sent_at if schedule else None,
                last_engaged_at=current.last_engaged_at,
                bounces=current.bounce_count
                if current.last_bounce_at and current.last_bounce_at >= now - RECENT
                else 0,
                complained=current.complained_at is not None or contact.suppression_reason == "complaint",
                suppressed=contact.suppressed_at is not None,
                paused_until=contact.paused_until,
                topics_dropped=dropped,
                frequency_lowered=lowered,
            ),
            thresholds,
        )
        if assessment.state != current.state or current._state.adding:
            current.state_since = now
        current.state = assessment.state
        current.reasons = list(assessment.reasons)
        current.computed_at = now
        counts[current.state] = counts.get(current.state, 0) + 1
        if act:
            _act(contact, current, now)
        rows.append(current)
    ContactHealth.objects.bulk_create(
        rows,
        update_conflicts=True,
        unique_fields=["contact"],
        update_fields=["state", "reasons", "state_since", "computed_at", "reengaged_at", "sunset_stage", "sunset_at"],
    )
    return counts


def _reengagement_fits(contact: Contact, now: Any) -> bool:
    """Return whether a re-engagement mail may go now, and if so take the contact's next slot for it.

    It is a marketing mail like any other: it needs consent, and it takes the place of the next nurture
    mail, so nobody hears from us more often than chosen. It waits while the last marketing mail is
    younger than the contact's interval, or while another marketing mail is on its way.
    """
    if not contact.may_receive_marketing(now):
        return False
    interval = effective_frequency(contact).interval
    with transaction.atomic():
        return schedule_take_slot(contact=contact, interval=interval, now=now)


def _act(contact: Contact, row: ContactHealth, now: Any) -> None:
    if row.state == health.State.COOLING and health.NO_ENGAGEMENT in row.reasons:
        every = timedelta(days=settings.HEALTH_REENGAGE_EVERY_DAYS)
        if (row.reengaged_at is None or now - row.reengaged_at > every) and _reengagement_fits(contact, now):
            delivery_create(
                contact=contact,
                kind=Kind.REENGAGEMENT,
                template="reengagement",
                idempotency_key=reengagement_key(contact.pk, now.date()),
                marketing=True,
                queue=Delivery.Queue.BULK,
                enqueue=delivery_enqueue,
            )
            row.reengaged_at = now
    if row.state == health.State.LOST and health.NO_ENGAGEMENT in row.reasons:
        evidence = Evidence(source="health-sunset", extra={"reasons": list(row.reasons)})
        if row.sunset_stage == 0:
            contact_sunset(contact=contact, stop=False, evidence=evidence)
            row.sunset_stage, row.sunset_at = 1, now
        elif row.sunset_stage == 1 and row.sunset_at is not None:
            stop_after = timedelta(days=30 * settings.HEALTH_SUNSET_STOP_AFTER_MONTHS)
            if now - row.sunset_at > stop_after:
                contact_sunset(contact=contact, stop=True, evidence=evidence)
                row.sunset_stage, row.sunset_at = 2, now


def _confirmed_id_batches(batch_size: int) -> Iterator[list[Any]]:
    last = None
    base = Contact.objects.filter(status=Contact.Status.CONFIRMED).order_by("pk")
    while True:
        query = base if last is None else base.filter(pk__gt=last)
        ids = list(query.values_list("pk", flat=True)[:batch_size])
        if not ids:
            return
        yield ids
        last = ids[-1]


def health_recompute_all(*, batch_size: int = BATCH_SIZE) -> dict[str, int]:
    """Recompute every confirmed contact's health, one transaction per batch. Return counts by state."""
    totals: dict[str, int] = {}
    for ids in _confirmed_id_batches(batch_size):
        with transaction.atomic():
            for state, n in health_recompute(contact_ids=ids).items():
                totals[state] = totals.get(state, 0) + n
    logger.info("health recomputed", extra={"counts": totals})
    return totals


def health_record_event(*, contact_id: Any, event_type: str, at: Any = None) -> None:
    """Record one of the HEALTH_EVENTS (a `DeliveryEvent.Type`: open, click, bounce, complaint) for a contact.

    An open or click also ends a sunset in progress. The health is recomputed at once.
    """
    at = at or timezone.now()
    row, _created = ContactHealth.objects.get_or_create(contact_id=contact_id)
    if event_type in ENGAGEMENT_EVENTS:
        if row.last_engaged_at is None or at > row.last_engaged_at:
            row.last_engaged_at = at
        row.sunset_stage, row.sunset_at = 0, None
    elif event_type == DeliveryEvent.Type.BOUNCED:
        row.bounce_count += 1
        row.last_bounce_at = at
    elif event_type == DeliveryEvent.Type.COMPLAINED:
        row.complained_at = at
    else:
        raise ValueError(f"unknown health event {event_type!r}")
    row.save()
    health_recompute(contact_ids=[contact_id], act=False)
